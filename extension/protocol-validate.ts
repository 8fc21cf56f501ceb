/**
 * Validation of every message that crosses a boundary (protocol.ts). A webview is untrusted:
 * its messages are checked field by field and rebuilt from scratch (never spread), so that
 * extra keys, `__proto__` tricks, huge strings, NaN and out-of-range numbers never reach the
 * engine. Messages from the engine process and trace files are checked the same way (a trace
 * is a file anyone could have edited). Every validator returns a result, it never throws.
 */
import {
  MAX_NOTE_CHARS,
  MAX_WORKERS,
  TRACE_VERSION,
  type BlockKind,
  type Control,
  type EngineEvent,
  type EngineMessage,
  type EngineRequest,
  type FromWebview,
  type Layout,
  type ModelSummary,
  type RunConfig,
  type RunState,
  type TraceLine,
  type WebviewCommand,
  type WorkerInfo,
  type WorkerState,
} from './protocol';

export type Result<T> = { ok: true; value: T } | { ok: false; error: string };

class Invalid extends Error {}

function fail(path: string, what: string): never {
  throw new Invalid(`${path}: ${what}`);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 40 ? `a string of ${v.length} characters` : JSON.stringify(v);
  if (typeof v === 'number') return String(v);
  return typeof v;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function obj(v: unknown, path: string, allowed: readonly string[]): Record<string, unknown> {
  if (!isPlainObject(v)) fail(path, `expected an object, got ${describe(v)}`);
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) fail(path, `unexpected field ${JSON.stringify(k.slice(0, 40))}`);
  }
  return v;
}

function str(v: unknown, path: string, maxLen: number, opts: { pattern?: RegExp; nonEmpty?: boolean } = {}): string {
  if (typeof v !== 'string') fail(path, `expected a string, got ${describe(v)}`);
  if (v.length > maxLen) fail(path, `longer than ${maxLen} characters (${v.length})`);
  if (opts.nonEmpty && v.trim().length === 0) fail(path, 'must not be empty');
  if (opts.pattern && !opts.pattern.test(v)) fail(path, `has an invalid format (${describe(v)})`);
  return v;
}

function num(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(path, `expected a finite number, got ${describe(v)}`);
  if (v < min || v > max) fail(path, `must be between ${min} and ${max} (got ${v})`);
  return v;
}

function int(v: unknown, path: string, min: number, max: number): number {
  const n = num(v, path, min, max);
  if (!Number.isInteger(n)) fail(path, `expected an integer, got ${n}`);
  return n;
}

function bool(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') fail(path, `expected true or false, got ${describe(v)}`);
  return v;
}

function oneOf<T extends string>(v: unknown, path: string, values: readonly T[]): T {
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
    fail(path, `expected one of ${values.join(', ')}, got ${describe(v)}`);
  }
  return v as T;
}

function arr<T>(v: unknown, path: string, maxLen: number, item: (x: unknown, p: string) => T): T[] {
  if (!Array.isArray(v)) fail(path, `expected an array, got ${describe(v)}`);
  if (v.length > maxLen) fail(path, `more than ${maxLen} entries (${v.length})`);
  const out: T[] = new Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = item(v[i], `${path}[${i}]`);
  return out;
}

function opt<T>(o: Record<string, unknown>, key: string, f: (v: unknown) => T): T | undefined {
  return o[key] === undefined ? undefined : f(o[key]);
}

/** An Int32Array, or a JSON array of int32 values (traces); always returns a fresh Int32Array. */
function ids(v: unknown, path: string, maxLen: number): Int32Array {
  if (v instanceof Int32Array) {
    if (v.length > maxLen) fail(path, `more than ${maxLen} ids`);
    // Node's IPC hands out views into pooled buffers shared between messages: keep a copy of
    // just these ids, not the whole pool.
    return v.byteOffset === 0 && v.buffer.byteLength === v.byteLength ? v : v.slice();
  }
  const a = arr(v, path, maxLen, (x, p) => int(x, p, -2147483648, 2147483647));
  return Int32Array.from(a);
}

