/**
 * What the real engine fed each worker, rebuilt from a run's events: every engine step's view
 * of every worker as token ids (the blocks of the 'views' event, each cut to the length it
 * had in that forward), and the run as the simulator's record (StepRecord: ids, the engine
 * step each id was written, when the step moved, when the worker ended its turn). With both,
 * a training sequence built from the engine's own trajectory (trainViews.ts) can be checked
 * token for token against what the engine fed: the test that the training data is the
 * engine's format (test/unit/trainViews.test.ts, and npm run compare-views for one problem).
 */
import type { NativeEvent, NativeRunConfig } from '../engine/native';
import type { SimLayout, SimResult, StepRecord } from './collabSim';
import { exactStepSequences, stepSequence, type TrainSequence, type TrainViewsMode, type ViewTexts } from './trainViews';

/**
 * The run's cache as the engine computed it: every cache entry once (a uid), and for every
 * forward the view it ran in, as uids. A moved step keeps its uids (its K/V are moved, not
 * recomputed), so a token's hidden state is the one of the view it was written in: what
 * scripts/train/cache_forward.py recomputes to check a training format against the engine.
 */
export interface CacheTrace {
  /** ids[u]: the token id of cache entry u. */
  ids: number[];
  /** The prompt's uids (computed causally), then each header's uids (computed after the prompt). */
  prompt: number[];
  headers: number[][];
  /** forwards[i]: worker w's view at engine step step (uids), and the uids it wrote then. */
  forwards: { step: number; worker: number; view: number[]; written: number[] }[];
}

export interface EngineTrace {
  /** views[s][w]: worker w's view in the forward of engine step s (1-based; the writes of step s included), or null when it did not run then. */
  views: (number[] | null)[][];
  /** The run as the simulator records one (the fields trainViews reads). */
  result: Pick<SimResult, 'steps' | 'history' | 'current' | 'engineSteps'>;
}

/** Collects a run's events (pass onEvents to startRun) and rebuilds the views and the step record. */
export class EngineViewRecorder {
  private readonly blocks = new Map<number, number[]>();
  /** The engine reuses a freed block's id: what the id held before it was created again during step createdAt. */
  private readonly before = new Map<number, { createdAt: number; ids: number[] }>();
  private readonly workerBlock = new Map<number, number>();
  private headersSeen = 0;
  private historyBlock = -1;
  private step = 0; // the last engine step whose views were reported
  private readonly stepOf = new Map<string, StepRecord>();
  private readonly steps: StepRecord[] = [];
  private readonly history: StepRecord[] = [];
  private readonly current: StepRecord[] = [];
  private readonly views: (number[] | null)[][] = [[]];
  // The same blocks as cache uids (CacheTrace): a moved step keeps its uids.
  private readonly uidIds: number[] = [];
  private readonly blockUids = new Map<number, number[]>();
  private readonly beforeUids = new Map<number, { createdAt: number; uids: number[] }>();
  private readonly stepUids = new Map<string, number[]>();
  private readonly writtenAt = new Map<string, number[]>(); // "step/worker" -> uids written
  private readonly cache: CacheTrace = { ids: this.uidIds, prompt: [], headers: [], forwards: [] };

  constructor(private readonly cfg: Pick<NativeRunConfig, 'promptIds' | 'headerOthersIds' | 'headerOwnIds' | 'workers'>) {}

  readonly onEvents = (events: readonly NativeEvent[]): void => {
    for (const e of events) this.one(e);
  };

