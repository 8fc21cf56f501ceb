/**
 * A token-level simulation of a Hogwild run on one word problem, with the timing of the real
 * engine (native/src/hogwild/engine.cpp): in engine step t every active worker writes its
 * pending tokens (a whole step header at once, else one token), all writes are visible to
 * all in the same step (combined layout), a token containing "\n\n" that ends a sentence is
 * written one step later and the step then moves into the shared history, the next header
 * follows in the next step, and the self-check question is fed after the header of the next
 * step that starts once the budget passes each interval.
 *
 * What the workers write is a collaboration convention (SimOptions.convention). v1, the one
 * the first built-in model was trained on:
 *  - A step is one part, claimed by its first token ("Plums, as Bob has the pears: 5*9=45,
 *    my total 96+45=141."), or the final combination, or "I stop here." (then end of turn).
 *  - Combined layout: the workers that start a step in the same engine step (they see each
 *    other's bare headers) take the unclaimed parts in name-list order: the k-th of them the
 *    k-th lowest part not claimed in any visible step. A claim is the step's first token, so
 *    every earlier starter's claim is already visible.
 *  - Interleaved layout (only finished steps are visible): worker i takes parts i, i+W, ...
 *  - A worker with nothing left to claim combines when every part is in the history and the
 *    latest part step there is its own; otherwise it stops. One worker writes \boxed{}.
 * v2, for the next training run (contentTextV2): the same claim rules over a different order
 * of parts, shorter steps and one sum of the workers' totals (see there and README,
 * "The built-in model and the evaluation", for the oracle's numbers).
 * Layout 'isolated' (the no-sharing control): a worker sees no step but its current one.
 */
import type { WordProblem } from './wordProblems';

export type SimLayout = 'combined' | 'interleaved' | 'isolated';

/**
 * Which step texts the workers write (see the file comment and contentTextV2). 'v1' is
 * the convention the first built-in model was trained on; 'v2' the faster one models/hogwild-tiny learned;
 * 'v3' is v2 with a final sum of three or more totals written units first before the box
 * (see sumText).
 */
export type SimConvention = 'v1' | 'v2' | 'v3';

export interface SimTokens {
  /** Worker w's header of step k ("**Alice [k]:** "), as the engine feeds it. */
  header(w: number, k: number): number[];
  selfCheck: number[];
  encode(text: string): number[];
  /** Text of ids, when known: it finds the token that closes \boxed{...} (the step the evaluation counts). */
  decode?(ids: number[]): string;
  eos: number;
}

export interface SimOptions {
  workers: number;
  layout: SimLayout;
  names: readonly string[];
  selfCheckInterval: number;
  maxTokens: number;
  /** Default 'v1'. */
  convention?: SimConvention;
}

export type StepKind = 'part' | 'combine' | 'stop';

export interface StepRecord {
  worker: number;
  k: number;
  /** Header (+ self-check) length: ids[0..prefix) are fed by the engine, the rest is written by the model. */
  prefix: number;
  ids: number[];
  /** Engine step at which each id was written into the cache. */
  fed: number[];
  /** Engine step after whose forward the step moved into the history (visible from movedAt + 1). */
  movedAt: number | null;
  /** The worker ended its turn after this step's last token (end of sequence sampled at that step). */
  eosAt: number | null;
  kind: StepKind;
  part: number; // the part index for 'part' steps, else -1
  text: string;
}

export interface SimResult {
  steps: StepRecord[];
  /** Engine steps the run took. */
  engineSteps: number;
  /** Engine step at which the \boxed answer's step was complete, or null. */
  answerStep: number | null;
  /**
   * Engine step at which the token that closes "\boxed{answer}" was written (what npm run eval
   * counts as the answer's step), or null. Without SimTokens.decode: answerStep.
   */
  boxedStep: number | null;
  /** The boxed answer the run wrote, or null. */
  boxed: string | null;
  /** Worker steps in the order they moved into the history. */
  history: StepRecord[];
  /** Parts computed by more than one worker. */
  duplicatedParts: number;
  /** Per worker, the step it is in (its block) at the end. */
  current: StepRecord[];
}

