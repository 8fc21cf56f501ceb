// Shared by the engine's unit tests: the built addon, fixture readers, comparison metrics.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadNativeAddon, NativeAddon, NativeEvent, NativeModel, NativeRunConfig } from '../../extension/engine/native';

export const repoRoot = path.resolve(__dirname, '..', '..');
export const fixturesDir = path.join(repoRoot, 'test', 'fixtures');
export const addon: NativeAddon = loadNativeAddon(repoRoot);

export interface Reference {
  dtype: 'float32' | 'bfloat16';
  vocab_size: number;
  prompts: number[][];
  logits: number[][][]; // [prompt][position][vocab]
  greedy: number[][];
  greedy_robust_prefix: number[];
}

export function readReference(model: string): Reference {
  return JSON.parse(fs.readFileSync(path.join(fixturesDir, model, 'reference.json'), 'utf8')) as Reference;
}

export async function loadFixtureModel(model: string): Promise<NativeModel> {
  return addon.loadModel(path.join(fixturesDir, model), { device: 'cpu', threads: 2 });
}

/** max |a - b| and the MSE normalised by the reference's mean square. */
export function compare(got: ArrayLike<number>, want: ArrayLike<number>): { maxAbs: number; nmse: number } {
  let maxAbs = 0;
  let se = 0;
  let ss = 0;
  for (let i = 0; i < want.length; i++) {
    const d = got[i] - want[i];
    maxAbs = Math.max(maxAbs, Math.abs(d));
    se += d * d;
    ss += want[i] * want[i];
  }
  return { maxAbs, nmse: se / Math.max(ss, 1e-30) };
}

export function argmax(v: ArrayLike<number>, from = 0, n = v.length): number {
  let best = from;
  for (let i = from; i < from + n; i++) if (v[i] > v[best]) best = i;
  return best - from;
}

export function greedy(model: NativeModel, prompt: number[], steps: number): number[] {
  const seq = model.createSequence();
  const out: number[] = [];
  let input = Int32Array.from(prompt);
  for (let i = 0; i < steps; i++) {
    const [logits] = model.forward([{ seq, tokens: input }]);
    const next = argmax(logits);
    out.push(next);
    input = Int32Array.from([next]);
  }
  model.releaseSequence(seq);
  return out;
}

/** A raw Hogwild run (no protocol text) to its end; returns every event. */
export async function rawRun(model: NativeModel, cfg: Partial<NativeRunConfig> & { workers: number }): Promise<NativeEvent[]> {
  const events: NativeEvent[] = [];
  const run = model.startRun({ layout: 'contiguous', raw: true, temperature: 0, ...cfg } as NativeRunConfig, (batch) =>
    events.push(...batch),
  );
  await run.done();
  return events;
}

export function rawResult(events: NativeEvent[]) {
  const r = events.find((e) => e.type === 'raw-result');
  if (!r || r.type !== 'raw-result') {
    const err = events.find((e) => e.type === 'error');
    throw new Error(`no raw result${err && err.type === 'error' ? `: ${err.message}` : ''}`);
  }
  return r.workers;
}
