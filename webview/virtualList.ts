/**
 * A virtualised list of text blocks of varying height: only the items near the viewport are
 * in the DOM (real text nodes, so selection and copy keep working); the rest is two spacers.
 * Heights start as estimates from the text length and are replaced by measurements once an
 * item has been rendered. "Follow" mode keeps the view pinned to the bottom while text
 * streams in, and ends when the user scrolls up (it comes back at the bottom).
 *
 * Webviews share the workbench's renderer thread, so a render reads no layout: the viewport's
 * size, the items' heights and the content's height come from ResizeObservers (they report
 * after the browser's own layout, so reading there forces none), and the scroll position from
 * scroll events. A streaming item grows in place (ListItem.update appends to its text node)
 * instead of being rebuilt, so the DOM around it stays put.
 */
export interface ListItem {
  /** Stable identity (e.g. "w0:s3"). */
  key: string;
  /** Bumped whenever the item's content changes. */
  version: number;
  /** Fills a fresh element with the item's content. */
  render(el: HTMLElement): void;
  /** Brings an element rendered from an older version up to date in place; false: it cannot (render anew). */
  update?(el: HTMLElement): boolean;
  /** Characters of text, for the height estimate. */
  chars: number;
}

const OVERSCAN_PX = 400;
/** How close to the bottom (px) a scroll must end for follow mode to come back. */
const BOTTOM_SLACK_PX = 24;

interface Rendered {
  el: HTMLElement;
  version: number;
  index: number;
  key: string;
}

export class VirtualList {
  readonly scroller: HTMLElement;
  private readonly top: HTMLElement;
  private readonly content: HTMLElement;
  private readonly bottom: HTMLElement;
  private items: ListItem[] = [];
  private heights: number[] = [];
  private measured: boolean[] = [];
  private rendered = new Map<string, Rendered>();
  private readonly byElement = new WeakMap<Element, Rendered>();
  private follow = true;
  private charsPerLine = 60;
  private lineHeight = 18;
  private lineHeightKnown = false;
  private viewportRead = false;
  // Layout as last reported by the observers and scroll events (never read during a render).
  private viewH = 0;
  private viewW = 0;
  private scrollTop = 0;
  private scrollHeight = 0;
  /** Where the list last put the scroll position itself (its own scroll events change nothing). */
  private setScrollTop = -1;
  /** Height changes (px) measured since the last render: enough of them and the window moves. */
  private drift = 0;
  private readonly itemObserver: ResizeObserver;
  /** Bumped whenever a render changed the DOM (text, or which items are in it). */
  mutations = 0;

  constructor(scroller: HTMLElement, private readonly itemClass: string, private readonly onChange?: () => void) {
    this.scroller = scroller;
    this.top = document.createElement('div');
    this.content = document.createElement('div');
    this.bottom = document.createElement('div');
    this.top.className = 'vl-spacer';
    this.bottom.className = 'vl-spacer';
    this.content.className = 'vl-content';
    scroller.append(this.top, this.content, this.bottom);
    scroller.addEventListener('scroll', () => {
      // Scroll events come before the frame's rendering: the layout is clean, reads are cheap.
      const st = scroller.scrollTop;
      this.scrollTop = st;
      // Scrolls that the list made itself (follow mode) need no new render: that would loop.
      if (Math.abs(st - this.setScrollTop) < 1) return;
      this.scrollHeight = scroller.scrollHeight;
      this.viewH = scroller.clientHeight;
      this.follow = this.scrollHeight - st - this.viewH < BOTTOM_SLACK_PX;
      this.onChange?.();
    });
    new ResizeObserver(() => {
      const w = scroller.clientWidth;
      const hgt = scroller.clientHeight;
      if (w === this.viewW && hgt === this.viewH) return;
      this.viewW = w;
      this.viewH = hgt;
      this.charsPerLine = Math.max(20, Math.floor(w / 7.5));
      if (this.follow) this.pinToBottom();
      this.onChange?.();
    }).observe(scroller);
    // The content's height changes as text streams in: keep a following list at the bottom.
    new ResizeObserver(() => {
      this.scrollHeight = scroller.scrollHeight;
      if (this.follow) this.pinToBottom();
    }).observe(this.content);
    this.itemObserver = new ResizeObserver((entries) => this.onItemsResized(entries));
  }

  /** How many items are in the DOM now (the e2e test checks virtualisation with it). */
  get renderedCount(): number {
    return this.rendered.size;
  }

