/**
 * The engine process. Forked by the extension (extension/engine/client.ts) with VS Code's own
 * Node; it loads the native addon, so a crash in native code ends this process and never the
 * extension host. It speaks protocol.ts over IPC (structured clone, typed arrays as they are):
 *
 *   load     the addon, the tokenizer of the model folder (or the built-in model, written
 *            into the extension's storage on first use), then the model
 *   start    RunConfig -> NativeRunConfig (extension/collab) -> model.startRun; native
 *            events become protocol events (text decoded incrementally per worker), are
 *            coalesced (one IPC message per ~16 ms at most) and forwarded
 *   control  pause / resume / step / stop / inject / fork / set-temperature
 *   inspect  one cache position
 *
 * Run it as `node dist/engine-host.js` under a parent with an IPC channel (fork).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import type {
  BlockInfo,
  BlockKind,
  Control,
  EngineEvent,
  EngineMessage,
  EngineRequest,
  InspectResult,
  ModelSummary,
  RunConfig,
  RunState,
  WorkerState,
} from '../protocol';
import { validateEngineRequest } from '../protocol-validate';
import { mergeEvents } from '../coalesce';
import { loadNativeAddon, type NativeAddon, type NativeEvent, type NativeModel, type NativeRun } from './native';
import { loadTokenizer, type HwTokenizer, type StreamDecoder } from '../model/tokenizer';
import { DEFAULT_MODEL_DIRNAME, ensureDefaultModel, isBuiltInModel } from '../model/defaultModel';
import { isRandomModelName, isTrainedModelName, trainedModelDir } from '../model/builtinModels';
import { verifyChecksums } from '../model/checksums';
import { buildNativeRunConfig, extractAnswer, headerParts, stepLabel } from '../collab';

const FLUSH_MS = 16;
const RUN_STATES: readonly RunState[] = ['loading', 'prefill', 'running', 'paused', 'finishing', 'finished', 'stopped', 'failed'];
const WORKER_STATES: readonly WorkerState[] = ['running', 'paused', 'finished'];
const BLOCK_KINDS: readonly BlockKind[] = ['prompt', 'worker', 'history', 'header', 'note', 'finisher'];

/** How a note from the user is put in front of the workers ({text}, {to}). */
const NOTE_TEMPLATE = '\n\n> **Note from the user{to}:** {text}\n\n';

function send(msg: EngineMessage): void {
  if (process.send && process.connected) process.send(msg);
}

function log(level: 'info' | 'warn' | 'error', text: string): void {
  send({ type: 'log', level, text });
}

const root = process.env.HOGWILD_EXTENSION_DIR || path.resolve(__dirname, '..');
const dataDir = process.env.HOGWILD_DATA_DIR || path.join(os.homedir(), '.hogwild');

let addon: NativeAddon | null = null;
let model: NativeModel | null = null;
let summary: ModelSummary | null = null;
let tokenizer: HwTokenizer | null = null;
let loading: Promise<ModelSummary> | null = null;
const runs = new Map<string, LiveRun>();

// ---------------------------------------------------------------- a live run

