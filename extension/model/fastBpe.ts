/**
 * A BPE model for `@huggingface/tokenizers` that is quick to build. The library's own BPE
 * copies the vocabulary into a Map and keys every merge by JSON.stringify([a, b]) before the
 * first encode: about 1-2 s for Qwen's 151k entries and merges, on the way to a run's first
 * progress. This one reads the vocabulary object of the parsed tokenizer.json in place and
 * finds a merge's rank through the id of the merged token (one Int32Array), so building it
 * costs one pass over the merges. The library still does everything around the model (added
 * tokens, normalizer, pre-tokenizer, post-processor, decoder); encode() and the unknown-token
 * and byte-fallback rules are the library's, inherited. Ids are checked against the
 * library's own BPE on a corpus (test/unit/fastBpe.test.ts).
 */
import { BPE, Tokenizer } from '@huggingface/tokenizers';

type Json = Record<string, unknown>;

/** The parts of tokenizer.json's "model" section this model reads. */
export interface BpeJson extends Json {
  type?: string;
  vocab: Record<string, number>;
  merges: (string | [string, string])[];
  end_of_word_suffix?: string | null;
  continuing_subword_suffix?: string | null;
}

/** Can FastBpe stand in for the library's BPE for this "model" section? */
export function fastBpeApplies(model: unknown): model is BpeJson {
  if (!model || typeof model !== 'object') return false;
  const m = model as Json;
  if (m.type !== 'BPE') return false;
  if (!m.vocab || typeof m.vocab !== 'object' || Array.isArray(m.vocab)) return false;
  if (!Array.isArray(m.merges)) return false;
  return m.merges.every((x) => typeof x === 'string' || (Array.isArray(x) && x.length === 2 && typeof x[0] === 'string' && typeof x[1] === 'string'));
}

const has = Object.prototype.hasOwnProperty;

/** token -> id: the parsed file's vocabulary object read in place, or a Map (from the cache). */
export interface TokenIds {
  get(token: string): number | undefined;
  /** How many tokens it holds. */
  readonly size: number;
}

/** The parsed file's vocabulary object as TokenIds, without a copy. */
export function tokenIdsOfObject(vocab: Record<string, number>): TokenIds {
  let size = -1;
  return {
    get: (token) => (has.call(vocab, token) ? vocab[token] : undefined),
    get size() {
      if (size < 0) size = Object.keys(vocab).length;
      return size;
    },
  };
}

/**
 * token -> id over the vocabulary (see TokenIds), plus the added tokens the Tokenizer
 * registers through set(). The library only calls get, has and set.
 */
class VocabView extends Map<string, number> {
  private readonly added = new Map<string, number>();

  constructor(private readonly vocab: TokenIds) {
    super();
  }

  override get(token: string): number | undefined {
    const a = this.added.get(token);
    if (a !== undefined) return a;
    return this.vocab.get(token);
  }

  override has(token: string): boolean {
    return this.get(token) !== undefined;
  }

  override set(token: string, id: number): this {
    this.added.set(token, id);
    return this;
  }
}

/** A min-heap of candidate merges: (rank, position of the left symbol), smallest first. */
class MergeHeap {
  private rank: number[] = [];
  private pos: number[] = [];

  get size(): number {
    return this.rank.length;
  }

  private less(i: number, j: number): boolean {
    return this.rank[i] < this.rank[j] || (this.rank[i] === this.rank[j] && this.pos[i] < this.pos[j]);
  }

  private swap(i: number, j: number): void {
    const r = this.rank[i];
    this.rank[i] = this.rank[j];
    this.rank[j] = r;
    const p = this.pos[i];
    this.pos[i] = this.pos[j];
    this.pos[j] = p;
  }

