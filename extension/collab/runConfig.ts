/**
 * RunConfig (what the user asked for, in words) -> NativeRunConfig (what the engine needs,
 * in token ids): the collaboration protocol turned into data.
 *
 *  prompt           chat template of [system (collaboration prompt), user (the problem)],
 *                   ending with the opening of the assistant turn
 *  workerFirstIds   per worker, the header of its step 1: "**Alice [1]:** "
 *  headerPrefixIds  per worker "**Alice [", then digitIds ("0".."9", one id each) spell
 *                   the step number, then headerSuffixIds "]:** "
 *  tokenBytes       every id's bytes (the engine's step rules find "\n\n" after a sentence
 *                   end outside ``` / ~~~ / $$ in them)
 *  eosIds           the tokenizer's and the model's ends of sequence
 *
 * Raw mode (RunConfig.raw) maps the exact ids through, with no text at all, and needs no
 * tokenizer.
 */
import { MAX_SEED, MAX_WORKERS, SELF_CHECK_OFF } from '../../protocol/limits';
import type { RawRunConfig, RunConfig } from '../../protocol/messages';
import type { NativeModelConfig, NativeRunConfig } from '../engine/native';
import type { HwTokenizer } from '../model/tokenizer';
import { compileAnswerPattern } from './answer';
import { completeWorkerNames, renderSystemPrompt, stepHeader } from './prompts';

export interface BuildOptions {
  /** Greedy tokens the finisher may write (default 64). */
  finisherMaxTokens?: number;
  /** Ask the engine for per-step attention shares (default false; costs a little). */
  attentionShares?: boolean;
  /** With attentionShares: when the attention on every key is recorded (default auto). */
  keyAttention?: NativeRunConfig['keyAttention'];
  /** Extra chat template variables (e.g. { enable_thinking: false }). */
  templateVariables?: Record<string, unknown>;
  /** How the user sets the context limit, named in refusals (default "hogwild.maxContext"). */
  contextSetting?: string;
  /** KV memory budget in bytes (0 or absent: the engine derives one from the free memory). */
  kvBudgetBytes?: number;
  /** How the user sets the KV budget, named in refusals (default "hogwild.kvBudgetMB"). */
  kvBudgetSetting?: string;
  /** Called as the long parts are done (benchmarks time them). */
  mark?: (what: string) => void;
}

/** "the context is 2,048 (hogwild.maxContext, or the model's 40,960)" */
function contextText(cfg: RunConfig, model: NativeModelConfig, limit: number, opts: BuildOptions): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const source = cfg.maxContext > 0 && cfg.maxContext < model.maxContext ? `${opts.contextSetting ?? 'hogwild.maxContext'}, or the model's ${n(model.maxContext)}` : "the model's";
  return `the context is ${n(limit)} (${source})`;
}

/** Thrown for a run configuration the engine must not see; the message says what to fix. */
export class RunConfigError extends Error {}

function fail(msg: string): never {
  throw new RunConfigError(msg);
}

const i32 = (ids: readonly number[]) => Int32Array.from(ids);

function checkInt(v: number, what: string, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    fail(`${what} must be a whole number${max === Number.MAX_SAFE_INTEGER ? ` >= ${min}` : ` from ${min} to ${max}`}, got ${v}`);
  }
}

function checkIds(ids: readonly number[], vocab: number, what: string): void {
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= vocab) fail(`${what}: id ${id} is outside the vocabulary (0..${vocab - 1})`);
  }
}

function checkSampling(cfg: RunConfig): void {
  const s = cfg.sampling;
  if (!(Number.isFinite(s.temperature) && s.temperature >= 0)) fail(`temperature must be >= 0 (0 = greedy), got ${s.temperature}`);
  if (!(Number.isFinite(s.topP) && s.topP > 0 && s.topP <= 1)) fail(`top-p must be in (0, 1] (1 = off), got ${s.topP}`);
  checkInt(s.topK, 'top-k', 0);
  checkInt(s.seed, 'seed', 0, MAX_SEED);
}

/** The context the run may use: the configured one, never more than the model's. */
function contextLimit(cfg: RunConfig, model: NativeModelConfig): number {
  checkInt(cfg.maxContext, 'maxContext', 0);
  return cfg.maxContext > 0 ? Math.min(cfg.maxContext, model.maxContext) : model.maxContext;
}

/** The ids of "0".."9", one id each (step numbers are spelled from them). */
export function digitIds(tok: HwTokenizer): number[] {
  return Array.from({ length: 10 }, (_, d) => {
    const ids = tok.encode(String(d));
    if (ids.length !== 1) fail(`the tokenizer spells the digit ${d} with ${ids.length} tokens; step headers need one token per digit`);
    return ids[0];
  });
}

/** The step header of a worker split at the step number: "**Name [" + digits + "]:** ". */
export function headerParts(tok: HwTokenizer, name: string): { prefix: number[]; suffix: number[] } {
  const probe = stepHeader(name, 0);
  const cut = probe.indexOf('[') + 1;
  return { prefix: tok.encode(probe.slice(0, cut)), suffix: tok.encode(probe.slice(cut + 1)) };
}

