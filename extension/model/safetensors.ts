/**
 * Writes .safetensors files (https://github.com/huggingface/safetensors): an 8-byte
 * little-endian header length N, N bytes of JSON ({name: {dtype, shape, data_offsets}},
 * padded with spaces so that the data starts 8-byte aligned), then the tensors' bytes back
 * to back with no holes. Large tensors are streamed: a `fill` callback writes each chunk,
 * so a 1.2 GB checkpoint never sits in memory at once.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export type SafetensorsDtype = 'BOOL' | 'U8' | 'I8' | 'I16' | 'U16' | 'F16' | 'BF16' | 'I32' | 'U32' | 'F32' | 'F64' | 'I64' | 'U64';

export const DTYPE_BYTES: Record<SafetensorsDtype, number> = {
  BOOL: 1, U8: 1, I8: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8,
};

export interface TensorSpec {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** The tensor's bytes (any typed array; its raw little-endian bytes are written). */
  data?: ArrayBufferView;
  /**
   * Or a generator: called in order with consecutive chunks of the tensor's bytes;
   * `offset` is the chunk's byte offset inside the tensor. Chunks hold whole elements.
   */
  fill?: (chunk: Uint8Array, offset: number) => void;
}

export interface WriteOptions {
  /** __metadata__ (string to string, as the format requires). */
  metadata?: Record<string, string>;
  /** Bytes per write (default 8 MiB). */
  chunkBytes?: number;
  /** Called after each chunk with bytes written so far and the total. */
  onProgress?: (written: number, total: number) => void;
  /**
   * Skip the check that `data` holds exactly numel x dtype bytes, so that tests can write
   * deliberately broken files (the header then still states the size the shape implies).
   */
  unchecked?: boolean;
}

export function tensorBytes(dtype: SafetensorsDtype, shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
}

export interface SafetensorsLayout {
  /** The full header: 8-byte length + padded JSON. */
  header: Uint8Array;
  /** data_offsets of each tensor, in the order given. */
  offsets: [number, number][];
  dataBytes: number;
  totalBytes: number;
}

/** The header and offsets of a file holding `tensors` in the order given. */
export function safetensorsLayout(tensors: Pick<TensorSpec, 'name' | 'dtype' | 'shape'>[], metadata?: Record<string, string>): SafetensorsLayout {
  const json: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) json.__metadata__ = metadata;
  const offsets: [number, number][] = [];
  const seen = new Set<string>();
  let at = 0;
  for (const t of tensors) {
    if (!t.name || t.name === '__metadata__') throw new Error(`safetensors: bad tensor name ${JSON.stringify(t.name)}`);
    if (seen.has(t.name)) throw new Error(`safetensors: tensor ${t.name} given twice`);
    seen.add(t.name);
    if (!(t.dtype in DTYPE_BYTES)) throw new Error(`safetensors: tensor ${t.name}: unknown dtype ${t.dtype}`);
    if (!t.shape.every((d) => Number.isInteger(d) && d >= 0)) throw new Error(`safetensors: tensor ${t.name}: bad shape [${t.shape}]`);
    const n = tensorBytes(t.dtype, t.shape);
    offsets.push([at, at + n]);
    json[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + n] };
    at += n;
  }
  let text = JSON.stringify(json);
  const pad = (8 - ((8 + Buffer.byteLength(text)) % 8)) % 8;
  text += ' '.repeat(pad);
  const body = Buffer.from(text, 'utf8');
  const header = new Uint8Array(8 + body.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(body.length), true);
  header.set(body, 8);
  return { header, offsets, dataBytes: at, totalBytes: header.length + at };
}

function viewBytes(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/**
 * Writes a .safetensors file. Written to a temporary name beside it and renamed at the
 * end, so a reader never sees a half-written file.
 */
export async function writeSafetensors(file: string, tensors: TensorSpec[], opts: WriteOptions = {}): Promise<void> {
  const layout = safetensorsLayout(tensors, opts.metadata);
  const chunkBytes = Math.max(8, Math.floor((opts.chunkBytes ?? 8 << 20) / 8) * 8);
  for (const t of tensors) {
    if (!t.data === !t.fill) throw new Error(`safetensors: tensor ${t.name}: give exactly one of data or fill`);
    if (t.data && !opts.unchecked && t.data.byteLength !== tensorBytes(t.dtype, t.shape)) {
      throw new Error(`safetensors: tensor ${t.name}: ${t.data.byteLength} bytes of data for ${t.dtype} [${t.shape}] (${tensorBytes(t.dtype, t.shape)} bytes)`);
    }
  }
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.partial-${process.pid}`;
  const fh = await fs.promises.open(tmp, 'w');
  let written = 0;
  try {
    const write = async (bytes: Uint8Array) => {
      let done = 0;
      while (done < bytes.length) {
        const { bytesWritten } = await fh.write(bytes, done, bytes.length - done);
        done += bytesWritten;
      }
      written += bytes.length;
      opts.onProgress?.(written, layout.totalBytes);
    };
    await write(layout.header);
    // Two buffers: the next chunk is generated while the previous one is being written.
    const bufs = [new Uint8Array(chunkBytes), new Uint8Array(chunkBytes)];
    let which = 0;
    let pending: Promise<void> | null = null;
    for (const t of tensors) {
      if (t.data) {
        if (pending) await pending;
        pending = null;
        await write(viewBytes(t.data));
        continue;
      }
      const total = tensorBytes(t.dtype, t.shape);
      const elem = DTYPE_BYTES[t.dtype];
      const step = Math.max(elem, Math.floor(chunkBytes / elem) * elem);
      for (let off = 0; off < total; off += step) {
        const n = Math.min(step, total - off);
        const chunk = bufs[which].subarray(0, n);
        which ^= 1;
        t.fill!(chunk, off);
        if (pending) await pending;
        pending = write(chunk);
      }
    }
    if (pending) await pending;
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  await fh.close();
  fs.renameSync(tmp, file);
}

export interface ParsedSafetensors {
  headerBytes: number; // 8 + N
  metadata: Record<string, string> | null;
  tensors: { name: string; dtype: string; shape: number[]; begin: number; end: number }[];
}

/** Reads and checks the header of a .safetensors file (for tests and tools). */
export function readSafetensorsHeader(file: string): ParsedSafetensors {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    if (size < 8) throw new Error(`${file}: too short for a safetensors header (${size} bytes)`);
    const lenBuf = Buffer.alloc(8);
    fs.readSync(fd, lenBuf, 0, 8, 0);
    const n = Number(lenBuf.readBigUInt64LE(0));
    if (n > size - 8) throw new Error(`${file}: header length ${n} exceeds the file (${size} bytes)`);
    const hdr = Buffer.alloc(n);
    fs.readSync(fd, hdr, 0, n, 8);
    const json = JSON.parse(hdr.toString('utf8')) as Record<string, unknown>;
    const tensors: ParsedSafetensors['tensors'] = [];
    let metadata: Record<string, string> | null = null;
    for (const [name, v] of Object.entries(json)) {
      if (name === '__metadata__') {
        metadata = v as Record<string, string>;
        continue;
      }
      const t = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
      tensors.push({ name, dtype: t.dtype, shape: t.shape, begin: t.data_offsets[0], end: t.data_offsets[1] });
    }
    return { headerBytes: 8 + n, metadata, tensors };
  } finally {
    fs.closeSync(fd);
  }
}
