/**
 * Training sequences in the engine's own format: one worker's view (native/src/hogwild/
 * views.cpp) at the moment its step ends, built from a simulated run (collabSim.ts).
 *
 *   combined     prompt | history | headerOthers | the others' current steps | headerOwn | own step
 *   interleaved  prompt | history | own step
 *   finisher     prompt | history | every worker's current step | finisher + answer
 *
 * Every token carries `vis`, the engine step from which it was in the cache for this worker
 * (-1: the prompt and headers; an interleaved history step becomes visible only when it
 * moves). The trainer lets a query at engine step s attend to keys with vis <= s (plus the
 * causal rule), so each token of the own step is trained on exactly what the worker saw
 * when it wrote it: the others' partial steps as they stood then (instant visibility).
 */
import type { Sim, SimResult, StepRecord } from './collabSim';

export interface TrainSequence {
  ids: number[];
  vis: number[];
  /** 1 where the token is a training target (predicted from the token before it). */
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

/** The sequence that trains worker `own.worker` on step `own`. */
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
export function runSequences(sim: SimResult, layout: Sim['opts']['layout'], workers: number, answer: number, v: ViewTexts): TrainSequence[] {
  const out: TrainSequence[] = [];
  for (const s of sim.steps) if (s.ids.length > s.prefix) out.push(stepSequence(sim, layout, workers, s, v));
  if (sim.answerStep !== null) out.push(finisherSequence(sim, answer, v));
  return out;
}
