/**
 * Loading a model for the CLIs: the folder (given, or the built-in random model, generated
 * on first use), its tokenizer (optional) and the native engine.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadNativeAddon, type NativeModel } from '../engine/native';
import { loadTokenizer, type HwTokenizer } from '../model/tokenizer';
import { defaultModelDir, ensureDefaultModel, isBuiltInModel } from '../model/defaultModel';
import { isRandomModelName, isTrainedModelName, TRAINED_MODEL_NAME, trainedModelDir } from '../model/builtinModels';
import { verifyChecksums } from '../model/checksums';
import { KV_DTYPES } from '../../protocol/messages';
import { CliError, type FlagSpec } from './args';
import { ProgressBar } from './progress';
import { mark } from './timings';

export const MODEL_FLAGS: Record<string, FlagSpec> = {
  model: { type: 'string', arg: 'DIR', help: `a local Hugging Face model folder, or a built-in model's name: ${TRAINED_MODEL_NAME} (the default, trained here on one synthetic task family) or qwen3-0.6b-random (random weights, for speed tests)` },
  device: { type: 'string', arg: 'auto|cpu|cuda', help: 'where the engine runs (default auto)' },
  threads: { type: 'int', arg: 'N', min: 0, max: 1024, help: 'CPU threads (default 0 = all cores)' },
  'kv-dtype': {
    type: 'string',
    arg: KV_DTYPES.join('|'),
    help: "K/V cache element type (default auto = the checkpoint's); q8: int8 with a bf16 scale per 32 values, about half of bf16's memory, CPU only",
  },
  'max-context': { type: 'int', arg: 'N', min: 0, help: "longest context (default 0 = the model's)" },
};

export interface LoadedModel {
  dir: string;
  builtIn: boolean;
  /** The built-in trained model (hogwild-tiny). */
  trained: boolean;
  model: NativeModel;
  tok: HwTokenizer | null;
  loadMs: number;
}

/** Loads the model for a CLI; `progress` (default true) draws the load's progress on stderr. */
export async function loadForCli(root: string, flags: Record<string, unknown>, log: (line: string) => void, opts: { progress?: boolean } = {}): Promise<LoadedModel> {
  const device = (flags.device as string | undefined) ?? 'auto';
  if (!['auto', 'cpu', 'cuda'].includes(device)) throw new CliError(`--device takes auto, cpu or cuda, got "${device}"`);
  const kvDtype = (flags['kv-dtype'] as string | undefined) ?? 'auto';
  if (!(KV_DTYPES as readonly string[]).includes(kvDtype)) throw new CliError(`--kv-dtype takes ${KV_DTYPES.join(', ')}, got "${kvDtype}"`);
  if (kvDtype === 'q8' && device === 'cuda') throw new CliError('--kv-dtype q8 is CPU-only; use bf16 with --device cuda (or q8 with --device cpu)');
  let dir: string;
  let trained = false;
  if (flags.model === undefined || isTrainedModelName(String(flags.model))) {
    try {
      dir = trainedModelDir(root);
    } catch (err) {
      throw new CliError((err as Error).message);
    }
    trained = true;
  } else if (!isRandomModelName(String(flags.model)) || fs.existsSync(path.resolve(String(flags.model)))) {
    dir = path.resolve(String(flags.model));
    if (!fs.existsSync(dir)) throw new CliError(`model folder ${dir} does not exist`);
    if (!fs.statSync(dir).isDirectory()) throw new CliError(`${dir} is not a folder (--model takes a model folder)`);
    if (!fs.existsSync(path.join(dir, 'config.json'))) throw new CliError(`${path.join(dir, 'config.json')}: missing (not a Hugging Face model folder)`);
  } else {
    dir = defaultModelDir(root);
    const res = await ensureDefaultModel({ root, dir }).catch((err: Error) => {
      throw new CliError(`cannot write the built-in model: ${err.message}`);
    });
    if (res.created) log(`wrote the built-in random model to ${dir} in ${(res.ms / 1000).toFixed(1)} s`);
  }
  const builtIn = isBuiltInModel(dir);
  try {
    verifyChecksums(dir);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  mark('checksums verified');
  let addon;
  try {
    addon = loadNativeAddon(root);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  mark('addon loaded');
  // The engine reads the weights on a thread of its own while this one loads the tokenizer.
  const t0 = Date.now();
  const bar = opts.progress === false ? null : new ProgressBar(process.stderr);
  const loading = addon.loadModel(
    dir,
    {
      device,
      threads: (flags.threads as number | undefined) ?? 0,
      kvDtype,
      maxContext: (flags['max-context'] as number | undefined) ?? 0,
    },
    (phase, done, total) => bar?.load({ phase, done, total }),
  );
  let tok: HwTokenizer | null;
  try {
    tok = await loadTokenizer(dir);
  } catch (err) {
    loading.then((m) => m.close(), () => undefined);
    throw new CliError((err as Error).message);
  }
  mark('tokenizer loaded');
  let model: NativeModel;
  try {
    model = await loading;
  } catch (err) {
    throw new CliError((err as Error).message);
  } finally {
    bar?.end();
  }
  mark('model loaded');
  const loadMs = Date.now() - t0;
  const c = model.config;
  log(
    `model ${dir} (${c.arch}, ${c.layers} layers, hidden ${c.hidden}, vocab ${c.vocab}) on ${model.device}${model.kvDtype ? `, K/V in ${model.kvDtype}` : ''}, loaded in ${loadMs} ms` +
      (builtIn ? ' - the built-in RANDOM model: its text is meaningless' : trained ? ' - the built-in model, trained here on one synthetic task family (multi-part arithmetic word problems)' : ''),
  );
  if (!tok) log(`no tokenizer in ${dir} (tokenizer.json): token ids only`);
  return { dir, builtIn, trained, model, tok, loadMs };
}

/** Writes to stdout, ignoring a closed pipe (e.g. `| head`). */
export function out(text: string): void {
  try {
    process.stdout.write(text);
  } catch {
    // EPIPE
  }
}

process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
});
