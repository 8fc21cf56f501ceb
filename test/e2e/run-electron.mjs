#!/usr/bin/env node
// The SAME extension-host suite as test/e2e/run.mjs, launched through @vscode/test-electron
// (a downloaded VS Code desktop) where VS Code's update server can be reached. It cannot run
// on the offline machines of this project (test-electron resolves versions online), so it is
// not part of `npm test`; test/e2e/run.mjs runs the suite in code-server instead.
//
//   npm run package && node test/e2e/run-electron.mjs [--version 1.99.0]
//
// Uses the built extension in the repository (extensionDevelopmentPath = the repo root, with
// dist/ built and the addon in dist/native) and the suite bundled to out/e2e/suite.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepareSuite } from './lib/suite.mjs';
import { runTests } from '@vscode/test-electron';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const version = args.includes('--version') ? args[args.indexOf('--version') + 1] : 'stable';

async function main() {
  const outDir = path.join(root, 'out', 'e2e');
  const model = path.join(root, '.codeserver', 'models', 'qwen3-tiny-h256-l4');
  await prepareSuite(root, outDir, model);

  // The same workspace settings as run.mjs.
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'hogwild-electron-'));
  fs.mkdirSync(path.join(workspace, '.vscode'));
  fs.writeFileSync(
    path.join(workspace, '.vscode', 'settings.json'),
    JSON.stringify({ 'hogwild.modelFolder': model, 'hogwild.device': 'cpu', 'hogwild.threads': 2, 'hogwild.workers': 2, 'hogwild.maxTokens': 40, 'hogwild.sampling.seed': 7 }, null, 2),
  );
  fs.writeFileSync(path.join(workspace, 'problem.md'), 'How many positive divisors does 360 have?\n');

  await runTests({
    version,
    extensionDevelopmentPath: root,
    extensionTestsPath: path.join(outDir, 'suite', 'index.js'),
    launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust', '--skip-welcome', '--skip-release-notes'],
  });
}

main().catch((e) => {
  console.error(`[e2e:electron] ${e instanceof Error ? e.message : e}`);
  process.exitCode = 1;
});
