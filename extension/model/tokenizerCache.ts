/**
 * A binary cache of a parsed BPE tokenizer.json, so that a run does not wait for
 * JSON.parse of an 11 MB file and a pass over its 151k-entry vocabulary object (about a
 * second on the 2-core VM, on the way to the first progress line). One file per distinct
 * tokenizer.json, named by the SHA-256 of its bytes: an edited tokenizer.json has another
 * name and is parsed again; the cache never needs invalidating. Every entry also carries the
 * SHA-256 of its own payload: a truncated or damaged entry is ignored (and written again).
 *
 * Where: HOGWILD_TOKENIZER_CACHE (a folder, or "0" for none), else <data dir>/tokenizer-cache
 * (HOGWILD_DATA_DIR, the engine's data folder, else ~/.hogwild). Writing is best effort
 * (temporary name, then rename): a read-only or full disk only costs the speed-up.
 *
 * Layout: "HWTOKC01", u32 header length, header JSON, then the sections at 8-byte-aligned
 * offsets the header lists: the vocabulary (UTF-16 text of every token in id order, and each
 * token's length), the merges (UTF-16 text of a + b, and each side's length) and the
 * tokenizer's raw vocabulary bytes (see HwTokenizer.vocabBytes).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { BpeTables } from './fastBpe';

type Json = Record<string, unknown>;

const MAGIC = 'HWTOKC01';
const FORMAT = 1;

/** What a cache entry gives back: the file minus its vocab and merges, the tables, the byte table. */
export interface CachedTokenizer {
  /** tokenizer.json with model.vocab and model.merges left out. */
  rest: Json;
  tables: BpeTables;
  /** HwTokenizer's raw vocabulary bytes (size + 1 offsets). */
  table: { bytes: Uint8Array; offsets: Int32Array };
}

/** The cache folder, or null when turned off. */
export function tokenizerCacheDir(env: NodeJS.ProcessEnv = process.env): string | null {
  const v = env.HOGWILD_TOKENIZER_CACHE;
  if (v === '0' || v === 'off') return null;
  if (v) return path.resolve(v);
  return path.join(env.HOGWILD_DATA_DIR || path.join(os.homedir(), '.hogwild'), 'tokenizer-cache');
}

/** The entry's file for a tokenizer.json of these bytes. */
export function cacheFileFor(dir: string, tokenizerBytes: Uint8Array): string {
  const hash = crypto.createHash('sha256').update(tokenizerBytes).digest('hex');
  return path.join(dir, `tokenizer-${hash}.bin`);
}

interface Header {
  format: number;
  rest: Json;
  vocabCount: number;
  mergeCount: number;
  tableSize: number;
  /** Where the sections begin (8-aligned, after the header and its padding). */
  payloadAt: number;
  /** name -> [offset, length] in bytes, from the start of the file. */
  sections: Record<string, [number, number]>;
  /** SHA-256 of the file from payloadAt on. */
  payload: string;
}

const SECTIONS = ['vocabText', 'vocabLens', 'mergeText', 'mergeLens', 'tableBytes', 'tableOffsets'] as const;

/**
 * Reads an entry; null when there is none or it is unusable (wrong magic or format, damaged,
 * inconsistent): the caller then parses the JSON.
 */
export function readTokenizerCache(file: string): CachedTokenizer | null {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch {
    return null;
  }
  try {
    if (buf.length < 12 || buf.toString('latin1', 0, 8) !== MAGIC) return null;
    const headerLen = buf.readUInt32LE(8);
    if (12 + headerLen > buf.length) return null;
    const h = JSON.parse(buf.toString('utf8', 12, 12 + headerLen)) as Header;
    if (h.format !== FORMAT || os.endianness() !== 'LE') return null;
    const payloadAt = h.payloadAt;
    if (!(payloadAt >= 12 + headerLen && payloadAt % 8 === 0 && payloadAt <= buf.length)) return null;
    if (crypto.createHash('sha256').update(buf.subarray(payloadAt)).digest('hex') !== h.payload) return null;
    const sec = (name: (typeof SECTIONS)[number]): Buffer => {
      const [at, len] = h.sections[name];
      if (!(at >= payloadAt && at % 8 === 0 && at + len <= buf.length)) throw new Error(`section ${name} out of range`);
      return buf.subarray(at, at + len);
    };
    // A typed view needs an aligned offset: the sections are 8-aligned in the file; the
    // Buffer itself is copied in the rare case that it does not start aligned.
    const u32 = (b: Buffer) => (b.byteOffset % 4 === 0 ? new Uint32Array(b.buffer, b.byteOffset, b.length / 4) : new Uint32Array(new Uint8Array(b).buffer));
    const vocabLens = u32(sec('vocabLens'));
    const mergeLens = u32(sec('mergeLens'));
    if (vocabLens.length !== h.vocabCount || mergeLens.length !== 2 * h.mergeCount) return null;
    const vocabText = sec('vocabText').toString('utf16le');
    const mergeText = sec('mergeText').toString('utf16le');

    const byId = new Array<string>(h.vocabCount);
    // A Map: a few times quicker to fill than an object with as many keys.
    const vocab = new Map<string, number>();
    let at = 0;
    for (let id = 0; id < h.vocabCount; id++) {
      const t = vocabText.slice(at, at + vocabLens[id]);
      at += vocabLens[id];
      byId[id] = t;
      vocab.set(t, id);
    }
    if (at !== vocabText.length) return null;
    const pairs = new Array<[string, string]>(h.mergeCount);
    at = 0;
    for (let r = 0; r < h.mergeCount; r++) {
      const a = mergeLens[2 * r];
      const b = mergeLens[2 * r + 1];
      pairs[r] = [mergeText.slice(at, at + a), mergeText.slice(at + a, at + a + b)];
      at += a + b;
    }
    if (at !== mergeText.length) return null;

    const offsets = new Int32Array(u32(sec('tableOffsets')).slice().buffer);
    const bytes = new Uint8Array(sec('tableBytes')); // a copy: the engine gets its own array
    if (offsets.length !== h.tableSize + 1 || offsets[h.tableSize] !== bytes.length) return null;
    return { rest: h.rest, tables: { vocab, byId, pairs }, table: { bytes, offsets } };
  } catch {
    return null;
  }
}

