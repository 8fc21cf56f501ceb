/**
 * The cache map: each worker's view as a strip of blocks, to scale, on one Canvas 2D.
 * Blocks are coloured by author (history and forked blocks token run by token run), shared
 * blocks are grey with a band that tells their kind. Hover tells a block's id, author, kind,
 * length, offset in that view and the query rotation; a click (or Enter on the focused
 * block) opens the token inspector. Zoom, and a compressed prompt, keep long views readable.
 * Only filled, pixel-aligned rectangles are drawn: solid colours, no anti-aliasing.
 */
import type { CacheState, TokenRef } from '../../extension/insights/cacheState';
import type { BlockKind, ViewSegmentInfo } from '../../protocol/messages';
import { h, setData, setStyle, setText } from '../dom';
import { cachedWidth } from '../layoutCache';
import { SHARED_GREY, isHighContrast, paletteOf, parseColor, cachedTheme, workerColor, workerStriped, type ThemeColors } from './palette';

/** Row height and gap of the panel's map, and of the sidebar's compact one. */
const ROWS = { full: { h: 22, gap: 6 }, compact: { h: 12, gap: 4 } };
const PROMPT_SHARE = 0.12; // a compressed prompt takes at most this part of the width
const FLASH_MS = 1500;

export interface MapSegment {
  worker: number;
  seg: ViewSegmentInfo;
  x0: number;
  x1: number;
  compressed: boolean;
}

type Rgb = [number, number, number];

export class CacheMap {
  readonly root: HTMLElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly names: HTMLElement;
  private readonly scroller: HTMLElement;
  private readonly spacer: HTMLElement;
  private readonly tooltip: HTMLElement;
  private readonly summary: HTMLElement;
  private readonly status: HTMLElement;
  private readonly zoomLabel: HTMLElement;
  private readonly compressBox: HTMLInputElement;
  private zoom = 1;
  /** The strip's horizontal scroll, as of its last scroll event (drawing reads no layout). */
  private scrollLeft = 0;
  private rows: MapSegment[][] = [];
  private drawnVersion = -1;
  private focus: { row: number; seg: number } | null = null;
  private hover: { row: number; seg: number; index: number | null } | null = null;
  private flashes: { block: number; from: number; to: number; until: number }[] = [];
  private historyLen = new Map<number, number>();
  private theme: ThemeColors | null = null;
  private summaryAt = -Infinity;
  private summaryTimer: ReturnType<typeof setTimeout> | null = null;
  private dirty = true;
  private overlayDirty = false;
  /** The blocks as last drawn, without the hover and focus outlines. */
  private base: HTMLCanvasElement | null = null;
  private readonly rowH: number;
  private readonly rowGap: number;

