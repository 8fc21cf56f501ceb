/**
 * The built-in trained model (models/hogwild-tiny): its checksums are checked at load (a
 * corrupted copy gets a clear error), and on 20 held-out problems two workers sharing the
 * cache through the real engine on the CPU get at least 16 answers right with at most 4 runs
 * that compute a part twice. Skipped, loudly, when the native addon has not been built.
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

const root = path.resolve(__dirname, '../..');
const dir = trainedModelDir(root);
const addonBuilt = ['dist/native/hogwild_native.node', 'native/build/Release/hogwild_native.node'].some((p) => fs.existsSync(path.join(root, p)));
if (!addonBuilt) console.warn('builtinModel.test.ts: the native addon is not built (npm run build:native): engine runs skipped');

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
  it('two workers solve 20 held-out problems together: >= 16 right, <= 4 with a part computed twice', async () => {
    const addon = loadNativeAddon(root);
    const t0 = Date.now();
    const model = await addon.loadModel(dir, { device: 'cpu', threads: 2 });
    const loadMs = Date.now() - t0;
    const tok = (await loadTokenizer(dir))!;
    let right = 0;
    let duplicated = 0;
    let split = 0;
    try {
      for (const p of heldOutProblems(20)) {
        const r = await runProblem(model, tok, { id: p.id, problem: p.text, answer: String(p.answer), parts: p.parts.map((x) => x.item) }, 2, 'combined', 600);
        if (r.correct) right++;
        if (r.duplicated) duplicated++;
        // Both workers computed at least one part: the work was split.
        if (r.texts.every((t) => p.parts.some((x) => new RegExp(`\\*\\* ${x.label}[,:]`).test(t)))) split++;
      }
    } finally {
      model.close();
    }
    console.log(`      built-in model: loaded in ${loadMs} ms; W=2 on 20 held-out problems: ${right} right, ${duplicated} with a duplicated part, ${split} split between both workers`);
    expect(right).toBeGreaterThanOrEqual(16);
    expect(duplicated).toBeLessThanOrEqual(4);
    expect(split).toBeGreaterThanOrEqual(16);
  });
});