function guard<T>(f: () => T): Result<T> {
  try {
    return { ok: true, value: f() };
  } catch (e) {
    if (e instanceof Invalid) return { ok: false, error: e.message };
    return { ok: false, error: `invalid message (${e instanceof Error ? e.message : String(e)})` };
  }
}

// ---------------------------------------------------------------- shared pieces

export const RUN_ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const MAX_TEXT = 1_000_000; // a problem, a prompt text, a step
const MAX_IDS = 1 << 20;
const MAX_BLOCK = 1 << 24;
const MAX_WORKER_ID = 1024; // forks can take a run past its initial workers
const RUN_STATES: readonly RunState[] = ['loading', 'prefill', 'running', 'paused', 'finishing', 'finished', 'stopped', 'failed'];
const WORKER_STATES: readonly WorkerState[] = ['running', 'paused', 'finished'];
const BLOCK_KINDS: readonly BlockKind[] = ['prompt', 'worker', 'history', 'header', 'note', 'finisher'];
const LAYOUTS: readonly Layout[] = ['contiguous', 'interleaved', 'combined', 'isolated'];
const COMMANDS: readonly WebviewCommand[] = ['restart-engine', 'open-log', 'save-trace', 'open-panel', 'solve-selection'];

const runId = (v: unknown, p: string) => str(v, p, 64, { pattern: RUN_ID_PATTERN });
const workerId = (v: unknown, p: string) => int(v, p, 0, MAX_WORKER_ID);
const target = (v: unknown, p: string): number | 'all' => (v === 'all' ? 'all' : workerId(v, p));

function control(v: unknown, p: string): Control {
  const t = obj(v, p, ['type', 'target', 'text', 'worker', 'temperature']).type;
  switch (t) {
    case 'step':
      obj(v, p, ['type']);
      return { type: 'step' };
    case 'pause':
    case 'resume':
    case 'stop': {
      const o = obj(v, p, ['type', 'worker']);
      const w = opt(o, 'worker', (x) => workerId(x, `${p}.worker`));
      return w === undefined ? { type: t } : { type: t, worker: w };
    }
    case 'inject': {
      const o = obj(v, p, ['type', 'target', 'text']);
      return { type: 'inject', target: target(o.target, `${p}.target`), text: str(o.text, `${p}.text`, MAX_NOTE_CHARS, { nonEmpty: true }) };
    }
    case 'fork': {
      const o = obj(v, p, ['type', 'worker']);
      return { type: 'fork', worker: workerId(o.worker, `${p}.worker`) };
    }
    case 'set-temperature': {
      const o = obj(v, p, ['type', 'worker', 'temperature']);
      return { type: 'set-temperature', worker: workerId(o.worker, `${p}.worker`), temperature: num(o.temperature, `${p}.temperature`, 0, 5) };
    }
    default:
      return fail(`${p}.type`, `unknown control ${describe(t)}`);
  }
}

// ---------------------------------------------------------------- webview -> extension

/** Validates a message from a webview (untrusted). */
export function validateFromWebview(msg: unknown): Result<FromWebview> {
  return guard(() => {
    const t = obj(msg, 'message', ['type', 'runId', 'control', 'block', 'index', 'command']).type;
    switch (t) {
      case 'ready':
        obj(msg, 'message', ['type']);
        return { type: 'ready' };
      case 'control': {
        const o = obj(msg, 'message', ['type', 'runId', 'control']);
        return { type: 'control', runId: runId(o.runId, 'runId'), control: control(o.control, 'control') };
      }
      case 'inspect': {
        const o = obj(msg, 'message', ['type', 'runId', 'block', 'index']);
        return { type: 'inspect', runId: runId(o.runId, 'runId'), block: int(o.block, 'block', 0, MAX_BLOCK), index: int(o.index, 'index', 0, MAX_BLOCK) };
      }
      case 'select-run': {
        const o = obj(msg, 'message', ['type', 'runId']);
        return { type: 'select-run', runId: runId(o.runId, 'runId') };
      }
      case 'command': {
        const o = obj(msg, 'message', ['type', 'command', 'runId']);
        const out: FromWebview = { type: 'command', command: oneOf(o.command, 'command', COMMANDS) };
        const r = opt(o, 'runId', (x) => runId(x, 'runId'));
        if (r !== undefined) out.runId = r;
        return out;
      }
      default:
        return fail('message.type', `unknown message type ${describe(t)}`);
    }
  });
}

