/**
 * The shared cache as a run's events describe it: every block with its tokens (id, text
 * piece, author, step), each worker's latest view, and where every worker step's tokens
 * sit now (its own block while it is written, the shared history once it is finished).
 * Pure (no DOM, no vscode): the run panel draws the cache map and answers the token
 * inspector from it in a replay; the extension exports Markdown from it.
 */
import type { BlockKind, EngineEvent, ViewSegmentInfo } from '../../protocol/messages';
import { AttentionSeries } from './attentionSeries';
import { GrowI32 } from './grow';

export interface BlockState {
  block: number;
  kind: BlockKind;
  owner: number; // worker id, -1 shared
  label: string;
  length: number; // the engine's length (may exceed the tokens known here)
  freed: boolean;
  /** The block was forked from another one (shares its pages until it grows). */
  forkedFrom: number | null;
  ids: GrowI32;
  authors: GrowI32;
  steps: GrowI32;
  pieces: string[];
}

/** Where one worker step's tokens are now. */
export interface StepRef {
  block: number;
  start: number; // index of the step's first token in the block
  count: number;
}

/** A token as the inspector shows it. */
export interface TokenRef {
  block: number;
  index: number;
}

export interface SeenAt {
  worker: number;
  position: number | null; // null: not in that worker's view
  rotation: number | null; // the query rotation that worker applies to the block
}

const stepKey = (worker: number, step: number) => `${worker}:${step}`;

/**
 * The events that change the cache map (blocks, forks, ids with their authors, finished steps,
 * notes, views): what the sidebar's compact map is sent (cacheMapEvents.ts). The others
 * (attention, stats, block texts) feed only the panel's other views.
 */
export const CACHE_MAP_EVENT_TYPES: ReadonlySet<EngineEvent['type']> = new Set<EngineEvent['type']>(['block', 'worker', 'tokens', 'step-finished', 'note', 'views']);

export class CacheState {
  readonly blocks = new Map<number, BlockState>();
  /** Each worker's latest view (per worker, in view order), and the step it is from. */
  views: ViewSegmentInfo[][] = [];
  viewStep = 0;
  /** The current (unfinished) block of each worker. */
  readonly currentBlock = new Map<number, number>();
  readonly stepRefs = new Map<string, StepRef>();
  readonly attention = new AttentionSeries();
  /** Headers are created in this order (engine.cpp): the others' header, then the own one. */
  private headers = 0;
  /** Bumped on every change: renderers compare it to skip work. */
  version = 0;
  layoutVersion = 0;

  apply(events: readonly EngineEvent[]): void {
    for (const ev of events) this.applyOne(ev);
    if (events.length > 0) this.version++;
  }

  private block(id: number): BlockState {
    let b = this.blocks.get(id);
    if (!b) {
      b = { block: id, kind: 'header', owner: -1, label: `block ${id}`, length: 0, freed: false, forkedFrom: null, ids: new GrowI32(), authors: new GrowI32(), steps: new GrowI32(), pieces: [] };
      this.blocks.set(id, b);
    }
    return b;
  }

  private push(b: BlockState, ids: ArrayLike<number>, pieces: readonly string[] | undefined, author: number, step: number): void {
    for (let i = 0; i < ids.length; i++) {
      b.ids.push(ids[i]!);
      b.authors.push(author);
      b.steps.push(step);
      b.pieces.push(pieces?.[i] ?? '');
    }
  }

