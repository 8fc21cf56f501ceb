/**
 * The one message protocol of Hogwild, declared once as schemas; every TypeScript type is
 * inferred from its schema, so the validator and the type cannot drift. Imported by every side:
 *  - the extension host <-> the engine process (which hosts the native addon),
 *  - the extension host <-> the webviews (run panel, sidebar),
 *  - run traces (JSON Lines files anyone could have edited).
 * Messages that cross a process or webview boundary are untrusted until protocol/validate.ts
 * accepts them. Requests that expect an answer carry an `id`; the answer is a `reply` whose
 * `inReplyTo` names it (protocol/requests.ts pairs them).
 */
import * as v from 'valibot';
import * as L from './limits';
import { arr, bool, describe, ids, int, num, obj, oneOf, str, union } from './schema-kit';
import type { PrefillProgress } from './progress';
export type { PrefillProgress } from './progress';

const lit = <const T extends string>(t: T) => v.literal(t);
const opt = v.optional;

// ---------------------------------------------------------------- shared pieces

export const RunId = str(L.MAX_RUN_ID_CHARS, { pattern: L.RUN_ID_PATTERN });
export const WorkerId = int(0, L.MAX_WORKER_ID);
export const RequestId = int(0, L.MAX_REQUEST_ID);
const BlockId = int(0, L.MAX_BLOCK);
const Step = int(0, L.MAX_STEP);
const Text = str(L.MAX_TEXT);
const TokenIdList = arr(int(0, 2147483647), L.MAX_IDS);
/** A worker id or every worker. */
const Target = v.union([v.literal('all'), WorkerId], (i) => `expected a finite number, got ${describe(i.input)}`);

/** isolated: [prompt, own step] only, the evaluation's no-sharing control. */
export const LAYOUTS = ['contiguous', 'interleaved', 'combined', 'isolated'] as const;
export const DEVICES = ['auto', 'cuda', 'cpu'] as const; // the manifest's order
/** When the inspector's attention on every key is recorded: every step, or on the step after an
 * inspect asks (auto: every step on the CPU, on request on a GPU, where it takes a slower kernel). */
export const KEY_ATTENTION_MODES = ['auto', 'every-step', 'on-request'] as const;
/** K/V cache element types: auto = the checkpoint's; q8 (int8 + scales) is opt-in and CPU-only. */
export const KV_DTYPES = ['auto', 'bf16', 'f16', 'f32', 'q8'] as const; // the manifest's order
export const RUN_STATES = ['loading', 'prefill', 'running', 'paused', 'finishing', 'finished', 'stopped', 'failed'] as const;
/** The states after which a run takes no more events. */
export const FINAL_RUN_STATES = ['finished', 'stopped', 'failed'] as const;
export const WORKER_STATES = ['running', 'paused', 'finished'] as const;
export const BLOCK_KINDS = ['prompt', 'worker', 'history', 'header', 'note', 'finisher'] as const;
export const BLOCK_OPS = ['created', 'grown', 'merged', 'freed'] as const;
export const LOG_LEVELS = ['info', 'warn', 'error'] as const;
/** Extension commands a webview may ask for (an allow-list; anything else is rejected). */
export const WEBVIEW_COMMANDS = ['restart-engine', 'open-log', 'save-trace', 'export-markdown', 'open-panel', 'solve-selection'] as const;

export type Layout = (typeof LAYOUTS)[number];
export type Device = (typeof DEVICES)[number];
export type KvDtype = (typeof KV_DTYPES)[number];
export type RunState = (typeof RUN_STATES)[number];
export type WorkerState = (typeof WORKER_STATES)[number];
export type BlockKind = (typeof BLOCK_KINDS)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];
export type WebviewCommand = (typeof WEBVIEW_COMMANDS)[number];

// ---------------------------------------------------------------- run configuration

export const SamplingConfig = obj({
  temperature: num(0, L.MAX_TEMPERATURE), // 0 = greedy
  topP: num(0, 1), // 1 = off
  topK: int(0, L.MAX_TOP_K), // 0 = off
  seed: int(0, L.MAX_SEED),
});

