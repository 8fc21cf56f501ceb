// Sampling in the native engine: seeded and reproducible, greedy is argmax, top-k and top-p
// never leave their sets (computed here independently), temperature follows the softmax.
import { describe, expect, it } from 'vitest';
import { addon, argmax, loadFixtureModel, rawResult, rawRun } from './engineHarness';

function randomLogits(n: number, seed: number): Float32Array {
  let x = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = ((x >>> 0) / 2 ** 32) * 8 - 4;
  }
  return out;
}

function softmax(logits: Float32Array, t: number): number[] {
  const m = Math.max(...logits);
  const e = Array.from(logits, (l) => Math.exp((l - m) / t));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

describe('sampling', () => {
  const logits = randomLogits(500, 7);

  it('is reproducible for a seed and differs across seeds', () => {
    const p = { temperature: 1, topK: 0, topP: 1 };
    const a = addon.sample(logits, p, 123, 200);
    expect(Array.from(addon.sample(logits, p, 123, 200))).toEqual(Array.from(a));
    expect(Array.from(addon.sample(logits, p, 124, 200))).not.toEqual(Array.from(a));
  });

  it('is argmax at temperature 0', () => {
    const s = addon.sample(logits, { temperature: 0, topK: 0, topP: 1 }, 1, 10);
    expect(new Set(s)).toEqual(new Set([argmax(logits)]));
  });

  it('never picks outside the top k', () => {
    const k = 5;
    const topK = new Set(Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]).slice(0, k));
    const s = addon.sample(logits, { temperature: 2, topK: k, topP: 1 }, 9, 3000);
    for (const id of s) expect(topK.has(id)).toBe(true);
    expect(new Set(s).size).toBe(k); // and uses all of them at a high temperature
  });

  it('never picks outside the nucleus of top p', () => {
    for (const [t, p] of [[1, 0.5], [0.7, 0.9], [1.5, 0.3]]) {
      const probs = softmax(logits, t);
      const order = Array.from(logits.keys()).sort((a, b) => probs[b] - probs[a]);
      const nucleus = new Set<number>();
      let cum = 0;
      for (const id of order) {
        if (cum >= p) break;
        nucleus.add(id);
        cum += probs[id];
      }
      const s = addon.sample(logits, { temperature: t, topK: 0, topP: p }, 3, 3000);
      for (const id of s) expect(nucleus.has(id), `id ${id} outside the top-p ${p} set at t=${t}`).toBe(true);
    }
  });

  it('follows the softmax at temperature t', () => {
    const small = Float32Array.from([2, 1, 0.5, 0, -1]);
    const t = 0.8;
    const n = 40000;
    const s = addon.sample(small, { temperature: t, topK: 0, topP: 1 }, 5, n);
    const counts = new Array(5).fill(0);
    for (const id of s) counts[id]++;
    softmax(small, t).forEach((p, i) => expect(Math.abs(counts[i] / n - p)).toBeLessThan(0.01));
  });

  it('gives every worker of a seeded run the same tokens again', async () => {
    const model = await loadFixtureModel('qwen3-tiny');
    const cfg = {
      workers: 3,
      promptIds: Int32Array.from([1, 2, 3]),
      workerFirstIds: [Int32Array.from([4]), Int32Array.from([5]), Int32Array.from([6])],
      rawSteps: 12,
      temperature: 1.2,
      topK: 50,
      topP: 0.95,
      seed: 77,
    };
    const a = rawResult(await rawRun(model, cfg)).map((w) => Array.from(w.ids));
    const b = rawResult(await rawRun(model, cfg)).map((w) => Array.from(w.ids));
    const c = rawResult(await rawRun(model, { ...cfg, seed: 78 })).map((w) => Array.from(w.ids));
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    model.close();
  });
});
