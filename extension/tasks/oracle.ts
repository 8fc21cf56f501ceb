/**
 * The oracle: what a perfect model of a collaboration convention would score in npm run eval.
 * Every held-out problem is run through the token-level simulator (collabSim.ts, the engine's
 * timing) with the evaluation's settings (greedy, self-check every 1000 tokens, a budget of N
 * tokens per worker), and each run is recorded as the evaluation records a real one: the
 * engine step at which the closing token of \boxed{} was written, whether the answer is right,
 * and the parts computed by more than one step. report.ts then summarises them with the same
 * code as the evaluation, so the oracle's "x W=1 steps" is the eval's metric.
 */
import { completeWorkerNames } from '../collab/prompts';
import type { EvalRun } from '../eval/runProblem';
import { Sim, type SimConvention, type SimLayout, type SimResult, type SimTokens } from './collabSim';
import type { WordProblem } from './wordProblems';

export interface OracleOptions {
  convention: SimConvention;
  workers: readonly number[];
  /** Shared layouts (combined, interleaved); W = 1 runs once, with the first. */
  layouts: readonly SimLayout[];
  /** Also the no-sharing control (layout 'isolated') for every W > 1. */
  control: boolean;
  /** Token budget per worker (a run gets budget x W), as npm run eval's --budget. */
  budget: number;
}

/** The runs the evaluation would make, in its order: (layout, W) pairs. */
export function oraclePlan(opts: OracleOptions): { workers: number; layout: SimLayout }[] {
  const plan: { workers: number; layout: SimLayout }[] = [];
  for (const layout of opts.layouts) for (const w of opts.workers) if (w > 1 || layout === opts.layouts[0]) plan.push({ workers: w, layout });
  if (opts.control) for (const w of opts.workers) if (w > 1) plan.push({ workers: w, layout: 'isolated' });
  return plan;
}

/** One simulated run of problem p, and the record npm run eval would have written for it. */
export function oracleRun(p: WordProblem, workers: number, layout: SimLayout, opts: Pick<OracleOptions, 'convention' | 'budget'>, tokens: (names: string[]) => SimTokens): { sim: SimResult; run: EvalRun } {
  const names = completeWorkerNames([], workers);
  const tok = tokens(names);
  const sim = new Sim(p, { workers, layout, names, selfCheckInterval: 1000, maxTokens: opts.budget * workers, convention: opts.convention }, tok).run();
  const claims: Record<string, number> = {};
  const texts: string[] = Array.from({ length: workers }, () => '');
  for (const s of sim.steps) {
    // What was written of the step by the end (a step cut by the budget counts as far as it got).
    const written = tok.decode ? tok.decode(s.ids.slice(s.prefix)) : s.movedAt !== null ? s.text : '';
    texts[s.worker] += written;
    if (s.kind !== 'part') continue;
    const it = p.parts[s.part];
    if (written.includes(`${it.groups}*${it.size}=`)) claims[it.item] = (claims[it.item] ?? 0) + 1;
  }
  const correct = sim.boxed !== null && sim.boxed === String(p.answer);
  const answerStep = sim.boxedStep ?? sim.engineSteps;
  const run: EvalRun = {
    id: p.id,
    workers,
    layout,
    answer: sim.boxed,
    correct,
    answerStep,
    firstCorrectStep: correct ? answerStep : null,
    fromFinisher: sim.boxed === null,
    engineSteps: sim.engineSteps,
    tokens: sim.steps.reduce((n, s) => n + s.ids.length - s.prefix, 0),
    claims,
    duplicated: Object.values(claims).some((n) => n > 1),
    ms: 0,
    texts,
  };
  return { sim, run };
}

/** Every run of the plan over the problems. A control run never boxes an answer (the finisher's guess is not simulated: it counts as wrong). */
export function oracleRuns(problems: readonly WordProblem[], opts: OracleOptions, tokens: (names: string[]) => SimTokens): EvalRun[] {
  const runs: EvalRun[] = [];
  for (const item of oraclePlan(opts)) for (const p of problems) runs.push(oracleRun(p, item.workers, item.layout, opts, tokens).run);
  return runs;
}

/** Per (layout, W): the mean over problems of (this run's answer step / the W = 1 run's), for problems both answered right. */
export function meanStepRatios(runs: readonly EvalRun[]): Map<string, number | null> {
  const solo = new Map<string, number>();
  for (const r of runs) if (r.workers === 1 && r.firstCorrectStep !== null && !solo.has(r.id)) solo.set(r.id, r.firstCorrectStep);
  const sums = new Map<string, { s: number; n: number }>();
  for (const r of runs) {
    const key = `${r.layout}/${r.workers}`;
    const e = sums.get(key) ?? { s: 0, n: 0 };
    const one = solo.get(r.id);
    if (r.firstCorrectStep !== null && one) {
      e.s += r.firstCorrectStep / one;
      e.n++;
    }
    sums.set(key, e);
  }
  return new Map([...sums].map(([k, e]) => [k, e.n ? e.s / e.n : null]));
}