// ---------------------------------------------------------------- run configuration

const SAMPLING_KEYS = ['temperature', 'topP', 'topK', 'seed'];
const PROMPT_KEYS = ['system', 'selfCheck', 'finisher', 'headerOthers', 'headerOwn', 'answerPattern'];

function runConfig(v: unknown, p: string): RunConfig {
  const o = obj(v, p, ['problem', 'workers', 'workerNames', 'layout', 'sampling', 'maxTokens', 'selfCheckInterval', 'maxContext', 'prompts', 'raw']);
  const s = obj(o.sampling, `${p}.sampling`, SAMPLING_KEYS);
  const pr = obj(o.prompts, `${p}.prompts`, PROMPT_KEYS);
  const cfg: RunConfig = {
    problem: str(o.problem, `${p}.problem`, MAX_TEXT),
    workers: int(o.workers, `${p}.workers`, 1, MAX_WORKERS),
    workerNames: arr(o.workerNames, `${p}.workerNames`, MAX_WORKER_ID, (x, q) => str(x, q, 64)),
    layout: oneOf(o.layout, `${p}.layout`, LAYOUTS),
    sampling: {
      temperature: num(s.temperature, `${p}.sampling.temperature`, 0, 5),
      topP: num(s.topP, `${p}.sampling.topP`, 0, 1),
      topK: int(s.topK, `${p}.sampling.topK`, 0, 1 << 20),
      seed: int(s.seed, `${p}.sampling.seed`, 0, 2 ** 32 - 1),
    },
    maxTokens: int(o.maxTokens, `${p}.maxTokens`, 1, 1 << 24),
    selfCheckInterval: int(o.selfCheckInterval, `${p}.selfCheckInterval`, 0, 1 << 24),
    maxContext: int(o.maxContext, `${p}.maxContext`, 0, 1 << 24),
    prompts: {
      system: str(pr.system, `${p}.prompts.system`, MAX_TEXT),
      selfCheck: str(pr.selfCheck, `${p}.prompts.selfCheck`, MAX_TEXT),
      finisher: str(pr.finisher, `${p}.prompts.finisher`, MAX_TEXT),
      headerOthers: str(pr.headerOthers, `${p}.prompts.headerOthers`, MAX_TEXT),
      headerOwn: str(pr.headerOwn, `${p}.prompts.headerOwn`, MAX_TEXT),
      answerPattern: str(pr.answerPattern, `${p}.prompts.answerPattern`, 1000),
    },
  };
  if (o.raw !== undefined) {
    const r = obj(o.raw, `${p}.raw`, ['promptIds', 'workerIds', 'steps', 'stepIds', 'topLogits', 'promptText', 'workerTexts']);
    const idList = (x: unknown, q: string) => arr(x, q, MAX_IDS, (y, qq) => int(y, qq, 0, 2147483647));
    cfg.raw = {
      promptIds: idList(r.promptIds, `${p}.raw.promptIds`),
      workerIds: arr(r.workerIds, `${p}.raw.workerIds`, MAX_WORKERS, idList),
      steps: int(r.steps, `${p}.raw.steps`, 1, 1 << 24),
    };
    const stepIds = opt(r, 'stepIds', (x) => idList(x, `${p}.raw.stepIds`));
    if (stepIds) cfg.raw.stepIds = stepIds;
    const top = opt(r, 'topLogits', (x) => int(x, `${p}.raw.topLogits`, 0, 1000));
    if (top !== undefined) cfg.raw.topLogits = top;
    const promptText = opt(r, 'promptText', (x) => str(x, `${p}.raw.promptText`, MAX_TEXT));
    if (promptText !== undefined) cfg.raw.promptText = promptText;
    const workerTexts = opt(r, 'workerTexts', (x) => arr(x, `${p}.raw.workerTexts`, MAX_WORKERS, (y, q) => str(y, q, MAX_TEXT)));
    if (workerTexts !== undefined) cfg.raw.workerTexts = workerTexts;
  }
  return cfg;
}