class LiveRun {
  private buffer: EngineEvent[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private decoders = new Map<number, StreamDecoder>();
  private names = new Map<number, string>();
  private forks = new Map<number, number>(); // forks of each origin so far
  private blockLabels = new Map<number, string>();
  private finisherText = '';
  private finisherIds: number[] = [];
  private lastState: RunState = 'loading';
  private lastViews: number[][][] = [];
  ended = false;
  run: NativeRun | null = null;

  constructor(
    readonly runId: string,
    readonly config: RunConfig,
    private readonly tok: HwTokenizer | null,
    names: string[],
  ) {
    names.forEach((n, i) => this.names.set(i, n));
  }

  name(worker: number): string {
    return this.names.get(worker) ?? `Worker ${worker}`;
  }

  private decoder(worker: number): StreamDecoder | null {
    if (!this.tok) return null;
    let d = this.decoders.get(worker);
    if (!d) {
      d = this.tok.streamDecoder();
      this.decoders.set(worker, d);
    }
    return d;
  }

  private text(ids: ArrayLike<number>): string {
    return this.tok ? this.tok.decode(ids) : '';
  }

  push(ev: EngineEvent): void {
    this.buffer.push(ev);
    if (!this.timer) this.timer = setTimeout(() => this.flush(), FLUSH_MS);
  }

  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.buffer.length === 0) return;
    const events = mergeEvents(this.buffer);
    this.buffer = [];
    send({ type: 'events', runId: this.runId, events });
  }

  /** Native events (one batch from the engine thread) -> protocol events. */
  onNative(batch: NativeEvent[]): void {
    for (const ev of batch) {
      try {
        this.convert(ev);
      } catch (e) {
        log('error', `run ${this.runId}: could not convert a ${ev.type} event: ${(e as Error).message}`);
      }
    }
  }

  private convert(ev: NativeEvent): void {
    switch (ev.type) {
      case 'run-state': {
        const state = (RUN_STATES as readonly string[]).includes(ev.state) ? (ev.state as RunState) : 'running';
        this.lastState = state;
        if (state === 'finished' && this.finisherIds.length > 0) this.pushAnswer();
        this.push(ev.message !== undefined ? { type: 'run-state', state, message: ev.message } : { type: 'run-state', state });
        return;
      }
      case 'worker': {
        if (!this.names.has(ev.worker)) this.names.set(ev.worker, ev.forkedFrom >= 0 ? this.forkName(ev.forkedFrom) : `Worker ${ev.worker}`);
        const state = (WORKER_STATES as readonly string[]).includes(ev.state) ? (ev.state as WorkerState) : 'running';
        const info: Extract<EngineEvent, { type: 'worker' }>['info'] = { worker: ev.worker, name: this.name(ev.worker), state, temperature: ev.temperature };
        if (ev.forkedFrom >= 0) info.forkedFrom = ev.forkedFrom;
        this.push({ type: 'worker', info });
        return;
      }
      case 'tokens': {
        const d = this.decoder(ev.worker);
        const text = d ? d.push(ev.ids) : '';
        this.push({ type: 'tokens', worker: ev.worker, step: ev.step, ids: Int32Array.from(ev.ids), text });
        return;
      }
      case 'step-finished': {
        const label = stepLabel(this.name(ev.worker), ev.step);
        if (ev.historyBlock >= 0) this.blockLabels.set(ev.historyBlock, label);
        this.push({ type: 'step-finished', worker: ev.worker, step: ev.step, label, text: this.text(ev.ids), historyBlock: ev.historyBlock });
        return;
      }
      case 'block': {
        const kind = (BLOCK_KINDS as readonly string[]).includes(ev.kind) ? (ev.kind as BlockKind) : 'header';
        let label = this.blockLabels.get(ev.block);
        if (!label) {
          label =
            kind === 'prompt' ? 'prompt'
            : kind === 'worker' ? `${this.name(ev.owner)} (current step)`
            : kind === 'note' ? (ev.owner >= 0 ? `note to ${this.name(ev.owner)}` : 'note to all')
            : kind === 'history' ? `history ${ev.block}`
            : kind === 'finisher' ? 'finisher'
            : ev.owner >= 0 ? `header (${this.name(ev.owner)})` : 'header';
          this.blockLabels.set(ev.block, label);
        }
        const info: BlockInfo = { block: ev.block, kind, owner: ev.owner, length: ev.length, label };
        this.push({ type: 'block', op: ev.op, info });
        return;
      }
      case 'views': {
        this.lastViews = ev.views.map((v) => {
          const segs: number[][] = [];
          for (let i = 0; i + 2 < v.length; i += 3) segs.push([v[i]!, v[i + 1]!, v[i + 2]!]);
          return segs;
        });
        this.push({ type: 'views', step: ev.step, views: this.lastViews.map((segs) => segs.map(([block, offset, length]) => ({ block: block!, offset: offset!, length: length! }))) });
        return;
      }
      case 'attention':
        this.push({ type: 'attention', step: ev.step, shares: ev.shares.map((s) => Array.from(s)) });
        return;
      case 'stats':
        this.push({ type: 'stats', step: ev.step, tokens: ev.tokens, tokensPerSecond: ev.tokensPerSecond, msPerStep: ev.msPerStep });
        return;
      case 'note':
        this.push({ type: 'note', target: ev.target < 0 ? 'all' : ev.target, block: ev.block, text: this.text(ev.ids) });
        return;
      case 'finisher-tokens':
        for (const id of ev.ids) this.finisherIds.push(id);
        this.pushAnswer();
        return;
      case 'raw-result':
        this.push({
          type: 'raw-result',
          result: {
            workers: ev.workers.map((w, i) => {
              const out: { worker: number; ids: number[]; topLogits?: { id: number; logit: number }[] } = { worker: i, ids: Array.from(w.ids) };
              if (w.topIds && w.topLogits && w.topIds.length > 0) out.topLogits = Array.from(w.topIds, (id, j) => ({ id, logit: w.topLogits![j]! }));
              return out;
            }),
            views: this.lastViews.map((segs) => segs.map(([block, offset, length]) => ({ block: block!, offset: offset!, length: length!, kind: 'worker' as BlockKind, owner: -1 }))),
          },
        });
        return;
      case 'error':
        log('error', `run ${this.runId}: ${ev.message}`);
        this.push({ type: 'run-state', state: this.lastState === 'paused' ? 'paused' : this.lastState, message: ev.message });
        return;
    }
  }

  private pushAnswer(): void {
    const cont = this.tok ? this.tok.decode(this.finisherIds) : '';
    this.finisherText = this.config.prompts.finisher + cont;
    let answer: string | null = null;
    try {
      answer = extractAnswer(this.finisherText, this.config.prompts.answerPattern);
    } catch {
      answer = null;
    }
    this.push({ type: 'answer', text: this.finisherText, answer });
  }

  /** Called when the native run loop has ended. */
  end(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    for (const [w, d] of this.decoders) {
      const rest = d.flush();
      if (rest) this.push({ type: 'tokens', worker: w, step: 0, ids: new Int32Array(0), text: rest });
    }
    let state = this.lastState;
    let message: string | undefined;
    if (error) {
      state = 'failed';
      message = error.message;
      this.push({ type: 'run-state', state, message });
    } else if (state !== 'finished' && state !== 'stopped' && state !== 'failed') {
      state = 'finished';
      this.push({ type: 'run-state', state });
    }
    this.flush();
    send({ type: 'run-ended', runId: this.runId, state, message });
  }

  /** The name of the next fork of `origin`: "Alice′", then "Alice′2", ... */
  forkName(origin: number): string {
    const k = (this.forks.get(origin) ?? 0) + 1;
    this.forks.set(origin, k);
    return `${this.name(origin)}′${k > 1 ? k : ''}`;
  }

  /** Forks a worker; the fork's step headers carry its own name. */
  fork(worker: number): number {
    if (!this.run) throw new Error('the run has not started');
    if (!this.names.has(worker)) throw new Error(`fork: there is no worker ${worker}`);
    const name = this.forkName(worker);
    const prefix = this.tok ? Int32Array.from(headerParts(this.tok, name).prefix) : undefined;
    const id = this.run.fork(worker, prefix);
    this.names.set(id, name);
    return id;
  }

  noteIds(target: number | 'all', text: string): Int32Array {
    if (!this.tok) throw new Error('this model has no tokenizer: notes need one');
    const to = target === 'all' ? '' : ` to ${this.name(target)}`;
    const full = NOTE_TEMPLATE.replace('{to}', to).replace('{text}', text.trim());
    return Int32Array.from(this.tok.encode(full));
  }

  tokenText(id: number): string {
    return this.tok ? this.tok.decode([id]) : '';
  }
}

