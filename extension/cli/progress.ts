/**
 * Progress on stderr (the prefill, a model load): a bar redrawn in place with the rate and an
 * ETA on a terminal; plain lines when stderr is not a terminal: the first report, the first
 * with real work done, about every 10% and the end.
 */
import { formatSeconds, loadText, prefillText, type LoadProgress, type PrefillProgress } from '../../protocol/progress';

export class ProgressBar {
  private drawn = false;
  private lastTenth = -1;
  private printedWork = false;
  private kind = '';

  constructor(
    private readonly stream: { write(s: string): unknown; isTTY?: boolean; columns?: number },
    private readonly prefix = 'hogwild: ',
  ) {}

  /** The prefill's progress: "prefill 3,200 / 8,192 · ETA 12 s · 410 tok/s". */
  update(p: PrefillProgress): void {
    if (p.total <= 0) return;
    const rate = p.tokensPerSecond > 0 ? ` · ${p.tokensPerSecond.toFixed(0)} tok/s` : '';
    this.show('prefill', p.done, p.total, `${prefillText(p)}${rate}`);
  }

  /** A model load's progress: "reading the weights 620 MB / 1.20 GB (52%)". */
  load(p: LoadProgress): void {
    if (p.total <= 0) return;
    this.show(`load ${p.phase}`, p.done, p.total, loadText(p));
  }

  private show(kind: string, done: number, total: number, text: string): void {
    if (kind !== this.kind) {
      this.end();
      this.kind = kind;
      this.lastTenth = -1;
      this.printedWork = false;
    }
    const frac = Math.min(1, done / total);
    if (this.stream.isTTY) {
      const width = 24;
      const full = Math.round(frac * width);
      const line = `${this.prefix}[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${text}`;
      const cols = this.stream.columns ?? 100;
      this.stream.write(`\r${line.slice(0, cols - 1).padEnd(Math.min(cols - 1, line.length + 8))}`);
      this.drawn = true;
      if (done >= total) this.end();
      return;
    }
    const tenth = Math.floor(frac * 10);
    const firstWork = done > 0 && !this.printedWork;
    if (tenth === this.lastTenth && done < total && !firstWork) return;
    this.lastTenth = tenth;
    if (done > 0) this.printedWork = true;
    this.stream.write(`${this.prefix}${text}\n`);
  }

  /** Ends the bar's line (before other output, or when the work stops early). */
  end(): void {
    if (!this.drawn) return;
    this.stream.write('\n');
    this.drawn = false;
  }
}

export { formatSeconds };