  private applyOne(ev: EngineEvent): void {
    switch (ev.type) {
      case 'block': {
        const b = this.block(ev.info.block);
        b.kind = ev.info.kind;
        b.owner = ev.info.owner;
        // The host labels the history block after its latest step; here it is the history.
        b.label = b.kind === 'history' ? 'shared history' : ev.info.label;
        b.length = ev.info.length;
        if (ev.op === 'created') {
          // The engine reuses the ids of freed blocks: a created block starts empty.
          b.freed = false;
          b.forkedFrom = null;
          b.ids = new GrowI32();
          b.authors = new GrowI32();
          b.steps = new GrowI32();
          b.pieces = [];
          if (b.kind === 'worker' && b.owner >= 0) {
            const old = this.currentBlock.get(b.owner);
            this.currentBlock.set(b.owner, b.block);
            // A fork's block starts as a copy of its origin's (filled in by its 'worker' event).
            if (old === undefined && b.length > 0) b.forkedFrom = -2;
          }
          if (b.kind === 'header') b.label = b.label === 'header' ? (this.headers++ === 0 ? 'header (others)' : 'header (own)') : b.label;
          this.layoutVersion++;
        } else if (ev.op === 'freed') {
          b.freed = true;
          this.layoutVersion++;
        }
        break;
      }
      case 'block-text': {
        const b = this.block(ev.block);
        if (b.ids.length === 0) this.push(b, ev.ids, ev.pieces, -1, 0);
        break;
      }
      case 'worker': {
        const f = ev.info.forkedFrom;
        const mine = this.currentBlock.get(ev.info.worker);
        if (f !== undefined && mine !== undefined) {
          const b = this.block(mine);
          const origin = this.currentBlock.get(f);
          if (b.forkedFrom === -2 && origin !== undefined) {
            const o = this.block(origin);
            b.forkedFrom = origin;
            // The engine's copy is as long as the created block says.
            const n = Math.min(o.ids.length, b.length);
            for (let i = 0; i < n; i++) {
              b.ids.push(o.ids.at(i));
              b.authors.push(o.authors.at(i));
              b.steps.push(o.steps.at(i));
              b.pieces.push(o.pieces[i]!);
            }
            // The copied tokens stay in the origin's lane; the fork's lane starts after them.
          }
        }
        break;
      }
      case 'tokens': {
        const blockId = this.currentBlock.get(ev.worker);
        if (blockId === undefined || ev.ids.length === 0) break;
        const b = this.block(blockId);
        const k = stepKey(ev.worker, ev.step);
        const ref = this.stepRefs.get(k);
        if (!ref || ref.block !== blockId) this.stepRefs.set(k, { block: blockId, start: b.ids.length, count: ev.ids.length });
        else ref.count += ev.ids.length;
        this.push(b, ev.ids, ev.pieces, ev.worker, ev.step);
        break;
      }
      case 'step-finished': {
        // The worker's block moves, whole, to the end of the shared history.
        const from = this.currentBlock.get(ev.worker);
        if (from === undefined || ev.historyBlock < 0) break;
        const src = this.block(from);
        const dst = this.block(ev.historyBlock);
        const base = dst.ids.length;
        for (const [k, r] of this.stepRefs) {
          if (r.block === from) this.stepRefs.set(k, { block: dst.block, start: base + r.start, count: r.count });
        }
        for (let i = 0; i < src.ids.length; i++) {
          dst.ids.push(src.ids.at(i));
          dst.authors.push(src.authors.at(i));
          dst.steps.push(src.steps.at(i));
          dst.pieces.push(src.pieces[i]!);
        }
        this.layoutVersion++;
        break;
      }
      case 'note': {
        const b = this.block(ev.block);
        b.kind = 'note';
        if (b.ids.length === 0 && ev.ids) this.push(b, ev.ids, ev.pieces, -1, 0);
        break;
      }
      case 'views':
        this.views = ev.views;
        this.viewStep = ev.step;
        this.attention.sawStep(ev.step);
        this.layoutVersion++;
        break;
      case 'attention':
        this.attention.add(ev, this);
        break;
      default:
        break;
    }
  }

  /** The tokens of one worker step, where they are now. */
  stepRef(worker: number, step: number): StepRef | undefined {
    return this.stepRefs.get(stepKey(worker, step));
  }

  /** The token of worker `worker`'s step `step` whose text covers character `offset`. */
  tokenAtChar(ref: StepRef, offset: number): TokenRef | null {
    const b = this.blocks.get(ref.block);
    if (!b || ref.count === 0) return null;
    let at = 0;
    for (let i = 0; i < ref.count; i++) {
      const p = b.pieces[ref.start + i] ?? '';
      if (offset < at + p.length) return { block: ref.block, index: ref.start + i };
      at += p.length;
    }
    return { block: ref.block, index: ref.start + ref.count - 1 };
  }

  /** The token of a block (prompt, note, header) whose text covers character `offset`. */
  blockTokenAtChar(block: number, offset: number): TokenRef | null {
    const b = this.blocks.get(block);
    if (!b || b.ids.length === 0) return null;
    return this.tokenAtChar({ block, start: 0, count: b.ids.length }, offset);
  }

  /** The character range of a token inside the text of its step (or of its block). */
  charRange(ref: StepRef, index: number): [number, number] {
    const b = this.blocks.get(ref.block)!;
    let at = 0;
    for (let i = ref.start; i < index; i++) at += (b.pieces[i] ?? '').length;
    return [at, at + (b.pieces[index] ?? '').length];
  }

  /** The whole text of a block, from its pieces. */
  blockText(block: number): string {
    return this.blocks.get(block)?.pieces.join('') ?? '';
  }

  /** The end of a worker's view (its own block is the last segment): its next query's position. */
  ownEnd(worker: number): number | null {
    const v = this.views[worker];
    const last = v?.[v.length - 1];
    return last ? last.offset + last.length : null;
  }

  /**
   * Where each worker sees a token and how it rotates that block's keys, from the latest
   * views (the engine's inspect computes the same from its own state).
   */
  seenAt(ref: TokenRef): SeenAt[] {
    const out: SeenAt[] = [];
    this.views.forEach((v, worker) => {
      let position: number | null = null;
      let rotation: number | null = null;
      const end = this.ownEnd(worker);
      for (const s of v) {
        if (s.block === ref.block && ref.index < s.length) {
          position = s.offset + ref.index;
          rotation = end === null ? null : end - s.offset;
        }
      }
      out.push({ worker, position, rotation });
    });
    return out;
  }

  /** The query rotation worker `worker` applies to segment `seg` of its view. */
  rotation(worker: number, seg: ViewSegmentInfo): number | null {
    const end = this.ownEnd(worker);
    return end === null ? null : end - seg.offset;
  }
}
