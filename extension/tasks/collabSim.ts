/**
 * A token-level simulation of a Hogwild run on one word problem, with the timing of the real
 * engine (native/src/hogwild/engine.cpp): in engine step t every active worker writes its
 * pending tokens (a whole step header at once, else one token), all writes are visible to
 * all in the same step (combined layout), a token containing "\n\n" that ends a sentence is
 * written one step later and the step then moves into the shared history, the next header
 * follows in the next step, and the self-check question is fed after the header of the next
 * step that starts once the budget passes each interval.
 *
 * What the workers write is the collaboration convention the built-in model is trained on:
 *  - A step is one part, claimed by its first token ("Plums, as Bob has the pears: 5*9=45,
 *    my total 96+45=141."), or the final combination, or "I stop here." (then end of turn).
 *  - Combined layout: the workers that start a step in the same engine step (they see each
 *    other's bare headers) take the unclaimed parts in name-list order: the k-th of them the
 *    k-th lowest part not claimed in any visible step. A claim is the step's first token, so
 *    every earlier starter's claim is already visible.
 *  - Interleaved layout (only finished steps are visible): worker i takes parts i, i+W, ...
 *  - A worker with nothing left to claim combines when every part is in the history and the
 *    latest part step there is its own; otherwise it stops. One worker writes \boxed{}.
 */
import type { WordProblem } from './wordProblems';

export type SimLayout = 'combined' | 'interleaved';

export interface SimTokens {
  /** Worker w's header of step k ("**Alice [k]:** "), as the engine feeds it. */
  header(w: number, k: number): number[];
  selfCheck: number[];
  encode(text: string): number[];
  eos: number;
}

export interface SimOptions {
  workers: number;
  layout: SimLayout;
  names: readonly string[];
  selfCheckInterval: number;
  maxTokens: number;
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

function contentText(sim: Sim, w: number, t: number, selfChecked: boolean): { text: string; kind: StepKind; part: number; end: 'step' | 'eos' } {
  const p = sim.problem;
  const { layout, workers: W } = sim.opts;
  const visible = sim.visibleSteps(w, t);
  const prefix = selfChecked ? 'no. ' : '';
  const history = sim.history.filter((s) => s.movedAt! < t);
  if (history.some((s) => s.kind === 'combine')) return { text: `${prefix}The answer is written, I stop here.`, kind: 'stop', part: -1, end: 'eos' };

  const claimed = new Set<number>();
  for (const v of visible) if (v.step.kind === 'part' && v.claimVisible) claimed.add(v.step.part);
  let part = -1;
  if (layout === 'combined') {
    const pending = sim.workers
      .map((ws, i) => ({ ws, i }))
      .filter(({ ws }) => !ws.finished && ws.step.fed.length > 0 && ws.step.fed[0] === t && ws.step.ids.length === ws.step.prefix)
      .map(({ i }) => i);
    const rank = pending.indexOf(w);
    const unclaimed = p.parts.map((_, i) => i).filter((i) => !claimed.has(i));
    if (rank >= 0 && rank < unclaimed.length) part = unclaimed[rank];
  } else {
    const mine = p.parts.map((_, i) => i).filter((i) => i % W === w && !claimed.has(i));
    if (mine.length > 0) part = mine[0];
  }
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
    const totals = sim.workers[w].totals;
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

  /** The steps worker w sees at engine step t (after that step's writes), with whether each one's claim token is visible. */
  visibleSteps(w: number, t: number): { step: StepRecord; claimVisible: boolean }[] {
    const out: { step: StepRecord; claimVisible: boolean }[] = [];
    for (const s of this.history) if (s.movedAt! < t) out.push({ step: s, claimVisible: true });
    if (this.opts.layout === 'combined') {
      for (let v = 0; v < this.workers.length; v++) {
        if (v === w) continue;
        const s = this.workers[v].step;
        out.push({ step: s, claimVisible: s.fed.length > s.prefix && s.fed[s.prefix] <= t });
      }
    }
    return out;
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
    return {
      steps: this.steps,
      engineSteps: this.t,
      answerStep: this.answerStep,
      history: this.history,
      duplicatedParts: [...counts.values()].filter((c) => c > 1).length,
      current: this.workers.map((ws) => ws.step),
    };
  }
}
