/**
 * Render batching: any number of `schedule()` calls between two frames cause one render,
 * at most 60 per second. requestAnimationFrame when the view is visible; a timer when it is
 * hidden (rAF stops in hidden iframes, and a view must still catch up when shown).
 * Renders also keep to a third of the time: after a render that took d ms the next waits at
 * least 3d. Webviews share the workbench's renderer thread, and on a slow or busy machine a
 * panel rendering every frame left the workbench (the palette, the sidebar loading) behind
 * by tens of seconds.
 */
export class FrameScheduler {
  private static readonly MIN_INTERVAL_MS = 1000 / 60;
  private static readonly MAX_INTERVAL_MS = 250;
  private pending = false;
  private last = 0;
  private interval = FrameScheduler.MIN_INTERVAL_MS;

  constructor(private readonly render: () => void) {}

  schedule(): void {
    if (this.pending) return;
    this.pending = true;
    const run = () => {
      const now = performance.now();
      const wait = this.interval - (now - this.last);
      if (wait > 1) {
        setTimeout(run, wait);
        return;
      }
      this.pending = false;
      this.last = now;
      this.render();
      const took = performance.now() - now;
      this.interval = Math.min(FrameScheduler.MAX_INTERVAL_MS, Math.max(FrameScheduler.MIN_INTERVAL_MS, 3 * took));
    };
    if (document.visibilityState === 'hidden') setTimeout(run, this.interval);
    else requestAnimationFrame(run);
  }
}

/** Counts renders per second (the e2e test reads it to check the coalescing bound). */
export class RenderCounter {
  private times: number[] = [];
  tick(): void {
    const now = performance.now();
    this.times.push(now);
    while (this.times.length > 0 && now - this.times[0]! > 1000) this.times.shift();
  }
  get perSecond(): number {
    return this.times.length;
  }
}
