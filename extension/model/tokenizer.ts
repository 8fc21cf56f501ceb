/**
 * The tokenizer and chat template of a model folder (tokenizer.json + tokenizer_config.json),
 * on the TypeScript side: `@huggingface/tokenizers` encodes and decodes, `@huggingface/jinja`
 * renders the chat template. The engine never sees text, only ids and (for its step rules)
 * the raw bytes of every vocabulary entry, which `vocabBytes()` provides.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { FastBpe, tokenizerWithFastBpe } from './fastBpe';
import { cacheFileFor, readTokenizerCache, tokenizerCacheDir, writeTokenizerCache, type CachedTokenizer } from './tokenizerCache';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | string;
  content: string;
}

export interface ChatTemplateOptions {
  /** End with the opening of the assistant turn (default true). */
  addGenerationPrompt?: boolean;
  /** Extra variables for the template (e.g. enable_thinking: false for Qwen3). */
  variables?: Record<string, unknown>;
}

export interface VocabBytes {
  /** Every token's bytes, concatenated in id order. */
  bytes: Uint8Array;
  /** size + 1 offsets: token i is bytes[offsets[i] .. offsets[i + 1]). */
  offsets: Int32Array;
}

/** Ends of sequence that are not always named eos_token but end a turn all the same. */
const KNOWN_END_TOKENS = ['<|im_end|>', '<|endoftext|>', '<|eot_id|>', '<|end_of_text|>', '<|eom_id|>', '<|end▁of▁sentence|>'];

type Json = Record<string, unknown>;

function readBytes(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new Error(`${file}: cannot read: ${(err as Error).message}`, { cause: err });
  }
}

function readJson(file: string, bytes: Buffer = readBytes(file)): Json {
  const text = bytes.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`${file}: expected a JSON object`);
  }
  return value as Json;
}

/** A special token in tokenizer_config.json is a string or an AddedToken object. */
function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return undefined;
}

/**
 * GPT-2's byte <-> unicode table (bytes_to_unicode): byte-level BPE vocabularies spell each
 * byte as one printable code point. This is its inverse: code point -> byte.
 */
function unicodeToByte(): Map<number, number> {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const map = new Map<number, number>();
  bs.forEach((b, i) => map.set(cs[i], b));
  return map;
}

function isByteLevel(tokJson: Json): boolean {
  const has = (node: unknown): boolean => {
    if (!node || typeof node !== 'object') return false;
    const o = node as Json;
    if (o.type === 'ByteLevel') return true;
    for (const key of ['decoders', 'pretokenizers']) {
      const list = o[key];
      if (Array.isArray(list) && list.some(has)) return true;
    }
    return false;
  };
  return has(tokJson.decoder) || has(tokJson.pre_tokenizer);
}

const utf8 = new TextEncoder();

/** Does `hay` contain `needle` as a contiguous byte sequence? */
function containsBytes(hay: Uint8Array, start: number, end: number, needle: Uint8Array): boolean {
  const n = needle.length;
  if (n === 0) return true;
  outer: for (let i = start; i + n <= end; i++) {
    for (let k = 0; k < n; k++) if (hay[i + k] !== needle[k]) continue outer;
    return true;
  }
  return false;
}

export class HwTokenizer {
  /** Number of ids the tokenizer knows (largest id + 1), added tokens included. */
  readonly size: number;
  readonly byteLevel: boolean;
  private readonly addedById = new Map<number, { content: string; special: boolean }>();
  private table: VocabBytes | null = null;
  private template: Template | null = null;
  private readonly idToTokenText: readonly (string | undefined)[] | null;

  private constructor(
    readonly dir: string,
    private readonly tok: Tokenizer,
    tokJson: Json,
    readonly config: Json,
    private readonly chatTemplateSource: string | null,
    private readonly generationConfig: Json | null,
  ) {
    this.byteLevel = isByteLevel(tokJson);
    // The model's id -> token array, read in place: get_vocab() copies it into a Map, and
    // iterating the file's vocabulary object is slower still (seconds on a slow machine).
    this.idToTokenText = Array.isArray(tok.model?.vocab) ? tok.model.vocab : null;
    let max = this.idToTokenText ? this.idToTokenText.length - 1 : -1;
    if (!this.idToTokenText) for (const id of tok.get_vocab(true).values()) if (id > max) max = id;
    const added = tokJson.added_tokens;
    if (Array.isArray(added)) {
      for (const a of added as Json[]) {
        if (typeof a.id === 'number' && typeof a.content === 'string') {
          this.addedById.set(a.id, { content: a.content, special: a.special === true });
          if (a.id > max) max = a.id;
        }
      }
    }
    this.size = max + 1;
  }