interface WorkerState {
  step: StepRecord;
  plan: number[]; // model-written ids still to come
  pending: number[];
  moveAfterFeed: boolean;
  finished: boolean;
  totals: number[]; // running total after each own part
}

/**
 * The order in which parts are taken. v1: as the problem lists them. v2: the parts with
 * something to subtract (the longer steps) first, each group in the problem's order, so that
 * the last round holds short steps and the workers finish closer together.
 */
function claimOrder(sim: Sim): number[] {
  const idx = sim.problem.parts.map((_, i) => i);
  if ((sim.opts.convention ?? 'v1') === 'v1') return idx;
  return [...idx.filter((i) => sim.problem.parts[i].minus > 0), ...idx.filter((i) => sim.problem.parts[i].minus === 0)];
}

/** The part worker w claims at engine step t, or -1 (nothing left that it may take). */
function claimPart(sim: Sim, w: number, t: number, claimed: ReadonlySet<number>): number {
  const { layout, workers: W } = sim.opts;
  const order = claimOrder(sim);
  const unclaimed = order.filter((i) => !claimed.has(i));
  if (layout === 'combined') {
    // The workers starting a step now see each other's bare headers: they take the unclaimed parts in name order.
    const starters = sim.workers
      .map((ws, i) => ({ ws, i }))
      .filter(({ ws }) => !ws.finished && ws.step.fed.length > 0 && ws.step.fed[0] === t && ws.step.ids.length === ws.step.prefix)
      .map(({ i }) => i);
    const rank = starters.indexOf(w);
    return rank >= 0 && rank < unclaimed.length ? unclaimed[rank] : -1;
  }
  if (layout === 'isolated') return unclaimed.length ? unclaimed[0] : -1; // it sees no one: the first part, always
  const mine = order.filter((i, k) => k % W === w && !claimed.has(i)); // interleaved: every W-th part of the order
  return mine.length ? mine[0] : -1;
}

/** The parts claimed in the steps worker w sees at engine step t (their claim token written). */
function claimedParts(sim: Sim, w: number, t: number): Set<number> {
  const claimed = new Set<number>();
  for (const v of sim.visibleSteps(w, t)) if (v.step.kind === 'part' && v.claimVisible) claimed.add(v.step.part);
  return claimed;
}

/**
 * Convention v2: the claim rules of v1 over claimOrder's order (the first token of a part step
 * is the part's noun, exactly as the problem writes it), shorter steps, and a final sum that
 * stays short as W grows:
 *  - part: "plums: 5*9=45." for a worker's first part; later parts add to the worker's own
 *    running total: "pears: 12*8=96, 96-3=93, total 45+93=138." (no mention of the others: the
 *    claim token, visible at once in the combined layout, is the message);
 *  - the worker that finishes the last part adds the workers' totals (the last number of each
 *    worker's latest part step) in worker order, in one sum: "138+77+60=\boxed{275}."; with one
 *    worker's total only: "\boxed{138}.";
 *  - a worker with nothing to claim stops ("Nothing is left for me, I stop here." + end of turn);
 *    after the answer: "The answer is written, I stop here.".
 */