/** Texts and names of the collaboration protocol; every one is configurable. */
export const PromptTexts = obj({
  system: Text, // tells the workers they share one workspace
  selfCheck: Text, // asked at the start of a step every `selfCheckInterval` tokens
  finisher: Text, // asks for the final answer when the budget ends
  headerOthers: Text, // combined layout: header before the others' unfinished steps
  headerOwn: Text, // combined layout: header before the own unfinished step
  answerPattern: str(L.MAX_ANSWER_PATTERN_CHARS), // regex source; group 1 is the answer
});

/** Raw mode: exact ids, no template, headers, history moves, self-check or finisher. */
export const RawRunConfig = obj({
  promptIds: TokenIdList,
  workerIds: arr(TokenIdList, L.MAX_WORKERS), // first input per worker
  /** Text tokenised as it is (no template, no special tokens added), used where the ids are empty. */
  promptText: opt(Text),
  workerTexts: opt(arr(Text, L.MAX_WORKERS)), // per worker, used where that worker's ids are empty
  steps: int(1, L.MAX_STEP), // exactly this many steps
  stepIds: opt(TokenIdList), // tokens that end a step (interleaved / combined); none = never
  topLogits: opt(int(0, L.MAX_TOP_LOGITS)), // report the top K logits of the last step
});

export const RunConfig = obj({
  problem: Text, // the user's text (templated), or raw text when raw
  workers: int(1, L.MAX_WORKERS),
  workerNames: arr(str(64), L.MAX_WORKER_ID), // one per worker (shorter lists are completed with defaults)
  layout: oneOf(LAYOUTS),
  sampling: SamplingConfig,
  maxTokens: int(1, L.MAX_TOKENS), // generated-token budget of all workers together
  selfCheckInterval: int(0, L.SELF_CHECK_OFF), // generated tokens between self-check questions
  maxContext: int(0, L.MAX_CONTEXT), // 0 = the model's
  attentionShares: opt(bool()), // report attention shares per step (heatmap, inspector); default on
  keyAttention: opt(oneOf(KEY_ATTENTION_MODES)), // with attentionShares: when the inspector's attention per key is recorded; default auto
  kvBudgetMB: opt(int(0, 1 << 30)), // KV memory budget in MB; 0 or absent = from the free memory
  prompts: PromptTexts,
  raw: opt(RawRunConfig),
});

export type SamplingConfig = v.InferOutput<typeof SamplingConfig>;
export type PromptTexts = v.InferOutput<typeof PromptTexts>;
export type RawRunConfig = v.InferOutput<typeof RawRunConfig>;
export type RunConfig = v.InferOutput<typeof RunConfig>;

// ---------------------------------------------------------------- engine state

export const WorkerInfo = obj({
  worker: WorkerId,
  name: str(L.MAX_NAME_WIRE_CHARS),
  state: oneOf(WORKER_STATES),
  forkedFrom: opt(WorkerId), // the worker this one was forked from
  temperature: num(0, 100),
});

export const BlockInfo = obj({
  block: BlockId,
  kind: oneOf(BLOCK_KINDS),
  owner: int(-1, L.MAX_WORKER_ID), // worker id, -1 for shared blocks
  length: int(0, L.MAX_BLOCK),
  label: str(300), // "prompt", "Alice [3]", "note to all", ...
});

/** One segment of a worker's view: block `block` starts at view position `offset`. */
export const ViewSegmentInfo = obj({ block: BlockId, offset: int(0, L.MAX_POSITION), length: int(0, L.MAX_POSITION) });

export const RawRunResult = obj({
  workers: arr(
    obj({
      worker: WorkerId,
      ids: TokenIdList,
      topLogits: opt(arr(obj({ id: int(0, 2147483647), logit: num(-1e30, 1e30) }), 10_000)),
    }),
    L.MAX_WORKER_ID,
  ),
  views: arr(
    arr(obj({ block: BlockId, kind: oneOf(BLOCK_KINDS), owner: int(-1, L.MAX_WORKER_ID), offset: int(0, L.MAX_POSITION), length: int(0, L.MAX_POSITION) }), L.MAX_SEGMENTS),
    L.MAX_WORKER_ID,
  ),
});

