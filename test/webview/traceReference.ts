/**
 * What a recorded trace says, computed straight from its events (independently of the
 * panel's CacheState): block kinds and owners, each view, history authors, fork copies, and
 * each reader's attention share per source per step (mean and per layer).
 */
import type { EngineEvent, ViewSegmentInfo } from '../../protocol/messages';

export interface RefBlock {
  kind: string;
  owner: number;
  createdLength: number; // > 0: a fork's copy of its origin
  recreatedAfterViews: boolean;
}

export interface TraceReference {
  blocks: Map<number, RefBlock>;
  views: ViewSegmentInfo[][]; // the last views event
  lastStep: number;
  workers: number;
  forkOrigin: Map<number, number>;
  /** History block -> [start, end, author] of every move, in order. */
  historyRanges: Map<number, [number, number, number][]>;
  /** share(step, reader, source, layer = -1); NaN when not recorded. */
  share(step: number, reader: number, source: number, layer?: number): number;
  promptPieces: string[];
  promptBlock: number;
  /** The steps with an attention event, in order. */
  attentionSteps: number[];
  /** Worker names, by id. */
  names: string[];
  /** Each note: its block and its token pieces. */
  notes: { block: number; pieces: string[] }[];
  /** Each finished step in order (the shared history's entries): worker, step, and its token pieces. */
  finished: { worker: number; step: number; pieces: string[] }[];
}

export function sourceIndex(kind: string, owner: number): number {
  const shared = ['prompt', 'history', 'note', 'header'].indexOf(kind);
  if (shared >= 0) return shared;
  return kind === 'worker' && owner >= 0 ? 4 + owner : -1;
}

export function traceReference(events: readonly EngineEvent[]): TraceReference {
  const blocks = new Map<number, RefBlock>();
  const forkOrigin = new Map<number, number>();
  const historyRanges = new Map<number, [number, number, number][]>();
  const shares = new Map<string, number>();
  const readersAt = new Map<number, { readers: number; layers: number }>();
  let views: ViewSegmentInfo[][] = [];
  let lastStep = 0;
  let workers = 0;
  let pendingMove: number | null = null;
  let promptPieces: string[] = [];
  let promptBlock = -1;
  const names: string[] = [];
  const notes: { block: number; pieces: string[] }[] = [];
  const finished: { worker: number; step: number; pieces: string[] }[] = [];
  const stepPieces = new Map<string, string[]>();
  const lastViewsAt = events.map((e) => e.type).lastIndexOf('views');
  events.forEach((e, i) => {
    if (e.type === 'block') {
      const prev = blocks.get(e.info.block);
      if (e.op === 'created') {
        blocks.set(e.info.block, { kind: e.info.kind, owner: e.info.owner, createdLength: e.info.length, recreatedAfterViews: i > lastViewsAt });
      } else if (prev) {
        prev.kind = e.info.kind;
        prev.owner = e.info.owner;
      }
      if (e.op === 'merged' && pendingMove !== null) {
        const list = historyRanges.get(e.info.block) ?? [];
        const start = list.length > 0 ? list[list.length - 1]![1] : 0;
        list.push([start, e.info.length, pendingMove]);
        historyRanges.set(e.info.block, list);
        pendingMove = null;
      }
    } else if (e.type === 'step-finished') {
      pendingMove = e.worker;
      finished.push({ worker: e.worker, step: e.step, pieces: stepPieces.get(`${e.worker}:${e.step}`) ?? [] });
    } else if (e.type === 'tokens') {
      const k = `${e.worker}:${e.step}`;
      stepPieces.set(k, [...(stepPieces.get(k) ?? []), ...(e.pieces ?? [])]);
    } else if (e.type === 'note') {
      if (e.pieces) notes.push({ block: e.block, pieces: e.pieces });
    } else if (e.type === 'worker') {
      names[e.info.worker] = e.info.name;
      workers = Math.max(workers, e.info.worker + 1);
      if (e.info.forkedFrom !== undefined) forkOrigin.set(e.info.worker, e.info.forkedFrom);
    } else if (e.type === 'block-text' && blocks.get(e.block)?.kind === 'prompt') {
      promptPieces = e.pieces;
      promptBlock = e.block;
    } else if (e.type === 'views') {
      views = e.views;
      lastStep = Math.max(lastStep, e.step);
    } else if (e.type === 'attention') {
      e.shares.forEach((row, r) => {
        views[r]!.forEach((seg, s) => {
          const b = blocks.get(seg.block)!;
          const src = sourceIndex(b.kind, b.owner);
          const add = (layer: number, v: number) => {
            const k = `${e.step}:${r}:${src}:${layer}`;
            shares.set(k, (shares.get(k) ?? 0) + v);
          };
          add(-1, row[s]!);
          e.layers?.[r]?.forEach((perLayer, l) => add(l, perLayer[s]!));
        });
      });
      readersAt.set(e.step, { readers: e.shares.length, layers: e.layers?.[0]?.length ?? 0 });
    }
  });
  return {
    blocks,
    views,
    lastStep,
    workers,
    forkOrigin,
    historyRanges,
    promptPieces,
    promptBlock,
    attentionSteps: [...readersAt.keys()].sort((a, b) => a - b),
    names,
    notes,
    finished,
    // A source absent from a recorded reader's view got nothing: 0. Unrecorded: NaN.
    share: (step, reader, source, layer = -1) => {
      const at = readersAt.get(step);
      if (!at || reader >= at.readers || layer >= at.layers) return NaN;
      return shares.get(`${step}:${reader}:${source}:${layer}`) ?? 0;
    },
  };
}

/** The author of token `index` of a block, from the trace alone. */
export function authorOf(ref: TraceReference, block: number, index: number): number | null {
  const b = ref.blocks.get(block)!;
  if (b.kind === 'history') {
    const r = ref.historyRanges.get(block)?.find(([s, e]) => index >= s && index < e);
    // A fork's first move carries its origin's copied tokens at the front: only the end is sure.
    return r && index === r[1] - 1 ? r[2] : null;
  }
  if (b.kind !== 'worker') return -1;
  if (b.createdLength > 0) return index < b.createdLength ? (ref.forkOrigin.get(b.owner) ?? null) : b.owner;
  return b.owner;
}

/** The index of the piece that covers character `char` of the pieces joined (-1: past the end). */
export function pieceAt(pieces: readonly string[], char: number): number {
  let acc = 0;
  for (let i = 0; i < pieces.length; i++) {
    if (char < acc + pieces[i]!.length) return i;
    acc += pieces[i]!.length;
  }
  return -1;
}