function contentTextV2(sim: Sim, w: number, t: number, selfChecked: boolean): StepText {
  const p = sim.problem;
  const prefix = selfChecked ? 'no. ' : '';
  const history = sim.visibleHistory(t);
  if (history.some((s) => s.kind === 'combine')) return { text: `${prefix}The answer is written, I stop here.`, kind: 'stop', part: -1, end: 'eos' };
  const part = claimPart(sim, w, t, claimedParts(sim, w, t));
  if (part >= 0) {
    const it = p.parts[part];
    const ab = it.groups * it.size;
    let text = `${prefix}${it.item}: ${it.groups}*${it.size}=${ab}`;
    if (it.minus > 0) text += `, ${ab}-${it.minus}=${it.value}`;
    const totals = sim.ownTotals(w);
    if (totals.length) text += `, total ${totals[totals.length - 1]}+${it.value}=${totals[totals.length - 1] + it.value}`;
    return { text: `${text}.\n\n`, kind: 'part', part, end: 'step' };
  }
  const done = history.filter((s) => s.kind === 'part');
  if (new Set(done.map((s) => s.part)).size === p.parts.length && done[done.length - 1].worker === w) {
    const totals = combineOrder(sim);
    // One sum of all the totals, whatever W: "211+294+108=613" costs about 4 tokens per total, a chain of pairs 12.
    return { text: `${prefix}${sumText(totals, sim.opts.convention === 'v3')}.\n\n`, kind: 'combine', part: -1, end: 'step' };
  }
  return { text: `${prefix}Nothing is left for me, I stop here.`, kind: 'stop', part: -1, end: 'eos' };
}

/**
 * The final sum of the workers' totals: "138+77=\boxed{215}", one total alone "\boxed{138}".
 * With `unitsFirst` (convention v3) a sum of three or more totals first writes its digits from
 * the units up, then the box: "138+77+60+45=023=\boxed{320}". Each digit written that way
 * depends only on its column and the carry out of the column before; the box then copies the
 * digits back in order. Four more tokens (engine steps). Not yet the shipped model's: a small
 * model learns the units digit only after a long plateau, then the rest almost at once
 * (scripts/train/sum_order_experiment.md); the shipped model's wrong W = 4 runs are all
 * four-term sums written at once (bench/RESULTS.md, issue 11).
 */
export function sumText(totals: number[], unitsFirst: boolean): string {
  const sum = totals.reduce((a, b) => a + b, 0);
  if (totals.length < 2) return `\\boxed{${sum}}`;
  const reversed = unitsFirst && totals.length >= 3 ? `${[...String(sum)].reverse().join('')}=` : '';
  return `${totals.join('+')}=${reversed}\\boxed{${sum}}`;
}

/** The workers' running totals in the order the combination adds them: worker order. */
function combineOrder(sim: Sim): number[] {
  const out: number[] = [];
  for (let v = 0; v < sim.opts.workers; v++) {
    const t = sim.workers[v].totals;
    if (t.length) out.push(t[t.length - 1]);
  }
  return out;
}

interface StepText {
  text: string;
  kind: StepKind;
  part: number;
  end: 'step' | 'eos';
}

function contentText(sim: Sim, w: number, t: number, selfChecked: boolean): StepText {
  return (sim.opts.convention ?? 'v1') === 'v1' ? contentTextV1(sim, w, t, selfChecked) : contentTextV2(sim, w, t, selfChecked);
}