  setItems(items: ListItem[]): void {
    const old = this.items;
    let oldKeys: Map<string, number> | null = null;
    const heights: number[] = new Array(items.length);
    const measured: boolean[] = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      // Lists mostly grow at the end: the same key at the same place needs no lookup.
      let j: number | undefined = old[i]?.key === it.key ? i : undefined;
      if (j === undefined) {
        oldKeys ??= new Map(old.map((x, k) => [x.key, k]));
        j = oldKeys.get(it.key);
      }
      if (j !== undefined && this.measured[j] && (old[j]!.version === it.version || this.rendered.has(it.key))) {
        // A rendered item keeps its measured height until its observer reports the new one.
        heights[i] = this.heights[j]!;
        measured[i] = true;
      } else {
        heights[i] = this.estimate(it);
        measured[i] = false;
      }
    }
    this.items = items;
    this.heights = heights;
    this.measured = measured;
  }

  private estimate(it: ListItem): number {
    const lines = Math.max(1, Math.ceil(it.chars / this.charsPerLine)) + 1;
    return lines * this.lineHeight + 8;
  }

  /** Reads the layout once, the first time (before any observer has reported). */
  private ensureViewport(): void {
    if (this.viewH > 0 || this.viewportRead) return;
    this.viewportRead = true;
    this.viewH = this.scroller.clientHeight;
    this.viewW = this.scroller.clientWidth;
    if (this.viewW > 0) this.charsPerLine = Math.max(20, Math.floor(this.viewW / 7.5));
  }

  render(): void {
    this.ensureViewport();
    const viewH = this.viewH || 300;
    const n = this.items.length;
    let total = 0;
    for (let i = 0; i < n; i++) total += this.heights[i]!;
    // Following: lay out from the end (the observers pin the real scroll position).
    const scrollTop = this.follow ? Math.max(0, total - viewH) : this.scrollTop;
    let y = 0;
    let first = n;
    for (let i = 0; i < n; i++) {
      if (y + this.heights[i]! >= scrollTop - OVERSCAN_PX) {
        first = i;
        break;
      }
      y += this.heights[i]!;
    }
    const topPx = y;
    let last = first - 1;
    for (let i = first; i < n; i++) {
      last = i;
      y += this.heights[i]!;
      if (y > scrollTop + viewH + OVERSCAN_PX) break;
    }
    const bottomPx = total - y;
    this.drift = 0;

    // Reconcile the rendered window.
    const keep = new Set<string>();
    const ordered: HTMLElement[] = [];
    for (let i = first; i <= last; i++) {
      const it = this.items[i]!;
      keep.add(it.key);
      let r = this.rendered.get(it.key);
      if (!r) {
        const el = document.createElement('div');
        el.className = this.itemClass;
        it.render(el);
        r = { el, version: it.version, index: i, key: it.key };
        this.rendered.set(it.key, r);
        this.byElement.set(el, r);
        this.itemObserver.observe(el);
        this.mutations++;
      } else if (r.version !== it.version) {
        if (!it.update?.(r.el)) {
          r.el.replaceChildren();
          it.render(r.el);
        }
        r.version = it.version;
        this.mutations++;
      }
      r.index = i;
      ordered.push(r.el);
    }
    for (const [key, r] of this.rendered) {
      if (!keep.has(key)) {
        this.itemObserver.unobserve(r.el);
        r.el.remove();
        this.rendered.delete(key);
        this.mutations++;
      }
    }
    // Insert in order without touching nodes already in place (keeps selections alive).
    let prev: Element | null = null;
    for (const el of ordered) {
      const want: Element | null = prev ? prev.nextElementSibling : this.content.firstElementChild;
      if (want !== el) this.content.insertBefore(el, want);
      prev = el;
    }
    setHeight(this.top, topPx);
    setHeight(this.bottom, bottomPx);
  }

  /** Measured heights of rendered items, after the browser's layout (no forced layout). */
  private onItemsResized(entries: ResizeObserverEntry[]): void {
    let changed = false;
    for (const e of entries) {
      const r = this.byElement.get(e.target);
      if (!r || this.rendered.get(r.key) !== r || this.items[r.index]?.key !== r.key) continue;
      const h = e.borderBoxSize?.[0]?.blockSize ?? (e.target as HTMLElement).offsetHeight;
      if (!(h > 0)) continue;
      const old = this.heights[r.index]!;
      if (Math.abs(h - old) > 0.5 || !this.measured[r.index]) {
        this.drift += Math.abs(h - old);
        this.heights[r.index] = h;
        this.measured[r.index] = true;
        changed = true;
        if (!this.lineHeightKnown) {
          const lh = parseFloat(getComputedStyle(e.target).lineHeight);
          if (Number.isFinite(lh) && lh > 0) {
            this.lineHeight = lh;
            this.lineHeightKnown = true;
          }
        }
      }
    }
    if (!changed) return;
    if (this.follow) this.pinToBottom();
    // The window was laid out on estimates that were far off: lay it out again.
    if (this.drift > OVERSCAN_PX / 2) this.onChange?.();
  }

  private pinToBottom(): void {
    const sc = this.scroller;
    const target = Math.max(0, sc.scrollHeight - sc.clientHeight);
    if (Math.abs(sc.scrollTop - target) >= 1) sc.scrollTop = target;
    this.scrollTop = sc.scrollTop;
    this.setScrollTop = this.scrollTop;
  }

  /** Measures the rendered items now (forces a layout: only for jumps a person asked for). */
  private measureNow(): void {
    for (const r of this.rendered.values()) {
      const h = r.el.offsetHeight;
      if (h > 0) {
        this.heights[r.index] = h;
        this.measured[r.index] = true;
      }
    }
    this.viewH = this.scroller.clientHeight;
  }

  /** The rendered element of an item, if it is in the DOM now. */
  elementOf(key: string): HTMLElement | null {
    return this.rendered.get(key)?.el ?? null;
  }

  /**
   * Brings item `key` into view (ends follow mode) and renders; `fraction` (0..1) says how far
   * into the item the target is, so that a long chunk shows the right part.
   */
  scrollToKey(key: string, fraction = 0): HTMLElement | null {
    const i = this.items.findIndex((it) => it.key === key);
    if (i < 0) return null;
    this.follow = false;
    const place = () => {
      let y = 0;
      for (let j = 0; j < i; j++) y += this.heights[j]!;
      const viewH = this.viewH || 300;
      const target = Math.max(0, y + this.heights[i]! * fraction - viewH / 3);
      this.scroller.scrollTop = target;
      this.scrollTop = this.scroller.scrollTop;
      this.setScrollTop = this.scrollTop;
      this.render();
      this.measureNow();
    };
    // Twice: the first render measures the items around the target, the second lands on it.
    place();
    place();
    return this.elementOf(key);
  }

  scrollToEnd(): void {
    this.follow = true;
    this.render();
    this.pinToBottom();
  }
}

function setHeight(el: HTMLElement, px: number): void {
  const v = `${Math.max(0, Math.round(px))}px`;
  if (el.style.height !== v) el.style.height = v;
}
