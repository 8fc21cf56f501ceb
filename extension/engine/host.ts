/**
 * The engine process. Forked by the extension (extension/engine/client.ts) with VS Code's own
 * Node; it loads the native addon, so a crash in native code ends this process and never the
 * extension host. It speaks protocol.ts over IPC (structured clone, typed arrays as they are):
 *
 *   load     the addon, the tokenizer of the model folder (or the built-in model, written
 *            into the extension's storage on first use), then the model
 *   start    RunConfig -> NativeRunConfig (extension/collab) -> model.startRun; each native
 *            batch becomes one protocol batch (engine/pipeline.ts, shared with the CLI)
 *   control  pause / resume / step / stop / inject / fork / set-temperature
 *   inspect  one cache position
 *
 * Run it as `node dist/engine-host.js` under a parent with an IPC channel (fork).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import type { Control, EngineMessage, EngineRequest, InspectResult, ModelSummary, RunConfig } from '../../protocol/messages';
import { validateEngineRequest } from '../../protocol/validate';
import { replyTo } from '../../protocol/requests';
import { loadNativeAddon, type NativeAddon, type NativeInspect, type NativeModel, type NativeRun } from './native';
import { loadTokenizer, type HwTokenizer } from '../model/tokenizer';
import { DEFAULT_MODEL_DIRNAME, ensureDefaultModel, isBuiltInModel } from '../model/defaultModel';
import { isRandomModelName, isTrainedModelName, trainedModelDir } from '../model/builtinModels';
import { verifyChecksums } from '../model/checksums';
import { buildNativeRunConfig } from '../collab';
import { LiveRun } from './liveRun';
import { loadText, type LoadProgress } from '../../protocol/progress';
import { applyEnginePriority } from './priority';



function send(msg: EngineMessage): void {
  if (process.send && process.connected) process.send(msg);
}

function log(level: 'info' | 'warn' | 'error', text: string): void {
  send({ type: 'log', level, text });
}

// First, before this thread makes any other (priority.ts says why).
let priorityNote: string;
try {
  priorityNote = applyEnginePriority(process.env);
} catch (e) {
  priorityNote = `engine priority unchanged: ${(e as Error).message}`;
}

const root = process.env.HOGWILD_EXTENSION_DIR || path.resolve(__dirname, '..');
const dataDir = process.env.HOGWILD_DATA_DIR || path.join(os.homedir(), '.hogwild');

let addon: NativeAddon | null = null;
let model: NativeModel | null = null;
let summary: ModelSummary | null = null;
let tokenizer: HwTokenizer | null = null;
let loading: Promise<ModelSummary> | null = null;
const runs = new Map<string, LiveRun>();

// ---------------------------------------------------------------- requests

function progress(id: number, message: string, fraction?: number, load?: LoadProgress): void {
  send({ type: 'progress', inReplyTo: id, message, ...(fraction !== undefined ? { fraction } : {}), ...(load ? { load } : {}) });
}

/**
 * The engine's load progress as progress messages: the first and last report of a phase, and
 * in between at most one per percent, mapped into [from, 1) of the request's fraction.
 */
function loadReporter(id: number, name: string, from: number): (phase: string, done: number, total: number) => void {
  let last = { phase: '', pct: -1 };
  return (phase, done, total) => {
    const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
    if (phase === last.phase && pct === last.pct && done < total) return;
    last = { phase, pct };
    const load = { phase, done, total };
    progress(id, `Loading ${name}: ${loadText(load)}`, from + (1 - from) * 0.99 * Math.min(1, pct / 100), load);
  };
}

async function load(id: number, dir: string, device: string, threads: number, kvDtype: string): Promise<ModelSummary> {
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
  model = await addon.loadModel(dir, { device, threads: useThreads, kvDtype }, loadReporter(id, path.basename(dir), builtIn ? 0.6 : 0.3));
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
    ...(model.kvDtype ? { kvDtype: model.kvDtype } : {}),
    builtIn,
  };
  log('info', `Loaded ${dir} in ${Date.now() - t0} ms on ${model.device} (${useThreads} CPU thread${useThreads === 1 ? '' : 's'}), K/V in ${model.kvDtype ?? 'f32'}`);
  send({ type: 'loaded', model: summary });
  return summary;
}