/** The ids of worker `name`'s header for step k, built the way the engine builds them. */
export function headerIds(tok: HwTokenizer, name: string, step: number, digits = digitIds(tok)): number[] {
  const { prefix, suffix } = headerParts(tok, name);
  return [...prefix, ...String(step).split('').map((c) => digits[c.charCodeAt(0) - 48]), ...suffix];
}

/** What text and raw runs alike take from the sampling settings, the limits and the build options. */
function samplingAndLimits(
  cfg: RunConfig,
  maxTokens: number,
  maxContext: number,
  opts: BuildOptions,
): Pick<NativeRunConfig, 'temperature' | 'topK' | 'topP' | 'seed' | 'maxTokens' | 'maxContext' | 'maxContextSetting' | 'kvBudgetBytes' | 'kvBudgetSetting' | 'attentionShares' | 'keyAttention'> {
  return {
    temperature: cfg.sampling.temperature,
    topK: cfg.sampling.topK,
    topP: cfg.sampling.topP,
    seed: cfg.sampling.seed,
    maxTokens,
    maxContext,
    maxContextSetting: opts.contextSetting ?? 'hogwild.maxContext',
    kvBudgetBytes: opts.kvBudgetBytes ?? 0,
    kvBudgetSetting: opts.kvBudgetSetting ?? 'hogwild.kvBudgetMB',
    attentionShares: opts.attentionShares ?? false,
    keyAttention: opts.keyAttention ?? 'auto',
  };
}

export function buildNativeRunConfig(cfg: RunConfig, tok: HwTokenizer | null, model: NativeModelConfig, opts: BuildOptions = {}): NativeRunConfig {
  if (!['contiguous', 'interleaved', 'combined', 'isolated'].includes(cfg.layout)) fail(`layout must be contiguous, interleaved, combined or isolated, got ${JSON.stringify(cfg.layout)}`);
  checkSampling(cfg);
  const maxContext = contextLimit(cfg, model);
  if (cfg.raw) return buildRaw(cfg, cfg.raw, model, maxContext, tok, opts);

  if (!tok) fail('this model folder has no tokenizer (tokenizer.json): only raw runs with token ids are possible');
  checkInt(cfg.workers, 'workers', 1, MAX_WORKERS);
  checkInt(cfg.maxTokens, 'the token budget (maxTokens)', 1);
  checkInt(cfg.selfCheckInterval, 'the self-check interval', 1);
  if (cfg.problem.trim() === '') fail('the problem is empty');
  compileAnswerPattern(cfg.prompts.answerPattern);
  const finisherMaxTokens = opts.finisherMaxTokens ?? 64;
  checkInt(finisherMaxTokens, 'finisherMaxTokens', 1);

  const names = completeWorkerNames(cfg.workerNames, cfg.workers);
  const messages = [];
  const system = renderSystemPrompt(cfg.prompts.system, names);
  if (system.trim() !== '') messages.push({ role: 'system', content: system });
  messages.push({ role: 'user', content: cfg.problem });
  const promptIds = tok.applyChatTemplate(messages, { addGenerationPrompt: true, variables: opts.templateVariables });
  opts.mark?.(`prompt encoded (${promptIds.length} tokens)`);

  const digits = digitIds(tok);
  const parts = names.map((n) => headerParts(tok, n));
  const suffix = parts[0].suffix;
  if (parts.some((p) => p.suffix.join() !== suffix.join())) fail('step header suffixes differ between workers');
  const first = names.map((n) => headerIds(tok, n, 1, digits));

  const { bytes, offsets } = tok.vocabBytes(model.vocab);
  const tokenOffsets = offsets.length > model.vocab + 1 ? offsets.slice(0, model.vocab + 1) : offsets;
  opts.mark?.('vocabulary bytes');
  const eos = [...new Set([...tok.eosIds(), ...model.eosIds])].filter((id) => id >= 0 && id < model.vocab).sort((a, b) => a - b);

  const native: NativeRunConfig = {
    workers: cfg.workers,
    layout: cfg.layout,
    promptIds: i32(promptIds),
    workerFirstIds: first.map(i32),
    headerPrefixIds: parts.map((p) => i32(p.prefix)),
    digitIds: i32(digits),
    headerSuffixIds: i32(suffix),
    headerOthersIds: i32(tok.encode(cfg.prompts.headerOthers)),
    headerOwnIds: i32(tok.encode(cfg.prompts.headerOwn)),
    selfCheckIds: i32(tok.encode(cfg.prompts.selfCheck)),
    selfCheckInterval: cfg.selfCheckInterval,
    finisherIds: i32(tok.encode(cfg.prompts.finisher)),
    finisherMaxTokens,
    tokenBytes: bytes,
    tokenOffsets,
    eosIds: i32(eos),
    ...samplingAndLimits(cfg, cfg.maxTokens, maxContext, opts),
    raw: false,
    rawSteps: 0,
    rawStepIds: new Int32Array(0),
    topLogits: 0,
  };
  if (cfg.layout === 'combined' && (native.headerOthersIds.length === 0 || native.headerOwnIds.length === 0)) {
    fail('the combined layout needs both header texts (headerOthers, headerOwn)');
  }
  const fixed = [native.promptIds, ...native.workerFirstIds];
  for (const a of [native.promptIds, ...native.workerFirstIds, native.headerOthersIds, native.headerOwnIds, native.selfCheckIds, native.finisherIds, ...native.headerPrefixIds, native.digitIds, native.headerSuffixIds]) {
    checkIds(Array.from(a), model.vocab, 'the tokenised prompt texts');
  }
  const fixedLen = fixed.reduce((a, b) => a + b.length, 0);
  const problem = fixedLen + native.headerOthersIds.length * (cfg.layout === 'combined' ? 1 : 0) + native.headerOwnIds.length * (cfg.layout === 'combined' ? 1 : 0) + native.finisherIds.length;
  if (problem + cfg.workers > maxContext) fail(`the problem is ${problem.toLocaleString('en-US')} tokens; ${contextText(cfg, model, maxContext, opts)}`);
  return native;
}

