// The append-only arrays of extension/insights/grow.ts against plain JavaScript arrays: every
// value written before, at and after each doubling must still be there, in order.
import { describe, expect, it } from 'vitest';
import { GrowF32, GrowI32, GrowU8 } from '../../extension/insights/grow';

describe('GrowI32', () => {
  it('keeps every pushed value across many doublings', () => {
    const g = new GrowI32();
    const ref: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const v = (i * 7919) % 100003 - 50000;
      g.push(v);
      ref.push(v);
      expect(g.length).toBe(ref.length);
    }
    expect(Array.from(g.view())).toEqual(ref);
    for (const i of [0, 15, 16, 17, 4095, 4999]) expect(g.at(i)).toBe(ref[i]);
  });
});

describe('GrowF32 and GrowU8', () => {
  it('reserve returns consecutive slots and keeps earlier ones when it grows', () => {
    const f = new GrowF32();
    const u = new GrowU8();
    const refF: number[] = [];
    const refU: number[] = [];
    // Runs of 1, 3, 100 and 700 slots: some fit, some cross one doubling, one crosses several.
    for (const n of [1, 3, 100, 1, 700, 3, 1, 100]) {
      const atF = f.reserve(n);
      const atU = u.reserve(n);
      expect(atF).toBe(refF.length);
      expect(atU).toBe(refU.length);
      for (let k = 0; k < n; k++) {
        const v = refF.length * 0.5;
        f.data[atF + k] = v;
        refF.push(v);
        u.data[atU + k] = refU.length % 251;
        refU.push(refU.length % 251);
      }
    }
    expect(f.length).toBe(refF.length);
    expect(u.length).toBe(refU.length);
    expect(Array.from(f.data.subarray(0, f.length))).toEqual(refF);
    expect(Array.from(u.data.subarray(0, u.length))).toEqual(refU);
  });
});