  push(rank: number, pos: number): void {
    this.rank.push(rank);
    this.pos.push(pos);
    let i = this.rank.length - 1;
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (!this.less(i, up)) break;
      this.swap(i, up);
      i = up;
    }
  }

  /** Removes the smallest; returns its left position and leaves its rank in `lastRank`. */
  pop(): number {
    const top = this.pos[0];
    this.lastRank = this.rank[0];
    const last = this.rank.length - 1;
    this.swap(0, last);
    this.rank.pop();
    this.pos.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < last && this.less(l, m)) m = l;
      if (r < last && this.less(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
    return top;
  }

  lastRank = -1;
}

/**
 * What FastBpe is built from: token -> id (the parsed file's own object, or one built from a
 * cache; own properties only), id -> token (dense: every id from 0 up has its token) and the
 * merges as pairs, in rank order. The tokenizer cache (tokenizerCache.ts) stores these.
 */
export interface BpeTables {
  vocab: TokenIds;
  byId: string[];
  pairs: [string, string][];
}

/** The tables of a parsed "model" section. */
export function bpeTablesFromJson(config: BpeJson): BpeTables {
  // id -> token; the ids of a vocabulary are dense in practice, holes stay undefined.
  const keys = Object.keys(config.vocab);
  let max = -1;
  for (const k of keys) {
    const id = config.vocab[k];
    if (id > max) max = id;
  }
  const byId: string[] = new Array<string>(max + 1);
  for (const k of keys) byId[config.vocab[k]] = k;
  // Merges in the new ([a, b]) or the old ("a b", split as the library splits it) format.
  const raw = config.merges;
  const pairs = raw.length > 0 && Array.isArray(raw[0]) ? (raw as [string, string][]) : (raw as string[]).map((x) => x.split(' ', 2) as [string, string]);
  return { vocab: tokenIdsOfObject(config.vocab), byId, pairs };
}

export class FastBpe extends BPE {
  private readonly ids: TokenIds;
  /** pairs[r] = [a, b]: merge r. */
  private readonly pairs: [string, string][];
  /** >= 0: merge r makes token rankOffset + r, for every r (no table needed). */
  private readonly rankOffset: number;
  /** Otherwise rankById[id] = the rank of the merge whose result is token `id` (-1: none). */
  private readonly rankById: Int32Array;
  /** Merges the table above cannot hold: their result is no vocabulary entry, or shares one. */
  private readonly otherRanks = new Map<string, number>();
  private readonly wordCache = new Map<string, string[]>();
  /** The tables it was built from (vocab keeps the file's ids; added tokens go elsewhere). */
  readonly tables: BpeTables;

  /** `config`: the "model" section, for its settings; `tables` default to its vocab and merges. */
  constructor(config: BpeJson | Omit<BpeJson, 'vocab' | 'merges'>, tables: BpeTables = bpeTablesFromJson(config as BpeJson)) {
    // The base class builds its tables from an empty vocabulary (cheap); its settings
    // (unk token, byte fallback, ignore_merges, fuse_unk, suffixes) come from `config`.
    super({ ...config, vocab: {}, merges: [] } as unknown as ConstructorParameters<typeof BPE>[0]);
    this.config = config as unknown as typeof this.config;
    this.tables = tables;
    this.ids = tables.vocab;
    this.tokens_to_ids = new VocabView(tables.vocab);
    this.unk_token_id = this.tokens_to_ids.get(config.unk_token as string);
    // A copy: the Tokenizer writes its added tokens into the model's id -> token array.
    const byId = tables.byId.slice();
    this.vocab = byId;
    this.pairs = tables.pairs;
    this.merges = this.pairs;
    // Vocabularies trained by BPE list merge r's result at id offset + r (Qwen, GPT-2, Llama 3):
    // then the id of a + b is its rank, and checking that takes no hashing. Otherwise a table.
    this.rankOffset = this.mergesFollowIds(byId);
    this.rankById = this.rankOffset >= 0 ? new Int32Array(0) : this.rankTable(byId.length - 1);
  }