export function validateRunConfig(v: unknown): Result<RunConfig> {
  return guard(() => runConfig(v, 'config'));
}

function modelSummary(v: unknown, p: string): ModelSummary {
  const o = obj(v, p, ['dir', 'arch', 'layers', 'hidden', 'heads', 'kvHeads', 'vocab', 'maxContext', 'device', 'builtIn']);
  return {
    dir: str(o.dir, `${p}.dir`, 4096),
    arch: str(o.arch, `${p}.arch`, 200),
    layers: int(o.layers, `${p}.layers`, 0, 1 << 20),
    hidden: int(o.hidden, `${p}.hidden`, 0, 1 << 24),
    heads: int(o.heads, `${p}.heads`, 0, 1 << 20),
    kvHeads: int(o.kvHeads, `${p}.kvHeads`, 0, 1 << 20),
    vocab: int(o.vocab, `${p}.vocab`, 0, 1 << 26),
    maxContext: int(o.maxContext, `${p}.maxContext`, 0, 1 << 26),
    device: str(o.device, `${p}.device`, 200),
    builtIn: bool(o.builtIn, `${p}.builtIn`),
  };
}

// ---------------------------------------------------------------- engine events

function engineEvent(v: unknown, p: string): EngineEvent {
  if (!isPlainObject(v)) fail(p, `expected an object, got ${describe(v)}`);
  const t = v.type;
  switch (t) {
    case 'run-state': {
      const o = obj(v, p, ['type', 'state', 'message']);
      const e: EngineEvent = { type: 'run-state', state: oneOf(o.state, `${p}.state`, RUN_STATES) };
      const m = opt(o, 'message', (x) => str(x, `${p}.message`, 10_000));
      if (m !== undefined) e.message = m;
      return e;
    }
    case 'worker': {
      const o = obj(v, p, ['type', 'info']);
      const i = obj(o.info, `${p}.info`, ['worker', 'name', 'state', 'forkedFrom', 'temperature']);
      const info = {
        worker: workerId(i.worker, `${p}.info.worker`),
        name: str(i.name, `${p}.info.name`, 200),
        state: oneOf(i.state, `${p}.info.state`, WORKER_STATES),
        temperature: num(i.temperature, `${p}.info.temperature`, 0, 100),
      } as WorkerInfo;
      const f = opt(i, 'forkedFrom', (x) => workerId(x, `${p}.info.forkedFrom`));
      if (f !== undefined) info.forkedFrom = f;
      return { type: 'worker', info };
    }
    case 'tokens': {
      const o = obj(v, p, ['type', 'worker', 'step', 'ids', 'text']);
      return {
        type: 'tokens',
        worker: workerId(o.worker, `${p}.worker`),
        step: int(o.step, `${p}.step`, 0, 1 << 24),
        ids: ids(o.ids, `${p}.ids`, MAX_IDS),
        text: str(o.text, `${p}.text`, MAX_TEXT),
      };
    }
    case 'step-finished': {
      const o = obj(v, p, ['type', 'worker', 'step', 'label', 'text', 'historyBlock']);
      return {
        type: 'step-finished',
        worker: workerId(o.worker, `${p}.worker`),
        step: int(o.step, `${p}.step`, 0, 1 << 24),
        label: str(o.label, `${p}.label`, 300),
        text: str(o.text, `${p}.text`, MAX_TEXT),
        historyBlock: int(o.historyBlock, `${p}.historyBlock`, -1, MAX_BLOCK),
      };
    }
    case 'block': {
      const o = obj(v, p, ['type', 'op', 'info']);
      const i = obj(o.info, `${p}.info`, ['block', 'kind', 'owner', 'length', 'label']);
      return {
        type: 'block',
        op: oneOf(o.op, `${p}.op`, ['created', 'grown', 'merged', 'freed'] as const),
        info: {
          block: int(i.block, `${p}.info.block`, 0, MAX_BLOCK),
          kind: oneOf(i.kind, `${p}.info.kind`, BLOCK_KINDS),
          owner: int(i.owner, `${p}.info.owner`, -1, MAX_WORKER_ID),
          length: int(i.length, `${p}.info.length`, 0, MAX_BLOCK),
          label: str(i.label, `${p}.info.label`, 300),
        },
      };
    }
    case 'views': {
      const o = obj(v, p, ['type', 'step', 'views']);
      return {
        type: 'views',
        step: int(o.step, `${p}.step`, 0, 1 << 24),
        views: arr(o.views, `${p}.views`, MAX_WORKER_ID, (w, q) =>
          arr(w, q, 100_000, (s, qq) => {
            const so = obj(s, qq, ['block', 'offset', 'length']);
            return { block: int(so.block, `${qq}.block`, 0, MAX_BLOCK), offset: int(so.offset, `${qq}.offset`, 0, 1 << 26), length: int(so.length, `${qq}.length`, 0, 1 << 26) };
          }),
        ),
      };
    }
    case 'attention': {
      const o = obj(v, p, ['type', 'step', 'shares']);
      return {
        type: 'attention',
        step: int(o.step, `${p}.step`, 0, 1 << 24),
        shares: arr(o.shares, `${p}.shares`, MAX_WORKER_ID, (w, q) => arr(w, q, 100_000, (x, qq) => num(x, qq, 0, 1.0001))),
      };
    }
    case 'stats': {
      const o = obj(v, p, ['type', 'step', 'tokens', 'tokensPerSecond', 'msPerStep']);
      return {
        type: 'stats',
        step: int(o.step, `${p}.step`, 0, 1 << 26),
        tokens: int(o.tokens, `${p}.tokens`, 0, 1 << 30),
        tokensPerSecond: num(o.tokensPerSecond, `${p}.tokensPerSecond`, 0, 1e9),
        msPerStep: num(o.msPerStep, `${p}.msPerStep`, 0, 1e9),
      };
    }
    case 'note': {
      const o = obj(v, p, ['type', 'target', 'block', 'text']);
      return { type: 'note', target: target(o.target, `${p}.target`), block: int(o.block, `${p}.block`, -1, MAX_BLOCK), text: str(o.text, `${p}.text`, MAX_TEXT) };
    }
    case 'answer': {
      const o = obj(v, p, ['type', 'text', 'answer']);
      return { type: 'answer', text: str(o.text, `${p}.text`, MAX_TEXT), answer: o.answer === null ? null : str(o.answer, `${p}.answer`, MAX_TEXT) };
    }
    case 'raw-result': {
      const o = obj(v, p, ['type', 'result']);
      const r = obj(o.result, `${p}.result`, ['workers', 'views']);
      return {
        type: 'raw-result',
        result: {
          workers: arr(r.workers, `${p}.result.workers`, MAX_WORKER_ID, (w, q) => {
            const wo = obj(w, q, ['worker', 'ids', 'topLogits']);
            const out: { worker: number; ids: number[]; topLogits?: { id: number; logit: number }[] } = {
              worker: workerId(wo.worker, `${q}.worker`),
              ids: arr(wo.ids, `${q}.ids`, MAX_IDS, (x, qq) => int(x, qq, 0, 2147483647)),
            };
            const tl = opt(wo, 'topLogits', (x) =>
              arr(x, `${q}.topLogits`, 10_000, (e, qq) => {
                const eo = obj(e, qq, ['id', 'logit']);
                return { id: int(eo.id, `${qq}.id`, 0, 2147483647), logit: num(eo.logit, `${qq}.logit`, -1e30, 1e30) };
              }),
            );
            if (tl) out.topLogits = tl;
            return out;
          }),
          views: arr(r.views, `${p}.result.views`, MAX_WORKER_ID, (w, q) =>
            arr(w, q, 100_000, (s, qq) => {
              const so = obj(s, qq, ['block', 'kind', 'owner', 'offset', 'length']);
              return {
                block: int(so.block, `${qq}.block`, 0, MAX_BLOCK),
                kind: oneOf(so.kind, `${qq}.kind`, BLOCK_KINDS),
                owner: int(so.owner, `${qq}.owner`, -1, MAX_WORKER_ID),
                offset: int(so.offset, `${qq}.offset`, 0, 1 << 26),
                length: int(so.length, `${qq}.length`, 0, 1 << 26),
              };
            }),
          ),
        },
      };
    }
    default:
      return fail(`${p}.type`, `unknown event ${describe(t)}`);
  }
}

