/**
 * Text in the panel <-> tokens in the cache. Lanes, history entries, notes and the prompt
 * show plain text nodes (selection and copy keep working); their elements carry where their
 * text comes from (data-* attributes), and the CacheState's token pieces map any character
 * to its token and back.
 */
import type { CacheState, StepRef, TokenRef } from '../../extension/insights/cacheState';
import type { RunModel } from '../../extension/runModel';

/** Where a piece of shown text comes from. */
export type TextSource =
  | { kind: 'lane'; worker: number; segment: number; start: number } // start: offset of the element's text in the segment
  | { kind: 'history'; entry: number; start: number }
  | { kind: 'block'; block: number; start: number }; // the prompt, a note

/** The text node that holds an element's text (its one text-bearing span). */
export function textNodeOf(el: Element): Text | null {
  const span = el.querySelector('.seg-text, .hist-text, .note-text, .prompt-text') ?? el;
  const n = span.firstChild;
  return n && n.nodeType === Node.TEXT_NODE ? (n as Text) : null;
}

/** The source of a text element (one of .seg, .hist-item, .note-item, .prompt-body). */
export function sourceOfElement(el: HTMLElement): TextSource | null {
  const d = el.dataset;
  if (el.classList.contains('seg')) {
    const lane = el.closest<HTMLElement>('.lane');
    if (!lane) return null;
    return { kind: 'lane', worker: Number(lane.dataset.worker), segment: Number(d.seg), start: Number(d.start ?? 0) };
  }
  if (el.classList.contains('hist-item')) return { kind: 'history', entry: Number(d.entry), start: Number(d.offset ?? 0) };
  if (d.block !== undefined) return { kind: 'block', block: Number(d.block), start: Number(d.offset ?? 0) };
  return null;
}

/** The step that a lane segment or history entry shows. */
export function stepRefOf(model: RunModel, cache: CacheState, src: TextSource): StepRef | null {
  if (src.kind === 'lane') {
    const seg = model.workers.get(src.worker)?.segments[src.segment];
    return seg ? (cache.stepRef(src.worker, seg.step) ?? null) : null;
  }
  if (src.kind === 'history') {
    const e = model.history[src.entry];
    return e ? (cache.stepRef(e.worker, e.step) ?? null) : null;
  }
  const b = cache.blocks.get(src.block);
  return b ? { block: src.block, start: 0, count: b.ids.length } : null;
}

/** The token under character `offset` of a source's text. */
export function tokenAt(model: RunModel, cache: CacheState, src: TextSource, offset: number): TokenRef | null {
  const ref = stepRefOf(model, cache, src);
  return ref ? cache.tokenAtChar(ref, src.start + offset) : null;
}

/** The character offset under a point, in the text node there (null when not over text). */
export function caretAt(x: number, y: number): { node: Node; offset: number } | null {
  const doc = document as Document & {
    caretPositionFromPoint?: (x: number, y: number) => { offsetNode: Node; offset: number } | null;
    caretRangeFromPoint?: (x: number, y: number) => Range | null;
  };
  if (doc.caretPositionFromPoint) {
    const p = doc.caretPositionFromPoint(x, y);
    return p ? { node: p.offsetNode, offset: p.offset } : null;
  }
  const r = doc.caretRangeFromPoint?.(x, y);
  return r ? { node: r.startContainer, offset: r.startOffset } : null;
}

/**
 * The token under a click: the caret offset gives the character; a caret sits between two
 * characters, so a click on the right half of a character lands after it: take the
 * character whose box holds the point.
 */
export function tokenUnderPoint(model: RunModel, cache: CacheState, x: number, y: number): { ref: TokenRef; el: HTMLElement } | null {
  const c = caretAt(x, y);
  if (!c || c.node.nodeType !== Node.TEXT_NODE) return null;
  const el = (c.node.parentElement?.closest('.seg, .hist-item, .note-item, .prompt-body') as HTMLElement | null) ?? null;
  if (!el || textNodeOf(el) !== c.node) return null;
  const src = sourceOfElement(el);
  if (!src) return null;
  let offset = c.offset;
  if (offset > 0) {
    const r = document.createRange();
    r.setStart(c.node, offset - 1);
    r.setEnd(c.node, offset);
    const box = r.getBoundingClientRect();
    if (x >= box.left && x <= box.right && y >= box.top && y <= box.bottom) offset -= 1;
  }
  const ref = tokenAt(model, cache, src, offset);
  return ref ? { ref, el } : null;
}
