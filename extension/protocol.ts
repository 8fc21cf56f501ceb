/**
 * The one message protocol of Hogwild, imported by every side:
 *  - the extension host <-> the engine process (which hosts the native addon),
 *  - the extension host <-> the webviews (run panel, sidebar).
 * Every message is a discriminated union on `type`. Messages that cross a process or a
 * webview boundary are untrusted until `validate*` in protocol-validate.ts accepts them.
 */

// ---------------------------------------------------------------- run configuration

/** isolated: [prompt, own step] only, the evaluation's no-sharing control. */
export type Layout = 'contiguous' | 'interleaved' | 'combined' | 'isolated';
export type Device = 'auto' | 'cpu' | 'cuda';

export interface SamplingConfig {
  temperature: number; // 0 = greedy
  topP: number; // 1 = off
  topK: number; // 0 = off
  seed: number;
}

/** Texts and names of the collaboration protocol; every one is configurable. */
export interface PromptTexts {
  system: string; // tells the workers they share one workspace
  selfCheck: string; // asked at the start of a step every `selfCheckInterval` tokens
  finisher: string; // asks for the final answer when the budget ends
  headerOthers: string; // combined layout: header before the others' unfinished steps
  headerOwn: string; // combined layout: header before the own unfinished step
  answerPattern: string; // regex source; group 1 is the answer (default \boxed{...})
}

export interface RunConfig {
  problem: string; // the user's text (templated), or raw text when raw
  workers: number; // 1..maxWorkers
  workerNames: string[]; // one per worker (shorter lists are completed with defaults)
  layout: Layout;
  sampling: SamplingConfig;
  maxTokens: number; // generated-token budget of all workers together
  selfCheckInterval: number; // ~1000: generated tokens between self-check questions
  maxContext: number; // 0 = the model's
  prompts: PromptTexts;
  /** Raw mode: exact ids, no template, headers, history moves, self-check or finisher. */
  raw?: RawRunConfig;
}

export interface RawRunConfig {
  promptIds: number[];
  workerIds: number[][]; // first input per worker
  /** Text tokenised as it is (no template, no special tokens added), used where the ids are empty. */
  promptText?: string;
  workerTexts?: string[]; // per worker, used where that worker's ids are empty
  steps: number; // exactly this many steps
  stepIds?: number[]; // tokens that end a step (interleaved / combined); none = never
  topLogits?: number; // report the top K logits of the last step
}

export const MAX_WORKERS = 16;

// ---------------------------------------------------------------- engine state

export type RunState = 'loading' | 'prefill' | 'running' | 'paused' | 'finishing' | 'finished' | 'stopped' | 'failed';
export type WorkerState = 'running' | 'paused' | 'finished';
export type BlockKind = 'prompt' | 'worker' | 'history' | 'header' | 'note' | 'finisher';

export interface WorkerInfo {
  worker: number;
  name: string;
  state: WorkerState;
  forkedFrom?: number; // the worker this one was forked from
  temperature: number;
}

export interface BlockInfo {
  block: number;
  kind: BlockKind;
  owner: number; // worker id, -1 for shared blocks
  length: number;
  label: string; // "prompt", "Alice [3]", "note to all", ...
}

/** One segment of a worker's view: block `block` starts at view position `offset`. */
export interface ViewSegmentInfo {
  block: number;
  offset: number;
  length: number;
}

// ---------------------------------------------------------------- engine events
// Events come in batches (`events` message), never one message per token.

export type EngineEvent =
  | { type: 'run-state'; state: RunState; message?: string }
  | { type: 'worker'; info: WorkerInfo }
  /** ids: bulk data as a typed array (structured clone over IPC, ArrayBuffer transfer to webviews). */
  | { type: 'tokens'; worker: number; step: number; ids: Int32Array; text: string }
  | { type: 'step-finished'; worker: number; step: number; label: string; text: string; historyBlock: number }
  | { type: 'block'; op: 'created' | 'grown' | 'merged' | 'freed'; info: BlockInfo }
  | { type: 'views'; step: number; views: ViewSegmentInfo[][] } // per worker, in view order
  /** shares[w][s]: worker w's attention share on segment s of its view (mean over heads and layers). */
  | { type: 'attention'; step: number; shares: number[][] }
  | { type: 'stats'; step: number; tokens: number; tokensPerSecond: number; msPerStep: number }
  | { type: 'note'; target: number | 'all'; block: number; text: string }
  | { type: 'answer'; text: string; answer: string | null }
  | { type: 'raw-result'; result: RawRunResult };

export interface RawRunResult {
  workers: { worker: number; ids: number[]; topLogits?: { id: number; logit: number }[] }[];
  views: { block: number; kind: BlockKind; owner: number; offset: number; length: number }[][];
}

// ---------------------------------------------------------------- controls