export function validateEngineEvents(v: unknown): Result<EngineEvent[]> {
  return guard(() => arr(v, 'events', 1_000_000, engineEvent));
}

// ---------------------------------------------------------------- engine process <-> extension

const LOG_LEVELS = ['info', 'warn', 'error'] as const;

/** Validates a message from the engine process. */
export function validateEngineMessage(msg: unknown): Result<EngineMessage> {
  return guard((): EngineMessage => {
    if (!isPlainObject(msg)) fail('message', `expected an object, got ${describe(msg)}`);
    switch (msg.type) {
      case 'reply': {
        const o = obj(msg, 'message', ['type', 'id', 'ok', 'result', 'error']);
        const id = int(o.id, 'id', 0, Number.MAX_SAFE_INTEGER);
        if (o.ok === true) return { type: 'reply', id, ok: true, result: o.result };
        if (o.ok === false) return { type: 'reply', id, ok: false, error: str(o.error, 'error', 100_000) };
        return fail('ok', `expected true or false, got ${describe(o.ok)}`);
      }
      case 'ready': {
        const o = obj(msg, 'message', ['type', 'pid']);
        return { type: 'ready', pid: int(o.pid, 'pid', 0, 2 ** 31) };
      }
      case 'loaded': {
        const o = obj(msg, 'message', ['type', 'model']);
        return { type: 'loaded', model: modelSummary(o.model, 'model') };
      }
      case 'progress': {
        const o = obj(msg, 'message', ['type', 'id', 'message', 'fraction']);
        const out: EngineMessage = { type: 'progress', id: int(o.id, 'id', 0, Number.MAX_SAFE_INTEGER), message: str(o.message, 'message', 1000) };
        const f = opt(o, 'fraction', (x) => num(x, 'fraction', 0, 1));
        if (f !== undefined) out.fraction = f;
        return out;
      }
      case 'events': {
        const o = obj(msg, 'message', ['type', 'runId', 'events']);
        return { type: 'events', runId: runId(o.runId, 'runId'), events: arr(o.events, 'events', 1_000_000, engineEvent) };
      }
      case 'run-ended': {
        const o = obj(msg, 'message', ['type', 'runId', 'state', 'message']);
        const out: EngineMessage = { type: 'run-ended', runId: runId(o.runId, 'runId'), state: oneOf(o.state, 'state', RUN_STATES) };
        const m = opt(o, 'message', (x) => str(x, 'message', 100_000));
        if (m !== undefined) out.message = m;
        return out;
      }
      case 'log': {
        const o = obj(msg, 'message', ['type', 'level', 'text']);
        return { type: 'log', level: oneOf(o.level, 'level', LOG_LEVELS), text: str(o.text, 'text', 1_000_000) };
      }
      default:
        return fail('message.type', `unknown message type ${describe(msg.type)}`);
    }
  });
}