  /** The offset when merge r makes token offset + r for every r (-1: not so). */
  private mergesFollowIds(byId: string[]): number {
    const pairs = this.pairs;
    if (pairs.length === 0) return -1;
    const first = pairs[0][0] + pairs[0][1];
    const offset = this.ids.get(first) ?? -1;
    if (!Number.isInteger(offset) || offset < 0) return -1;
    for (let r = 0; r < pairs.length; r++) {
      const t = byId[offset + r];
      const [a, b] = pairs[r];
      if (t === undefined || t.length !== a.length + b.length || !t.startsWith(a) || !t.endsWith(b)) return -1;
    }
    return offset;
  }

  /** rankById for any vocabulary; merges it cannot hold go to otherRanks. */
  private rankTable(max: number): Int32Array {
    const table = new Int32Array(max + 1).fill(-1);
    for (let r = 0; r < this.pairs.length; r++) {
      const [a, b] = this.pairs[r];
      const merged = a + b;
      const id = this.ids.get(merged) ?? -1;
      if (!(Number.isInteger(id) && id >= 0 && id <= max)) {
        this.otherRanks.set(JSON.stringify([a, b]), r);
        continue;
      }
      const before = table[id];
      if (before < 0 || (this.pairs[before][0] === a && this.pairs[before][1] === b)) {
        table[id] = r; // a pair listed twice ranks by its last place, as in the library's Map
      } else {
        this.otherRanks.set(JSON.stringify([a, b]), r);
      }
    }
    return table;
  }

  /** Whether ranks come from the ids (merge r makes token offset + r) rather than a table. */
  get ranksFollowIds(): boolean {
    return this.rankOffset >= 0;
  }

  /** The rank of merging a with b; undefined when they do not merge. */
  private rankOf(a: string, b: string): number | undefined {
    const merged = a + b;
    const id = this.ids.get(merged);
    if (id !== undefined) {
      const r = this.rankOffset >= 0 ? id - this.rankOffset : id >= 0 && id < this.rankById.length ? this.rankById[id] : -1;
      if (r >= 0 && r < this.pairs.length && this.pairs[r][0] === a && this.pairs[r][1] === b) return r;
    }
    return this.otherRanks.size > 0 ? this.otherRanks.get(JSON.stringify([a, b])) : undefined;
  }

  /**
   * One pre-tokenized word to its BPE symbols: merge the pair of lowest rank, the leftmost
   * on ties, until none merges (the library's order: rank, then the left symbol's position).
   */
  override bpe(token: string): string[] {
    if (token.length === 0) return [];
    const cached = this.wordCache.get(token);
    if (cached !== undefined) return cached;
    const sym = Array.from(token);
    if (this.end_of_word_suffix) sym[sym.length - 1] += this.end_of_word_suffix;
    const n = sym.length;
    let result: string[];
    if (n > 1) {
      // A linked list over the symbols; a merged symbol keeps its left part's position.
      const next = new Int32Array(n);
      const prev = new Int32Array(n);
      const alive = new Uint8Array(n).fill(1);
      for (let i = 0; i < n; i++) {
        next[i] = i + 1 < n ? i + 1 : -1;
        prev[i] = i - 1;
      }
      const heap = new MergeHeap();
      for (let i = 0; i + 1 < n; i++) {
        const r = this.rankOf(sym[i], sym[i + 1]);
        if (r !== undefined) heap.push(r, i);
      }
      while (heap.size > 0) {
        const i = heap.pop();
        const j = alive[i] ? next[i] : -1;
        // Stale entries: a side was merged away or changed since the entry was made.
        if (j < 0 || this.rankOf(sym[i], sym[j]) !== heap.lastRank) continue;
        sym[i] += sym[j];
        alive[j] = 0;
        next[i] = next[j];
        if (next[j] >= 0) prev[next[j]] = i;
        const p = prev[i];
        if (p >= 0) {
          const r = this.rankOf(sym[p], sym[i]);
          if (r !== undefined) heap.push(r, p);
        }
        if (next[i] >= 0) {
          const r = this.rankOf(sym[i], sym[next[i]]);
          if (r !== undefined) heap.push(r, i);
        }
      }
      result = [];
      for (let i = 0; i >= 0; i = next[i]) result.push(sym[i]);
    } else {
      result = sym;
    }
    if (this.continuing_subword_suffix) {
      for (let i = 0; i < result.length - 1; i++) result[i] += this.continuing_subword_suffix;
    }
    if (token.length < 256) {
      if (this.wordCache.size >= 10_000) this.wordCache.clear();
      this.wordCache.set(token, result);
    }
    return result;
  }
}

