/**
 * The native addon (native/addon: hogwild_native.node) as TypeScript sees it. Declared beside
 * the binding so that an event's shape is written in the three places that make it: the C++
 * type (native/src/hogwild/events.h), its visitor (convert.cpp) and this declaration.
 * extension/engine/native.ts loads the addon and re-exports these types.
 */
import type { Layout } from '../../protocol/messages';

export interface NativeModelConfig {
  arch: string; // "Qwen3ForCausalLM", ...
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  maxContext: number;
  eosIds: number[];
  tied: boolean;
}

export interface ForwardRow {
  seq: number; // a sequence made by createSequence()
  tokens: Int32Array; // new tokens appended to it
  allLogits?: boolean; // logits of every new token instead of only the last
}

export interface SamplingParams {
  temperature: number; // 0 = greedy
  topK: number; // 0 = off
  topP: number; // 1 = off
}

export interface GenerateRequest {
  promptIds: Int32Array;
  maxTokens: number;
  sampling: SamplingParams;
  seed: number;
  stopIds: Int32Array; // generation ends after any of these
}

export interface GenerateResult {
  ids: number[];
  promptMs: number; // prefill time
  decodeMs: number; // time of the generated tokens after the first
}

/** Policy handed to the Hogwild engine as data (see extension/collab/). */
export interface NativeRunConfig {
  workers: number;
  layout: Layout;
  promptIds: Int32Array; // the shared prompt block, prefilled once
  workerFirstIds: Int32Array[]; // per worker: its first input (e.g. its first step header)
  headerPrefixIds: Int32Array[]; // per worker: "**Name [" ; the step number follows
  digitIds: Int32Array; // ids of "0".."9" (10 entries)
  headerSuffixIds: Int32Array; // "]:** "
  headerOthersIds: Int32Array; // combined layout: before the others' unfinished steps
  headerOwnIds: Int32Array; // combined layout: before the own unfinished step
  selfCheckIds: Int32Array; // prepended to the next step after every selfCheckInterval tokens
  selfCheckInterval: number;
  finisherIds: Int32Array; // appended to the linearised view when the budget ends
  finisherMaxTokens: number;
  tokenBytes: Uint8Array; // every vocabulary entry's bytes, concatenated
  tokenOffsets: Int32Array; // vocab + 1 offsets into tokenBytes
  eosIds: Int32Array;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  maxTokens: number; // generated tokens of all workers together
  maxContext: number; // 0 = the model's
  maxContextSetting?: string; // how the user sets maxContext, named in the engine's refusals
  prefillChunk?: number; // most prompt tokens per forward (default 128): progress and Stop between chunks
  prefillReportSeconds?: number; // paced chunks: small first, then about this long at most (default 1; 0 = fixed)
  kvBudgetBytes?: number; // KV memory budget; 0 = 80% of the available memory
  kvBudgetSetting?: string; // how the user sets the budget, named in messages
  attentionShares: boolean; // report per-step attention shares
  /** With attentionShares: when the attention on every key (inspect) is recorded (default auto:
   * every step unless the backend says it is costly, as CUDA's is). */
  keyAttention?: 'auto' | 'every-step' | 'on-request';
  raw: boolean; // raw mode: no headers, moves (unless stepIds), self-check, finisher, eos stop
  rawSteps: number; // raw mode: exactly this many steps
  rawStepIds: Int32Array; // raw mode: tokens that end a step
  topLogits: number; // raw mode: top-K logits of the last step
}

export type NativeEvent =
  | { type: 'run-state'; state: string; message?: string }
  | { type: 'worker'; worker: number; state: string; forkedFrom: number; temperature: number }
  /** Tokens written into the worker's block this step (headers included), in order. */
  | { type: 'tokens'; worker: number; step: number; ids: Int32Array }
  | { type: 'step-finished'; worker: number; step: number; historyBlock: number; ids: Int32Array }
  | { type: 'block'; op: 'created' | 'grown' | 'merged' | 'freed'; block: number; kind: string; owner: number; length: number; step: number }
  | { type: 'views'; step: number; views: Int32Array[] } // per worker: [block, offset, length]*
  /** shares[w]: one per view segment, mean over heads and layers; layerShares[w]: [layers][segments]. */
  | { type: 'attention'; step: number; shares: Float32Array[]; layerShares: Float32Array[] }
  | { type: 'stats'; step: number; tokens: number; tokensPerSecond: number; msPerStep: number; kvBytes?: number }
  | { type: 'progress'; phase: string; done: number; total: number; tokensPerSecond: number }
  | { type: 'note'; target: number; block: number; ids: Int32Array } // target -1 = all
  | { type: 'finisher-tokens'; ids: Int32Array }
  | { type: 'raw-result'; workers: { ids: Int32Array; topIds?: Int32Array; topLogits?: Float32Array }[] }
  | { type: 'error'; message: string };