  /**
   * Builds a tokenizer from parsed files (loadTokenizer reads them from a folder). `cached`:
   * an entry of the tokenizer cache, whose `rest` is then `tokJson` (no vocab or merges).
   */
  static fromJson(
    dir: string,
    tokJson: Json,
    config: Json,
    chatTemplateFile: string | null = null,
    generationConfig: Json | null = null,
    cached: Omit<CachedTokenizer, 'rest'> | null = null,
  ): HwTokenizer {
    const file = path.join(dir, 'tokenizer.json');
    let tok: Tokenizer;
    try {
      // BPE vocabularies get a model that is quick to build (see fastBpe.ts); others the library's.
      const fast = cached ? tokenizerWithFastBpe(tokJson, config, cached.tables) : tokenizerWithFastBpe(tokJson, config);
      if (cached && !fast) throw new Error('the cached tables are not for a BPE model');
      tok = fast ?? new Tokenizer(tokJson, config);
    } catch (err) {
      throw new Error(`${file}: cannot build the tokenizer: ${(err as Error).message}`, { cause: err });
    }
    let source: string | null = null;
    const ct = config.chat_template;
    if (typeof ct === 'string') source = ct;
    else if (Array.isArray(ct)) {
      // Older configs carry named templates: [{name, template}].
      const named = ct as { name?: string; template?: string }[];
      source = (named.find((t) => t.name === 'default') ?? named[0])?.template ?? null;
    }
    if (source === null && chatTemplateFile !== null) source = chatTemplateFile;
    const hw = new HwTokenizer(dir, tok, tokJson, config, source, generationConfig);
    if (cached) {
      if (cached.table.offsets.length !== hw.size + 1) throw new Error(`${file}: the cached vocabulary bytes are for ${cached.table.offsets.length - 1} ids, not ${hw.size}`);
      hw.table = cached.table;
    }
    return hw;
  }

  /** The FastBpe tables, when the model is one (what the tokenizer cache stores). */
  get bpeTables(): FastBpe['tables'] | null {
    return this.tok.model instanceof FastBpe ? this.tok.model.tables : null;
  }

  // ---------------------------------------------------------------- text <-> ids

  /** Token ids of `text`. addSpecial (default false) adds what the post-processor adds (BOS...). */
  encode(text: string, opts: { addSpecial?: boolean } = {}): number[] {
    return this.tok.encode(text, { add_special_tokens: opts.addSpecial ?? false }).ids;
  }

  /** Text of `ids`; ids the tokenizer does not know (the model's padding ids) decode to "". */
  decode(ids: ArrayLike<number>, opts: { skipSpecial?: boolean } = {}): string {
    if (ids.length === 0) return '';
    return this.tok.decode(Array.from(ids), { skip_special_tokens: opts.skipSpecial ?? false });
  }

  /** A decoder for one stream of ids (one per worker): emits only complete UTF-8 text. */
  streamDecoder(opts: { skipSpecial?: boolean } = {}): StreamDecoder {
    return new StreamDecoder(this, opts.skipSpecial ?? false);
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.addedById.get(id)?.content ?? this.tok.id_to_token(id);
  }

  isSpecial(id: number): boolean {
    return this.addedById.get(id)?.special === true;
  }

  // ---------------------------------------------------------------- chat template

  get hasChatTemplate(): boolean {
    return this.chatTemplateSource !== null;
  }