  constructor(
    /** Replaced when a new run starts. */
    public cache: CacheState,
    private readonly nameOf: (worker: number) => string,
    private readonly onInspect: (ref: TokenRef) => void,
    private readonly requestDraw: () => void,
    compact = false,
  ) {
    this.rowH = compact ? ROWS.compact.h : ROWS.full.h;
    this.rowGap = compact ? ROWS.compact.gap : ROWS.full.gap;
    this.canvas = h('canvas', { class: 'cache-map-canvas', tabindex: '0', role: 'img', 'aria-label': 'Cache map: each worker\'s view as blocks, to scale' });
    this.names = h('div', { class: 'cache-map-names', 'aria-hidden': 'true' });
    this.spacer = h('div', { class: 'cache-map-spacer' });
    this.scroller = h('div', { class: 'cache-map-scroll' }, this.spacer);
    this.tooltip = h('div', { class: 'cache-map-tip', role: 'tooltip', hidden: true });
    this.summary = h('div', { class: 'sr-only cache-map-summary' });
    this.status = h('div', { class: 'sr-only', 'aria-live': 'polite' });
    this.summary.id = compact ? 'cache-map-summary-compact' : 'cache-map-summary';
    this.canvas.setAttribute('aria-describedby', this.summary.id);
    this.zoomLabel = h('span', { class: 'cache-map-zoom' }, '1×');
    this.compressBox = h('input', { type: 'checkbox', class: 'cache-map-compress', checked: true }) as HTMLInputElement;
    const zoomOut = h('button', { class: 'icon-btn zoom-out', title: 'Zoom out (-)', 'aria-label': 'Zoom out' }, '−');
    const zoomIn = h('button', { class: 'icon-btn zoom-in', title: 'Zoom in (+)', 'aria-label': 'Zoom in' }, '+');
    const fit = h('button', { class: 'icon-btn zoom-fit', title: 'Fit the longest view (0)', 'aria-label': 'Fit' }, 'Fit');
    zoomOut.addEventListener('click', () => this.setZoom(this.zoom / 2));
    zoomIn.addEventListener('click', () => this.setZoom(this.zoom * 2));
    fit.addEventListener('click', () => this.setZoom(1));
    this.compressBox.addEventListener('change', () => this.invalidate());
    const controls = compact
      ? null
      : h('div', { class: 'cache-map-controls' }, zoomOut, this.zoomLabel, zoomIn, fit, h('label', { class: 'cache-map-compress-label' }, this.compressBox, ' Compress the prompt'), this.legend());
    this.root = h(
      'div',
      { class: `cache-map${compact ? ' compact' : ''}` },
      controls,
      h('div', { class: 'cache-map-body' }, this.names, h('div', { class: 'cache-map-stage' }, this.canvas, this.scroller, this.tooltip)),
      this.summary,
      this.status,
    );
    this.scroller.addEventListener('scroll', () => {
      this.scrollLeft = this.scroller.scrollLeft;
      this.invalidate();
    });
    this.canvas.addEventListener('mousemove', (e) => this.onHover(e));
    this.canvas.addEventListener('mouseleave', () => {
      this.hover = null;
      this.tooltip.hidden = true;
      this.invalidateOverlay();
    });
    this.canvas.addEventListener('click', (e) => {
      const hit = this.hit(e);
      if (hit) this.inspectAt(hit.row, hit.seg, hit.index ?? 0);
    });
    this.canvas.addEventListener('keydown', (e) => this.onKey(e));
    this.canvas.addEventListener('wheel', (e) => {
      if (!e.ctrlKey) return;
      e.preventDefault();
      this.setZoom(e.deltaY < 0 ? this.zoom * 1.25 : this.zoom / 1.25);
    });
    new ResizeObserver(() => this.invalidate()).observe(this.root);
  }

  private legend(): HTMLElement {
    const item = (cls: string, text: string) => h('span', { class: 'legend-item' }, h('span', { class: `legend-swatch ${cls}` }), text);
    return h('span', { class: 'cache-map-legend' }, item('sw-prompt', 'prompt'), item('sw-header', 'header'), item('sw-note', 'note'), item('sw-history', 'history (by author)'), item('sw-own', 'own step'));
  }

  invalidate(): void {
    this.dirty = true;
    this.requestDraw();
  }

  /** Only the hover or focus outline changed: the next draw copies the blocks drawn last time. */
  private invalidateOverlay(): void {
    this.overlayDirty = true;
    this.requestDraw();
  }

  setZoom(z: number): void {
    this.zoom = Math.min(4096, Math.max(1, z));
    setText(this.zoomLabel, `${this.zoom >= 10 ? this.zoom.toFixed(0) : this.zoom.toFixed(this.zoom % 1 ? 1 : 0)}×`);
    this.invalidate();
  }

  /** Lays out every view: x positions of every segment, in canvas pixels (scroll included). */
  private layout(width: number): void {
    const views = this.cache.views;
    let longest = 1;
    for (const v of views) {
      const last = v[v.length - 1];
      if (last) longest = Math.max(longest, last.offset + last.length);
    }
    const compress = this.compressBox.checked;
    // The prompt is the same first block in every view: compress it to a fixed width.
    const promptLen = views[0]?.[0] && this.cache.blocks.get(views[0][0].block)?.kind === 'prompt' ? views[0][0].length : 0;
    const full = width * this.zoom;
    let promptW = 0;
    let scale = full / longest;
    if (compress && promptLen > 0 && (promptLen * scale) / full > PROMPT_SHARE) {
      promptW = Math.round(full * PROMPT_SHARE);
      scale = (full - promptW) / Math.max(1, longest - promptLen);
    }
    setStyle(this.spacer, 'width', `${Math.ceil(full)}px`);
    const sx = this.scrollLeft;
    this.rows = views.map((v, worker) =>
      v.map((seg, i) => {
        const isPrompt = i === 0 && promptW > 0 && seg.length === promptLen;
        let x0: number;
        let x1: number;
        if (isPrompt) {
          x0 = 0;
          x1 = promptW;
        } else {
          const base = promptW > 0 ? promptW + (seg.offset - promptLen) * scale : seg.offset * scale;
          x0 = base;
          x1 = base + seg.length * scale;
        }
        return { worker, seg, x0: Math.round(x0 - sx), x1: Math.round(x1 - sx), compressed: isPrompt };
      }),
    );
  }

