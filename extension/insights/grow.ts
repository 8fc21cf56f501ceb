/** Append-only typed arrays that double their storage (many tokens, little garbage). */
class Grow<T extends Int32Array | Float32Array | Uint8Array> {
  protected buf: T;
  length = 0;

  constructor(
    private readonly alloc: (n: number) => T,
    initial: number,
  ) {
    this.buf = alloc(initial);
  }

  /** Appends n slots and returns the index of the first; `data` may be a new array after it. */
  reserve(n: number): number {
    const at = this.length;
    if (at + n > this.buf.length) {
      const next = this.alloc(Math.max(this.buf.length * 2, at + n));
      next.set(this.buf);
      this.buf = next;
    }
    this.length += n;
    return at;
  }

  get data(): T {
    return this.buf;
  }
}

export class GrowI32 extends Grow<Int32Array> {
  constructor() {
    super((n) => new Int32Array(n), 16);
  }

  push(v: number): void {
    // reserve first: it may replace buf, and `this.buf[this.reserve(1)]` would write the old one.
    const at = this.reserve(1);
    this.buf[at] = v;
  }

  at(i: number): number {
    return this.buf[i]!;
  }

  view(): Int32Array {
    return this.buf.subarray(0, this.length);
  }
}

export class GrowF32 extends Grow<Float32Array> {
  constructor() {
    super((n) => new Float32Array(n), 64);
  }
}

export class GrowU8 extends Grow<Uint8Array> {
  constructor() {
    super((n) => new Uint8Array(n), 256);
  }
}
