/**
 * Cross-worker attention over a run: for every step, every reading worker's share on each
 * source (the prompt, the shared history, notes, headers, and each worker's current step),
 * summed over the segments of that source in the reader's view. Mean over layers in full
 * precision; per layer quantised to 1/255 (a shade needs no more, and a long run with many
 * layers stays within memory). Steps without an attention event are "not recorded" (NaN),
 * never zero.
 */
import type { EngineEvent, ViewSegmentInfo } from '../../protocol/messages';
import { GrowF32, GrowU8 } from './grow';

export const SHARED_SOURCES = ['prompt', 'history', 'notes', 'headers'] as const;
export const FIRST_WORKER_SOURCE = SHARED_SOURCES.length;

/** What the series needs from the cache: each block's kind and owner. */
export interface BlockLookup {
  readonly blocks: ReadonlyMap<number, { kind: string; owner: number }>;
  readonly views: ViewSegmentInfo[][];
}

type AttentionEvent = Extract<EngineEvent, { type: 'attention' }>;

interface StepEntry {
  readers: number;
  sources: number;
  at: number; // offset into means
  layerAt: number; // offset into layers, -1 when per-layer shares were not recorded
}

export function sourceOf(kind: string, owner: number): number {
  switch (kind) {
    case 'prompt':
      return 0;
    case 'history':
      return 1;
    case 'note':
      return 2;
    case 'header':
      return 3;
    case 'worker':
      return owner >= 0 ? FIRST_WORKER_SOURCE + owner : -1;
    default:
      return -1;
  }
}

export class AttentionSeries {
  private readonly entries: (StepEntry | undefined)[] = [];
  private readonly means = new GrowF32();
  private readonly layerData = new GrowU8();
  /** Layers per step when recorded (0: per-layer shares never seen). */
  layers = 0;
  lastStep = 0;
  readers = 0;
  recordedSteps = 0;

  add(ev: AttentionEvent, cache: BlockLookup): void {
    const W = ev.shares.length;
    const S = FIRST_WORKER_SOURCE + Math.max(W, cache.views.length);
    const at = this.means.reserve(W * S);
    const m = this.means.data;
    m.fill(0, at, at + W * S);
    const L = ev.layers && ev.layers.length === W ? (ev.layers[0]?.length ?? 0) : 0;
    let layerAt = -1;
    if (L > 0) {
      this.layers = Math.max(this.layers, L);
      layerAt = this.layerData.reserve(L * W * S);
      this.layerData.data.fill(0, layerAt, layerAt + L * W * S);
    }
    const layerSums = L > 0 ? new Float32Array(L * W * S) : null;
    for (let w = 0; w < W; w++) {
      const view = cache.views[w] ?? [];
      const shares = ev.shares[w]!;
      for (let s = 0; s < shares.length && s < view.length; s++) {
        const b = cache.blocks.get(view[s]!.block);
        const src = b ? sourceOf(b.kind, b.owner) : -1;
        if (src < 0 || src >= S) continue;
        m[at + w * S + src] += shares[s]!;
        if (layerSums) {
          const per = ev.layers![w]!;
          for (let l = 0; l < L; l++) layerSums[(l * W + w) * S + src] += per[l]?.[s] ?? 0;
        }
      }
    }
    if (layerSums) {
      const d = this.layerData.data;
      for (let i = 0; i < layerSums.length; i++) d[layerAt + i] = Math.round(Math.min(1, Math.max(0, layerSums[i]!)) * 255);
    }
    this.entries[ev.step] = { readers: W, sources: S, at, layerAt };
    this.lastStep = Math.max(this.lastStep, ev.step);
    this.readers = Math.max(this.readers, W);
    this.recordedSteps++;
  }

  /** Notes a step that ran (a views event), so that steps without attention count as not recorded. */
  sawStep(step: number): void {
    this.lastStep = Math.max(this.lastStep, step);
  }

  /**
   * Reader `reader`'s share on `source` at `step`, mean over layers (layer < 0) or one
   * layer. NaN: not recorded (no attention at that step, no per-layer shares, or the reader
   * did not exist yet).
   */
  value(step: number, reader: number, source: number, layer = -1): number {
    const e = this.entries[step];
    if (!e || reader >= e.readers) return NaN;
    if (source >= e.sources) return 0; // that worker did not exist yet: nothing to read
    if (layer < 0) return this.means.data[e.at + reader * e.sources + source]!;
    if (e.layerAt < 0 || layer >= this.layers) return NaN;
    return this.layerData.data[e.layerAt + (layer * e.readers + reader) * e.sources + source]! / 255;
  }

  isRecorded(step: number): boolean {
    return this.entries[step] !== undefined;
  }

  /** The latest step with attention, or 0. */
  get latestStep(): number {
    for (let s = this.entries.length - 1; s > 0; s--) if (this.entries[s]) return s;
    return 0;
  }

  /** Mean share over every recorded step (NaN when none was recorded). */
  meanOverRun(reader: number, source: number, layer = -1): number {
    let sum = 0;
    let n = 0;
    for (let s = 1; s < this.entries.length; s++) {
      const v = this.value(s, reader, source, layer);
      if (!Number.isNaN(v)) {
        sum += v;
        n++;
      }
    }
    return n > 0 ? sum / n : NaN;
  }

  /**
   * The heatmap of one reader: rows = sources, columns = bins of steps 1..lastStep (mean of
   * the recorded steps in each bin; NaN where none is recorded). Row-major Float32Array.
   */
  binned(reader: number, sources: number, bins: number, layer = -1): Float32Array {
    const out = new Float32Array(sources * bins).fill(NaN);
    const steps = this.lastStep;
    if (steps === 0 || bins === 0) return out;
    for (let b = 0; b < bins; b++) {
      const from = Math.floor((b * steps) / bins) + 1;
      const to = Math.max(from, Math.floor(((b + 1) * steps) / bins));
      for (let src = 0; src < sources; src++) {
        let sum = 0;
        let n = 0;
        for (let s = from; s <= to; s++) {
          const v = this.value(s, reader, src, layer);
          if (!Number.isNaN(v)) {
            sum += v;
            n++;
          }
        }
        if (n > 0) out[src * bins + b] = sum / n;
      }
    }
    return out;
  }
}
