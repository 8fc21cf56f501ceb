/**
 * Render batching: any number of `schedule()` calls between two frames cause one render,
 * at most 60 per second. requestAnimationFrame when the view is visible; a timer when it is
 * hidden (rAF stops in hidden iframes, and a view must still catch up when shown).
 */
export class FrameScheduler {
  private pending = false;
  private last = 0;
  private static readonly MIN_INTERVAL_MS = 1000 / 60;

  constructor(private readonly render: () => void) {}

  schedule(): void {
    if (this.pending) return;
    this.pending = true;
    const run = () => {
      const now = performance.now();
      const wait = FrameScheduler.MIN_INTERVAL_MS - (now - this.last);
      if (wait > 1) {
        setTimeout(run, wait);
        return;
      }
      this.pending = false;
      this.last = now;
      this.render();
    };
    if (document.visibilityState === 'hidden') setTimeout(run, FrameScheduler.MIN_INTERVAL_MS);
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
