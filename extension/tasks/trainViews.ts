/**
 * Training sequences in the engine's own format: one worker's view (native/src/hogwild/
 * views.cpp), built from a simulated run (collabSim.ts).
 *
 *   combined     prompt | history | headerOthers | the others' current steps | headerOwn | own step
 *   interleaved  prompt | history | own step
 *   finisher     prompt | history | every worker's current step | finisher + answer
 *
 * Every token carries `vis`, the engine step from which it was in the cache for this worker
 * (-1: always). The trainer lets a query at engine step s attend to keys with vis <= s (plus
 * the causal rule), so each token of the own step sees the others' partial steps as they
 * stood when it was written (instant visibility).
 *
 * Views ('exact', TrainViewsMode): the engine's view changes shape while a step is written (a
 * step of another worker moves into the history, that worker starts its next step), so one
 * sequence per step cannot be the engine's view for all its tokens. 'exact' cuts the own step
 * where the shape changes and builds each stretch's view as the engine does; the claim (the
 * step's first written token) gets the engine's view at its exact positions. 'legacy' (the
 * first model's data) built one view at the step's end: a step that moved meanwhile sat in
 * the history from the own step's first token, where the engine still showed it (or its bare
 * header) among the others' unfinished steps (test/unit/trainViews.test.ts, npm run compare-views).
 */
import type { Sim, SimResult, StepRecord } from './collabSim';

export interface TrainSequence {
  ids: number[];
  vis: number[];
  /** 1 where the token is a training target (predicted from the token before it); 2 ('exact' views): the target is a step's first written token (its claim, the decision train.py weighs up). */
  loss: number[];
}

export interface ViewTexts {
  prompt: number[];
  headerOthers: number[];
  headerOwn: number[];
  finisher: number[];
  encode(text: string): number[];
  eos: number;
}

const FINISHER_STAMP = 30000;

function push(seq: TrainSequence, ids: readonly number[], vis: number | readonly number[], loss = 0): void {
  ids.forEach((id, i) => {
    seq.ids.push(id);
    seq.vis.push(typeof vis === 'number' ? vis : vis[i]);
    seq.loss.push(loss);
  });
}

/** The part of step s written up to engine step T, with each token's visibility. */
function stepTokens(s: StepRecord, T: number, movedVisible: boolean): { ids: number[]; vis: number[] } {
  const ids: number[] = [];
  const vis: number[] = [];
  for (let i = 0; i < s.ids.length && s.fed[i] <= T; i++) {
    ids.push(s.ids[i]);
    vis.push(movedVisible ? s.movedAt! + 1 : s.fed[i]);
  }
  return { ids, vis };
}

/** Worker w's current step at engine step T (the latest one whose header was written by then). */
function currentStep(sim: SimResult, w: number, T: number): StepRecord | null {
  let cur: StepRecord | null = null;
  for (const s of sim.steps) if (s.worker === w && s.fed.length > 0 && s.fed[0] <= T) cur = s;
  return cur;
}

/**
 * How a step's view is cut into sequences. 'legacy' (the data of models/hogwild-tiny): one
 * sequence per step, built at the step's end; a step that moved into the history while the
 * own step was being written already sits in the history for the own step's first tokens, and
 * the others' later tokens hide between keys. 'exact': one sequence per stretch of the own
 * step over which the view keeps its shape (the same history, the same current step of each
 * other worker), built as the engine builds that view; the step's first written token (its
 * claim) is trained on exactly the engine's view, positions included.
 */
export type TrainViewsMode = 'exact' | 'legacy';

/** The sequence that trains worker `own.worker` on step `own`, as one view built at the step's end ('legacy'). */
export function stepSequence(sim: SimResult, layout: Sim['opts']['layout'], workers: number, own: StepRecord, v: ViewTexts): TrainSequence {
  const T = own.fed[own.fed.length - 1];
  const seq: TrainSequence = { ids: [], vis: [], loss: [] };
  push(seq, v.prompt, -1);
  for (const h of sim.history) {
    if (h.movedAt! >= T) continue;
    const t = stepTokens(h, T, layout === 'interleaved');
    push(seq, t.ids, t.vis);
  }
  if (layout === 'combined') {
    push(seq, v.headerOthers, -1);
    for (let w = 0; w < workers; w++) {
      if (w === own.worker) continue;
      const s = currentStep(sim, w, T);
      if (!s || (s.movedAt !== null && s.movedAt < T)) continue;
      const t = stepTokens(s, T, false);
      push(seq, t.ids, t.vis);
    }
    push(seq, v.headerOwn, -1);
  }
  for (let i = 0; i < own.ids.length; i++) push(seq, [own.ids[i]], own.fed[i], i >= own.prefix ? 1 : 0);
  if (own.eosAt !== null) push(seq, [v.eos], own.eosAt, 1);
  return seq;
}