  /** The chat template rendered to text (what transformers' apply_chat_template(tokenize=False) gives). */
  renderChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
    if (this.chatTemplateSource === null) {
      throw new Error(`${path.join(this.dir, 'tokenizer_config.json')}: the model has no chat_template (use raw ids or text instead)`);
    }
    if (this.template === null) {
      try {
        this.template = new Template(this.chatTemplateSource);
      } catch (err) {
        throw new Error(`${path.join(this.dir, 'tokenizer_config.json')}: cannot parse chat_template: ${(err as Error).message}`, { cause: err });
      }
    }
    const vars: Record<string, unknown> = {
      messages,
      add_generation_prompt: opts.addGenerationPrompt ?? true,
    };
    for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
      const v = tokenContent(this.config[key]);
      if (v !== undefined) vars[key] = v;
    }
    Object.assign(vars, opts.variables ?? {});
    try {
      return this.template.render(vars);
    } catch (err) {
      throw new Error(`${path.join(this.dir, 'tokenizer_config.json')}: chat_template failed to render: ${(err as Error).message}`, { cause: err });
    }
  }

  /** The chat template's ids: rendered text encoded without adding special tokens again. */
  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions = {}): number[] {
    return this.encode(this.renderChatTemplate(messages, opts), { addSpecial: false });
  }

  // ---------------------------------------------------------------- ends of sequence

  /**
   * Ids that end a generation: tokenizer_config's eos_token, generation_config.json's
   * eos_token_id when the folder has one, and the usual end-of-turn tokens the vocabulary has.
   */
  eosIds(): number[] {
    const ids = new Set<number>();
    const add = (tokenText: string | undefined) => {
      if (tokenText === undefined) return;
      const id = this.tok.token_to_id(tokenText);
      if (id !== undefined) ids.add(id);
    };
    add(tokenContent(this.config.eos_token));
    const g = this.generationConfig?.eos_token_id;
    if (typeof g === 'number') ids.add(g);
    if (Array.isArray(g)) for (const x of g) if (typeof x === 'number') ids.add(x);
    for (const t of KNOWN_END_TOKENS) {
      for (const [id, a] of this.addedById) if (a.content === t) ids.add(id);
    }
    return [...ids].sort((a, b) => a - b);
  }

  // ---------------------------------------------------------------- raw bytes

  /**
   * Every id's raw bytes, for the engine's step rules. Byte-level BPE vocabulary strings are
   * mapped back through GPT-2's byte table; added tokens are their content; ids beyond the
   * tokenizer's vocabulary up to `modelVocab` (model configs pad it) are empty.
   */
  vocabBytes(modelVocab = 0): VocabBytes {
    const table = this.buildTable();
    const size = Math.max(this.size, modelVocab);
    if (size === this.size) return table;
    const offsets = new Int32Array(size + 1);
    offsets.set(table.offsets);
    offsets.fill(table.offsets[this.size], this.size + 1);
    return { bytes: table.bytes, offsets };
  }

  /** One id's bytes (a view into the shared table; empty for unknown ids). */
  tokenBytes(id: number): Uint8Array {
    const t = this.buildTable();
    if (!Number.isInteger(id) || id < 0 || id >= this.size) return new Uint8Array(0);
    return t.bytes.subarray(t.offsets[id], t.offsets[id + 1]);
  }

  /** Ids whose bytes contain `substr` (e.g. "\n\n"); special tokens only when asked. */
  tokensContaining(substr: string | Uint8Array, opts: { includeSpecial?: boolean } = {}): number[] {
    const needle = typeof substr === 'string' ? utf8.encode(substr) : substr;
    const t = this.buildTable();
    const out: number[] = [];
    for (let id = 0; id < this.size; id++) {
      if (!opts.includeSpecial && this.isSpecial(id)) continue;
      if (containsBytes(t.bytes, t.offsets[id], t.offsets[id + 1], needle)) out.push(id);
    }
    return out;
  }

  private buildTable(): VocabBytes {
    if (this.table) return this.table;
    // Every id's text (added tokens over the model's), then one pass writing bytes in place:
    // built before the first run, so it is on the way to the first progress report.
    const texts: (string | undefined)[] = new Array(this.size);
    if (this.idToTokenText) for (let id = 0; id < this.idToTokenText.length && id < this.size; id++) texts[id] = this.idToTokenText[id];
    else for (const [token, id] of this.tok.get_vocab(false)) if (id >= 0 && id < this.size) texts[id] = token;
    const added = new Set<number>();
    for (const [id, a] of this.addedById) {
      texts[id] = a.content;
      added.add(id);
    }
    let room = 0;
    for (const t of texts) room += t ? 3 * t.length : 0; // a UTF-16 unit is at most 3 bytes of UTF-8
    const out = new Uint8Array(room);
    const offsets = new Int32Array(this.size + 1);
    const u2b = this.byteLevel ? unicodeToByteTable() : null;
    let at = 0;
    for (let id = 0; id < this.size; id++) {
      offsets[id] = at;
      const t = texts[id];
      if (t === undefined) continue;
      if (added.has(id)) at += utf8.encodeInto(t, out.subarray(at)).written;
      else if (u2b) at = writeByteLevel(t, u2b, out, at);
      else {
        const b = sentencePieceBytes(t);
        out.set(b, at);
        at += b.length;
      }
    }
    offsets[this.size] = at;
    this.table = { bytes: out.slice(0, at), offsets };
    return this.table;
  }
}

