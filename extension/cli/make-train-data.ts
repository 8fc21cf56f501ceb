/**
 * node dist/cli/make-train-data.js --corpus FILE [--count N] [--convention v2]
 *   Plain text of simulated runs (prompts, headers, steps), for training the BPE tokenizer.
 * node dist/cli/make-train-data.js --tokenizer DIR --out DIR --from SEED --count N [--convention v2]
 *   Training sequences of N simulated runs (problem seeds SEED..SEED+N-1) in the engine's
 *   format: DIR/ids.u16, vis.i16, loss.u8 (concatenated) and offsets.u32 (N+1 entries per
 *   sequence start). See extension/tasks/trainViews.ts. The trainer is scripts/train/train.py.
 * --convention: the step texts the simulated workers write (extension/tasks/collabSim.ts):
 *   v2 (default, the faster one), v3 (v2 whose sums of three or more totals are written units
 *   first before the box) or v1 (the one the first built-in model was trained on).
 * --sum-drills N (cache views): N more runs of addition drills (sumDrills.ts), the final sum's skill.
 * --views: cache (default with v2) writes each run as the engine's cache (every entry
 *   computed once, in the view it was written in: cacheRuns.ts, the shard format in
 *   cacheShard.ts), the only format whose model behaves in the engine as in training; exact
 *   cuts each step's view where the engine's changes shape and recomputes it as one sequence
 *   (trainViews.ts); legacy (default with v1) is the one-view-per-step data the first model
 *   was trained on.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadTokenizer } from '../model/tokenizer';
import { DEFAULT_PROMPTS, completeWorkerNames, renderSystemPrompt, stepHeader } from '../collab/prompts';
import { digitIds } from '../collab/runConfig';
import { makeProblem, rng32 } from '../tasks/wordProblems';
import { Sim, type SimConvention, type SimLayout, type SimTokens } from '../tasks/collabSim';
import { memoEncoder, simTokensFor, trainViewTexts } from '../tasks/simTokens';
import { runSequences, type TrainViewsMode } from '../tasks/trainViews';
import { cacheRun } from '../tasks/cacheRuns';
import { CacheShardWriter } from '../tasks/cacheShard';
import { drillRun } from '../tasks/sumDrills';
import { CliError, parseArgs, runCli, type FlagSpec } from './args';

const SPEC: Record<string, FlagSpec> = {
  corpus: { type: 'string', arg: 'FILE', help: 'write a text corpus for the tokenizer' },
  tokenizer: { type: 'string', arg: 'DIR', help: 'folder with tokenizer.json + tokenizer_config.json' },
  out: { type: 'string', arg: 'DIR', help: 'output folder of the binary shard' },
  from: { type: 'int', arg: 'SEED', min: 0, help: 'first problem seed (default 0)' },
  count: { type: 'int', arg: 'N', min: 1, help: 'simulated runs (default 1000)' },
  convention: { type: 'string', arg: 'C', help: 'step texts: v2 (default), v3 (v2 with sums of 3+ totals units first) or v1 (the first model\'s)' },
  views: { type: 'string', arg: 'V', help: 'cache (default with v2: the engine\'s cache, each entry computed once, in its writer\'s view), exact (the engine\'s views, stretch by stretch, recomputed as one sequence) or legacy (default with v1: one view per step, as the first model was trained)' },
  'workers-mix': { type: 'string', arg: 'A,B,C,D', help: 'relative shares of runs with 1, 2, 3 and 4 workers (default 25,35,10,30)' },
  'sum-drills': { type: 'int', arg: 'N', min: 0, help: 'cache views: also N runs of addition drills (seeds SEED..SEED+N-1; extension/tasks/sumDrills.ts; default 0)' },
  'max-stretch': { type: 'int', arg: 'N', min: 0, help: 'exact views: at most N trained tokens per sequence (default 0: no cap; 1: every token at the engine\'s exact positions)' },
  help: { type: 'boolean', help: 'show this help' },
};

/** Relative shares of runs with 1, 2, 3 and 4 workers (what the shipped model's first stages were trained on). */
export const DEFAULT_WORKERS_MIX: readonly number[] = [25, 35, 10, 30];

/** The run settings of simulation i: workers (drawn by `mix`), layout, self-check interval. */
export function simSettings(seed: number, mix: readonly number[] = DEFAULT_WORKERS_MIX): { workers: number; layout: SimLayout; selfCheckInterval: number } {
  const r = rng32(seed * 7 + 13);
  const x = r() * mix.reduce((a, b) => a + b, 0);
  let workers = 1;
  for (let acc = mix[0]; workers < mix.length && x >= acc; acc += mix[workers++]);
  const layout: SimLayout = r() < 0.7 ? 'combined' : 'interleaved';
  const selfCheckInterval = r() < 0.2 ? 20 + Math.floor(r() * 200) : 1000;
  return { workers, layout, selfCheckInterval };
}

/** --workers-mix: four non-negative shares, not all zero. */
function parseWorkersMix(raw: unknown): readonly number[] {
  if (raw === undefined) return DEFAULT_WORKERS_MIX;
  const mix = String(raw).split(',').map((x) => Number(x.trim()));
  if (mix.length !== 4 || mix.some((x) => !Number.isFinite(x) || x < 0) || !mix.some((x) => x > 0)) throw new CliError(`--workers-mix: "${String(raw)}" is not four non-negative shares (W = 1, 2, 3, 4), e.g. 25,35,10,30`);
  return mix;
}

function charTokens(names: string[]): SimTokens {
  const chunk = (s: string) => Array.from({ length: Math.ceil(s.length / 3) }, (_, i) => i);
  return { header: (w, k) => chunk(stepHeader(names[w], k)), selfCheck: chunk(DEFAULT_PROMPTS.selfCheck), encode: chunk, eos: -1 };
}