/** The others' steps in worker w's combined view at engine step s (the engine's block order: worker order). */
function othersAt(sim: SimResult, workers: number, w: number, s: number): StepRecord[] {
  const out: StepRecord[] = [];
  for (let v = 0; v < workers; v++) {
    if (v === w) continue;
    const cur = currentStep(sim, v, s);
    if (cur && (cur.movedAt === null || cur.movedAt >= s)) out.push(cur);
  }
  return out;
}

/** The view's shape at engine step s: the history's length and the others' current steps. */
function shapeAt(sim: SimResult, layout: Sim['opts']['layout'], workers: number, w: number, s: number): string {
  const history = sim.history.filter((h) => h.movedAt! < s).length;
  if (layout !== 'combined') return `${history}`;
  return `${history}|${othersAt(sim, workers, w, s).map((x) => `${x.worker}/${x.k}`).join(',')}`;
}

/**
 * The sequence for the own step's targets whose queries run at engine steps a..b (one view
 * shape): the view at step b, as the engine builds it (prompt | history | headerOthers | the
 * others' current steps | headerOwn | own step), the others' tokens stamped with their write
 * step so that a query at step s sees them as they stood at s.
 */
function stretchSequence(sim: SimResult, layout: Sim['opts']['layout'], workers: number, own: StepRecord, v: ViewTexts, a: number, b: number): TrainSequence {
  const seq: TrainSequence = { ids: [], vis: [], loss: [] };
  push(seq, v.prompt, -1);
  for (const h of sim.history) if (h.movedAt! < a) push(seq, h.ids, -1);
  if (layout === 'combined') {
    push(seq, v.headerOthers, -1);
    for (const o of othersAt(sim, workers, own.worker, a)) {
      const t = stepTokens(o, b, false);
      push(seq, t.ids, t.vis);
    }
    push(seq, v.headerOwn, -1);
  }
  for (let i = 0; i < own.ids.length && own.fed[i] <= b + 1; i++) {
    const q = i > 0 ? own.fed[i - 1] : -1; // the engine step whose forward sampled token i
    push(seq, [own.ids[i]], own.fed[i], i >= own.prefix && q >= a && q <= b ? (i === own.prefix ? 2 : 1) : 0);
  }
  if (own.eosAt !== null && own.eosAt >= a && own.eosAt <= b) push(seq, [v.eos], own.eosAt, 1);
  return seq;
}

/**
 * The sequences that train step `own` in the views the engine really fed ('exact'). Within a
 * stretch the others' later tokens sit hidden between a query's keys (RoPE distances a few
 * tokens off); maxStretch > 0 caps a stretch at that many queries (1: every token at the
 * engine's exact positions, at about one sequence per written token).
 */
export function exactStepSequences(sim: SimResult, layout: Sim['opts']['layout'], workers: number, own: StepRecord, v: ViewTexts, maxStretch = 0): TrainSequence[] {
  if (own.ids.length <= own.prefix) return [];
  const first = own.fed[own.prefix - 1];
  const last = own.eosAt ?? own.fed[own.fed.length - 2] ?? first;
  const out: TrainSequence[] = [];
  let a = first;
  while (a <= last) {
    const shape = shapeAt(sim, layout, workers, own.worker, a);
    let b = a;
    while (b < last && (maxStretch <= 0 || b - a + 1 < maxStretch) && shapeAt(sim, layout, workers, own.worker, b + 1) === shape) b++;
    // The claim is trained on the engine's view exactly: no later token of the others may sit between its keys.
    if (a === first && b > a && layout === 'combined' && othersAt(sim, workers, own.worker, a).some((o) => o.fed.some((f) => f > a && f <= b))) b = a;
    out.push(stretchSequence(sim, layout, workers, own, v, a, b));
    a = b + 1;
  }
  return out;
}

/** The finisher's sequence at the end of a run: the linearised view, the finisher, the answer. */
export function finisherSequence(sim: SimResult, answer: number, v: ViewTexts): TrainSequence {
  const seq: TrainSequence = { ids: [], vis: [], loss: [] };
  push(seq, v.prompt, -1);
  for (const h of sim.history) push(seq, h.ids, h.fed);
  for (const s of sim.current) push(seq, s.ids, s.fed);
  push(seq, v.finisher, FINISHER_STAMP);
  push(seq, [...v.encode(`${answer}}`), v.eos], FINISHER_STAMP, 1);
  return seq;
}

/** Every training sequence of one simulated run. */
export function runSequences(sim: SimResult, layout: Sim['opts']['layout'], workers: number, answer: number, v: ViewTexts, mode: TrainViewsMode = 'legacy', maxStretch = 0): TrainSequence[] {
  const out: TrainSequence[] = [];
  for (const s of sim.steps) {
    if (s.ids.length <= s.prefix) continue;
    if (mode === 'legacy') out.push(stepSequence(sim, layout, workers, s, v));
    else out.push(...exactStepSequences(sim, layout, workers, s, v, maxStretch));
  }
  if (sim.answerStep !== null) out.push(finisherSequence(sim, answer, v));
  return out;
}