  private runCache = new Map<number, { known: number; length: number; owner: number; runs: number[] }>();

  /** [start, end, author] triples of a block's first `length` tokens (unknown ones: the owner's). */
  private runsOf(block: number, length: number): number[] {
    const b = this.cache.blocks.get(block);
    const known = b ? Math.min(b.authors.length, length) : 0;
    const owner = b?.owner ?? -1;
    const hit = this.runCache.get(block);
    if (hit && hit.known === known && hit.length === length && hit.owner === owner) return hit.runs;
    const runs: number[] = [];
    let i = 0;
    while (i < length) {
      const a = i < known ? b!.authors.at(i) : owner;
      let j = i + 1;
      while (j < length && (j < known ? b!.authors.at(j) : owner) === a) j++;
      runs.push(i, j, a);
      i = j;
    }
    this.runCache.set(block, { known, length, owner, runs });
    return runs;
  }

  private authorColors = new Map<number, Rgb>();
  private authorColorsTheme: ThemeColors | null = null;

  private colorOfAuthor(author: number, kind: BlockKind): Rgb {
    const t = this.theme!;
    void kind;
    if (this.authorColorsTheme !== t) {
      this.authorColors.clear();
      this.authorColorsTheme = t;
    }
    let c = this.authorColors.get(author);
    if (!c) {
      c = parseColor(author >= 0 ? workerColor(t.kind, author) : SHARED_GREY[paletteOf(t.kind)], [128, 128, 128]);
      this.authorColors.set(author, c);
    }
    return c;
  }

  /** Draws now if anything changed (called at most once per frame by the panel). */
  draw(): void {
    const version = this.cache.version * 1000003 + this.cache.layoutVersion;
    const now = performance.now();
    this.flashes = this.flashes.filter((f) => f.until > now);
    const same = !this.dirty && version === this.drawnVersion && this.flashes.length === 0;
    if (same && !this.overlayDirty) return;
    this.overlayDirty = false;
    if (same && this.base && this.base.width === this.canvas.width && this.base.height === this.canvas.height) {
      const ctx = this.canvas.getContext('2d')!;
      ctx.drawImage(this.base, 0, 0);
      this.drawOutlines(ctx);
      return;
    }
    this.dirty = false;
    this.drawnVersion = version;
    this.theme = cachedTheme();
    this.trackMoves(now);
    const stage = this.canvas.parentElement!;
    const width = Math.max(50, Math.floor(cachedWidth(stage) || 300));
    const nrows = this.cache.views.length;
    const height = Math.max(this.rowH, nrows * (this.rowH + this.rowGap));
    if (this.canvas.width !== width) this.canvas.width = width;
    if (this.canvas.height !== height) this.canvas.height = height;
    setStyle(this.canvas, 'height', `${height}px`);
    this.layout(width);
    const ctx = this.canvas.getContext('2d')!;
    const t = this.theme;
    const hc = isHighContrast(t.kind);
    ctx.fillStyle = rgb(t.background);
    ctx.fillRect(0, 0, width, height);
    this.rows.forEach((row, r) => {
      const y = r * (this.rowH + this.rowGap);
      for (let i = 0; i < row.length; i++) this.drawSegment(ctx, row[i]!, y, i === row.length - 1, width, hc);
    });
    for (const f of this.flashes) this.drawFlash(ctx, f, width);
    this.base ??= document.createElement('canvas');
    if (this.base.width !== width) this.base.width = width;
    if (this.base.height !== height) this.base.height = height;
    this.base.getContext('2d')!.drawImage(this.canvas, 0, 0);
    this.drawOutlines(ctx);
    this.renderNames();
    setData(this.canvas, 'rows', String(nrows));
    this.updateSummary(now);
  }

