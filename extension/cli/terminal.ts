/**
 * Several workers' streams in one terminal: each worker's text is buffered and written a
 * whole line at a time (wrapped at the terminal width), prefixed with the worker's name in
 * its colour, so that two workers never interleave inside a line.
 */

const COLORS = [36, 35, 33, 32, 34, 31, 96, 95, 93, 92, 94, 91, 37, 90, 97, 30];

export function useColor(flag: boolean | undefined, stream: NodeJS.WriteStream): boolean {
  if (flag === false) return false;
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false;
  if (process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== '0') return true;
  return stream.isTTY === true;
}

export function paint(text: string, code: number | string, on: boolean): string {
  return on ? `\x1b[${code}m${text}\x1b[0m` : text;
}

/**
 * Makes model text safe to print: control characters (which could move the cursor or
 * change colours) are shown as their Unicode control pictures; newlines and tabs stay.
 */
export function sanitize(text: string): string {
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]/g, (c) => {
    const code = c.charCodeAt(0);
    if (code < 0x20) return String.fromCharCode(0x2400 + code);
    if (code === 0x7f) return '\u2421';
    return '\uFFFD';
  });
}

export class Lanes {
  private readonly buf = new Map<number, string>();
  private readonly width: number;
  private labelWidth: number;

  constructor(
    private names: string[],
    private readonly color: boolean,
    private readonly write: (s: string) => void,
    columns = 100,
  ) {
    this.labelWidth = Math.max(4, ...names.map((n) => n.length));
    this.width = Math.max(20, columns - this.labelWidth - 3);
  }

  name(w: number): string {
    return this.names[w] ?? `worker ${w}`;
  }

  has(w: number): boolean {
    return this.names[w] !== undefined;
  }

  addWorker(w: number, name: string): void {
    this.names[w] = name;
    this.labelWidth = Math.max(this.labelWidth, name.length);
  }

  private prefix(w: number): string {
    return paint(`${this.name(w).padEnd(this.labelWidth)} │`, `1;${COLORS[w % COLORS.length]}`, this.color) + ' ';
  }

  private line(w: number, text: string): void {
    this.write(`${this.prefix(w)}${paint(text, COLORS[w % COLORS.length], this.color)}\n`);
  }

  /** Adds text to a worker's lane; writes the lines it completes. */
  push(w: number, text: string): void {
    let b = (this.buf.get(w) ?? '') + sanitize(text);
    for (;;) {
      const nl = b.indexOf('\n');
      const cut = nl >= 0 && nl <= this.width ? nl : b.length > this.width ? this.wrapAt(b) : -1;
      if (cut < 0) break;
      this.line(w, b.slice(0, cut));
      b = b.slice(cut + (b[cut] === '\n' ? 1 : 0));
    }
    this.buf.set(w, b);
  }

  /** Where to wrap a long line: the last space before the width, else the width. */
  private wrapAt(b: string): number {
    const sp = b.lastIndexOf(' ', this.width);
    return sp > this.width / 2 ? sp + 1 : this.width;
  }

  /** Writes what is left of a worker's unfinished line. */
  flush(w: number): void {
    const b = this.buf.get(w);
    if (b) this.line(w, b);
    this.buf.set(w, '');
  }

  flushAll(): void {
    for (const w of [...this.buf.keys()].sort((a, b) => a - b)) this.flush(w);
  }
}