// ---------------------------------------------------------------- requests

function progress(id: number, message: string, fraction?: number): void {
  send(fraction !== undefined ? { type: 'progress', id, message, fraction } : { type: 'progress', id, message });
}

async function load(id: number, dir: string, device: string, threads: number): Promise<ModelSummary> {
  if (runs.size > 0 && [...runs.values()].some((r) => !r.ended)) throw new Error('a run is in progress; stop it before loading another model');
  if (!addon) {
    progress(id, 'Loading the native engine…');
    addon = loadNativeAddon(root);
  }
  let builtIn = false;
  if (dir === '' || isTrainedModelName(dir)) {
    // The default: the small model trained here (shipped with the extension).
    dir = trainedModelDir(root);
  } else if (isRandomModelName(dir) && !fs.existsSync(dir)) {
    builtIn = true;
    dir = path.join(dataDir, 'models', DEFAULT_MODEL_DIRNAME);
    progress(id, 'Checking the built-in model…');
    let lastPct = -1;
    const res = await ensureDefaultModel({
      root,
      dir,
      onProgress: (written, total) => {
        const pct = Math.floor((written / Math.max(1, total)) * 100);
        if (pct !== lastPct && pct % 5 === 0) {
          lastPct = pct;
          progress(id, `Writing the built-in model (random weights, once): ${pct}%`, (written / Math.max(1, total)) * 0.5);
        }
      },
    });
    if (res.created) log('info', `Wrote the built-in model to ${dir} in ${(res.ms / 1000).toFixed(1)} s (${(res.bytes / 1e9).toFixed(2)} GB)`);
  } else {
    builtIn = isBuiltInModel(dir);
  }
  verifyChecksums(dir);
  if (model) {
    model.close();
    model = null;
    summary = null;
  }
  progress(id, `Loading the tokenizer of ${path.basename(dir)}…`, builtIn ? 0.55 : 0.1);
  tokenizer = await loadTokenizer(dir);
  if (!tokenizer) log('warn', `${dir} has no tokenizer.json: only raw runs are possible`);
  progress(id, `Loading ${path.basename(dir)} (${device})…`, builtIn ? 0.6 : 0.3);
  const t0 = Date.now();
  // Automatic threads leave one core to VS Code itself (its windows, the extension host):
  // on a small machine an engine on every core makes the editor stutter.
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  const useThreads = threads > 0 ? threads : Math.max(1, cores - 1);
  model = await addon.loadModel(dir, { device, threads: useThreads });
  const c = model.config;
  summary = {
    dir,
    arch: c.arch,
    layers: c.layers,
    hidden: c.hidden,
    heads: c.heads,
    kvHeads: c.kvHeads,
    vocab: c.vocab,
    maxContext: c.maxContext,
    device: model.device,
    builtIn,
  };
  log('info', `Loaded ${dir} in ${Date.now() - t0} ms on ${model.device} (${useThreads} CPU thread${useThreads === 1 ? '' : 's'})`);
  send({ type: 'loaded', model: summary });
  return summary;
}