  /**
   * The screen-reader summary, rewritten at most once a second while the map changes; a
   * change inside that second is written when the second is over (never left stale).
   */
  private updateSummary(now: number): void {
    const wait = 1000 - (now - this.summaryAt);
    if (wait <= 0) {
      this.summaryAt = now;
      setText(this.summary, this.describe());
    } else if (!this.summaryTimer) {
      this.summaryTimer = setTimeout(() => {
        this.summaryTimer = null;
        this.updateSummary(performance.now());
      }, wait);
    }
  }

  private drawSegment(ctx: CanvasRenderingContext2D, s: MapSegment, y: number, own: boolean, width: number, hc: boolean): void {
    const t = this.theme!;
    let x0 = Math.max(0, s.x0);
    const x1 = Math.min(width, s.x1);
    if (x1 <= x0 && !(s.seg.length > 0 && s.x1 > 0 && s.x0 < width)) return;
    if (x1 <= x0) x0 = x1 - 1; // a non-empty block is at least one pixel wide
    const b = this.cache.blocks.get(s.seg.block);
    const kind = b?.kind ?? 'header';
    const grey = this.colorOfAuthor(-1, kind);
    if (kind === 'worker' || kind === 'history') {
      // Author runs (cached per block and length: a long history has many tokens).
      const runs = this.runsOf(s.seg.block, s.seg.length);
      const span = s.x1 - s.x0;
      // A long history has many runs per pixel: a pixel already filled is not filled again.
      let filled = -Infinity;
      for (let r = 0; r < runs.length; r += 3) {
        const i = runs[r]!;
        const j = runs[r + 1]!;
        const a = runs[r + 2]!;
        if (Math.round(s.x0 + (j / s.seg.length) * span) <= filled) continue;
        const rx0 = Math.max(x0, filled, Math.round(s.x0 + (i / s.seg.length) * span));
        const rx1 = Math.min(x1, Math.max(rx0 + 1, Math.round(s.x0 + (j / s.seg.length) * span)));
        if (rx1 > rx0) {
          filled = rx1;
          ctx.fillStyle = rgb(a >= 0 ? this.colorOfAuthor(a, kind) : grey);
          ctx.fillRect(rx0, y, rx1 - rx0, this.rowH);
          if (a >= 0 && workerStriped(a)) {
            ctx.fillStyle = rgb(t.background);
            for (let x = rx0 + 3; x < rx1; x += 6) ctx.fillRect(x, y, 1, this.rowH);
          }
        }
      }
      if (kind === 'history') {
        ctx.fillStyle = rgb(grey);
        ctx.fillRect(x0, y + this.rowH - 4, x1 - x0, 4);
      }
      if (b && b.forkedFrom !== null && b.forkedFrom >= 0) {
        // Shared pages of a fork: a band in the origin's colour.
        const origin = this.cache.blocks.get(b.forkedFrom);
        ctx.fillStyle = rgb(this.colorOfAuthor(origin?.owner ?? 0, 'worker'));
        ctx.fillRect(x0, y, x1 - x0, 4);
      }
    } else {
      ctx.fillStyle = rgb(grey);
      ctx.fillRect(x0, y, x1 - x0, this.rowH);
      const band: Rgb | null = kind === 'header' ? t.foreground : kind === 'note' ? t.focus : kind === 'finisher' ? t.missing : null;
      if (band) {
        ctx.fillStyle = rgb(band);
        ctx.fillRect(x0, y, x1 - x0, 4);
      }
      if (s.compressed) {
        // A break mark: the prompt is not to scale.
        ctx.fillStyle = rgb(t.background);
        const mx = Math.round((x0 + x1) / 2);
        ctx.fillRect(mx - 2, y, 1, this.rowH);
        ctx.fillRect(mx + 1, y, 1, this.rowH);
      }
    }
    if (own) this.frame(ctx, x0, y, x1 - x0, this.rowH, t.foreground, 2);
    if (hc) this.frame(ctx, x0, y, x1 - x0, this.rowH, t.border, 1);
    else if (x1 - x0 >= 4) {
      ctx.fillStyle = rgb(t.background);
      ctx.fillRect(x0, y, 1, this.rowH); // a gap between neighbours
    }
  }

