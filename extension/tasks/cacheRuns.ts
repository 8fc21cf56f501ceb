/**
 * Training data in the engine's cache format: one record per run, every cache entry once.
 *
 * The Hogwild engine writes each token's K/V once, in the view its worker had when it wrote
 * it, and never recomputes them: a finished step moves into the history with its keys
 * re-rotated, and every later reader attends to those same K/V at its own view's positions.
 * A training sequence that lays a view out as one causal text (trainViews.ts) recomputes the
 * history in a context the engine never used, and a model trained so fails in the engine on
 * views it gets right in training (scripts/train/cache_forward.py measures it on a real run).
 *
 * Here a run is its blocks (prompt, the two headers, each step, the finisher) and its forwards:
 * each forward is one worker at one engine step, its queries are the tokens it wrote then, and
 * its view lists (block, offset, visible length) in the engine's order. train.py's cache mode
 * computes every entry in its own forward's view, which is exactly what the engine computes.
 */
import type { SimLayout, SimResult, StepRecord } from './collabSim';
import type { ViewTexts } from './trainViews';

/** One segment of a view: `len` first tokens of `block`, at positions off .. off + len - 1. */
export interface ViewSegment {
  block: number;
  off: number;
  len: number;
}

export interface CacheForward {
  /** The engine step (0: the prompt and headers, before any worker; FINISHER_STEP: the finisher). */
  step: number;
  /** The writing worker, or -1 (prompt, headers, finisher). */
  worker: number;
  view: ViewSegment[];
  /** The block written: the view's last segment. Its tokens see the block's earlier ones only (causal). */
  block: number;
}

export interface CacheRun {
  /** Each block's token ids (block 0 the prompt). */
  blocks: number[][];
  forwards: CacheForward[];
  /**
   * targets[b][i]: what the query of block b's token i is trained to predict, or -1. weights[b][i]:
   * 0 not trained, 1 trained, 2 a step's claim (its first written token), 3 a token of the final
   * sum's step after its first (train.py weighs 2 and 3 up: --decision-weight, --combine-weight).
   */
  targets: number[][];
  weights: number[][];
}

export const FINISHER_STEP = 30000;

/** Worker w's step in the cache at engine step t (the latest whose header was written by then). */
function currentStep(sim: Pick<SimResult, 'steps'>, w: number, t: number): StepRecord | null {
  let cur: StepRecord | null = null;
  for (const s of sim.steps) if (s.worker === w && s.fed.length > 0 && s.fed[0] <= t) cur = s;
  return cur;
}

function fedBy(s: StepRecord, t: number): number {
  let n = 0;
  while (n < s.ids.length && s.fed[n] <= t) n++;
  return n;
}

/**
 * The run's cache. `sim` is a simulated run (collabSim.ts) or one the engine made
 * (EngineViewRecorder's trace): the same record, so the views can be checked against the
 * engine's (test/unit/cacheRuns.test.ts).
 */
export function cacheRun(sim: Pick<SimResult, 'steps' | 'history' | 'current' | 'answerStep'>, layout: SimLayout, workers: number, answer: number | null, v: ViewTexts): CacheRun {
  const blocks: number[][] = [v.prompt];
  const combined = layout === 'combined';
  const HO = combined ? blocks.push(v.headerOthers) - 1 : -1;
  const HM = combined ? blocks.push(v.headerOwn) - 1 : -1;
  const blockOf = new Map<StepRecord, number>();
  for (const s of sim.steps) blockOf.set(s, blocks.push(s.ids) - 1);
  const targets = blocks.map((b) => b.map(() => -1));
  const weights = blocks.map((b) => b.map(() => 0));
  const forwards: CacheForward[] = [{ step: 0, worker: -1, view: [{ block: 0, off: 0, len: v.prompt.length }], block: 0 }];
  for (const h of [HO, HM]) {
    if (h >= 0) forwards.push({ step: 0, worker: -1, view: [{ block: 0, off: 0, len: v.prompt.length }, { block: h, off: v.prompt.length, len: blocks[h].length }], block: h });
  }
  const segs = (view: ViewSegment[], block: number, len: number) => {
    const last = view[view.length - 1];
    view.push({ block, off: last ? last.off + last.len : 0, len });
  };
  // Worker w's view at engine step t (trainViews.ts's stretch view at a = b = t, checked there against the engine).
  const viewAt = (own: StepRecord, t: number): ViewSegment[] => {
    const view: ViewSegment[] = [];
    segs(view, 0, v.prompt.length);
    for (const h of sim.history) if (h.movedAt! < t) segs(view, blockOf.get(h)!, h.ids.length);
    if (combined) {
      segs(view, HO, v.headerOthers.length);
      for (let o = 0; o < workers; o++) {
        if (o === own.worker) continue;
        const cur = currentStep(sim, o, t);
        if (cur && (cur.movedAt === null || cur.movedAt >= t)) segs(view, blockOf.get(cur)!, fedBy(cur, t));
      }
      segs(view, HM, v.headerOwn.length);
    }
    segs(view, blockOf.get(own)!, fedBy(own, t));
    return view;
  };
  for (const s of sim.steps) {
    const b = blockOf.get(s)!;
    for (const t of new Set(s.fed)) forwards.push({ step: t, worker: s.worker, view: viewAt(s, t), block: b });
    for (let i = Math.max(s.prefix, 1); i < s.ids.length; i++) {
      targets[b][i - 1] = s.ids[i];
      weights[b][i - 1] = i === s.prefix ? 2 : s.kind === 'combine' ? 3 : 1;
    }
    if (s.eosAt !== null && s.ids.length > 0) {
      targets[b][s.ids.length - 1] = v.eos;
      weights[b][s.ids.length - 1] = 1;
    }
  }
  if (sim.answerStep !== null && answer !== null) {
    // The finisher reads every step: the history, then each worker's step still in its block.
    const fin = [...v.finisher, ...v.encode(`${answer}}`)];
    const f = blocks.push(fin) - 1;
    const view: ViewSegment[] = [];
    segs(view, 0, v.prompt.length);
    for (const h of sim.history) segs(view, blockOf.get(h)!, h.ids.length);
    for (const c of sim.current) if (c && !sim.history.includes(c)) segs(view, blockOf.get(c)!, c.ids.length);
    segs(view, f, fin.length);
    forwards.push({ step: FINISHER_STEP, worker: -1, view, block: f });
    targets.push(fin.map(() => -1));
    weights.push(fin.map(() => 0));
    for (let i = v.finisher.length; i < fin.length; i++) {
      targets[f][i - 1] = fin[i];
      weights[f][i - 1] = 1;
    }
    targets[f][fin.length - 1] = v.eos;
    weights[f][fin.length - 1] = 1;
  }
  return { blocks, forwards, targets, weights };
}

/** The token ids of a view, in order (what the engine's forward saw). */
export function viewIds(run: CacheRun, view: readonly ViewSegment[]): number[] {
  return view.flatMap((s) => run.blocks[s.block].slice(0, s.len));
}