function start(runId: string, config: RunConfig): void {
  if (!model || !summary) throw new Error('no model is loaded');
  for (const r of runs.values()) if (!r.ended) throw new Error(`run ${r.runId} is still going; stop it first`);
  // The ended runs' K/V blocks go back to the cache: their pages serve this run.
  for (const r of runs.values()) {
    try {
      r.run?.release();
    } catch (e) {
      log('warn', `run ${r.runId}: its KV cache was not released: ${(e as Error).message}`);
    }
  }
  runs.clear();
  // Attention shares feed the heatmap and the inspector; they cost little next to a step.
  const native = buildNativeRunConfig(config, tokenizer, model.config, { kvBudgetBytes: (config.kvBudgetMB ?? 0) * 1e6, attentionShares: config.attentionShares ?? true, keyAttention: config.keyAttention });
  const live = new LiveRun(runId, config, tokenizer, send, log, native);
  runs.set(runId, live);
  live.start();
  let run: NativeRun;
  try {
    run = model.startRun(native, (batch) => live.onNative(batch));
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
      return run.inject(c.target === 'all' ? -1 : c.target, r.events.noteIds(c.target, c.text));
    case 'fork':
      return r.fork(c.worker);
    case 'set-temperature':
      return run.setTemperature(c.worker, c.temperature);
  }
}

// How long an inspect waits for the step that records the attention it asked for (a GPU records
// the attention on every key only on request; a step there takes milliseconds).
const INSPECT_ATTENTION_WAIT_MS = 3000;

async function inspect(runId: string, block: number, index: number, attention: boolean): Promise<InspectResult> {
  const r = runs.get(runId);
  if (!r || !r.run) throw new Error(`no run ${runId} in the engine`);
  const run = r.run;
  const first = run.inspect(block, index, attention);
  let n = first;
  // The attention is older than the last step, or absent: the next step records it. A running run
  // answers once that step is in; a paused one (or a step slower than the wait) says it is pending.
  const had = first.attentionStep ?? -1;
  let stale = attention && first.attentionPending && !r.ended;
  if (stale) {
    run.requestKeyAttention();
    const deadline = Date.now() + INSPECT_ATTENTION_WAIT_MS;
    while (stale && !r.ended && r.events.runState === 'running' && Date.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([r.nextBatch(), new Promise<void>((resolve) => (timer = setTimeout(resolve, deadline - Date.now())))]);
      clearTimeout(timer);
      // A finished step moves into the history meanwhile, and its block's id goes to a new block:
      // then the position is another token (or none), and the first answer stands.
      let again: NativeInspect;
      try {
        again = run.inspect(block, index, attention);
      } catch {
        break;
      }
      if (again.token !== first.token || again.author !== first.author || again.step !== first.step) break;
      n = again;
      stale = n.attentionPending && (n.attentionStep ?? -1) <= had;
    }
  }
  const out: InspectResult = {
    block: n.block,
    index: n.index,
    token: n.token,
    text: r.events.tokenText(n.token),
    author: n.author,
    step: n.step,
    seenAt: n.seenAt.map((s) => ({ worker: s.worker, position: s.position < 0 ? null : s.position, rotation: s.position < 0 ? null : s.rotation })),
  };
  // The engine says -1 for a worker that did not see the token; the reply leaves that worker out.
  if (n.attention) {
    out.attention = n.attention.flatMap((share, worker) => (share >= 0 ? [{ worker, share }] : []));
    if (n.attentionStep !== undefined) out.attentionStep = n.attentionStep;
  }
  if (stale) out.attentionPending = true;
  return out;
}

async function handle(req: EngineRequest): Promise<unknown> {
  switch (req.type) {
    case 'load': {
      if (loading) await loading.catch(() => undefined);
      loading = load(req.id, req.modelDir, req.device, req.threads, req.kvDtype ?? 'auto');
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
    if (id >= 0) send(replyTo(id, { ok: false, error: `invalid request: ${v.error}` }));
    return;
  }
  const req = v.value;
  handle(req).then(
    (result) => send(replyTo(req.id, { ok: true, result })),
    (e: unknown) => send(replyTo(req.id, { ok: false, error: e instanceof Error ? e.message : String(e) })),
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
log('info', priorityNote);