  private drawOutlines(ctx: CanvasRenderingContext2D): void {
    const t = this.theme!;
    if (this.focus) this.outline(ctx, this.focus.row, this.focus.seg, t.focus, 2);
    if (this.hover) this.outline(ctx, this.hover.row, this.hover.seg, t.foreground, 1);
  }

  private frame(ctx: CanvasRenderingContext2D, x: number, y: number, w: number, hgt: number, c: Rgb, lw: number): void {
    ctx.fillStyle = rgb(c);
    ctx.fillRect(x, y, w, lw);
    ctx.fillRect(x, y + hgt - lw, w, lw);
    ctx.fillRect(x, y, lw, hgt);
    ctx.fillRect(x + w - lw, y, lw, hgt);
  }

  private outline(ctx: CanvasRenderingContext2D, row: number, seg: number, c: Rgb, lw: number): void {
    const s = this.rows[row]?.[seg];
    if (!s) return;
    const x0 = Math.max(0, s.x0);
    const x1 = Math.max(x0 + 2, Math.min(this.canvas.width, s.x1));
    this.frame(ctx, x0, row * (this.rowH + this.rowGap), x1 - x0, this.rowH, c, lw);
  }

  /** A finished step just moved into the history: outline where it landed for a moment. */
  private trackMoves(now: number): void {
    for (const b of this.cache.blocks.values()) {
      if (b.kind !== 'history') continue;
      const before = this.historyLen.get(b.block);
      const len = b.ids.length;
      if (before !== undefined && len > before) this.flashes.push({ block: b.block, from: before, to: len, until: now + FLASH_MS });
      this.historyLen.set(b.block, len);
    }
    if (this.flashes.length > 0) setTimeout(() => this.invalidate(), 250);
  }

  private drawFlash(ctx: CanvasRenderingContext2D, f: { block: number; from: number; to: number }, width: number): void {
    this.rows.forEach((row, r) => {
      for (const s of row) {
        if (s.seg.block !== f.block || s.seg.length === 0 || f.from >= s.seg.length) continue;
        const span = s.x1 - s.x0;
        const a = Math.max(0, Math.round(s.x0 + (f.from / s.seg.length) * span));
        const z = Math.min(width, Math.round(s.x0 + (Math.min(f.to, s.seg.length) / s.seg.length) * span));
        if (z > a) this.frame(ctx, a, r * (this.rowH + this.rowGap), Math.max(2, z - a), this.rowH, this.theme!.focus, 2);
      }
    });
  }

  private renderNames(): void {
    const want = this.cache.views.map((_, w) => this.nameOf(w));
    const have = [...this.names.children].map((c) => c.textContent);
    if (want.join('\u0000') === have.join('\u0000')) return;
    this.names.replaceChildren(
      ...want.map((n, w) => {
        const sw = h('span', { class: 'name-swatch' });
        sw.style.background = workerColor(this.theme?.kind ?? 'dark', w);
        // Through the CSSOM: the webview's CSP blocks style attributes.
        const el = h('div', { class: 'cache-map-name' }, sw, n);
        el.style.height = `${this.rowH}px`;
        el.style.marginBottom = `${this.rowGap}px`;
        return el;
      }),
    );
  }

  private hit(e: MouseEvent): { row: number; seg: number; index: number | null } | null {
    const rect = this.canvas.getBoundingClientRect();
    const x = e.clientX - rect.left;
    const y = e.clientY - rect.top;
    const row = Math.floor(y / (this.rowH + this.rowGap));
    if (y - row * (this.rowH + this.rowGap) > this.rowH) return null;
    return this.hitAt(row, x);
  }

