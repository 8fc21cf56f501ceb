/**
 * The prefill's progress on stderr: a bar redrawn in place with the rate and an ETA on a
 * terminal, plain lines (about every 10% and at the end) when stderr is not a terminal.
 */
import { formatSeconds, prefillText, type PrefillProgress } from '../../protocol/progress';

export class ProgressBar {
  private drawn = false;
  private lastTenth = -1;

  constructor(
    private readonly stream: { write(s: string): unknown; isTTY?: boolean; columns?: number },
    private readonly prefix = 'hogwild: ',
  ) {}

  update(p: PrefillProgress): void {
    if (p.total <= 0) return;
    const frac = Math.min(1, p.done / p.total);
    const rate = p.tokensPerSecond > 0 ? ` · ${p.tokensPerSecond.toFixed(0)} tok/s` : '';
    if (this.stream.isTTY) {
      const width = 24;
      const full = Math.round(frac * width);
      const bar = `[${'#'.repeat(full)}${'.'.repeat(width - full)}]`;
      const line = `${this.prefix}${bar} ${prefillText(p)}${rate}`;
      const cols = this.stream.columns ?? 100;
      this.stream.write(`\r${line.slice(0, cols - 1).padEnd(Math.min(cols - 1, line.length + 8))}`);
      this.drawn = true;
      if (p.done >= p.total) this.end();
      return;
    }
    const tenth = Math.floor(frac * 10);
    if (tenth === this.lastTenth && p.done < p.total) return;
    this.lastTenth = tenth;
    this.stream.write(`${this.prefix}${prefillText(p)}${rate}\n`);
  }

  /** Ends the bar's line (before other output, or when the prefill stops early). */
  end(): void {
    if (!this.drawn) return;
    this.stream.write('\n');
    this.drawn = false;
  }
}

export { formatSeconds };