/**
 * A Tokenizer for tokenizer.json whose BPE model is FastBpe: the library is built on the
 * file with an empty vocabulary, then its model is replaced and the added tokens registered
 * again as the library's constructor registers them. null when FastBpe does not apply.
 * `tables` (from the tokenizer cache) stand in for the model's vocab and merges, which
 * `tokJson` may then leave out.
 */
export function tokenizerWithFastBpe(tokJson: Json, config: Json, tables?: BpeTables): Tokenizer | null {
  const section = tokJson.model as Json | undefined;
  if (tables === undefined && !fastBpeApplies(section)) return null;
  if (!section || section.type !== 'BPE') return null;
  const light = { ...tokJson, model: { ...section, vocab: {}, merges: [] } };
  const tok = new Tokenizer(light, config);
  const model = new FastBpe(section as BpeJson, tables);
  const added = Array.isArray(tokJson.added_tokens) ? (tokJson.added_tokens as Json[]) : [];
  for (const a of added) {
    if (typeof a.content !== 'string' || typeof a.id !== 'number') continue;
    model.tokens_to_ids.set(a.content, a.id);
    model.vocab[a.id] = a.content;
  }
  tok.model = model;
  if (tok.decoder) (tok.decoder as { end_of_word_suffix?: string }).end_of_word_suffix = model.end_of_word_suffix;
  memoizeByteLevel(tok.pre_tokenizer);
  return tok;
}

/** The parts of the library's ByteLevel pre-tokenizer (and of a Sequence of them) read here. */
interface PreTokenizerNode {
  tokenizers?: unknown[]; // a Sequence's pre-tokenizers
  byte_encoder?: unknown;
  use_regex?: boolean;
  add_prefix_space?: boolean;
  pre_tokenize_text?: (text: string, options: unknown) => string[];
}

/**
 * Remembers the ByteLevel pre-tokenizer's output per word. After the split stage (Qwen's
 * pre-tokenizer is Split, then ByteLevel without its own regex) it maps each word's UTF-8
 * bytes to symbols one by one, through Array.from and join: about half of encode()'s time on
 * prose, where most words recur. Without a regex or a prefix space its output is a function
 * of the word alone, so a memo returns the same; other settings are left as they are.
 */
function memoizeByteLevel(node: unknown): void {
  // The library's pre-tokenizers are callable objects: typeof "function".
  if (!node || (typeof node !== 'object' && typeof node !== 'function')) return;
  const n = node as PreTokenizerNode;
  if (Array.isArray(n.tokenizers)) for (const child of n.tokenizers) memoizeByteLevel(child);
  const inner = n.pre_tokenize_text;
  if (!n.byte_encoder || typeof inner !== 'function' || n.use_regex !== false || n.add_prefix_space) return;
  const memo = new Map<string, string[]>();
  n.pre_tokenize_text = (text, options) => {
    const hit = memo.get(text);
    if (hit !== undefined) return hit.slice(); // a copy: callers own the array they get
    const out = inner.call(n, text, options);
    if (text.length < 256) {
      if (memo.size >= 20_000) memo.clear();
      memo.set(text, out.slice());
    }
    return out;
  };
}
