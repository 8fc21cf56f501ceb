// The engine client's state machine against REAL child processes: a tiny protocol-speaking
// host for the edge cases (crash, no ready, cancel, bad messages), and the real engine host
// (dist bundle of extension/engine/host.ts + the native addon + a small random model) for a
// real run, a real kill -9 mid-run and a restart.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as esbuild from 'esbuild';
import { CancelledError, EngineClient, EngineCrashedError, type EngineCrash } from '../../extension/engine/client';
import type { EngineEvent, EngineState, RunConfig, RunState } from '../../protocol/messages';
import type { LoadProgress } from '../../protocol/progress';
import { TraceRecorder, readTrace } from '../../extension/trace';
import { RunModel } from '../../extension/runModel';
import { testRunConfig } from './testRunConfig';
import { QWEN3_0_6B, findQwen3TokenizerDir, writeRandomCheckpoint } from '../../extension/model/defaultModel';

const root = path.resolve(__dirname, '..', '..');
const fakeHost = path.join(__dirname, 'engineClient.fake-host.cjs');

const clients: EngineClient[] = [];
function client(env: Record<string, string> = {}, hostPath = fakeHost, startTimeoutMs = 5000) {
  const logs: string[] = [];
  const c = new EngineClient({ hostPath, env: { ...process.env, ...env }, log: (level, text) => logs.push(`${level}: ${text}`), startTimeoutMs });
  const states: EngineState[] = [];
  c.onDidChangeState.event((s) => states.push(s.state));
  clients.push(c);
  return { c, logs, states };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor<T>(what: string, f: () => T | undefined | false | null, ms = 10_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

afterEach(async () => {
  for (const c of clients.splice(0)) await c.shutdown();
});

const config = testRunConfig({ problem: 'What is 2 + 3?', sampling: { temperature: 0.6, topP: 0.95, topK: 20, seed: 3 }, maxTokens: 24 });

describe('engine client state machine (test host)', () => {
  it('idle -> starting -> ready -> loading -> loaded, with progress', async () => {
    const { c, states } = client();
    expect(c.state).toBe('idle');
    const progress: string[] = [];
    const model = await c.load('/models/fake', 'cpu', 0, (m) => progress.push(m));
    expect(model.arch).toBe('Fake');
    expect(c.model?.dir).toBe('/models/fake');
    expect(states).toEqual(['starting', 'ready', 'loading', 'loaded']);
    expect(progress).toEqual(['half way']);
    expect(alive(c.pid!)).toBe(true);
    // The same model again: no second load.
    expect(await c.load('/models/fake', 'cpu', 0)).toEqual(model);
    expect(states.filter((s) => s === 'loading')).toHaveLength(1);
  });

  it('a load error rejects with the engine\'s message and leaves the engine usable', async () => {
    const { c } = client();
    await expect(c.load('missing', 'cpu', 0)).rejects.toThrow(/missing\/config.json: no such file/);
    expect(c.state).toBe('ready');
    await expect(c.load('/ok', 'cpu', 0)).resolves.toMatchObject({ dir: '/ok' });
  });

  it('a real crash (SIGKILL) mid-run: pending requests reject, onCrash fires with the live runs, restart works', async () => {
    const { c, logs } = client();
    await c.load('/m', 'cpu', 0);
    const events: EngineEvent[] = [];
    c.onEvents.event((e) => events.push(...e.events));
    await c.startRun('run-1', config);
    await waitFor('events', () => events.length > 3);
    const crashes: EngineCrash[] = [];
    c.onCrash.event((e) => crashes.push(e));
    const oldPid = c.pid!;
    const pending = c.control('run-1', { type: 'pause' }).catch((e) => e);
    process.kill(oldPid, 'SIGKILL');
    await waitFor('the crash', () => crashes.length > 0);
    expect(c.state).toBe('crashed');
    expect(crashes[0]).toMatchObject({ signal: 'SIGKILL', runIds: ['run-1'], during: 'loaded' });
    expect(crashes[0]!.message).toMatch(/was killed by SIGKILL/);
    const err = await pending;
    // The pause either got its reply before the kill or was rejected by it.
    if (err instanceof Error) expect(err).toBeInstanceOf(EngineCrashedError);
    expect(c.model).toBeNull();
    expect(logs.some((l) => l.startsWith('error:') && /SIGKILL/.test(l))).toBe(true);
    await c.restart();
    expect(c.state).toBe('ready');
    expect(c.pid).not.toBe(oldPid);
    expect(alive(oldPid)).toBe(false);
    await c.load('/m', 'cpu', 0);
    expect(c.state).toBe('loaded');
  });

  it('a request to a crashed engine starts a fresh one', async () => {
    const { c } = client();
    await c.start();
    const pid = c.pid!;
    process.kill(pid, 'SIGKILL');
    await waitFor('crashed', () => c.state === 'crashed');
    await expect(c.load('/m', 'cpu', 0)).resolves.toMatchObject({ dir: '/m' });
    expect(c.pid).not.toBe(pid);
  });

  it('an engine that exits at start is a crash with its exit code', async () => {
    const { c } = client({ FAKE_MODE: 'exit-at-start' });
    const crashes: EngineCrash[] = [];
    c.onCrash.event((e) => crashes.push(e));
    await expect(c.start()).rejects.toThrow(/exited with code 3/);
    expect(c.state).toBe('crashed');
    expect(crashes[0]).toMatchObject({ code: 3, during: 'starting' });
  });

  it('an engine that never says ready is killed after the start timeout', async () => {
    const { c } = client({ FAKE_MODE: 'no-ready' }, fakeHost, 600);
    const p = c.start();
    const pid = await waitFor('a pid', () => c.pid);
    await expect(p).rejects.toThrow(/did not start within 0.6 s/);
    await waitFor('the process to be gone', () => !alive(pid), 5000);
  });

  it('cancel during a load ends the engine process; the next request starts a new one', async () => {
    const { c, states } = client();
    const progress: string[] = [];
    const p = c.load('slow', 'cpu', 0, (m) => progress.push(m));
    await waitFor('loading', () => c.state === 'loading' && progress.length > 0);
    const pid = c.pid!;
    await c.cancelLoad();
    await expect(p).rejects.toBeInstanceOf(CancelledError);
    expect(c.state).toBe('idle');
    expect(states).not.toContain('crashed');
    expect(alive(pid)).toBe(false);
    await expect(c.load('/m', 'cpu', 0)).resolves.toMatchObject({ dir: '/m' });
  });

  it('stopProcess is graceful (no crash); a process that ignores shutdown is killed', async () => {
    const { c } = client();
    await c.start();
    const crashes: EngineCrash[] = [];
    c.onCrash.event((e) => crashes.push(e));
    await c.stopProcess();
    expect(c.state).toBe('idle');
    const { c: stubborn } = client({ FAKE_MODE: 'ignore-shutdown' });
    await stubborn.start();
    const pid = stubborn.pid!;
    const t0 = Date.now();
    await stubborn.stopProcess(300);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(alive(pid)).toBe(false);
    expect(stubborn.state).toBe('idle');
    expect(crashes).toEqual([]);
  });

  it('dispose() (the Disposable base) stops the process once, no crash, and the client starts no other', async () => {
    const { c, states } = client();
    await c.start();
    const pid = c.pid!;
    const crashes: EngineCrash[] = [];
    c.onCrash.event((e) => crashes.push(e));
    const stopping = c.stopProcess();
    c.dispose();
    c.dispose();
    expect(c.stopProcess()).toBe(stopping); // one stop in flight, not three
    await stopping;
    expect(alive(pid)).toBe(false);
    expect(states.filter((s) => s === 'stopping')).toHaveLength(1);
    expect(crashes).toEqual([]);
    await expect(c.start()).rejects.toThrow(/disposed/);
  });

  it('ignores and logs invalid messages from the engine', async () => {
    const { c, logs } = client({ FAKE_MODE: 'garbage' });
    await c.start();
    expect(c.state).toBe('ready');
    expect(logs.some((l) => /Ignored an invalid message from the engine: message.type: unknown message type "nonsense"/.test(l))).toBe(true);
  });

  it('pairs each reply with its request when two are in flight (answered out of order)', async () => {
    const { c } = client();
    await c.load('/m', 'cpu', 0);
    await c.startRun('run-pair', config);
    const first = c.inspect('run-pair', 1, 10, false); // answered after 60 ms
    const second = c.inspect('run-pair', 2, 20, false); // answered after 5 ms
    const order: number[] = [];
    await Promise.all([first.then((r) => order.push(r.block)), second.then((r) => order.push(r.block))]);
    expect(order).toEqual([2, 1]);
    await expect(first).resolves.toMatchObject({ block: 1, index: 10 });
    await expect(second).resolves.toMatchObject({ block: 2, index: 20 });
  });

  it('engine errors on controls reject with the engine\'s message; the final run-state ends the run', async () => {
    const { c } = client();
    await c.load('/m', 'cpu', 0);
    await c.startRun('run-2', config);
    await expect(c.control('run-2', { type: 'fork', worker: 9 })).rejects.toThrow(/worker 9 does not exist/);
    const ended = new Promise((r) => c.onRunEnded.event(r));
    await c.control('run-2', { type: 'stop' });
    await expect(ended).resolves.toMatchObject({ runId: 'run-2', state: 'stopped' });
    expect(c.runs).toEqual([]);
  });
});

describe('engine client with the real engine host and the native addon', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hogwild-client-'));
  const hostJs = path.join(tmp, 'engine-host.js');
  const modelDir = path.join(tmp, 'model');

  beforeAll(async () => {
    await esbuild.build({ entryPoints: [path.join(root, 'extension', 'engine', 'host.ts')], outfile: hostJs, bundle: true, platform: 'node', format: 'cjs', target: 'node20', external: ['*.node'], logLevel: 'warning' });
    await writeRandomCheckpoint(modelDir, {
      shape: { ...QWEN3_0_6B, hidden: 128, intermediate: 256, layers: 2, heads: 2, kvHeads: 1, headDim: 64 },
      seed: 11,
      tokenizerDir: findQwen3TokenizerDir(root),
    });
  }, 120_000);

  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const realClient = () => client({ HOGWILD_EXTENSION_DIR: root, HOGWILD_DATA_DIR: path.join(tmp, 'data') }, hostJs, 20_000);

  it('a load reports reading the weights, up to the files\' bytes, before the model is loaded', async () => {
    const { c } = realClient();
    const seen: string[] = [];
    const reports: LoadProgress[] = [];
    c.onLoadProgress.event((p) => seen.push(p ? 'progress' : 'cleared'));
    c.onDidChangeState.event((s) => s.state === 'loaded' && seen.push('loaded'));
    await c.load(modelDir, 'cpu', 2, (message, _fraction, load) => {
      if (load) reports.push(load);
      if (load) expect(message).toMatch(/^Loading model: reading the weights .* \/ .* \(\d+%\)$/);
    });
    const bytes = fs.statSync(path.join(modelDir, 'model.safetensors')).size;
    expect(reports.length).toBeGreaterThan(0);
    expect(reports.every((r) => r.phase === 'read' && r.total === bytes)).toBe(true);
    expect(reports[reports.length - 1].done).toBe(bytes);
    // The status bar and the sidebar follow onLoadProgress: reports, then cleared, then loaded.
    expect(seen[0]).toBe('progress');
    expect(seen.slice(-2)).toEqual(['cleared', 'loaded']);
    expect(c.loadProgress).toBeNull();
  });

  it('the K/V type setting reaches the engine: q8 when asked, the checkpoint\'s for auto (a new load)', async () => {
    const { c } = realClient();
    expect((await c.load(modelDir, 'cpu', 2, undefined, 'q8')).kvDtype).toBe('q8');
    expect(c.loadedFor(modelDir, 'cpu', 2, 'q8')).not.toBeNull();
    expect(c.loadedFor(modelDir, 'cpu', 2)).toBeNull();
    expect((await c.load(modelDir, 'cpu', 2)).kvDtype).toBe('bf16');
  });

  it('a run that reaches its KV budget ends cleanly with a message, and its trace keeps it all', async () => {
    const { c } = realClient();
    const model = await c.load(modelDir, 'cpu', 2);
    expect(model.kvDtype).toBe('bf16');
    // 1 MB holds 1,953 tokens of this model's K/V (2 layers x K, V x 1 head x 64 x 2 bytes):
    // enough for the prompt and the token budget, so the run starts; two long notes (not part
    // of the budget's estimate) then take it past the budget.
    const cfg: RunConfig = { ...config, maxTokens: 1000, kvBudgetMB: 1 };
    const runId = 'run-kv';
    const file = path.join(tmp, 'kv-budget.jsonl');
    const rec = new TraceRecorder({ type: 'hogwild-trace', version: 1, runId, title: 'KV budget', startedAt: new Date().toISOString(), config: cfg, model }, file);
    const events: EngineEvent[] = [];
    c.onEvents.event((e) => {
      if (e.runId !== runId) return;
      rec.add(e.events);
      events.push(...e.events);
    });
    const ended = new Promise<{ state: string; message?: string }>((r) => c.onRunEnded.event((e) => e.runId === runId && r(e)));
    await c.startRun(runId, cfg);
    await waitFor('tokens', () => events.some((e) => e.type === 'tokens'), 30_000);
    await c.control(runId, { type: 'pause' });
    await waitFor('paused', () => events.some((e) => e.type === 'run-state' && e.state === 'paused'), 10_000);
    const note = 'A note. '.repeat(500);
    await c.control(runId, { type: 'inject', target: 'all', text: note });
    await c.control(runId, { type: 'inject', target: 'all', text: note });
    await c.control(runId, { type: 'resume' });
    const end = await ended;
    rec.end(end.state as RunState, end.message);
    expect(end.state).toBe('finished');
    expect(end.message).toMatch(/reached its KV memory budget of 1 MB \(hogwild\.kvBudgetMB\)/);

    // The trace on disk replays to the same end: the message, the tokens, the finisher's answer.
    const trace = await readTrace(file);
    expect(trace.end).toMatchObject({ state: 'finished', message: end.message });
    const replay = new RunModel(runId, 'KV budget', cfg);
    for (const b of trace.batches) replay.apply(b.events, b.t);
    const summary = replay.summary();
    expect(summary.state).toBe('finished');
    expect(summary.message).toBe(end.message);
    expect(summary.tokens).toBeGreaterThan(0);
    expect(summary.tokens).toBeLessThan(1000);
    expect(replay.answer).not.toBeNull();
    expect(summary.kvBytes).toBeGreaterThan(0);
  });

  it('loads a model, runs two workers to the end, decodes their text', async () => {
    const { c } = realClient();
    const model = await c.load(modelDir, 'cpu', 2);
    expect(model).toMatchObject({ arch: 'Qwen3ForCausalLM', layers: 2, hidden: 128, vocab: 151936, device: 'cpu' });
    const events: EngineEvent[] = [];
    c.onEvents.event((e) => e.runId === 'run-real' && events.push(...e.events));
    const ended = new Promise<{ state: string }>((r) => c.onRunEnded.event((e) => e.runId === 'run-real' && r(e)));
    await c.startRun('run-real', config);
    expect((await ended).state).toBe('finished');
    const tokens = events.filter((e): e is Extract<EngineEvent, { type: 'tokens' }> => e.type === 'tokens');
    for (const w of [0, 1]) {
      const mine = tokens.filter((t) => t.worker === w);
      expect(mine.length).toBeGreaterThan(0);
      expect(mine.every((t) => t.ids instanceof Int32Array)).toBe(true);
      const text = mine.map((t) => t.text).join('');
      expect(text.startsWith(w === 0 ? '**Alice [1]:** ' : '**Bob [1]:** ')).toBe(true);
    }
    expect(tokens.reduce((n, t) => n + t.ids.length, 0)).toBeGreaterThanOrEqual(24);
    expect(events.some((e) => e.type === 'answer')).toBe(true);
    // Events come coalesced: far fewer messages than tokens would give.
    expect(events.filter((e) => e.type === 'run-state').map((e) => (e as { state: string }).state)).toContain('running');
  });

  it('a kill -9 of the real engine mid-run is a crash; restart and a new run work', async () => {
    const { c } = realClient();
    await c.load(modelDir, 'cpu', 2);
    let got = 0;
    c.onEvents.event((e) => (got += e.events.filter((x) => x.type === 'tokens').length));
    const crashes: EngineCrash[] = [];
    c.onCrash.event((e) => crashes.push(e));
    await c.startRun('run-long', { ...config, maxTokens: 1_000_000 });
    await waitFor('tokens', () => got > 2, 30_000);
    const pid = c.pid!;
    process.kill(pid, 'SIGKILL');
    await waitFor('the crash', () => crashes.length > 0, 10_000);
    expect(crashes[0]).toMatchObject({ signal: 'SIGKILL', runIds: ['run-long'] });
    await c.restart();
    expect(c.state).toBe('ready');
    await c.load(modelDir, 'cpu', 2);
    const ended = new Promise<{ state: string }>((r) => c.onRunEnded.event((e) => e.runId === 'run-after' && r(e)));
    await c.startRun('run-after', { ...config, maxTokens: 8 });
    expect((await ended).state).toBe('finished');
  });

  it('controls reach the real engine: pause, fork, inject, stop; bad ones get clear errors', async () => {
    const { c } = realClient();
    await c.load(modelDir, 'cpu', 2);
    const events: EngineEvent[] = [];
    c.onEvents.event((e) => events.push(...e.events));
    await c.startRun('run-ctl', { ...config, maxTokens: 1_000_000 });
    await waitFor('tokens', () => events.some((e) => e.type === 'tokens'), 30_000);
    await c.control('run-ctl', { type: 'pause' });
    await waitFor('paused', () => events.some((e) => e.type === 'run-state' && e.state === 'paused'), 10_000);
    const forked = await c.control('run-ctl', { type: 'fork', worker: 1 });
    expect(forked).toBe(2);
    await c.control('run-ctl', { type: 'inject', target: 'all', text: 'A note.' });
    await expect(c.control('run-ctl', { type: 'fork', worker: 77 })).rejects.toThrow(/77/);
    await c.control('run-ctl', { type: 'resume' });
    await waitFor('the fork to write', () => events.some((e) => e.type === 'tokens' && e.worker === 2), 30_000);
    await waitFor('the note', () => events.some((e) => e.type === 'note' && e.text.includes('A note.')), 10_000);
    const fork = events.find((e) => e.type === 'worker' && e.info.worker === 2) as Extract<EngineEvent, { type: 'worker' }>;
    expect(fork.info).toMatchObject({ forkedFrom: 1, name: 'Bob′' });
    const ended = new Promise<{ state: string }>((r) => c.onRunEnded.event((e) => e.runId === 'run-ctl' && r(e)));
    await c.control('run-ctl', { type: 'stop' });
    expect((await ended).state).toBe('stopped');
    await expect(c.control('run-ctl', { type: 'pause' })).rejects.toThrow(/ended|no run/);
  });
});
