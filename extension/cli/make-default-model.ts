/**
 * npm run make-default-model [-- --out DIR] [--seed N] [--force]
 *
 * Writes the built-in default model: a seeded RANDOM checkpoint with Qwen3-0.6B's shapes
 * and the real Qwen3 tokenizer (see extension/model/defaultModel.ts). Does nothing when an
 * up-to-date copy is already there.
 */
import * as path from 'node:path';
import { CliError, helpText, parseArgs, repoRoot, runCli, type FlagSpec } from './args';
import { DEFAULT_MODEL_SEED, defaultModelDir, ensureDefaultModel } from '../model/defaultModel';

const SPEC: Record<string, FlagSpec> = {
  out: { type: 'string', arg: 'DIR', help: `where to write (default .models/qwen3-0.6b-random in the repository)` },
  seed: { type: 'int', arg: 'N', min: 0, max: 0xffffffff, help: `random seed (default ${DEFAULT_MODEL_SEED})` },
  force: { type: 'boolean', help: 'rewrite even when an up-to-date copy exists' },
  quiet: { type: 'boolean', help: 'print nothing but errors' },
  help: { type: 'boolean', help: 'show this help' },
};

runCli(async () => {
  const { flags } = parseArgs(process.argv.slice(2), SPEC, { maxPositional: 0 });
  if (flags.help) {
    process.stdout.write(helpText('Usage: npm run make-default-model [-- --out DIR] [--seed N] [--force]', SPEC));
    return;
  }
  const root = repoRoot();
  const dir = flags.out !== undefined ? path.resolve(String(flags.out)) : defaultModelDir(root);
  const quiet = flags.quiet === true;
  const tty = process.stderr.isTTY && !quiet;
  let lastPct = -1;
  const res = await ensureDefaultModel({
    root,
    dir,
    seed: flags.seed as number | undefined,
    force: flags.force === true,
    onProgress: tty
      ? (w, total) => {
          const pct = Math.floor((100 * w) / total);
          if (pct !== lastPct) {
            lastPct = pct;
            process.stderr.write(`\rhogwild: writing model.safetensors ${pct}%`);
          }
        }
      : undefined,
  }).catch((err: Error) => {
    throw new CliError(err.message);
  });
  if (tty && res.created) process.stderr.write('\r\x1b[K');
  if (!quiet) {
    process.stderr.write(
      res.created
        ? `hogwild: wrote the built-in random model (${(res.bytes / 1e9).toFixed(2)} GB, untrained) to ${res.dir} in ${(res.ms / 1000).toFixed(1)} s\n`
        : `hogwild: the built-in random model in ${res.dir} is up to date\n`,
    );
  }
});
