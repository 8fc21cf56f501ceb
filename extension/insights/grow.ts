/** Append-only typed arrays that double their storage (many tokens, little garbage). */
export class GrowI32 {
  private buf = new Int32Array(16);
  length = 0;

  push(v: number): void {
    if (this.length === this.buf.length) {
      const next = new Int32Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length++] = v;
  }

  at(i: number): number {
    return this.buf[i]!;
  }

  view(): Int32Array {
    return this.buf.subarray(0, this.length);
  }
}

export class GrowF32 {
  private buf = new Float32Array(64);
  length = 0;

  reserve(n: number): number {
    const at = this.length;
    if (at + n > this.buf.length) {
      const next = new Float32Array(Math.max(this.buf.length * 2, at + n));
      next.set(this.buf);
      this.buf = next;
    }
    this.length += n;
    return at;
  }

  get data(): Float32Array {
    return this.buf;
  }
}

export class GrowU8 {
  private buf = new Uint8Array(256);
  length = 0;

  reserve(n: number): number {
    const at = this.length;
    if (at + n > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, at + n));
      next.set(this.buf);
      this.buf = next;
    }
    this.length += n;
    return at;
  }

  get data(): Uint8Array {
    return this.buf;
  }
}