  /** The segment and token of row `row` under canvas x (tests call it through the DOM too). */
  hitAt(row: number, x: number): { row: number; seg: number; index: number | null } | null {
    const segs = this.rows[row];
    if (!segs) return null;
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i]!;
      const x1 = Math.max(s.x1, s.x0 + 1);
      if (x >= s.x0 && x < x1) {
        const index = s.seg.length > 0 ? Math.min(s.seg.length - 1, Math.floor(((x - s.x0) / (x1 - s.x0)) * s.seg.length)) : null;
        return { row, seg: i, index };
      }
    }
    return null;
  }

  private describeSegment(worker: number, s: ViewSegmentInfo): string {
    const b = this.cache.blocks.get(s.block);
    const kind = b?.kind ?? 'block';
    const author = b ? (b.owner >= 0 ? this.nameOf(b.owner) : kind === 'note' ? 'the user' : 'shared') : 'unknown';
    const rot = this.cache.rotation(worker, s);
    return `${b?.label ?? `block ${s.block}`}: block ${s.block}, ${kind}, author ${author}, ${s.length} tokens, offset ${s.offset} in ${this.nameOf(worker)}'s view, query rotation ${rot ?? 'n/a'}`;
  }

  private onHover(e: MouseEvent): void {
    const hit = this.hit(e);
    const same = hit && this.hover && hit.row === this.hover.row && hit.seg === this.hover.seg && hit.index === this.hover.index;
    if (same) return;
    this.hover = hit;
    if (!hit) {
      this.tooltip.hidden = true;
      this.invalidateOverlay();
      return;
    }
    const s = this.rows[hit.row]![hit.seg]!;
    const b = this.cache.blocks.get(s.seg.block);
    const lines = this.describeSegment(hit.row, s.seg).split(', ');
    // The sidebar's compact map gets no token texts: no token line there.
    const tok = hit.index !== null && b && hit.index < b.ids.length && b.pieces[hit.index] ? `token ${hit.index}: ${JSON.stringify(b.pieces[hit.index] ?? '')}` : null;
    this.tooltip.replaceChildren(...[...lines, ...(tok ? [tok] : [])].map((l) => h('div', {}, l)));
    this.tooltip.hidden = false;
    const rect = this.canvas.getBoundingClientRect();
    this.tooltip.style.left = `${Math.max(0, Math.min(rect.width - 260, e.clientX - rect.left + 12))}px`;
    this.tooltip.style.top = `${e.clientY - rect.top + 14}px`;
    this.tooltip.dataset.block = String(s.seg.block);
    this.invalidateOverlay();
  }

  private inspectAt(row: number, seg: number, index: number): void {
    const s = this.rows[row]?.[seg];
    if (!s || s.seg.length === 0) return;
    this.onInspect({ block: s.seg.block, index: Math.min(index, s.seg.length - 1) });
  }

  private onKey(e: KeyboardEvent): void {
    const rows = this.rows;
    if (rows.length === 0) return;
    let f = this.focus ?? { row: 0, seg: 0 };
    const k = e.key;
    if (k === 'ArrowRight') f = { row: f.row, seg: Math.min((rows[f.row]?.length ?? 1) - 1, f.seg + 1) };
    else if (k === 'ArrowLeft') f = { row: f.row, seg: Math.max(0, f.seg - 1) };
    else if (k === 'ArrowDown') f = { row: Math.min(rows.length - 1, f.row + 1), seg: 0 };
    else if (k === 'ArrowUp') f = { row: Math.max(0, f.row - 1), seg: 0 };
    else if (k === 'Home') f = { row: f.row, seg: 0 };
    else if (k === 'End') f = { row: f.row, seg: (rows[f.row]?.length ?? 1) - 1 };
    else if (k === '+' || k === '=') return this.setZoom(this.zoom * 2);
    else if (k === '-') return this.setZoom(this.zoom / 2);
    else if (k === '0') return this.setZoom(1);
    else if (k === 'Enter' || k === ' ') {
      e.preventDefault();
      if (this.focus) this.inspectAt(this.focus.row, this.focus.seg, 0);
      return;
    } else return;
    e.preventDefault();
    this.focus = f;
    const s = rows[f.row]?.[f.seg];
    if (s) setText(this.status, this.describeSegment(f.row, s.seg));
    this.invalidateOverlay();
  }

  /** The screen-reader summary: every view, block by block. */
  describe(): string {
    return this.cache.views
      .map((v, w) => {
        const total = v.length > 0 ? v[v.length - 1]!.offset + v[v.length - 1]!.length : 0;
        const parts = v.map((s) => {
          const b = this.cache.blocks.get(s.block);
          return `${b?.label ?? `block ${s.block}`} (${s.length}) at ${s.offset}`;
        });
        return `${this.nameOf(w)} sees ${v.length} blocks, ${total} tokens: ${parts.join('; ')}.`;
      })
      .join(' ');
  }

  /** For tests: the segments as laid out (canvas x positions). */
  get layoutRows(): readonly MapSegment[][] {
    return this.rows;
  }
}

function rgb(c: readonly number[]): string {
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}