/** Validates a request arriving in the engine process. */
export function validateEngineRequest(msg: unknown): Result<EngineRequest> {
  return guard((): EngineRequest => {
    if (!isPlainObject(msg)) fail('request', `expected an object, got ${describe(msg)}`);
    const id = int(msg.id, 'id', 0, Number.MAX_SAFE_INTEGER);
    switch (msg.type) {
      case 'load': {
        const o = obj(msg, 'request', ['type', 'id', 'modelDir', 'device', 'threads']);
        return { type: 'load', id, modelDir: str(o.modelDir, 'modelDir', 4096), device: oneOf(o.device, 'device', ['auto', 'cpu', 'cuda'] as const), threads: int(o.threads, 'threads', 0, 1024) };
      }
      case 'start': {
        const o = obj(msg, 'request', ['type', 'id', 'runId', 'config']);
        return { type: 'start', id, runId: runId(o.runId, 'runId'), config: runConfig(o.config, 'config') };
      }
      case 'control': {
        const o = obj(msg, 'request', ['type', 'id', 'runId', 'control']);
        return { type: 'control', id, runId: runId(o.runId, 'runId'), control: control(o.control, 'control') };
      }
      case 'inspect': {
        const o = obj(msg, 'request', ['type', 'id', 'runId', 'block', 'index', 'attention']);
        return { type: 'inspect', id, runId: runId(o.runId, 'runId'), block: int(o.block, 'block', 0, MAX_BLOCK), index: int(o.index, 'index', 0, MAX_BLOCK), attention: bool(o.attention, 'attention') };
      }
      case 'shutdown':
        obj(msg, 'request', ['type', 'id']);
        return { type: 'shutdown', id };
      default:
        return fail('request.type', `unknown request type ${describe(msg.type)}`);
    }
  });
}

