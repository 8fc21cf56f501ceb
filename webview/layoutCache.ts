/**
 * Element sizes as the browser last laid them out, kept by one ResizeObserver. A canvas view
 * that reads clientWidth while drawing forces a layout whenever the DOM changed since the last
 * one (the lanes change it every frame while a run streams); the observer's callback runs
 * after the browser's own layout, where the reads are free.
 */
const sizes = new WeakMap<Element, { w: number; h: number }>();
let observer: ResizeObserver | null = null;

function observe(el: Element): { w: number; h: number } {
  observer ??= new ResizeObserver((entries) => {
    for (const e of entries) sizes.set(e.target, { w: e.target.clientWidth, h: e.target.clientHeight });
  });
  // The first time only: read now (the observer reports from the next layout on).
  const s = { w: el.clientWidth, h: el.clientHeight };
  sizes.set(el, s);
  observer.observe(el);
  return s;
}

/** clientWidth of `el` as of the last layout. */
export function cachedWidth(el: Element): number {
  return (sizes.get(el) ?? observe(el)).w;
}

/** clientHeight of `el` as of the last layout. */
export function cachedHeight(el: Element): number {
  return (sizes.get(el) ?? observe(el)).h;
}