async function main(): Promise<void> {
  const { flags } = parseArgs(process.argv.slice(2), SPEC);
  const from = (flags.from as number | undefined) ?? 0;
  const count = (flags.count as number | undefined) ?? 1000;
  const convention = String(flags.convention ?? 'v2') as SimConvention;
  if (convention !== 'v1' && convention !== 'v2' && convention !== 'v3') throw new CliError(`--convention: "${convention}" is not v1, v2 or v3`);
  const mix = parseWorkersMix(flags['workers-mix']);
  const views = String(flags.views ?? (convention === 'v1' ? 'legacy' : 'cache')) as TrainViewsMode | 'cache';
  if (views !== 'exact' && views !== 'legacy' && views !== 'cache') throw new CliError(`--views: "${views}" is not cache, exact or legacy`);
  if (flags.corpus) {
    const lines: string[] = [];
    for (let w = 1; w <= 4; w++) lines.push(renderSystemPrompt(DEFAULT_PROMPTS.system, completeWorkerNames([], w)));
    lines.push(DEFAULT_PROMPTS.selfCheck, DEFAULT_PROMPTS.finisher, DEFAULT_PROMPTS.headerOthers, DEFAULT_PROMPTS.headerOwn);
    for (let i = 0; i < count; i++) {
      const seed = from + i;
      const p = makeProblem(seed);
      const s = simSettings(seed);
      const names = completeWorkerNames([], s.workers);
      const res = new Sim(p, { ...s, names, maxTokens: 100000, convention }, charTokens(names)).run();
      // Pieces as the engine encodes them: the template's parts, each header and each step alone.
      lines.push(`system\n${renderSystemPrompt(DEFAULT_PROMPTS.system, names)}`, `\nuser\n${p.text}`, '\nassistant\n');
      for (const st of res.steps) lines.push(stepHeader(names[st.worker], st.k), st.text);
      lines.push(`${p.answer}}`);
    }
    fs.writeFileSync(String(flags.corpus), lines.join('\u0000'));
    return;
  }
  if (!flags.tokenizer || !flags.out) throw new CliError('give --corpus FILE, or --tokenizer DIR and --out DIR');
  const tok = await loadTokenizer(path.resolve(String(flags.tokenizer)));
  if (!tok) throw new CliError(`${flags.tokenizer}: no tokenizer.json`);
  const digits = digitIds(tok);
  const encode = memoEncoder(tok);
  const nl2 = new Set<number>();
  for (let id = 0; id < tok.size; id++) if (tok.decode([id]).includes('\n\n')) nl2.add(id);
  const outDir = path.resolve(String(flags.out));
  fs.mkdirSync(outDir, { recursive: true });
  const shard = new CacheShardWriter();
  const ids: number[] = [];
  const vis: number[] = [];
  const loss: number[] = [];
  const offsets: number[] = [0];
  let answered = 0;
  for (let i = 0; i < count; i++) {
    const seed = from + i;
    const p = makeProblem(seed);
    const s = simSettings(seed, mix);
    const names = completeWorkerNames([], s.workers);
    const simTok: SimTokens = simTokensFor(tok, names, encode, digits);
    const res = new Sim(p, { ...s, names, maxTokens: 100000, convention }, simTok).run();
    if (res.answerStep !== null) answered++;
    // The step rule must end each step at its last token and nowhere else.
    for (const st of res.steps) {
      const content = st.ids.slice(st.prefix);
      const hits = content.map((id, j) => (nl2.has(id) ? j : -1)).filter((j) => j >= 0);
      if (st.movedAt !== null && (hits.length !== 1 || hits[0] !== content.length - 1)) throw new Error(`seed ${seed}: step ${JSON.stringify(st.text)} does not end at its last token (${JSON.stringify(content.map((id) => tok.decode([id])))})`);
    }
    const v = trainViewTexts(tok, names, p.text, encode);
    if (views === 'cache') {
      shard.add(cacheRun(res, s.layout, s.workers, p.answer, v));
      continue;
    }
    for (const seq of runSequences(res, s.layout, s.workers, p.answer, v, views, (flags['max-stretch'] as number | undefined) ?? 0)) {
      ids.push(...seq.ids);
      vis.push(...seq.vis);
      loss.push(...seq.loss);
      offsets.push(ids.length);
    }
  }
  const drills = (flags['sum-drills'] as number | undefined) ?? 0;
  if (drills > 0 && views !== 'cache') throw new CliError('--sum-drills: only with --views cache');
  if (views === 'cache') {
    const runTokens = shard.tokens;
    const drillTok = simTokensFor(tok, completeWorkerNames([], 4), encode, digits);
    for (let i = 0; i < drills; i++) shard.add(drillRun(from + i, drillTok, (x) => tok.decode(x, { skipSpecial: true }), { unitsFirst: convention === 'v3' }).run);
    shard.write(outDir);
    const extra = drills > 0 ? ` + ${drills} drill runs (${shard.tokens - runTokens} tokens)` : '';
    process.stderr.write(`${count} runs (${answered} answered) in the cache format${extra}, ${shard.tokens} tokens -> ${outDir}\n`);
    return;
  }
  fs.writeFileSync(path.join(outDir, 'ids.u16'), Uint16Array.from(ids));
  fs.writeFileSync(path.join(outDir, 'vis.i16'), Int16Array.from(vis));
  fs.writeFileSync(path.join(outDir, 'loss.u8'), Uint8Array.from(loss));
  fs.writeFileSync(path.join(outDir, 'offsets.u32'), Uint32Array.from(offsets));
  process.stderr.write(`${count} runs (${answered} answered), ${offsets.length - 1} sequences, ${ids.length} tokens -> ${outDir}\n`);
}

runCli(main);
