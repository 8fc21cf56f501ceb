/**
 * The one message protocol of Hogwild, imported by every side:
 *  - the extension host <-> the engine process (which hosts the native addon),
 *  - the extension host <-> the webviews (run panel, sidebar).
 * Every message is a discriminated union on `type`. Messages that cross a process or a
 * webview boundary are untrusted until `validate*` in protocol-validate.ts accepts them.
 */

// ---------------------------------------------------------------- run configuration

export type Layout = 'contiguous' | 'interleaved' | 'combined';
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
  steps: number; // exactly this many steps
  stepIds?: number[]; // tokens that end a step (interleaved / combined); none = never
  topLogits?: number; // report the top K logits of the last step
}

export const MAX_WORKERS = 16;

// ---------------------------------------------------------------- engine state

export type RunState = 'loading' | 'prefill' | 'running' | 'paused' | 'finishing' | 'finished' | 'stopped' | 'failed';
export type WorkerState = 'running' | 'paused' | 'finished';
export type BlockKind = 'prompt' | 'worker' | 'history' | 'header' | 'note';

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
  | { type: 'tokens'; worker: number; step: number; ids: number[]; text: string }
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
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'step' } // one step while paused
  | { type: 'stop' }
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
  | { type: 'events'; runId: string; events: EngineEvent[] }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; text: string };

// ---------------------------------------------------------------- extension <-> webviews

export interface RunSummary {
  runId: string;
  title: string;
  state: RunState;
  workers: (WorkerInfo & { step: number; tokens: number; tokensPerSecond: number; lastLine: string })[];
}

export type ToWebview =
  | { type: 'init'; runId: string; title: string; config: RunConfig }
  | { type: 'events'; runId: string; events: EngineEvent[] }
  | { type: 'runs'; runs: RunSummary[]; activeRunId: string | null }
  | { type: 'inspect-result'; result: InspectResult }
  | { type: 'error'; message: string };

export type FromWebview =
  | { type: 'ready' }
  | { type: 'control'; runId: string; control: Control }
  | { type: 'inspect'; runId: string; block: number; index: number }
  | { type: 'select-run'; runId: string };