export type WorkerInfo = v.InferOutput<typeof WorkerInfo>;
export type BlockInfo = v.InferOutput<typeof BlockInfo>;
export type ViewSegmentInfo = v.InferOutput<typeof ViewSegmentInfo>;
export type RawRunResult = v.InferOutput<typeof RawRunResult>;

// ---------------------------------------------------------------- engine events
// Events come in batches (`events` message), never one message per token.

export const EngineEvent = union('event', [
  obj({ type: lit('run-state'), state: oneOf(RUN_STATES), message: opt(str(10_000)) }),
  obj({ type: lit('worker'), info: WorkerInfo }),
  /** ids: bulk data as a typed array (structured clone over IPC, ArrayBuffer transfer to webviews). */
  /** pieces[i]: the text that id i added to the stream (they join to `text`); absent in old traces. */
  obj({ type: lit('tokens'), worker: WorkerId, step: Step, ids: ids(L.MAX_IDS), text: Text, pieces: opt(arr(Text, L.MAX_IDS)) }),
  /** The tokens of a block whose text is not streamed (the prompt, the headers). */
  obj({ type: lit('block-text'), block: BlockId, ids: ids(L.MAX_IDS), pieces: arr(Text, L.MAX_IDS) }),
  obj({ type: lit('step-finished'), worker: WorkerId, step: Step, label: str(300), text: Text, historyBlock: int(-1, L.MAX_BLOCK) }),
  obj({ type: lit('block'), op: oneOf(BLOCK_OPS), info: BlockInfo }),
  /** views[w]: worker w's view, in view order. */
  obj({ type: lit('views'), step: Step, views: arr(arr(ViewSegmentInfo, L.MAX_SEGMENTS), L.MAX_WORKER_ID) }),
  /** shares[w][s]: worker w's attention share on segment s of its view (mean over heads and layers). */
  /** layers[w][l][s]: the same per layer (absent when not recorded). */
  obj({
    type: lit('attention'),
    step: Step,
    shares: arr(arr(num(0, 1.0001), L.MAX_SEGMENTS), L.MAX_WORKER_ID),
    layers: opt(arr(arr(arr(num(0, 1.0001), L.MAX_SEGMENTS), L.MAX_LAYERS), L.MAX_WORKER_ID)),
  }),
  /** kvBytes: the KV cache storage the engine holds now. */
  obj({ type: lit('stats'), step: Step, tokens: int(0, 1 << 30), tokensPerSecond: num(0, 1e9), msPerStep: num(0, 1e9), kvBytes: opt(num(0, 1e15)) }),
  /** The prompt's prefill (chunk by chunk): tokens done of total, and the rate so far. */
  obj({ type: lit('progress'), phase: lit('prefill'), done: int(0, L.MAX_POSITION), total: int(0, L.MAX_POSITION), tokensPerSecond: num(0, 1e9) }),
  obj({ type: lit('note'), target: Target, block: int(-1, L.MAX_BLOCK), text: Text, ids: opt(ids(L.MAX_IDS)), pieces: opt(arr(Text, L.MAX_IDS)) }),
  obj({ type: lit('answer'), text: Text, answer: v.nullable(Text) }),
  obj({ type: lit('raw-result'), result: RawRunResult }),
]);
export const EngineEvents = arr(EngineEvent, L.MAX_EVENTS);

export type EngineEvent = v.InferOutput<typeof EngineEvent>;
/** One kind of event, by its type: `EventOf<'tokens'>`. */
export type EventOf<T extends EngineEvent['type']> = Extract<EngineEvent, { type: T }>;

// ---------------------------------------------------------------- controls

export const Control = union('control', [
  obj({ type: lit('pause'), worker: opt(WorkerId) }), // no worker: the whole run
  obj({ type: lit('resume'), worker: opt(WorkerId) }),
  obj({ type: lit('step') }), // one step while paused
  obj({ type: lit('stop'), worker: opt(WorkerId) }), // no worker: end the run; else that worker finishes
  obj({ type: lit('inject'), target: Target, text: str(L.MAX_NOTE_CHARS, { nonEmpty: true }) }),
  obj({ type: lit('fork'), worker: WorkerId }),
  obj({ type: lit('set-temperature'), worker: WorkerId, temperature: num(0, L.MAX_TEMPERATURE) }),
]);
export type Control = v.InferOutput<typeof Control>;