function start(runId: string, config: RunConfig): void {
  if (!model || !summary) throw new Error('no model is loaded');
  for (const r of runs.values()) if (!r.ended) throw new Error(`run ${r.runId} is still going; stop it first`);
  runs.clear();
  const native = buildNativeRunConfig(config, tokenizer, model.config);
  const names = config.workerNames.slice(0, config.workers);
  const live = new LiveRun(runId, config, tokenizer, names);
  runs.set(runId, live);
  live.push({ type: 'run-state', state: 'loading' });
  for (let w = 0; w < config.workers; w++) live.push({ type: 'worker', info: { worker: w, name: live.name(w), state: 'running', temperature: config.sampling.temperature } });
  let run: NativeRun;
  try {
    run = model.startRun(native, (events) => live.onNative(events));
  } catch (e) {
    runs.delete(runId);
    throw e;
  }
  live.run = run;
  run.done().then(
    () => live.end(),
    (e: unknown) => live.end(e instanceof Error ? e : new Error(String(e))),
  );
}

function liveRun(runId: string): LiveRun & { run: NativeRun } {
  const r = runs.get(runId);
  if (!r || !r.run) throw new Error(`no run ${runId} in the engine`);
  if (r.ended) throw new Error(`run ${runId} has ended`);
  return r as LiveRun & { run: NativeRun };
}