function contentTextV1(sim: Sim, w: number, t: number, selfChecked: boolean): { text: string; kind: StepKind; part: number; end: 'step' | 'eos' } {
  const p = sim.problem;
  const { layout, workers: W } = sim.opts;
  const visible = sim.visibleSteps(w, t);
  const prefix = selfChecked ? 'no. ' : '';
  const history = sim.visibleHistory(t);
  if (history.some((s) => s.kind === 'combine')) return { text: `${prefix}The answer is written, I stop here.`, kind: 'stop', part: -1, end: 'eos' };

  const claimed = new Set<number>();
  for (const v of visible) if (v.step.kind === 'part' && v.claimVisible) claimed.add(v.step.part);
  const part = claimPart(sim, w, t, claimed);
  if (part >= 0) {
    const it = p.parts[part];
    let mention = '';
    if (layout === 'combined') {
      const other = visible.find((v) => v.step.worker !== w && v.step.kind === 'part' && v.claimVisible && v.step.movedAt === null);
      if (other) mention = `, as ${sim.opts.names[other.step.worker]} has the ${p.parts[other.step.part].item}`;
    }
    const ab = it.groups * it.size;
    let calc = `${it.groups}*${it.size}=${ab}`;
    if (it.minus > 0) calc += `, ${ab}-${it.minus}=${it.value}`;
    const totals = sim.ownTotals(w);
    const prev = totals.length ? totals[totals.length - 1] : 0;
    const total = totals.length ? `my total ${prev}+${it.value}=${prev + it.value}` : `my total ${it.value}`;
    return { text: `${prefix}${it.label}${mention}: ${calc}, ${total}.\n\n`, kind: 'part', part, end: 'step' };
  }
  const done = history.filter((s) => s.kind === 'part');
  const doneParts = new Set(done.map((s) => s.part));
  if (doneParts.size === p.parts.length && done[done.length - 1].worker === w) {
    const lastTotals: { w: number; total: number }[] = [];
    for (let v = 0; v < W; v++) {
      const t = sim.workers[v].totals;
      if (t.length) lastTotals.push({ w: v, total: t[t.length - 1] });
    }
    let text: string;
    if (lastTotals.length === 1) {
      text = `${prefix}All parts are done, so the answer is \\boxed{${lastTotals[0].total}}.\n\n`;
    } else {
      const list = lastTotals.map((x) => `${sim.opts.names[x.w]} ${x.total}`).join(', ');
      const sums: string[] = [];
      let acc = lastTotals[0].total;
      for (const x of lastTotals.slice(1)) {
        sums.push(`${acc}+${x.total}=${acc + x.total}`);
        acc += x.total;
      }
      text = `${prefix}All parts are done: ${list}. ${sums.join(', ')}, so the answer is \\boxed{${acc}}.\n\n`;
    }
    return { text, kind: 'combine', part: -1, end: 'step' };
  }
  return { text: `${prefix}Nothing is left for me, I stop here.`, kind: 'stop', part: -1, end: 'eos' };
}

export class Sim {
  readonly workers: WorkerState[] = [];
  readonly history: StepRecord[] = [];
  readonly steps: StepRecord[] = [];
  private generated = 0;
  private nextSelfCheck: number;
  private selfCheckDue = false;
  t = 0;
  answerStep: number | null = null;

  constructor(readonly problem: WordProblem, readonly opts: SimOptions, readonly tok: SimTokens) {
    this.nextSelfCheck = Math.max(1, opts.selfCheckInterval);
    for (let w = 0; w < opts.workers; w++) {
      const header = tok.header(w, 1);
      const step = this.newStep(w, 1, header);
      this.workers.push({ step, plan: [], pending: header.slice(), moveAfterFeed: false, finished: false, totals: [] });
    }
  }

  private newStep(w: number, k: number, prefixIds: number[]): StepRecord {
    const s: StepRecord = { worker: w, k, prefix: prefixIds.length, ids: [], fed: [], movedAt: null, eosAt: null, kind: 'stop', part: -1, text: '' };
    this.steps.push(s);
    return s;
  }

  /** The finished steps a worker sees at engine step t: none in the no-sharing control. */
  visibleHistory(t: number): StepRecord[] {
    return this.opts.layout === 'isolated' ? [] : this.history.filter((s) => s.movedAt! < t);
  }

  /** Worker w's running totals as it can read them back (the control sees none of its own finished steps). */
  ownTotals(w: number): number[] {
    return this.opts.layout === 'isolated' ? [] : this.workers[w].totals;
  }

  /** The steps worker w sees at engine step t (after that step's writes), with whether each one's claim token is visible. */
  visibleSteps(w: number, t: number): { step: StepRecord; claimVisible: boolean }[] {
    const out: { step: StepRecord; claimVisible: boolean }[] = [];
    for (const s of this.visibleHistory(t)) out.push({ step: s, claimVisible: true });
    if (this.opts.layout === 'combined') {
      for (let v = 0; v < this.workers.length; v++) {
        if (v === w) continue;
        const s = this.workers[v].step;
        out.push({ step: s, claimVisible: s.fed.length > s.prefix && s.fed[s.prefix] <= t });
      }
    }
    return out;
  }