  private one(e: NativeEvent): void {
    if (e.type === 'block' && e.op === 'created') {
      let ids: number[] = [];
      if (e.kind === 'prompt') ids = Array.from(this.cfg.promptIds);
      else if (e.kind === 'header') ids = Array.from(this.headersSeen++ % 2 === 0 ? this.cfg.headerOthersIds : this.cfg.headerOwnIds);
      else if (e.kind === 'history') this.historyBlock = e.block;
      else if (e.kind === 'worker') this.workerBlock.set(e.owner, e.block);
      else if (e.kind !== 'finisher' && e.kind !== 'note') throw new Error(`engine views: a block of kind "${e.kind}" is not known here`);
      const old = this.blocks.get(e.block);
      if (old) this.before.set(e.block, { createdAt: this.step + 1, ids: old });
      this.blocks.set(e.block, ids);
      const uids = this.newUids(ids);
      if (e.kind === 'prompt') this.cache.prompt = uids;
      else if (e.kind === 'header') this.cache.headers.push(uids);
      const oldUids = this.blockUids.get(e.block);
      if (oldUids) this.beforeUids.set(e.block, { createdAt: this.step + 1, uids: oldUids });
      this.blockUids.set(e.block, uids);
    } else if (e.type === 'tokens') {
      const t = this.step + 1; // tokens are reported before the views of their own step
      this.blocks.get(this.workerBlock.get(e.worker)!)!.push(...e.ids);
      const uids = this.newUids(e.ids);
      this.blockUids.get(this.workerBlock.get(e.worker)!)!.push(...uids);
      const wkey = `${t}/${e.worker}`;
      this.writtenAt.set(wkey, [...(this.writtenAt.get(wkey) ?? []), ...uids]);
      const key = `${e.worker}/${e.step}`;
      this.stepUids.set(key, [...(this.stepUids.get(key) ?? []), ...uids]);
      let s = this.stepOf.get(key);
      if (!s) {
        // The first write of a step is its header (and the self-check question when one is due).
        s = { worker: e.worker, k: e.step, prefix: e.ids.length, ids: [], fed: [], movedAt: null, eosAt: null, kind: 'stop', part: -1, text: '' };
        this.stepOf.set(key, s);
        this.steps.push(s);
        this.current[e.worker] = s;
      }
      s.ids.push(...e.ids);
      s.fed.push(...Array.from(e.ids, () => t));
    } else if (e.type === 'step-finished') {
      this.blocks.get(this.historyBlock)!.push(...e.ids);
      const moved = this.stepUids.get(`${e.worker}/${e.step}`)!;
      if (moved.length !== e.ids.length || moved.some((u, i) => this.uidIds[u] !== e.ids[i])) throw new Error(`engine views: step ${e.worker}/${e.step} moved other tokens than it wrote`);
      this.blockUids.get(this.historyBlock)!.push(...moved);
      const s = this.stepOf.get(`${e.worker}/${e.step}`)!;
      s.movedAt = this.step + 1;
      this.history.push(s);
    } else if (e.type === 'worker' && e.state === 'finished') {
      const s = this.current[e.worker];
      if (s && this.step > 0) s.eosAt = this.step + 1;
    } else if (e.type === 'views') {
      if (e.step !== this.step + 1) throw new Error(`engine views: step ${e.step} follows step ${this.step}`);
      this.step = e.step;
      this.views[e.step] = e.views.map((segs) => {
        if (segs.length === 0) return null;
        const ids: number[] = [];
        for (let i = 0; i < segs.length; i += 3) {
          // A block created again during this step (after its forward) was still the old one in the forward.
          const prev = this.before.get(segs[i]);
          const content = prev && prev.createdAt === e.step ? prev.ids : this.blocks.get(segs[i])!;
          ids.push(...content.slice(0, segs[i + 2]));
        }
        return ids;
      });
      e.views.forEach((segs, w) => {
        const written = this.writtenAt.get(`${e.step}/${w}`);
        if (!written || segs.length === 0) return;
        const view: number[] = [];
        for (let i = 0; i < segs.length; i += 3) {
          const prev = this.beforeUids.get(segs[i]);
          const content = prev && prev.createdAt === e.step ? prev.uids : this.blockUids.get(segs[i])!;
          view.push(...content.slice(0, segs[i + 2]));
        }
        this.cache.forwards.push({ step: e.step, worker: w, view, written });
      });
    }
  }

  private newUids(ids: ArrayLike<number>): number[] {
    return Array.from(ids, (id) => this.uidIds.push(id) - 1);
  }

  cacheTrace(): CacheTrace {
    return this.cache;
  }

  trace(): EngineTrace {
    return { views: this.views, result: { steps: this.steps, history: this.history, current: this.current.slice(), engineSteps: this.step } };
  }
}

/**
 * What the query at position q of a training sequence attends to, as train.py masks it:
 * the positions j <= q with vis[j] <= vis[q], their ids, and whether they are contiguous
 * (no hidden token between them, so RoPE distances are the engine's).
 */
export function visibleToQuery(seq: TrainSequence, q: number): { ids: number[]; positions: number[]; contiguous: boolean } {
  const ids: number[] = [];
  const positions: number[] = [];
  for (let j = 0; j <= q; j++) {
    if (seq.vis[j] <= seq.vis[q]) {
      ids.push(seq.ids[j]);
      positions.push(j);
    }
  }
  return { ids, positions, contiguous: positions.every((p, i) => p === i) };
}

export interface ViewDiff {
  worker: number;
  k: number;
  /** The engine step whose forward sampled the target. */
  step: number;
  target: number;
  claim: boolean;
  engine: number[];
  train: number[];
  contiguous: boolean;
}

/**
 * Every trained token of the run's steps (the finisher aside) against the engine: the ids its
 * query sees in training must be the engine's view of that worker at that step, in order.
 * `gapped`: the right ids, but hidden tokens between them shift the RoPE distances.
 */
export function compareTraceViews(trace: EngineTrace, layout: SimLayout, workers: number, v: ViewTexts, mode: TrainViewsMode) {
  const res = { targets: 0, different: 0, gapped: 0, claims: 0, claimsDifferent: 0, claimsGapped: 0, diffs: [] as ViewDiff[] };
  const sim = trace.result as SimResult;
  for (const own of trace.result.steps) {
    if (own.ids.length <= own.prefix) continue;
    const seqs = mode === 'legacy' ? [stepSequence(sim, layout, workers, own, v)] : exactStepSequences(sim, layout, workers, own, v);
    for (const seq of seqs) {
      for (let i = 1; i < seq.ids.length; i++) {
        if (seq.loss[i] === 0) continue;
        const seen = visibleToQuery(seq, i - 1);
        const step = seq.vis[i - 1];
        const engine = trace.views[step]?.[own.worker] ?? [];
        const claim = seq.vis[i] === own.fed[own.prefix] && seq.ids[i] === own.ids[own.prefix];
        res.targets++;
        if (claim) res.claims++;
        const same = seen.ids.length === engine.length && seen.ids.every((id, j) => id === engine[j]);
        if (!same) {
          res.different++;
          if (claim) res.claimsDifferent++;
        } else if (!seen.contiguous) {
          res.gapped++;
          if (claim) res.claimsGapped++;
        }
        if (!same || (claim && !seen.contiguous)) res.diffs.push({ worker: own.worker, k: own.k, step, target: seq.ids[i], claim, engine, train: seen.ids, contiguous: seen.contiguous });
      }
    }
  }
  return res;
}
