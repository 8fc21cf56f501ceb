/**
 * The built-in models, by name:
 *  - "hogwild-tiny" (the default): a small Qwen3-architecture model trained here on one
 *    synthetic task family (multi-part arithmetic word problems) in the project's own
 *    collaboration format (scripts/train/). Shipped in models/hogwild-tiny (dist/assets in the
 *    extension), checked against its checksums at every load.
 *  - "qwen3-0.6b-random": the seeded RANDOM checkpoint with Qwen3-0.6B's shapes, for speed and
 *    shape tests (written on first use, see defaultModel.ts). Its text is meaningless.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_MODEL_DIRNAME } from './defaultModel';

export const TRAINED_MODEL_NAME = 'hogwild-tiny';
export const RANDOM_MODEL_NAMES: readonly string[] = [DEFAULT_MODEL_DIRNAME, 'random'];

/** Is `value` (a --model flag or the modelFolder setting) the name of the random built-in model? */
export function isRandomModelName(value: string): boolean {
  return RANDOM_MODEL_NAMES.includes(value.trim());
}

/** Is `value` the trained built-in model's name? */
export function isTrainedModelName(value: string): boolean {
  return value.trim() === TRAINED_MODEL_NAME;
}

/** The trained model's folder: shipped in dist/assets (the extension) or models/ (a checkout). */
export function trainedModelDir(root: string): string {
  const candidates = [path.join(root, 'dist', 'assets', 'models', TRAINED_MODEL_NAME), path.join(root, 'models', TRAINED_MODEL_NAME)];
  const found = candidates.find((d) => fs.existsSync(path.join(d, 'config.json')));
  if (!found) throw new Error(`the built-in model is missing: neither ${candidates.join(' nor ')} holds config.json`);
  return found;
}