// ---------------------------------------------------------------- traces

/** Parses one line of a trace file (JSON Lines); typed arrays come back as typed arrays. */
export function parseTraceLine(line: string, lineNo = 1): Result<TraceLine> {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    return { ok: false, error: `line ${lineNo}: not JSON (${e instanceof Error ? e.message : String(e)})` };
  }
  const r = guard((): TraceLine => {
    if (!isPlainObject(v)) fail('line', `expected an object, got ${describe(v)}`);
    switch (v.type) {
      case 'hogwild-trace': {
        const o = obj(v, 'header', ['type', 'version', 'runId', 'title', 'startedAt', 'config', 'model']);
        const version = int(o.version, 'version', 1, 1000);
        if (version > TRACE_VERSION) fail('version', `trace version ${version} is newer than this extension understands (${TRACE_VERSION})`);
        return {
          type: 'hogwild-trace',
          version,
          runId: runId(o.runId, 'runId'),
          title: str(o.title, 'title', 1000),
          startedAt: str(o.startedAt, 'startedAt', 100),
          config: runConfig(o.config, 'config'),
          model: o.model === null ? null : modelSummary(o.model, 'model'),
        };
      }
      case 'events': {
        const o = obj(v, 'line', ['type', 't', 'events']);
        return { type: 'events', t: num(o.t, 't', 0, 1e12), events: arr(o.events, 'events', 1_000_000, engineEvent) };
      }
      case 'end': {
        const o = obj(v, 'line', ['type', 't', 'state', 'message']);
        const out: TraceLine = { type: 'end', t: num(o.t, 't', 0, 1e12), state: oneOf(o.state, 'state', RUN_STATES) };
        const m = opt(o, 'message', (x) => str(x, 'message', 100_000));
        if (m !== undefined) out.message = m;
        return out;
      }
      default:
        return fail('type', `unknown trace line ${describe(v.type)}`);
    }
  });
  return r.ok ? r : { ok: false, error: `line ${lineNo}: ${r.error}` };
}

/** JSON for a trace line: typed arrays become plain arrays. */
export function stringifyTraceLine(line: TraceLine): string {
  return JSON.stringify(line, (_k, v) => (ArrayBuffer.isView(v) && !(v instanceof DataView) ? Array.from(v as unknown as ArrayLike<number>) : v));
}
