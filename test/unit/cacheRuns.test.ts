/**
 * The cache format (extension/tasks/cacheRuns.ts) is what the engine computes (issue 11):
 *  - against the real engine: held-out problems through the native engine with the shipped
 *    model; every forward the engine ran (worker, engine step) must be one of the format's,
 *    with the same view token for token and the same written tokens, and the format must have
 *    no forward the engine did not run (skipped, loudly, without the native addon);
 *  - over simulated runs: every written token is computed once and trained once (the claim
 *    marked), every view holds each block at most once, and offsets are contiguous.
 */
import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { heldOutProblems, makeProblem } from '../../extension/tasks/wordProblems';
import { Sim, type SimLayout, type SimTokens } from '../../extension/tasks/collabSim';
import { cacheRun, viewIds, type CacheRun } from '../../extension/tasks/cacheRuns';
import type { ViewTexts } from '../../extension/tasks/trainViews';
import { EngineViewRecorder } from '../../extension/tasks/engineViews';
import { trainViewTexts } from '../../extension/tasks/simTokens';
import { completeWorkerNames } from '../../extension/collab/prompts';
import { loadNativeAddon } from '../../extension/engine/native';
import { loadTokenizer } from '../../extension/model/tokenizer';
import { trainedModelDir } from '../../extension/model/builtinModels';
import { runProblem } from '../../extension/eval/runProblem';
import { nativeAddonBuilt } from './nativeAddonBuilt';

const NAMES = ['Alice', 'Bob', 'Carol', 'Dave'];
const words = (s: string) => (s.match(/ ?[A-Za-z]+|\d|[^\sA-Za-z\d]+\n*|\s+/g) ?? []).map((_, i) => 100 + i);
const tokens: SimTokens = { header: (w, k) => [1000 + w, 2000 + k, 1999], selfCheck: [7, 8, 9], encode: words, eos: 3 };
const V: ViewTexts = { prompt: [50, 51, 52], headerOthers: [60, 61], headerOwn: [70], finisher: [80], encode: words, eos: 3 };

/** The tokens forward f wrote: its block's tokens past what its view showed of that block before. */
function written(run: CacheRun, fi: number): number[] {
  const f = run.forwards[fi];
  const before = run.forwards.slice(0, fi).filter((g) => g.block === f.block);
  const had = before.length ? before[before.length - 1].view[before[before.length - 1].view.length - 1].len : 0;
  return run.blocks[f.block].slice(had, f.view[f.view.length - 1].len);
}

describe('cache format over simulated runs', () => {
  for (const layout of ['combined', 'interleaved'] as SimLayout[]) {
    it(`${layout}, W = 1..4: every token computed once, in a view of distinct contiguous blocks, and trained once`, () => {
      let sums = 0;
      for (let seed = 0; seed < 40; seed++) {
        const workers = 1 + (seed % 4);
        const p = makeProblem(seed);
        const res = new Sim(p, { workers, layout, names: NAMES, selfCheckInterval: seed % 3 ? 1000 : 30, maxTokens: 100000, convention: 'v2' }, tokens).run();
        const run = cacheRun(res, layout, workers, p.answer, V);
        const computed = run.blocks.map((b) => b.map(() => 0));
        run.forwards.forEach((f, fi) => {
          const blocks = f.view.map((s) => s.block);
          expect(new Set(blocks).size).toBe(blocks.length);
          f.view.forEach((s, i) => {
            expect(s.off).toBe(i === 0 ? 0 : f.view[i - 1].off + f.view[i - 1].len);
            expect(s.len).toBeLessThanOrEqual(run.blocks[s.block].length);
          });
          expect(blocks[blocks.length - 1]).toBe(f.block);
          const w = written(run, fi);
          expect(w.length).toBeGreaterThan(0);
          const had = f.view[f.view.length - 1].len - w.length;
          for (let i = had; i < had + w.length; i++) computed[f.block][i]++;
        });
        for (const c of computed) for (const n of c) expect(n).toBe(1);
        // Targets: each step's written tokens after its header, the end of turn, the finisher's answer.
        for (const s of res.steps) {
          const b = res.steps.indexOf(s) + (layout === 'combined' ? 3 : 1);
          const trained = run.targets[b].filter((t) => t >= 0);
          expect(trained).toEqual([...s.ids.slice(Math.max(s.prefix, 1)), ...(s.eosAt !== null ? [V.eos] : [])]);
          expect(run.weights[b].filter((x) => x === 2).length).toBe(s.ids.length > s.prefix ? 1 : 0);
          // The final sum's tokens after its claim token carry weight 3 (train.py --combine-weight), nothing else does.
          const w3 = run.weights[b].filter((x) => x === 3).length;
          expect(w3).toBe(s.kind === 'combine' ? trained.length - 1 - (s.eosAt !== null ? 1 : 0) : 0);
          if (s.kind === 'combine') sums++;
        }
        if (res.answerStep !== null) expect(run.targets[run.targets.length - 1].filter((t) => t >= 0)).toEqual([...words(`${p.answer}}`), V.eos]);
      }
      expect(sums).toBeGreaterThan(10);
    });
  }
});

const root = path.resolve(__dirname, '../..');
const addonBuilt = nativeAddonBuilt('cacheRuns.test.ts', 'the engine comparison is skipped');

describe.skipIf(!addonBuilt)('cache format against the real engine (CPU, the shipped model)', () => {
  it('W = 1, 2, 3 combined and W = 2 interleaved: the format\'s forwards are the engine\'s, view for view', async () => {
    const dir = trainedModelDir(root);
    const model = await loadNativeAddon(root).loadModel(dir, { device: 'cpu', threads: 2 });
    const tok = (await loadTokenizer(dir))!;
    try {
      for (const [workers, layout, index] of [[1, 'combined', 0], [2, 'combined', 1], [3, 'combined', 2], [2, 'interleaved', 3]] as const) {
        const p = heldOutProblems(index + 1)[index];
        const names = completeWorkerNames([], workers);
        let rec: EngineViewRecorder | null = null;
        await runProblem(model, tok, { id: p.id, problem: p.text, answer: String(p.answer) }, workers, layout, 120 * workers, (native) => (rec = new EngineViewRecorder(native)).onEvents);
        const trace = rec!.trace();
        const cache = rec!.cacheTrace();
        const run = cacheRun({ ...trace.result, answerStep: null }, layout, workers, null, trainViewTexts(tok, names, p.text));
        const mine = new Map(run.forwards.map((f, fi) => [`${f.step}/${f.worker}`, fi]));
        expect(cache.forwards.length).toBeGreaterThan(20);
        for (const f of cache.forwards) {
          const fi = mine.get(`${f.step}/${f.worker}`);
          expect(fi, `engine step ${f.step}, worker ${f.worker}`).toBeDefined();
          expect(viewIds(run, run.forwards[fi!].view)).toEqual(f.view.map((u) => cache.ids[u]));
          expect(written(run, fi!)).toEqual(f.written.map((u) => cache.ids[u]));
        }
        expect(run.forwards.filter((f) => f.worker >= 0).length).toBe(cache.forwards.length);
        expect(viewIds(run, run.forwards[0].view)).toEqual(cache.prompt.map((u) => cache.ids[u]));
      }
    } finally {
      model.close();
    }
  }, 180_000);
});