/** What a user sees when inspecting one cache position. */
export const InspectResult = obj({
  block: BlockId,
  index: int(0, L.MAX_BLOCK), // index inside the block
  token: int(0, 2147483647),
  text: str(10_000),
  author: int(-1, L.MAX_WORKER_ID), // worker id, -1 for shared text
  step: int(-1, L.MAX_STEP), // the author's step
  // null: not in that view
  seenAt: arr(obj({ worker: WorkerId, position: v.nullable(int(0, L.MAX_POSITION)), rotation: v.nullable(int(-L.MAX_POSITION, L.MAX_POSITION)) }), L.MAX_WORKER_ID),
  attention: opt(arr(obj({ worker: WorkerId, share: num(0, 1.0001) }), L.MAX_WORKER_ID)), // at attentionStep
  attentionStep: opt(int(0, L.MAX_STEP)), // the step the attention was recorded at
  attentionPending: opt(bool()), // the attention is older than the last step, or absent: the next step records it
});
export type InspectResult = v.InferOutput<typeof InspectResult>;

// ---------------------------------------------------------------- extension <-> engine process

export const EngineRequest = union('request type', [
  obj({ type: lit('load'), id: RequestId, modelDir: str(L.MAX_PATH_CHARS), device: oneOf(DEVICES), threads: int(0, L.MAX_THREADS), kvDtype: opt(oneOf(KV_DTYPES)) }),
  obj({ type: lit('start'), id: RequestId, runId: RunId, config: RunConfig }),
  obj({ type: lit('control'), id: RequestId, runId: RunId, control: Control }),
  obj({ type: lit('inspect'), id: RequestId, runId: RunId, block: BlockId, index: int(0, L.MAX_BLOCK), attention: bool() }),
  obj({ type: lit('shutdown'), id: RequestId }),
]);
export type EngineRequest = v.InferOutput<typeof EngineRequest>;

export const ModelSummary = obj({
  dir: str(L.MAX_PATH_CHARS),
  arch: str(200),
  layers: int(0, 1 << 20),
  hidden: int(0, 1 << 24),
  heads: int(0, 1 << 20),
  kvHeads: int(0, 1 << 20),
  vocab: int(0, 1 << 26),
  maxContext: int(0, 1 << 26),
  device: str(200),
  kvDtype: opt(str(20)), // K/V element type: "bf16", "f16", "f32" (the checkpoint's, or asked for) or "q8"
  builtIn: bool(),
});
export type ModelSummary = v.InferOutput<typeof ModelSummary>;

/** The answer to a request: `inReplyTo` is the request's id (both channels use this shape). */
const replyOf = () =>
  v.variant('ok', [
    obj({ type: lit('reply'), inReplyTo: RequestId, ok: v.literal(true), result: opt(v.unknown()) }),
    obj({ type: lit('reply'), inReplyTo: RequestId, ok: v.literal(false), error: str(100_000) }),
  ], (i) => `expected true or false, got ${describe(i.input)}`);
export const Reply = replyOf();
export type Reply = v.InferOutput<typeof Reply>;

export const EngineMessage = union('message type', [
  replyOf(),
  obj({ type: lit('ready'), pid: int(0, 2 ** 31) }),
  obj({ type: lit('loaded'), model: ModelSummary }),
  /**
   * Progress of a long request (model load): a line for the progress notification; `load`
   * while the engine reads the weights (bytes done of the files' total).
   */
  obj({
    type: lit('progress'),
    inReplyTo: RequestId,
    message: str(1000),
    fraction: opt(num(0, 1)),
    load: opt(obj({ phase: str(20), done: num(0, 1e15), total: num(0, 1e15) })),
  }),
  /** A run's events; the last batch of a run ends with a run-state in FINAL_RUN_STATES. */
  obj({ type: lit('events'), runId: RunId, events: EngineEvents }),
  obj({ type: lit('log'), level: oneOf(LOG_LEVELS), text: str(1_000_000) }),
]);
export type EngineMessage = v.InferOutput<typeof EngineMessage>;

/** The engine process's lifecycle as the extension's client sees it. */
export type EngineState = 'idle' | 'starting' | 'ready' | 'loading' | 'loaded' | 'stopping' | 'crashed';