function control(runId: string, c: Control): unknown {
  const r = liveRun(runId);
  const run = r.run;
  switch (c.type) {
    case 'pause':
      return c.worker === undefined ? run.pause() : run.pause(c.worker);
    case 'resume':
      return c.worker === undefined ? run.resume() : run.resume(c.worker);
    case 'step':
      return run.step();
    case 'stop':
      return c.worker === undefined ? run.stop() : run.stop(c.worker);
    case 'inject':
      return run.inject(c.target === 'all' ? -1 : c.target, r.noteIds(c.target, c.text));
    case 'fork':
      return r.fork(c.worker);
    case 'set-temperature':
      return run.setTemperature(c.worker, c.temperature);
  }
}

function inspect(runId: string, block: number, index: number, attention: boolean): InspectResult {
  const r = runs.get(runId);
  if (!r || !r.run) throw new Error(`no run ${runId} in the engine`);
  const n = r.run.inspect(block, index, attention);
  const out: InspectResult = {
    block: n.block,
    index: n.index,
    token: n.token,
    text: r.tokenText(n.token),
    author: n.author,
    step: n.step,
    seenAt: n.seenAt.map((s) => ({ worker: s.worker, position: s.position < 0 ? null : s.position, rotation: s.position < 0 ? null : s.rotation })),
  };
  if (n.attention) out.attention = n.attention.map((share, worker) => ({ worker, share }));
  return out;
}

async function handle(req: EngineRequest): Promise<unknown> {
  switch (req.type) {
    case 'load': {
      if (loading) await loading.catch(() => undefined);
      loading = load(req.id, req.modelDir, req.device, req.threads);
      try {
        return await loading;
      } finally {
        loading = null;
      }
    }
    case 'start':
      start(req.runId, req.config);
      return undefined;
    case 'control':
      return control(req.runId, req.control);
    case 'inspect':
      return inspect(req.runId, req.block, req.index, req.attention);
    case 'shutdown':
      await shutdown();
      return undefined;
  }
}

async function shutdown(): Promise<void> {
  for (const r of runs.values()) {
    if (!r.ended && r.run) {
      try {
        r.run.stop();
        await Promise.race([r.run.done(), new Promise((res) => setTimeout(res, 2000))]);
      } catch {
        /* ending anyway */
      }
    }
  }
  try {
    model?.close();
  } catch {
    /* ending anyway */
  }
  model = null;
  setTimeout(() => process.exit(0), 10);
}

process.on('message', (raw: unknown) => {
  const v = validateEngineRequest(raw);
  if (!v.ok) {
    const id = raw && typeof raw === 'object' && typeof (raw as { id?: unknown }).id === 'number' ? (raw as { id: number }).id : -1;
    log('error', `invalid request: ${v.error}`);
    if (id >= 0) send({ type: 'reply', id, ok: false, error: `invalid request: ${v.error}` });
    return;
  }
  const req = v.value;
  handle(req).then(
    (result) => send({ type: 'reply', id: req.id, ok: true, result }),
    (e: unknown) => send({ type: 'reply', id: req.id, ok: false, error: e instanceof Error ? e.message : String(e) }),
  );
});

// The extension went away (window closed, extension host crashed): end with it.
process.on('disconnect', () => {
  void shutdown();
});
process.on('uncaughtException', (e) => {
  log('error', `engine process: uncaught exception: ${e.stack ?? e.message}`);
  setTimeout(() => process.exit(70), 50);
});
process.on('unhandledRejection', (e) => {
  log('error', `engine process: unhandled rejection: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
});

if (!process.send) {
  console.error('dist/engine-host.js is the Hogwild engine process; it is started by the extension (or a test) with an IPC channel.');
  process.exit(2);
}
send({ type: 'ready', pid: process.pid });
