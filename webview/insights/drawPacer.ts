/**
 * Paces the canvas views (cache map, heatmap) while a run streams. Their data changes with
 * every batch of tokens, but each redraw reads styles and layout and, where there is no GPU,
 * renders a software-GL frame; redrawn at every animation frame they starved the webview's
 * renderer on a 2-core machine, which then fell tens of seconds behind the run's messages (a
 * Pause showed up a minute late). While streaming they redraw at most every `intervalMs`;
 * interaction (hover, zoom, a layer switch, a click) draws at the next frame.
 */
export class DrawPacer {
  private last = -Infinity;
  private urgent = true;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly intervalMs: number,
    /** Schedules a frame (the webview's FrameScheduler). */
    private readonly wake: () => void,
  ) {}

  /** Something the person did: draw at the next frame. */
  drawSoon(): void {
    this.urgent = true;
    this.wake();
  }

  /** Whether this frame draws; when it does not, a later frame is scheduled for the data seen now. */
  due(streaming: boolean): boolean {
    const t = performance.now();
    if (!streaming || this.urgent || t - this.last >= this.intervalMs) {
      this.urgent = false;
      this.last = t;
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = undefined;
      return true;
    }
    this.timer ??= setTimeout(
      () => {
        this.timer = undefined;
        this.wake();
      },
      this.intervalMs - (t - this.last),
    );
    return false;
  }
}
