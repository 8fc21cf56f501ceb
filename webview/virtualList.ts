/**
 * A virtualised list of text blocks of varying height: only the items near the viewport are
 * in the DOM (real text nodes, so selection and copy keep working); the rest is two spacers.
 * Heights start as estimates from the text length and are replaced by measurements once an
 * item has been rendered. "Follow" mode keeps the view pinned to the bottom while text
 * streams in, and ends when the user scrolls up (it comes back at the bottom).
 */
export interface ListItem {
  /** Stable identity (e.g. "w0:s3"). */
  key: string;
  /** Bumped whenever the item's content changes. */
  version: number;
  /** Fills a fresh element with the item's content. */
  render(el: HTMLElement): void;
  /** Characters of text, for the height estimate. */
  chars: number;
}

const OVERSCAN_PX = 400;

export class VirtualList {
  readonly scroller: HTMLElement;
  private readonly top: HTMLElement;
  private readonly content: HTMLElement;
  private readonly bottom: HTMLElement;
  private items: ListItem[] = [];
  private heights: number[] = [];
  private measured: boolean[] = [];
  private rendered = new Map<string, { el: HTMLElement; version: number; index: number }>();
  private follow = true;
  private setScrollTop = -1; // where render() last put the scroll position
  private charsPerLine = 60;
  private lineHeight = 18;

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
      // Scrolls that render() made itself (follow mode) need no new render: that would loop.
      if (Math.abs(scroller.scrollTop - this.setScrollTop) < 1) return;
      const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 24;
      this.follow = atBottom;
      this.onChange?.();
    });
    new ResizeObserver(() => this.onChange?.()).observe(scroller);
  }

  /** How many items are in the DOM now (the e2e test checks virtualisation with it). */
  get renderedCount(): number {
    return this.rendered.size;
  }

  setItems(items: ListItem[]): void {
    const oldKeys = new Map(this.items.map((it, i) => [it.key, i]));
    const heights: number[] = new Array(items.length);
    const measured: boolean[] = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
      const j = oldKeys.get(items[i]!.key);
      if (j !== undefined && this.items[j]!.version === items[i]!.version && this.measured[j]) {
        heights[i] = this.heights[j]!;
        measured[i] = true;
      } else {
        heights[i] = this.estimate(items[i]!);
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

  render(): void {
    const sc = this.scroller;
    const viewH = sc.clientHeight || 300;
    const width = sc.clientWidth || 300;
    this.charsPerLine = Math.max(20, Math.floor(width / 7.5));
    if (this.follow) {
      // Pin to the bottom: lay out from the end.
      const total = this.heights.reduce((a, b) => a + b, 0);
      sc.scrollTop = Math.max(0, total - viewH);
      this.setScrollTop = sc.scrollTop;
    }
    const scrollTop = sc.scrollTop;
    const n = this.items.length;
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
    let bottomPx = 0;
    for (let i = last + 1; i < n; i++) bottomPx += this.heights[i]!;

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
        r = { el, version: it.version, index: i };
        this.rendered.set(it.key, r);
      } else if (r.version !== it.version) {
        r.el.replaceChildren();
        it.render(r.el);
        r.version = it.version;
      }
      r.index = i;
      ordered.push(r.el);
    }
    for (const [key, r] of this.rendered) {
      if (!keep.has(key)) {
        r.el.remove();
        this.rendered.delete(key);
      }
    }
    // Insert in order without touching nodes already in place (keeps selections alive).
    let prev: Element | null = null;
    for (const el of ordered) {
      const want: Element | null = prev ? prev.nextElementSibling : this.content.firstElementChild;
      if (want !== el) this.content.insertBefore(el, want);
      prev = el;
    }
    this.top.style.height = `${topPx}px`;
    this.bottom.style.height = `${bottomPx}px`;

    // Measure what is in the DOM now and correct the estimates.
    let changed = false;
    for (const r of this.rendered.values()) {
      const h = r.el.offsetHeight;
      if (h > 0 && (Math.abs(h - this.heights[r.index]!) > 0.5 || !this.measured[r.index])) {
        this.heights[r.index] = h;
        this.measured[r.index] = true;
        changed = true;
      }
    }
    if (changed) {
      const lines = this.content.querySelectorAll(`.${this.itemClass}`);
      if (lines.length > 0) {
        const lh = parseFloat(getComputedStyle(lines[0] as Element).lineHeight);
        if (Number.isFinite(lh) && lh > 0) this.lineHeight = lh;
      }
    }
    if (this.follow) {
      sc.scrollTop = sc.scrollHeight;
      this.setScrollTop = sc.scrollTop;
    }
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
      const viewH = this.scroller.clientHeight || 300;
      const target = Math.max(0, y + this.heights[i]! * fraction - viewH / 3);
      this.scroller.scrollTop = target;
      this.setScrollTop = this.scroller.scrollTop;
      this.render();
    };
    // Twice: the first render measures the items around the target, the second lands on it.
    place();
    place();
    return this.elementOf(key);
  }

  scrollToEnd(): void {
    this.follow = true;
    this.render();
  }
}
