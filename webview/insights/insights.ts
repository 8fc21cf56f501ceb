/**
 * The run panel's views of the shared cache: the cache map, cross-worker attention, the
 * token inspector, the prompt (collapsed), find with highlights in the virtualised lanes,
 * and Markdown export. Owns the CacheState that the run's events feed; the panel calls
 * apply() with every batch and render() once per frame.
 */
import type { EngineEvent, InspectResult } from '../../protocol/messages';
import type { RunModel } from '../../extension/runModel';
import { CacheState, type StepRef, type TokenRef } from '../../extension/insights/cacheState';
import { findInRun, type FindMatch } from '../../extension/insights/find';
import { runToMarkdown } from '../../extension/insights/markdown';
import { chunkBounds } from '../chunks';
import { h, setData, setText } from '../dom';
import type { VirtualList } from '../virtualList';
import { CacheMap } from './cacheMap';
import { DrawPacer } from './drawPacer';
import { Heatmap } from './heatmap';
import { Inspector } from './inspector';
import { sourceOfElement, stepRefOf, textNodeOf, tokenUnderPoint } from './textTokens';

export interface LaneAccess {
  lane(worker: number): { list: VirtualList; scroll: HTMLElement } | undefined;
  history: VirtualList;
  /** Asks the engine (live runs); false when the run is a replay or over. */
  askEngine(ref: TokenRef): boolean;
  /** Sends the run's Markdown to the extension to save. */
  exportMarkdown(markdown: string): void;
  schedule(): void;
}

/** A token cursor in a lane: the worker's step and the token's place in it. */
interface Cursor {
  worker: number;
  step: number;
  k: number; // index inside the step's tokens
}

type Highlights = { set(name: string, h: unknown): void; delete(name: string): void };
declare const Highlight: { new (...ranges: Range[]): unknown };

function highlights(): Highlights | null {
  const c = (globalThis as unknown as { CSS?: { highlights?: Highlights } }).CSS;
  return c?.highlights ?? null;
}

export class Insights {
  cache = new CacheState();
  private model: RunModel | null = null;
  readonly root: HTMLElement;
  readonly findBar: HTMLElement;
  readonly map: CacheMap;
  readonly heatmap: Heatmap;
  readonly inspector: Inspector;
  private readonly promptDetails: HTMLDetailsElement;
  private readonly promptSummary: HTMLElement;
  private readonly promptBody: HTMLElement;
  private readonly findInput: HTMLInputElement;
  private readonly findCount: HTMLElement;
  private matches: FindMatch[] = [];
  private matchAt = -1;
  private query = '';
  private cursor: Cursor | null = null;
  private promptShown = -1;
  /** The map and the heatmap redraw at most 4 times a second while the run streams (live or a replay). */
  private readonly pacer: DrawPacer;
  /** The canvas views in or near the viewport (all of them until the observer says). */
  private readonly onScreen = new Set<Element>();

