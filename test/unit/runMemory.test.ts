// KV memory across runs (issue 13): an ended run gives its blocks back to the model's cache
// (release), so that the next run reuses their pages instead of adding its own; the released
// run stays inspectable, and release is refused while a run is going.
import { describe, expect, it } from 'vitest';
import { loadFixtureModel, rawResult } from './engineHarness';
import type { NativeEvent, NativeRunConfig } from '../../extension/engine/native';

const cfg = (steps: number) =>
  ({
    workers: 2,
    layout: 'contiguous',
    raw: true,
    temperature: 0,
    promptIds: Int32Array.from({ length: 300 }, (_, i) => 1 + ((i * 37) % 200)),
    workerFirstIds: [Int32Array.of(5), Int32Array.of(6)],
    rawSteps: steps,
  }) as unknown as NativeRunConfig;

describe('KV memory across runs', () => {
  it('a released run\'s pages serve the next run; without release the cache grows', async () => {
    const model = await loadFixtureModel('qwen3-tiny');
    const run = async (steps: number) => {
      const events: NativeEvent[] = [];
      const r = model.startRun(cfg(steps), (b) => events.push(...b));
      await r.done();
      return { r, events };
    };
    const first = await run(20);
    const afterFirst = model.kvBytes();
    expect(afterFirst).toBeGreaterThan(0);
    // Kept (not released): a second run needs pages of its own.
    const second = await run(20);
    const afterSecond = model.kvBytes();
    expect(afterSecond).toBeGreaterThan(afterFirst);
    // Both released: a third run fits in the pages they held.
    first.r.release();
    second.r.release();
    second.r.release(); // twice is harmless
    const third = await run(20);
    expect(model.kvBytes()).toBe(afterSecond);
    expect(rawResult(third.events)[0].ids).toEqual(rawResult(first.events)[0].ids);
    // The released run is still inspectable from its own records.
    const created = first.events.find((e) => e.type === 'block' && e.op === 'created' && e.kind === 'prompt');
    expect(created).toBeDefined();
    const inspected = first.r.inspect((created as { block: number }).block, 3, false);
    expect(inspected.token).toBe(cfg(1).promptIds[3]);
    model.close();
  });

  it('release is refused while the run is going, and does nothing once the model is closed', async () => {
    const model = await loadFixtureModel('qwen3-tiny');
    const r = model.startRun(cfg(Math.floor((model.config.maxContext - 310) / 2)), () => undefined);
    expect(() => r.release()).toThrow(/still going/);
    r.stop();
    await r.done();
    model.close();
    expect(() => r.release()).not.toThrow();
  });
});
