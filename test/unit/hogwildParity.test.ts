// The Hogwild engine against a PyTorch reference of the rotate-keys formulation built from
// transformers' own modules (scripts/fixtures/hogwild_reference.py), and the raw mode's
// promises (issue 5): W=1 is plain generation, identical inputs give identical streams,
// swapped inputs swap the streams, bad input is refused with a clear error.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compare, fixturesDir, greedy, loadFixtureModel, rawResult, rawRun } from './engineHarness';

interface HogwildFixture {
  model: string;
  prompt: number[];
  workers: number[][];
  steps: number;
  greedy: number[][];
  views: string[][];
  logits: number[][][]; // [step][worker][vocab]
}

const SCENARIOS = ['qwen3-tiny-w2', 'llama-tiny-w3', 'qwen2-tiny-w4'];

describe.each(SCENARIOS)('Hogwild scenario %s', (name) => {
  const fx = JSON.parse(fs.readFileSync(path.join(fixturesDir, 'hogwild', `${name}.json`), 'utf8')) as HogwildFixture;

  it('generates the reference tokens, with the reference logits at the last step', async () => {
    const model = await loadFixtureModel(fx.model);
    const vocab = model.config.vocab;
    const events = await rawRun(model, {
      workers: fx.workers.length,
      promptIds: Int32Array.from(fx.prompt),
      workerFirstIds: fx.workers.map((w) => Int32Array.from(w)),
      rawSteps: fx.steps,
      topLogits: vocab,
    });
    const result = rawResult(events);
    result.forEach((w, i) => {
      expect(Array.from(w.ids)).toEqual(fx.greedy[i]);
      // Top-K with K = vocab is every logit, sorted: put them back in id order.
      const logits = new Float32Array(vocab);
      w.topIds!.forEach((id, k) => (logits[id] = w.topLogits![k]));
      const { maxAbs } = compare(logits, fx.logits[fx.steps - 1][i]);
      expect(maxAbs).toBeLessThan(2e-3);
    });
    // Each worker's view: prompt, the others in id order, its own block.
    const views = events.filter((e) => e.type === 'views').pop();
    expect(views && views.type === 'views').toBe(true);
    if (views && views.type === 'views') {
      views.views.forEach((v, w) => expect(v.length / 3).toBe(fx.views[w].length));
    }
    model.close();
  });
});

describe('raw mode', () => {
  const prompt = Int32Array.from([5, 77, 190, 263, 31]);

  it('with one worker equals plain greedy generation of prompt + first input', async () => {
    const model = await loadFixtureModel('qwen3-tiny');
    const events = await rawRun(model, { workers: 1, promptIds: prompt, workerFirstIds: [Int32Array.from([40, 41])], rawSteps: 16 });
    const plain = greedy(model, [...prompt, 40, 41], 16);
    expect(Array.from(rawResult(events)[0].ids)).toEqual(plain);
    model.close();
  });

  it('gives identical streams for identical inputs, and swaps streams with swapped inputs', async () => {
    const model = await loadFixtureModel('llama-tiny');
    const a = Int32Array.from([40, 41, 42]);
    const b = Int32Array.from([150]);
    const same = rawResult(await rawRun(model, { workers: 2, promptIds: prompt, workerFirstIds: [a, a], rawSteps: 10 }));
    expect(Array.from(same[0].ids)).toEqual(Array.from(same[1].ids));
    const ab = rawResult(await rawRun(model, { workers: 2, promptIds: prompt, workerFirstIds: [a, b], rawSteps: 10 }));
    const ba = rawResult(await rawRun(model, { workers: 2, promptIds: prompt, workerFirstIds: [b, a], rawSteps: 10 }));
    expect(Array.from(ba[0].ids)).toEqual(Array.from(ab[1].ids));
    expect(Array.from(ba[1].ids)).toEqual(Array.from(ab[0].ids));
    expect(Array.from(ab[0].ids)).not.toEqual(Array.from(ab[1].ids));
    model.close();
  });

  it('refuses bad input with a clear error and stays usable', async () => {
    const model = await loadFixtureModel('qwen3-tiny');
    const base = { layout: 'contiguous' as const, raw: true, rawSteps: 4, temperature: 0 };
    const start = (cfg: object) => () => model.startRun({ ...base, ...cfg } as never, () => undefined);
    expect(start({ workers: 1, promptIds: new Int32Array(0), workerFirstIds: [Int32Array.from([1])] })).toThrow(/prompt is empty/);
    expect(start({ workers: 2, promptIds: prompt, workerFirstIds: [Int32Array.from([1]), new Int32Array(0)] })).toThrow(
      /worker 1 has no first input/,
    );
    expect(start({ workers: 1, promptIds: prompt, workerFirstIds: [Int32Array.from([384])] })).toThrow(/outside the vocabulary/);
    expect(start({ workers: 17, promptIds: prompt, workerFirstIds: Array(17).fill(Int32Array.from([1])) })).toThrow(/workers must be 1\.\.16/);
    expect(start({ workers: 1, promptIds: prompt, workerFirstIds: [Int32Array.from([1])], rawSteps: 0 })).toThrow(/steps must be at least 1/);
    // The model is free again after each refusal.
    const ok = rawResult(await rawRun(model, { workers: 1, promptIds: prompt, workerFirstIds: [Int32Array.from([1])], rawSteps: 2 }));
    expect(ok[0].ids.length).toBe(2);
    model.close();
  });
});