  constructor(
    private readonly access: LaneAccess,
    opts: { preferWebGL?: boolean } = {},
  ) {
    const nameOf = (w: number) => this.model?.workers.get(w)?.info.name ?? `Worker ${w}`;
    this.pacer = new DrawPacer(250, () => access.schedule());
    this.map = new CacheMap(this.cache, nameOf, (ref) => this.inspect(ref), () => this.pacer.drawSoon());
    this.heatmap = new Heatmap(this.cache, nameOf, () => this.pacer.drawSoon(), opts.preferWebGL ?? true);
    this.inspector = new Inspector(this.cache, nameOf);
    this.promptSummary = h('summary', {}, 'Prompt');
    this.promptBody = h('div', { class: 'prompt-body', tabindex: '0' }, h('span', { class: 'prompt-text' }));
    this.promptDetails = h('details', { class: 'prompt' }, this.promptSummary, this.promptBody) as HTMLDetailsElement;
    this.promptDetails.addEventListener('toggle', () => access.schedule());

    this.findInput = h('input', { type: 'search', class: 'find-input', placeholder: 'Find in lanes, history, notes', 'aria-label': 'Find text in the run' }) as HTMLInputElement;
    this.findCount = h('span', { class: 'find-count', 'aria-live': 'polite' });
    const prev = h('button', { class: 'icon-btn find-prev', title: 'Previous match (Shift+Enter)', 'aria-label': 'Previous match' }, '↑');
    const next = h('button', { class: 'icon-btn find-next', title: 'Next match (Enter)', 'aria-label': 'Next match' }, '↓');
    const exportBtn = h('button', { class: 'text-btn export-md', title: 'Export the run as Markdown' }, 'Export Markdown…');
    this.findBar = h('div', { class: 'find-bar', role: 'search' }, this.findInput, this.findCount, prev, next, exportBtn);
    this.findInput.addEventListener('input', () => this.setQuery(this.findInput.value));
    this.findInput.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        this.step(e.shiftKey ? -1 : 1);
      } else if (e.key === 'Escape') {
        this.findInput.value = '';
        this.setQuery('');
      }
    });
    prev.addEventListener('click', () => this.step(-1));
    next.addEventListener('click', () => this.step(1));
    exportBtn.addEventListener('click', () => this.model && access.exportMarkdown(this.markdown()));

    const section = (cls: string, title: string, ...body: HTMLElement[]) => h('section', { class: `insight ${cls}`, 'aria-label': title }, h('h2', {}, title), ...body);
    this.root = h(
      'div',
      { class: 'insights-body' },
      this.promptDetails,
      section('insight-map', 'Cache map', this.map.root),
      section('insight-attention', 'Cross-worker attention', this.heatmap.root),
      section('insight-inspector', 'Token inspector', this.inspector.root),
    );
    this.onScreen.add(this.map.root).add(this.heatmap.root);
    const io = new IntersectionObserver(
      (entries) => {
        for (const e of entries) {
          if (e.isIntersecting) {
            if (!this.onScreen.has(e.target)) this.pacer.drawSoon();
            this.onScreen.add(e.target);
          } else this.onScreen.delete(e.target);
        }
      },
      { rootMargin: '200px' },
    );
    io.observe(this.map.root);
    io.observe(this.heatmap.root);
  }

  /** A new run (or a restored one): everything starts over. */
  reset(model: RunModel | null, events: readonly EngineEvent[] = []): void {
    this.model = model;
    this.cache = new CacheState();
    // The views keep a reference to the cache: rebind them.
    this.map.cache = this.cache;
    this.heatmap.cache = this.cache;
    this.inspector.cache = this.cache;
    this.cache.apply(events);
    this.cursor = null;
    this.promptShown = -1;
    this.matches = [];
    this.matchAt = -1;
    this.map.invalidate();
    this.pacer.drawSoon();
  }

  apply(events: readonly EngineEvent[]): void {
    this.cache.apply(events);
  }

  onInspectResult(r: InspectResult): void {
    this.inspector.showEngine(r);
  }

  onInspectError(message: string): void {
    this.inspector.showError(message);
  }

  /** Once per frame, after the lanes rendered. */
  render(model: RunModel): void {
    this.model = model;
    const streaming = model.isActive && model.state !== 'paused';
    if (this.pacer.due(streaming)) {
      // While the run streams, a view scrolled out of sight waits until it comes back.
      if (!streaming || this.onScreen.has(this.map.root)) this.map.draw();
      if (!streaming || this.onScreen.has(this.heatmap.root)) this.heatmap.draw();
    }
    this.renderPrompt();
    if (this.query && this.matchesStale) this.refreshMatches();
    this.paintHighlights(false);
  }

  // ------------------------------------------------------------ the prompt

  private promptBlock(): number | null {
    for (const b of this.cache.blocks.values()) if (b.kind === 'prompt') return b.block;
    return null;
  }

  private renderPrompt(): void {
    const pb = this.promptBlock();
    const b = pb === null ? undefined : this.cache.blocks.get(pb);
    const n = b?.ids.length ?? 0;
    setText(this.promptSummary, n > 0 ? `Prompt (${n} tokens, block ${pb})` : b ? `Prompt (${b.length} tokens; their text is not in this trace)` : 'Prompt');
    if (!this.promptDetails.open || n === this.promptShown || pb === null) return;
    this.promptShown = n;
    this.promptBody.dataset.block = String(pb);
    this.promptBody.dataset.offset = '0';
    this.promptBody.replaceChildren(h('span', { class: 'prompt-text' }, this.cache.blockText(pb)));
  }

  openPrompt(): void {
    this.promptDetails.open = true;
    this.renderPrompt();
  }

  // ------------------------------------------------------------ inspecting

  inspect(ref: TokenRef): void {
    const live = this.access.askEngine(ref);
    this.inspector.showLocal(ref, live);
    this.inspector.root.scrollIntoView?.({ block: 'nearest' });
  }

  /** A click anywhere in the panel: on a token's text, inspect that token. */
  onClick(e: MouseEvent): void {
    if (!this.model) return;
    const sel = window.getSelection();
    if (sel && !sel.isCollapsed) return; // a selection being made, not a click on a token
    const hit = tokenUnderPoint(this.model, this.cache, e.clientX, e.clientY);
    if (!hit) return;
    const src = sourceOfElement(hit.el);
    if (src?.kind === 'lane') {
      const seg = this.model.workers.get(src.worker)?.segments[src.segment];
      const ref = seg ? this.cache.stepRef(src.worker, seg.step) : undefined;
      if (seg && ref) this.cursor = { worker: src.worker, step: seg.step, k: hit.ref.index - ref.start };
    }
    this.inspect(hit.ref);
    this.paintHighlights();
  }

  /** Keys in a focused lane: ← → move token by token, Enter inspects. */
  onLaneKey(worker: number, e: KeyboardEvent): void {
    const m = this.model;
    if (!m) return;
    const w = m.workers.get(worker);
    if (!w || w.segments.length === 0) return;
    if (e.key === 'Enter' && this.cursor && this.cursor.worker === worker) {
      e.preventDefault();
      const ref = this.cursorRef();
      if (ref) this.inspect(ref.token);
      return;
    }
    if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
    e.preventDefault();
    const steps = w.segments.map((s) => s.step);
    let c = this.cursor && this.cursor.worker === worker ? this.cursor : null;
    if (!c) {
      const last = steps[steps.length - 1]!;
      const r = this.cache.stepRef(worker, last);
      c = { worker, step: last, k: e.key === 'ArrowLeft' ? Math.max(0, (r?.count ?? 1) - 1) : 0 };
    } else {
      const r = this.cache.stepRef(worker, c.step);
      let k = c.k + (e.key === 'ArrowRight' ? 1 : -1);
      let si = steps.lastIndexOf(c.step);
      if (r && k >= r.count && si + 1 < steps.length) {
        si++;
        k = 0;
      } else if (k < 0 && si > 0) {
        si--;
        k = (this.cache.stepRef(worker, steps[si]!)?.count ?? 1) - 1;
      }
      const cnt = this.cache.stepRef(worker, steps[si]!)?.count ?? 1;
      c = { worker, step: steps[si]!, k: Math.max(0, Math.min(cnt - 1, k)) };
    }
    this.cursor = c;
    this.revealCursor();
  }

  private cursorRef(): { token: TokenRef; ref: StepRef; segment: number } | null {
    const c = this.cursor;
    const m = this.model;
    if (!c || !m) return null;
    const ref = this.cache.stepRef(c.worker, c.step);
    const segs = m.workers.get(c.worker)?.segments ?? [];
    let segment = -1;
    for (let i = segs.length - 1; i >= 0; i--) {
      if (segs[i]!.step === c.step) {
        segment = i;
        break;
      }
    }
    if (!ref || segment < 0 || c.k >= ref.count) return null;
    return { token: { block: ref.block, index: ref.start + c.k }, ref, segment };
  }

  private revealCursor(): void {
    const r = this.cursorRef();
    if (!r || !this.model) return;
    const [a] = this.cache.charRange(r.ref, r.token.index);
    this.revealLaneText(this.cursor!.worker, r.segment, a);
    this.paintHighlights();
    const b = this.cache.blocks.get(r.token.block);
    const lane = this.access.lane(this.cursor!.worker);
    lane?.scroll.setAttribute('aria-label', `${this.model.workers.get(this.cursor!.worker)?.info.name}'s stream; token ${JSON.stringify(b?.pieces[r.token.index] ?? '')}, press Enter to inspect`);
  }

  /** Scrolls a lane so that character `offset` of segment `segment` is in the DOM and in view. */
  private revealLaneText(worker: number, segment: number, offset: number): HTMLElement | null {
    const seg = this.model?.workers.get(worker)?.segments[segment];
    const lane = this.access.lane(worker);
    if (!seg || !lane) return null;
    const cuts = chunkBounds(seg.text);
    let c = 0;
    while (c + 2 < cuts.length && cuts[c + 1]! <= offset) c++;
    const len = Math.max(1, cuts[c + 1]! - cuts[c]!);
    return lane.list.scrollToKey(`s${segment}c${c}`, (offset - cuts[c]!) / len);
  }

  // ------------------------------------------------------------ find

  private matchesStale = false;

  /** Marks the matches for recomputation (text streamed in). */
  textChanged(): void {
    if (this.query) this.matchesStale = true;
  }

  setQuery(q: string): void {
    this.query = q;
    this.refreshMatches();
    this.matchAt = this.matches.length > 0 ? 0 : -1;
    if (this.matchAt >= 0) this.reveal(this.matches[0]!);
    this.paintHighlights();
  }

  private refreshMatches(): void {
    this.matchesStale = false;
    this.matches = this.model && this.query ? findInRun(this.model, this.query) : [];
    if (this.matchAt >= this.matches.length) this.matchAt = this.matches.length - 1;
    setText(this.findCount, this.query ? (this.matches.length === 0 ? 'No matches' : `${this.matchAt + 1} of ${this.matches.length}`) : '');
  }

  step(dir: 1 | -1): void {
    if (this.query !== this.findInput.value) this.setQuery(this.findInput.value);
    if (this.matches.length === 0) return;
    this.matchAt = (this.matchAt + dir + this.matches.length) % this.matches.length;
    setText(this.findCount, `${this.matchAt + 1} of ${this.matches.length}`);
    this.reveal(this.matches[this.matchAt]!);
    this.paintHighlights();
  }

  private reveal(m: FindMatch): void {
    if (m.where === 'lane') this.revealLaneText(m.worker, m.segment, m.start);
    else if (m.where === 'history') this.access.history.scrollToKey(`h${m.entry}`);
    else document.querySelector(`.note-item[data-note="${m.note}"]`)?.scrollIntoView({ block: 'nearest' });
  }

  private painted = '';

  /** What the highlights depend on: the same key twice means nothing to repaint. */
  private highlightKey(): string {
    if (!this.query && !this.cursor) return '';
    let dom = this.access.history.mutations;
    for (const w of this.model?.workers.keys() ?? []) dom += this.access.lane(w)?.list.mutations ?? 0;
    const c = this.cursor;
    return `${this.query}|${this.matchAt}|${this.matches.length}|${c ? `${c.worker},${c.step},${c.k}` : ''}|${dom}|${document.querySelectorAll('.note-item').length}`;
  }

  /**
   * Find matches, the current match and the token cursor, as CSS highlights (no DOM change).
   * Per frame (`force` false) only when something they depend on changed: registering
   * highlights invalidates the whole document's paint.
   */
  paintHighlights(force = true): void {
    const reg = highlights();
    if (!reg || !this.model) return;
    const key = this.highlightKey();
    if (!force && key === this.painted) return;
    this.painted = key;
    const all: Range[] = [];
    const current: Range[] = [];
    const cursor: Range[] = [];
    const cur = this.matchAt >= 0 ? this.matches[this.matchAt] : undefined;
    const cr = this.cursorRef();
    const cursorRange = cr ? this.cache.charRange(cr.ref, cr.token.index) : null;
    for (const el of document.querySelectorAll<HTMLElement>('.lane .seg, .hist-item, .note-item')) {
      const node = textNodeOf(el);
      const src = sourceOfElement(el);
      if (!node || !src) continue;
      const len = node.length;
      const add = (list: Range[], a: number, b: number) => {
        const s = Math.max(0, a - src.start);
        const e = Math.min(len, b - src.start);
        if (e <= s) return;
        const r = document.createRange();
        r.setStart(node, s);
        r.setEnd(node, e);
        list.push(r);
      };
      if (this.query) {
        for (const x of this.matches) {
          const same =
            (x.where === 'lane' && src.kind === 'lane' && x.worker === src.worker && x.segment === src.segment) ||
            (x.where === 'history' && src.kind === 'history' && x.entry === src.entry) ||
            (x.where === 'note' && src.kind === 'block' && el.dataset.note === String(x.note));
          if (!same) continue;
          add(x === cur ? current : all, x.start, x.end);
        }
      }
      if (cursorRange && src.kind === 'lane' && cr && src.worker === this.cursor!.worker && src.segment === cr.segment) add(cursor, cursorRange[0], cursorRange[1]);
    }
    reg.set('hw-find', new Highlight(...all));
    reg.set('hw-find-current', new Highlight(...current));
    reg.set('hw-token', new Highlight(...cursor));
    setData(document.body, 'findCurrent', String(current.length));
  }

  // ------------------------------------------------------------ export

  markdown(): string {
    return runToMarkdown(this.model!, this.cache);
  }

  /** For tests: the step reference of a lane segment. */
  stepRefOfSegment(worker: number, segment: number): StepRef | null {
    return this.model ? stepRefOf(this.model, this.cache, { kind: 'lane', worker, segment, start: 0 }) : null;
  }
}
