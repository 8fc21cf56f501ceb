/**
 * The extension-host test entry (extensionTestsPath): runs the mocha suites in this folder
 * inside a real VS Code extension host. The same file serves both launchers:
 * test/e2e/run.mjs (code-server + the smoke-test driver, here) and test/e2e/run-electron.mjs
 * (@vscode/test-electron, where VS Code can be downloaded).
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import Mocha from 'mocha';

export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', timeout: 120_000, color: false, reporter: 'spec' });
  const files = fs.readdirSync(__dirname).filter((f) => f.endsWith('.test.js')).sort();
  for (const f of files) mocha.addFile(path.join(__dirname, f));
  return new Promise((resolve, reject) => {
    try {
      mocha.run((failures) => (failures > 0 ? reject(new Error(`${failures} extension-host test(s) failed`)) : resolve()));
    } catch (e) {
      reject(e);
    }
  });
}