/** The engine as the views show it: its state, why it is there, and a model load's progress line. */
export interface EngineStatus {
  state: EngineState;
  message?: string;
  progress?: string;
}

// ---------------------------------------------------------------- run traces (JSON Lines)
// Line 1 is a TraceHeader, then one TraceBatch per engine batch, then (normally) a TraceEnd.
// Typed arrays are written as plain JSON arrays and revived by the `ids` schema.

export const TraceHeader = obj({
  type: lit('hogwild-trace'),
  version: v.pipe(int(1, 1000), v.check((n) => n <= L.TRACE_VERSION, (i) => `trace version ${String(i.input)} is newer than this extension understands (${L.TRACE_VERSION})`)),
  runId: RunId,
  title: str(1000),
  startedAt: str(100), // ISO time
  config: RunConfig,
  model: v.nullable(ModelSummary),
});
export const TraceBatch = obj({ type: lit('events'), t: num(0, 1e12), events: EngineEvents }); // t: ms since the start
export const TraceEnd = obj({ type: lit('end'), t: num(0, 1e12), state: oneOf(RUN_STATES), message: opt(str(100_000)) });
export const TraceLine = union('trace line', [TraceHeader, TraceBatch, TraceEnd]);

export type TraceHeader = v.InferOutput<typeof TraceHeader>;
export type TraceBatch = v.InferOutput<typeof TraceBatch>;
export type TraceEnd = v.InferOutput<typeof TraceEnd>;
export type TraceLine = v.InferOutput<typeof TraceLine>;

// ---------------------------------------------------------------- extension <-> webviews

/** How a run came about: live from the engine, or replayed from a trace file (no controls). */
export type RunSource = 'live' | 'replay';

export interface RunSummary {
  runId: string;
  title: string;
  state: RunState;
  source: RunSource;
  message?: string; // why it failed or stopped
  tokens: number; // generated by all workers
  tokensPerSecond: number;
  workers: (WorkerInfo & { step: number; tokens: number; tokensPerSecond: number; lastLine: string })[];
  prefill?: PrefillProgress; // while the prompt is being prefilled
  kvBytes?: number; // KV cache memory in use (live runs)
}


/**
 * Extension -> webview. Trusted (the extension wrote it), so declared as types only; the
 * webview bundles stay free of schemas they would never run.
 */
export type ToWebview =
  /** (Re)starts a panel on a run; `events` is everything so far (a late or restored panel catches up). */
  | { type: 'init'; runId: string; title: string; config: RunConfig; source: RunSource; events: EngineEvent[] }
  | { type: 'events'; runId: string; events: EngineEvent[] }
  | { type: 'runs'; runs: RunSummary[]; activeRunId: string | null }
  /** progress: while the model loads, what it is doing ("Loading X: reading the weights 620 MB / 1.20 GB (52%)"). */
  | ({ type: 'engine' } & EngineStatus)
  /** The answer to a request of the webview (inspect, control, command). */
  | Reply
  /** Something the user should know that answers no request (a rejected message). */
  | { type: 'notice'; level: LogLevel; message: string }
  /** Open the token inspector on a cache position (the sidebar's compact map was clicked). */
  | { type: 'inspect-token'; runId: string; block: number; index: number };

/** Webview -> extension: untrusted. Requests (with an id) get a reply naming it. */
export const FromWebview = union('message type', [
  obj({ type: lit('ready') }),
  obj({ type: lit('control'), id: RequestId, runId: RunId, control: Control }),
  obj({ type: lit('inspect'), id: RequestId, runId: RunId, block: BlockId, index: int(0, L.MAX_BLOCK) }),
  obj({ type: lit('select-run'), runId: RunId }),
  /** `token` (open-panel only): the panel opens its inspector on that cache position. */
  obj({ type: lit('command'), id: RequestId, command: oneOf(WEBVIEW_COMMANDS), runId: opt(RunId), token: opt(obj({ block: BlockId, index: int(0, L.MAX_BLOCK) })) }),
]);
export type FromWebview = v.InferOutput<typeof FromWebview>;
/** Webview messages that expect a reply. */
export type WebviewRequest = Extract<FromWebview, { id: number }>;
