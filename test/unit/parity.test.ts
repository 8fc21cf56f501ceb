// The CPU engine against Hugging Face transformers: logits of every position and greedy
// continuations, on tiny random checkpoints whose references transformers computed
// (scripts/fixtures/make_fixtures.py, run on the GPU machine).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { argmax, compare, fixturesDir, greedy, loadFixtureModel, readReference, addon } from './engineHarness';

// fp32 engine vs fp32 transformers: only summation order differs. bf16: transformers rounds
// every activation to bf16, the engine keeps fp32 activations (bf16 weights).
const BOUNDS = {
  float32: { maxAbs: 2e-3, nmse: 1e-9 },
  bfloat16: { maxAbs: 4.0, nmse: 2e-3 },
};

const MODELS = ['qwen2-tiny', 'qwen3-tiny', 'llama-tiny', 'qwen2-bf16'];

describe.each(MODELS)('%s against transformers', (name) => {
  const ref = readReference(name);
  const bound = BOUNDS[ref.dtype];

  it('gives the same logits at every position of every prompt', async () => {
    const model = await loadFixtureModel(name);
    // K/V in the checkpoint's dtype, as transformers keeps them: the parity holds for both.
    expect(model.kvDtype).toBe(ref.dtype === 'bfloat16' ? 'bf16' : 'f32');
    for (const prompt of ref.prompts) {
      const seq = model.createSequence();
      const [logits] = model.forward([{ seq, tokens: Int32Array.from(prompt), allLogits: true }]);
      const want = ref.logits[ref.prompts.indexOf(prompt)].flat();
      const { maxAbs, nmse } = compare(logits, want);
      expect(maxAbs, `max |diff| for a prompt of ${prompt.length}`).toBeLessThan(bound.maxAbs);
      expect(nmse).toBeLessThan(bound.nmse);
      model.releaseSequence(seq);
    }
    model.close();
  });

  it('continues greedily with the same tokens', async () => {
    const model = await loadFixtureModel(name);
    ref.prompts.forEach((prompt, i) => {
      // bf16 references are compared where transformers' own margins are robust.
      const n = ref.dtype === 'float32' ? ref.greedy[i].length : ref.greedy_robust_prefix[i];
      expect(n).toBeGreaterThanOrEqual(ref.dtype === 'float32' ? 32 : 7);
      expect(greedy(model, prompt, n)).toEqual(ref.greedy[i].slice(0, n));
    });
    model.close();
  });
});

describe('batching and configs', () => {
  it('rows of different lengths in one call match each row alone', async () => {
    const ref = readReference('qwen3-tiny');
    const model = await loadFixtureModel('qwen3-tiny');
    const alone = ref.prompts.map((p) => {
      const seq = model.createSequence();
      const [l] = model.forward([{ seq, tokens: Int32Array.from(p), allLogits: true }]);
      return l;
    });
    // Prefill all prompts together, then one decode token each, in one call.
    const seqs = ref.prompts.map(() => model.createSequence());
    const together = model.forward(ref.prompts.map((p, i) => ({ seq: seqs[i], tokens: Int32Array.from(p), allLogits: true })));
    together.forEach((l, i) => expect(compare(l, alone[i]).maxAbs).toBeLessThan(1e-4));
    const next = model.forward(seqs.map((seq, i) => ({ seq, tokens: Int32Array.from([ref.greedy[i][0]]) })));
    next.forEach((l, i) => expect(argmax(l)).toBe(ref.greedy[i][1]));
    model.close();
  });

  it('reads the transformers 4.x config dialect to the same model', async () => {
    for (const name of ['qwen2-tiny', 'llama-tiny']) {
      const src = path.join(fixturesDir, name);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `hw-v4-${name}-`));
      for (const f of fs.readdirSync(src)) if (f.endsWith('.safetensors') || f.endsWith('.index.json')) fs.copyFileSync(path.join(src, f), path.join(dir, f));
      fs.copyFileSync(path.join(src, 'config.v4.json'), path.join(dir, 'config.json'));
      const ref = readReference(name);
      const model = await addon.loadModel(dir, { device: 'cpu', threads: 2 });
      const seq = model.createSequence();
      const [l] = model.forward([{ seq, tokens: Int32Array.from(ref.prompts[2]), allLogits: true }]);
      expect(compare(l, ref.logits[2].flat()).maxAbs).toBeLessThan(BOUNDS.float32.maxAbs);
      model.close();
      fs.rmSync(dir, { recursive: true });
    }
  });

  it('refuses a prompt longer than the context, and keeps working', async () => {
    const model = await addon.loadModel(path.join(fixturesDir, 'qwen3-tiny'), { device: 'cpu', threads: 2, maxContext: 16 });
    const seq = model.createSequence();
    expect(() => model.forward([{ seq, tokens: new Int32Array(17).fill(3) }])).toThrow(/past the maximum context of 16/);
    expect(model.sequenceLength(seq)).toBe(0);
    const [l] = model.forward([{ seq, tokens: new Int32Array(16).fill(3) }]);
    expect(l.length).toBe(384);
    expect(() => model.forward([{ seq, tokens: Int32Array.from([999]) }])).toThrow(/outside the vocabulary/);
    model.close();
  });
});
