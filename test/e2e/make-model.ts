/**
 * The small model of the end-to-end tests: a seeded random Qwen3-shaped checkpoint (hidden
 * 256, 4 layers) with the real Qwen3 tokenizer, written by the project's own generator
 * (extension/model/defaultModel.ts). Random weights, meaningless text; it exists so that a
 * whole run takes seconds on two CPU cores. Idempotent (the generator's marker file).
 *
 *   node out/e2e/make-model.js <dir> <repo root>
 */
import { QWEN3_0_6B, findQwen3TokenizerDir, writeRandomCheckpoint } from '../../extension/model/defaultModel';

export const E2E_SHAPE = { ...QWEN3_0_6B, hidden: 256, intermediate: 768, layers: 4, heads: 4, kvHeads: 2, headDim: 64 };

async function main(): Promise<void> {
  const [dir, root] = process.argv.slice(2);
  if (!dir || !root) throw new Error('usage: make-model.js <dir> <repo root>');
  const tokenizerDir = findQwen3TokenizerDir(root);
  if (!tokenizerDir) throw new Error(`no Qwen3 tokenizer under ${root}`);
  const r = await writeRandomCheckpoint(dir, { shape: E2E_SHAPE, seed: 4242, tokenizerDir });
  console.log(`[e2e] model ${r.created ? 'written' : 'up to date'}: ${dir} (${(r.bytes / 1e6).toFixed(0)} MB, ${r.ms} ms)`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