/** unicodeToByte() as a table over the code points it uses (all below 512); -1: none. */
function unicodeToByteTable(): Int16Array {
  const table = new Int16Array(512).fill(-1);
  for (const [cp, b] of unicodeToByte()) table[cp] = b;
  return table;
}

/** A byte-level token's bytes written at out[at..]; returns the end. */
function writeByteLevel(token: string, u2b: Int16Array, out: Uint8Array, at: number): number {
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    const b = c < 512 ? u2b[c] : -1;
    if (b >= 0) {
      out[at++] = b;
      continue;
    }
    // Not a byte-level symbol: its UTF-8 as it is (a surrogate pair as one character).
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < token.length;
    at += utf8.encodeInto(token.slice(i, pair ? i + 2 : i + 1), out.subarray(at)).written;
    if (pair) i++;
  }
  return at;
}

/** SentencePiece-style vocabularies: "▁" is a space and "<0xNN>" is a raw byte. */
function sentencePieceBytes(token: string): Uint8Array {
  const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(token);
  if (m) return Uint8Array.of(parseInt(m[1], 16));
  return utf8.encode(token.replace(/\u2581/g, ' '));
}

/**
 * Incremental decoding of one stream of ids: push ids as they arrive and get back only
 * whole characters; bytes of a character split across tokens wait for the rest.
 */
export class StreamDecoder {
  private readonly td = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

  constructor(
    private readonly tok: HwTokenizer,
    private readonly skipSpecial: boolean,
  ) {}

  push(ids: ArrayLike<number>): string {
    const parts: Uint8Array[] = [];
    let n = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (this.skipSpecial && this.tok.isSpecial(id)) continue;
      const b = this.tok.tokenBytes(id);
      parts.push(b);
      n += b.length;
    }
    const buf = new Uint8Array(n);
    let at = 0;
    for (const p of parts) {
      buf.set(p, at);
      at += p.length;
    }
    return this.td.decode(buf, { stream: true });
  }

  /** Ends the stream: bytes still waiting become U+FFFD. */
  flush(): string {
    return this.td.decode();
  }
}

/**
 * Loads the tokenizer of a model folder. null when the folder has no tokenizer.json (the
 * engine then runs on ids only); a broken file is an Error that names it.
 */
export async function loadTokenizer(dir: string, opts: { cacheDir?: string | null } = {}): Promise<HwTokenizer | null> {
  const tokFile = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(tokFile)) return null;
  const bytes = readBytes(tokFile);
  const cacheDir = opts.cacheDir !== undefined ? opts.cacheDir : tokenizerCacheDir();
  const cacheFile = cacheDir !== null ? cacheFileFor(cacheDir, bytes) : null;
  const cached = cacheFile !== null ? readTokenizerCache(cacheFile) : null;
  const tokJson = cached ? cached.rest : readJson(tokFile, bytes);
  if (!tokJson.model || typeof tokJson.model !== 'object') {
    throw new Error(`${tokFile}: has no "model" section (not a Hugging Face tokenizer.json)`);
  }
  const cfgFile = path.join(dir, 'tokenizer_config.json');
  const config = fs.existsSync(cfgFile) ? readJson(cfgFile) : {};
  const jinjaFile = path.join(dir, 'chat_template.jinja');
  const chatTemplate = fs.existsSync(jinjaFile) ? fs.readFileSync(jinjaFile, 'utf8') : null;
  const genFile = path.join(dir, 'generation_config.json');
  let gen: Json | null = null;
  if (fs.existsSync(genFile)) {
    try {
      gen = readJson(genFile);
    } catch {
      gen = null; // optional file; a broken one only loses its eos ids
    }
  }
  if (cached) {
    try {
      return HwTokenizer.fromJson(dir, tokJson, config, chatTemplate, gen, cached);
    } catch {
      // An entry that does not fit after all: the file itself, below.
      return loadTokenizer(dir, { cacheDir: null });
    }
  }
  const tok = HwTokenizer.fromJson(dir, tokJson, config, chatTemplate, gen);
  // Stored for the next load (best effort); the byte table is built now, as every run needs it.
  const tables = tok.bpeTables;
  if (cacheFile !== null && tables) writeTokenizerCache(cacheFile, tokJson, tables, tok.vocabBytes());
  return tok;
}
