// The one extension-host suite, made ready for either launcher (code-server in run.mjs,
// @vscode/test-electron in run-electron.mjs): the suite bundled to outDir/suite, and the
// small random model it runs on written to `model`.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as esbuild from 'esbuild';

export async function prepareSuite(root, outDir, model) {
  const suiteDir = path.join(root, 'test', 'e2e', 'suite');
  const common = { bundle: true, platform: 'node', format: 'cjs', target: 'node20', logLevel: 'warning' };
  await esbuild.build({
    ...common,
    entryPoints: fs.readdirSync(suiteDir).filter((f) => f.endsWith('.ts')).map((f) => path.join(suiteDir, f)),
    outdir: path.join(outDir, 'suite'),
    external: ['vscode', 'mocha'],
  });
  const makeModel = path.join(outDir, 'make-model.js');
  await esbuild.build({ ...common, entryPoints: [path.join(root, 'test', 'e2e', 'make-model.ts')], outfile: makeModel });
  const r = spawnSync(process.execPath, [makeModel, model, root], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`could not write the e2e model (${r.status ?? r.signal})`);
}