export interface NativeInspect {
  block: number;
  index: number;
  token: number;
  author: number;
  step: number;
  seenAt: { worker: number; position: number; rotation: number }[]; // position -1: not in view
  attention?: number[]; // per worker: share of its last token's attention at attentionStep (-1: not seen)
  attentionStep?: number; // the step the attention was recorded at (with attention)
  /** The attention is older than the last step, or none yet: the next step records it. */
  attentionPending: boolean;
}

export interface NativeRun {
  /** Queues a control; throws Error with a clear message on bad input (the run is unharmed). */
  pause(worker?: number): void; // no worker: the whole run
  resume(worker?: number): void;
  step(): void;
  stop(worker?: number): void; // no worker: end the run; else that worker finishes
  inject(target: number, ids: Int32Array): void; // target -1 = all workers
  /** The new worker's id; its step headers use headerPrefixIds ("**Name [") or the origin's. */
  fork(worker: number, headerPrefixIds?: Int32Array): number;
  setTemperature(worker: number, temperature: number): void;
  inspect(block: number, index: number, attention: boolean): NativeInspect;
  /** The next step records each worker's attention on every key (where keyAttention records it on request). */
  requestKeyAttention(): void;
  /** Resolves when the run loop has ended (finished, stopped or failed). */
  done(): Promise<void>;
  /**
   * After the run has ended: its K/V blocks go back to the model's cache, so that their pages
   * serve the next run (inspect keeps working from the run's records). Throws while the run
   * or another one is going; nothing to do once the model is closed.
   */
  release(): void;
}

export interface NativeModel {
  readonly config: NativeModelConfig;
  readonly device: string;
  createSequence(): number;
  releaseSequence(seq: number): void;
  sequenceLength(seq: number): number;
  /** One batched forward (synchronous): per row, Float32Array of vocab (x new tokens with allLogits). */
  forward(rows: ForwardRow[]): Float32Array[];
  /**
   * Plain generation on an engine thread; onTokens gets batches of new ids. The prompt is
   * prefilled in chunks of at most req.prefillChunk tokens (default 128), paced so that one
   * takes about req.prefillReportSeconds at most (default 1; 0 = fixed chunks); onProgress
   * follows them.
   */
  generate(
    req: GenerateRequest & { prefillChunk?: number; prefillReportSeconds?: number },
    onTokens: (ids: Int32Array) => void,
    onProgress?: (done: number, total: number, tokensPerSecond: number) => void,
  ): Promise<GenerateResult>;
  /** The element type of the K/V storage ("f32", "bf16", "f16": the checkpoint's unless asked otherwise; "q8"). */
  readonly kvDtype?: string;
  /** Starts a Hogwild run on an engine thread; events arrive in batches. */
  startRun(cfg: NativeRunConfig, onEvents: (events: NativeEvent[]) => void): NativeRun;
  /** Bytes of KV cache storage held now. */
  kvBytes(): number;
  close(): void;
}

export interface NativeAddon {
  /**
   * Loads a model folder off the JavaScript thread. onProgress follows the load: phase "read"
   * (the weight files brought into memory), bytes done of total (the files' bytes); every
   * report arrives before the promise settles.
   */
  loadModel(
    dir: string,
    /**
     * kvDtype: the K/V cache's element type, "auto" (the default: the checkpoint's), "f32",
     * "bf16", "f16" or "q8" (int8 with a bf16 scale per 32 values, about half of bf16's memory;
     * CPU only: the CUDA backend refuses it and device "auto" takes the CPU for it).
     */
    opts: { device: string; threads: number; maxContext?: number; kvDtype?: string },
    onProgress?: (phase: string, done: number, total: number) => void,
  ): Promise<NativeModel>;
  /** Draws `count` samples from `logits` with one seeded generator (for tests and tools). */
  sample(logits: Float32Array, params: SamplingParams, seed: number, count: number): Int32Array;
}