function buildRaw(cfg: RunConfig, given: RawRunConfig, model: NativeModelConfig, maxContext: number, tok: HwTokenizer | null, opts: BuildOptions): NativeRunConfig {
  const raw = textsToIds(given, tok);
  if (!Array.isArray(raw.promptIds) || raw.promptIds.length === 0) fail('the prompt ids are empty (raw runs need at least one prompt id)');
  checkIds(raw.promptIds, model.vocab, 'prompt ids');
  if (!Array.isArray(raw.workerIds) || raw.workerIds.length === 0) fail('no workers: give each worker its first ids');
  if (raw.workerIds.length > MAX_WORKERS) fail(`${raw.workerIds.length} workers is more than the limit of ${MAX_WORKERS}`);
  raw.workerIds.forEach((ids, w) => {
    if (!Array.isArray(ids) || ids.length === 0) fail(`worker ${w} has no ids (every worker needs at least one first id)`);
    checkIds(ids, model.vocab, `worker ${w} ids`);
  });
  checkInt(raw.steps, 'steps', 1);
  const stepIds = raw.stepIds ?? [];
  checkIds(stepIds, model.vocab, 'step ids');
  const topLogits = raw.topLogits ?? 0;
  checkInt(topLogits, 'top logits', 0, model.vocab);
  const total = raw.promptIds.length + raw.workerIds.reduce((a, w) => a + w.length, 0) + raw.workerIds.length * raw.steps;
  if (total > maxContext) fail(`the run needs up to ${total.toLocaleString('en-US')} positions (prompt, first ids and ${raw.steps} steps per worker); ${contextText(cfg, model, maxContext, opts)}`);
  const empty = new Int32Array(0);
  // The step rules are off in raw mode; the byte table only helps the engine's inspector.
  const table = tok ? tok.vocabBytes(model.vocab) : null;
  return {
    workers: raw.workerIds.length,
    layout: cfg.layout,
    promptIds: i32(raw.promptIds),
    workerFirstIds: raw.workerIds.map(i32),
    headerPrefixIds: [],
    digitIds: empty,
    headerSuffixIds: empty,
    headerOthersIds: empty,
    headerOwnIds: empty,
    selfCheckIds: empty,
    selfCheckInterval: SELF_CHECK_OFF,
    finisherIds: empty,
    finisherMaxTokens: 0,
    tokenBytes: table ? table.bytes : new Uint8Array(0),
    tokenOffsets: table ? table.offsets.slice(0, model.vocab + 1) : Int32Array.of(0),
    eosIds: empty,
    ...samplingAndLimits(cfg, raw.workerIds.length * raw.steps, maxContext, opts),
    raw: true,
    rawSteps: raw.steps,
    rawStepIds: i32(stepIds),
    topLogits,
  };
}

/** Raw runs may give text instead of ids: it is tokenised exactly as written (no template, no special tokens). */
function textsToIds(raw: RawRunConfig, tok: HwTokenizer | null): RawRunConfig {
  const texts = [raw.promptText, ...(raw.workerTexts ?? [])].filter((t) => t !== undefined && t !== '');
  if (texts.length === 0) return raw;
  if (!tok) fail('this model folder has no tokenizer (tokenizer.json): give token ids instead of text');
  const encode = (t: string) => tok.encode(t, { addSpecial: false });
  const workers = Math.max(raw.workerIds.length, raw.workerTexts?.length ?? 0);
  return {
    ...raw,
    promptIds: raw.promptIds.length > 0 || !raw.promptText ? raw.promptIds : encode(raw.promptText),
    workerIds: Array.from({ length: workers }, (_, w) => {
      const ids = raw.workerIds[w] ?? [];
      const text = raw.workerTexts?.[w];
      return ids.length > 0 || !text ? ids : encode(text);
    }),
  };
}
