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
import { makeProblem } from '../../extension/tasks/wordProblems';
import { Sim, type SimLayout } from '../../extension/tasks/collabSim';
import { cacheRun, viewIds, type CacheRun } from '../../extension/tasks/cacheRuns';
import { trainViewTexts } from '../../extension/tasks/simTokens';
import { nativeAddonBuilt } from './nativeAddonBuilt';
import { forEachHeldOutRun } from './heldOutEngineRuns';
import { NAMES, SIM_TOKENS, VIEW_TEXTS, toyIds } from './simFixtures';

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
        const res = new Sim(p, { workers, layout, names: NAMES, selfCheckInterval: seed % 3 ? 1000 : 30, maxTokens: 100000, convention: 'v2' }, SIM_TOKENS).run();
        const run = cacheRun(res, layout, workers, p.answer, VIEW_TEXTS);
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
          expect(trained).toEqual([...s.ids.slice(Math.max(s.prefix, 1)), ...(s.eosAt !== null ? [VIEW_TEXTS.eos] : [])]);
          expect(run.weights[b].filter((x) => x === 2).length).toBe(s.ids.length > s.prefix ? 1 : 0);
          // The final sum's tokens after its claim token carry weight 3 (train.py --combine-weight), nothing else does.
          const w3 = run.weights[b].filter((x) => x === 3).length;
          expect(w3).toBe(s.kind === 'combine' ? trained.length - 1 - (s.eosAt !== null ? 1 : 0) : 0);
          if (s.kind === 'combine') sums++;
        }
        if (res.answerStep !== null) expect(run.targets[run.targets.length - 1].filter((t) => t >= 0)).toEqual([...toyIds(`${p.answer}}`), VIEW_TEXTS.eos]);
      }
      expect(sums).toBeGreaterThan(10);
    });
  }
});

const addonBuilt = nativeAddonBuilt('cacheRuns.test.ts', 'the engine comparison is skipped');

describe.skipIf(!addonBuilt)('cache format against the real engine (CPU, the shipped model)', () => {
  it('W = 1, 2, 3 combined and W = 2 interleaved: the format\'s forwards are the engine\'s, view for view', async () => {
    await forEachHeldOutRun([[1, 'combined', 0], [2, 'combined', 1], [3, 'combined', 2], [2, 'interleaved', 3]] as const, ({ workers, layout, p, names, tok, rec }) => {
      const trace = rec.trace();
      const cache = rec.cacheTrace();
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
    });
  }, 180_000);
});
