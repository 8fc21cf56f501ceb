// The Disposable base: everything registered is released once, newest first, even when one
// of them throws; what is registered after dispose() is released at once.
import { describe, expect, it, vi } from 'vitest';
import { Disposable, toDisposable } from '../../extension/disposable';

class Owner extends Disposable {
  reg<T extends { dispose(): unknown }>(d: T): T {
    return this._register(d);
  }
}

describe('Disposable', () => {
  it('disposes what it registered once, newest first, and survives a throwing one', () => {
    const order: string[] = [];
    const o = new Owner();
    o.reg(toDisposable(() => order.push('a')));
    o.reg(toDisposable(() => {
      throw new Error('boom');
    }));
    o.reg(toDisposable(() => order.push('c')));
    const spy = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    o.dispose();
    o.dispose();
    spy.mockRestore();
    expect(order).toEqual(['c', 'a']);
  });

  it('disposes at once what is registered after dispose', () => {
    const o = new Owner();
    o.dispose();
    let n = 0;
    o.reg(toDisposable(() => n++));
    expect(n).toBe(1);
  });
});