/** Can these tables be stored (a dense vocabulary: every id from 0 up, each once)? */
export function cacheable(tables: BpeTables): boolean {
  const n = tables.byId.length;
  for (let id = 0; id < n; id++) if (typeof tables.byId[id] !== 'string') return false;
  return tables.vocab.size === n;
}

/**
 * Writes an entry for `tokJson` (the parsed file) with its tables and byte table. Returns
 * false (and writes nothing) when the tables are not cacheable or the folder is not writable.
 */
export function writeTokenizerCache(file: string, tokJson: Json, tables: BpeTables, table: { bytes: Uint8Array; offsets: Int32Array }): boolean {
  if (!cacheable(tables)) return false;
  const model = tokJson.model as Json;
  const { vocab: _v, merges: _m, ...modelRest } = model;
  const rest = { ...tokJson, model: modelRest };

  const vocabLens = new Uint32Array(tables.byId.length);
  tables.byId.forEach((t, id) => (vocabLens[id] = t.length));
  const mergeLens = new Uint32Array(2 * tables.pairs.length);
  const mergeParts: string[] = [];
  tables.pairs.forEach(([a, b], r) => {
    mergeLens[2 * r] = a.length;
    mergeLens[2 * r + 1] = b.length;
    mergeParts.push(a, b);
  });
  const bodies: Record<(typeof SECTIONS)[number], Buffer> = {
    vocabText: Buffer.from(tables.byId.join(''), 'utf16le'),
    vocabLens: Buffer.from(vocabLens.buffer, vocabLens.byteOffset, vocabLens.byteLength),
    mergeText: Buffer.from(mergeParts.join(''), 'utf16le'),
    mergeLens: Buffer.from(mergeLens.buffer, mergeLens.byteOffset, mergeLens.byteLength),
    tableBytes: Buffer.from(table.bytes.buffer, table.bytes.byteOffset, table.bytes.byteLength),
    tableOffsets: Buffer.from(table.offsets.buffer, table.offsets.byteOffset, table.offsets.byteLength),
  };

  // The sections' offsets are in the header, so the header's room is set first: its size
  // with placeholder digits (offsets and the hash take at most as many digits), plus slack.
  const layout = (payloadAt: number) => {
    const sections = {} as Header['sections'];
    let at = payloadAt;
    for (const name of SECTIONS) {
      sections[name] = [at, bodies[name].length];
      at = align8(at + bodies[name].length);
    }
    return { sections, end: at };
  };
  const headerOf = (payloadAt: number, payload: string): Buffer => {
    const h: Header = { format: FORMAT, rest, vocabCount: tables.byId.length, mergeCount: tables.pairs.length, tableSize: table.offsets.length - 1, payloadAt, sections: layout(payloadAt).sections, payload };
    return Buffer.from(JSON.stringify(h), 'utf8');
  };
  const guess = headerOf(2 ** 40, 'f'.repeat(64)).length;
  const room = align8(12 + guess + 64);
  const { sections, end } = layout(room);
  const out = Buffer.alloc(end);
  for (const name of SECTIONS) bodies[name].copy(out, sections[name][0]);
  const header = headerOf(room, crypto.createHash('sha256').update(out.subarray(room)).digest('hex'));
  if (12 + header.length > room) return false; // cannot happen: the guess used larger numbers
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt32LE(header.length, 8);
  header.copy(out, 12);

  // Unique per writer (worker threads share a pid); a reader never sees a half-written entry.
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(tmp, out);
    fs.renameSync(tmp, file);
    return true;
  } catch {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // nothing to clean up
    }
    return false;
  }
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