  /** The first \boxed{} a worker wrote (in the order steps were written) and the engine step of its closing token. */
  private boxedAnswer(): { answer: string; step: number } | null {
    let best: { answer: string; step: number } | null = null;
    for (const s of this.steps) {
      const m = /\\boxed\{([^}]*)\}/.exec(s.text);
      if (!m || s.ids.length <= s.prefix) continue;
      let step = s.fed[s.fed.length - 1];
      const { decode } = this.tok;
      if (decode) {
        const content = s.ids.slice(s.prefix);
        const i = content.findIndex((_, j) => decode(content.slice(0, j + 1)).includes(m[0]));
        if (i < 0 || s.prefix + i >= s.fed.length) continue; // not written before the run ended
        step = s.fed[s.prefix + i];
      } else if (s.movedAt === null) continue;
      if (!best || step < best.step) best = { answer: m[1], step };
    }
    return best;
  }

  run(): SimResult {
    const { tok } = this;
    for (;;) {
      const active = this.workers.filter((ws) => !ws.finished && ws.pending.length > 0);
      if (this.generated >= this.opts.maxTokens || active.length === 0) break;
      this.t++;
      const t = this.t;
      for (const ws of active) {
        ws.step.ids.push(...ws.pending);
        ws.step.fed.push(...ws.pending.map(() => t));
      }
      // Samples come from this step's views (history as it was before this step's moves).
      const sampled: (number | null)[] = this.workers.map(() => null);
      this.workers.forEach((ws, w) => {
        if (ws.finished || ws.pending.length === 0 || ws.moveAfterFeed) return;
        if (ws.step.ids.length === ws.step.prefix) {
          const selfChecked = ws.step.prefix > tok.header(w, ws.step.k).length;
          const c = contentText(this, w, t, selfChecked);
          ws.step.kind = c.kind;
          ws.step.part = c.part;
          ws.step.text = c.text;
          ws.plan = tok.encode(c.text).slice();
          if (c.end === 'eos') ws.plan.push(tok.eos);
        }
        sampled[w] = ws.plan.shift()!;
      });
      this.workers.forEach((ws, w) => {
        if (ws.finished || ws.pending.length === 0) return;
        if (ws.moveAfterFeed) {
          ws.moveAfterFeed = false;
          const s = ws.step;
          s.movedAt = t;
          this.history.push(s);
          if (s.kind === 'part') ws.totals.push((ws.totals.at(-1) ?? 0) + this.problem.parts[s.part].value);
          if (s.kind === 'combine' && this.answerStep === null) this.answerStep = t;
          const k = s.k + 1;
          let ids = tok.header(w, k);
          if (this.selfCheckDue) {
            ids = [...ids, ...tok.selfCheck];
            this.selfCheckDue = false;
          }
          ws.step = this.newStep(w, k, ids);
          ws.pending = ids;
          return;
        }
        const next = sampled[w]!;
        this.generated++;
        if (this.generated >= this.nextSelfCheck) {
          this.selfCheckDue = true;
          this.nextSelfCheck += Math.max(1, this.opts.selfCheckInterval);
        }
        if (next === tok.eos) {
          ws.finished = true;
          ws.step.eosAt = t;
          ws.pending = [];
          return;
        }
        ws.pending = [next];
        if (ws.plan.length === 0) ws.moveAfterFeed = true; // the plan's last id is the one holding "\n\n"
      });
    }
    const counts = new Map<number, number>();
    for (const s of this.steps) if (s.kind === 'part') counts.set(s.part, (counts.get(s.part) ?? 0) + 1);
    const boxed = this.boxedAnswer();
    return {
      steps: this.steps,
      engineSteps: this.t,
      answerStep: this.answerStep,
      boxedStep: boxed?.step ?? null,
      boxed: boxed?.answer ?? null,
      history: this.history,
      duplicatedParts: [...counts.values()].filter((c) => c > 1).length,
      current: this.workers.map((ws) => ws.step),
    };
  }
}