export type Control =
  | { type: 'pause'; worker?: number } // no worker: the whole run
  | { type: 'resume'; worker?: number }
  | { type: 'step' } // one step while paused
  | { type: 'stop'; worker?: number } // no worker: end the run; else that worker finishes
  | { type: 'inject'; target: number | 'all'; text: string }
  | { type: 'fork'; worker: number }
  | { type: 'set-temperature'; worker: number; temperature: number };

export const MAX_NOTE_CHARS = 4000;

/** What a user sees when inspecting one cache position. */
export interface InspectResult {
  block: number;
  index: number; // index inside the block
  token: number;
  text: string;
  author: number; // worker id, -1 for shared text
  step: number; // the author's step
  seenAt: { worker: number; position: number | null; rotation: number | null }[]; // null: not in that view
  attention?: { worker: number; share: number }[]; // from the last step, on request
}

// ---------------------------------------------------------------- extension <-> engine process

export type EngineRequest =
  | { type: 'load'; id: number; modelDir: string; device: Device; threads: number }
  | { type: 'start'; id: number; runId: string; config: RunConfig }
  | { type: 'control'; id: number; runId: string; control: Control }
  | { type: 'inspect'; id: number; runId: string; block: number; index: number; attention: boolean }
  | { type: 'shutdown'; id: number };

export interface ModelSummary {
  dir: string;
  arch: string;
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  maxContext: number;
  device: string;
  builtIn: boolean;
}

export type EngineMessage =
  | { type: 'reply'; id: number; ok: true; result?: unknown }
  | { type: 'reply'; id: number; ok: false; error: string }
  | { type: 'ready'; pid: number }
  | { type: 'loaded'; model: ModelSummary }
  /** Progress of a long request (model load): a line for the progress notification. */
  | { type: 'progress'; id: number; message: string; fraction?: number }
  | { type: 'events'; runId: string; events: EngineEvent[] }
  /** A run's loop has ended (finished, stopped or failed); no more events for runId. */
  | { type: 'run-ended'; runId: string; state: RunState; message?: string }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; text: string };

/** The engine process's lifecycle as the extension's client sees it. */
export type EngineState = 'idle' | 'starting' | 'ready' | 'loading' | 'loaded' | 'stopping' | 'crashed';

// ---------------------------------------------------------------- run traces (JSON Lines)
// Line 1 is a TraceHeader, then one TraceBatch per engine batch, then (normally) a TraceEnd.
// Typed arrays are written as plain JSON arrays and revived by protocol-validate.ts.

export const TRACE_VERSION = 1;

export interface TraceHeader {
  type: 'hogwild-trace';
  version: number;
  runId: string;
  title: string;
  startedAt: string; // ISO time
  config: RunConfig;
  model: ModelSummary | null;
}

export interface TraceBatch {
  type: 'events';
  t: number; // ms since the run started
  events: EngineEvent[];
}

export interface TraceEnd {
  type: 'end';
  t: number;
  state: RunState;
  message?: string;
}

export type TraceLine = TraceHeader | TraceBatch | TraceEnd;

// ---------------------------------------------------------------- extension <-> webviews

export interface RunSummary {
  runId: string;
  title: string;
  state: RunState;
  source: RunSource;
  message?: string; // why it failed or stopped
  tokens: number; // generated by all workers
  tokensPerSecond: number;
  workers: (WorkerInfo & { step: number; tokens: number; tokensPerSecond: number; lastLine: string })[];
}

/** How a run came about: live from the engine, or replayed from a trace file (no controls). */
export type RunSource = 'live' | 'replay';

export type ToWebview =
  /** (Re)starts a panel on a run; `events` is everything so far (a late or restored panel catches up). */
  | { type: 'init'; runId: string; title: string; config: RunConfig; source: RunSource; events: EngineEvent[] }
  | { type: 'events'; runId: string; events: EngineEvent[] }
  | { type: 'runs'; runs: RunSummary[]; activeRunId: string | null }
  | { type: 'engine'; state: EngineState; message?: string }
  | { type: 'inspect-result'; result: InspectResult }
  /** A control or command the webview asked for failed (or, with level info, succeeded). */
  | { type: 'notice'; level: 'info' | 'warn' | 'error'; message: string }
  | { type: 'error'; message: string };

/** Extension commands a webview may ask for (an allow-list; anything else is rejected). */
export type WebviewCommand = 'restart-engine' | 'open-log' | 'save-trace' | 'open-panel' | 'solve-selection';

export type FromWebview =
  | { type: 'ready' }
  | { type: 'control'; runId: string; control: Control }
  | { type: 'inspect'; runId: string; block: number; index: number }
  | { type: 'select-run'; runId: string }
  | { type: 'command'; command: WebviewCommand; runId?: string };
