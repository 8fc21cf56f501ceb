/**
 * The built-in trained model (models/hogwild-tiny): its checksums are checked at load (a
 * corrupted copy gets a clear error), and it solves held-out problems through the real engine on
 * the CPU, alone and as two workers that split the parts. Skipped, loudly, when the native addon
 * has not been built.
 */
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadNativeAddon } from '../../extension/engine/native';
import { loadTokenizer } from '../../extension/model/tokenizer';
import { trainedModelDir } from '../../extension/model/builtinModels';
import { CHECKSUM_FILE, sha256File, verifyChecksums } from '../../extension/model/checksums';
import { heldOutProblems } from '../../extension/tasks/wordProblems';
import { runProblem } from '../../extension/eval/runProblem';
import { nativeAddonBuilt } from './nativeAddonBuilt';

const root = path.resolve(__dirname, '../..');
const dir = trainedModelDir(root);
const addonBuilt = nativeAddonBuilt('builtinModel.test.ts', 'engine runs skipped');

describe('built-in model files', () => {
  it('list a sha256 for every weight and tokenizer file, and match them', () => {
    const listed = JSON.parse(fs.readFileSync(path.join(dir, CHECKSUM_FILE), 'utf8')).files;
    expect(Object.keys(listed).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    for (const [f, h] of Object.entries(listed)) expect(sha256File(path.join(dir, f))).toBe(h);
    expect(verifyChecksums(dir)).toBe(4);
    const size = fs.statSync(path.join(dir, 'model.safetensors')).size;
    expect(size).toBeLessThan(25e6);
  });

  it('a corrupted or missing file gets a clear error naming it', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hw-sum-'));
    try {
      for (const f of fs.readdirSync(dir)) fs.copyFileSync(path.join(dir, f), path.join(tmp, f));
      const st = path.join(tmp, 'model.safetensors');
      fs.chmodSync(st, 0o644);
      const fd = fs.openSync(st, 'r+');
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, 5000);
      b[0] ^= 0x40;
      fs.writeSync(fd, b, 0, 1, 5000);
      fs.closeSync(fd);
      expect(() => verifyChecksums(tmp)).toThrow(/model\.safetensors: checksum mismatch .*corrupted/);
      fs.rmSync(path.join(tmp, 'tokenizer.json'));
      fs.copyFileSync(path.join(dir, 'model.safetensors'), st);
      expect(() => verifyChecksums(tmp)).toThrow(/tokenizer\.json: missing/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!addonBuilt)('built-in model on the engine (CPU)', () => {
  // What this model achieves on the first 20 held-out problems (greedy, through the real engine),
  // with a margin. Measured when it shipped (convention v3 plus a 2-minute fine-tune, 2026-12-03,
  // AMD EPYC without AMX): 20 right alone; two workers 19 (combined) and 20 (interleaved)
  // right (issue 11 asks for at least 16 of 20 with W = 2 combined and at most 4 runs that
  // compute a part twice), all 20 split and boxed by a worker, one combined run with a part computed twice.
  it('one worker solves 20 held-out problems; two workers (combined and interleaved) split them and box the answer', async () => {
    const addon = loadNativeAddon(root);
    const t0 = Date.now();
    const model = await addon.loadModel(dir, { device: 'cpu', threads: 2 });
    const loadMs = Date.now() - t0;
    const tok = (await loadTokenizer(dir))!;
    const problems = heldOutProblems(20).map((p) => ({ id: p.id, problem: p.text, answer: String(p.answer), parts: p.parts.map((x) => x.item), partExprs: p.parts.map((x) => `${x.groups}*${x.size}`) }));
    const solo = { right: 0 };
    const pairs = { combined: { right: 0, duplicated: 0, split: 0, boxed: 0 }, interleaved: { right: 0, duplicated: 0, split: 0, boxed: 0 } };
    try {
      for (const p of problems) {
        const one = await runProblem(model, tok, p, 1, 'combined', 600);
        if (one.correct) solo.right++;
        for (const layout of ['combined', 'interleaved'] as const) {
          const two = await runProblem(model, tok, p, 2, layout, 600);
          const pair = pairs[layout];
          if (two.correct) pair.right++;
          if (two.duplicated) pair.duplicated++;
          if (!two.fromFinisher) pair.boxed++;
          // Each worker computed a part of the problem (its own "a*b=").
          if (two.texts.every((t) => p.partExprs.some((e) => t.includes(`${e}=`)))) pair.split++;
        }
      }
    } finally {
      model.close();
    }
    const line = (l: keyof typeof pairs) => `W=2 ${l} ${pairs[l].right} right, ${pairs[l].split} split, ${pairs[l].boxed} boxed by a worker, ${pairs[l].duplicated} with a part computed twice`;
    console.log(`      built-in model: loaded in ${loadMs} ms; 20 held-out problems: W=1 ${solo.right} right; ${line('combined')}; ${line('interleaved')}`);
    expect(solo.right).toBeGreaterThanOrEqual(19);
    for (const l of ['combined', 'interleaved'] as const) {
      expect(pairs[l].split).toBeGreaterThanOrEqual(19);
      expect(pairs[l].boxed).toBeGreaterThanOrEqual(19);
      expect(pairs[l].right).toBeGreaterThanOrEqual(17);
      expect(pairs[l].duplicated).toBeLessThanOrEqual(4);
    }
  });
});
