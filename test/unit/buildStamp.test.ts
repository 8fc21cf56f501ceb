/**
 * scripts/build.mjs --only NAME (what `npm run solve` runs first): a bundle whose inputs are
 * unchanged is not built again, and any change to an input (content, size or mtime), a new
 * import, or a bundle written by something else builds it again. Run on a copy of the build
 * script in a scratch tree, so that nothing of the repository's dist/ is touched.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
let tree: string;

const out = () => path.join(tree, 'dist/cli/solve.js');
function build(): void {
  execFileSync(process.execPath, [path.join(tree, 'scripts/build.mjs'), '--quiet', '--only', 'cli/solve'], { cwd: tree, stdio: 'pipe' });
}
/** Builds and says whether the bundle was written (its inode or mtime moved). */
function rebuilt(): boolean {
  const before = fs.statSync(out());
  build();
  const after = fs.statSync(out());
  return after.ino !== before.ino || after.mtimeMs !== before.mtimeMs;
}
function write(rel: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(tree, rel)), { recursive: true });
  fs.writeFileSync(path.join(tree, rel), text);
}

beforeAll(() => {
  tree = fs.mkdtempSync(path.join(os.tmpdir(), 'hw-build-'));
  fs.mkdirSync(path.join(tree, 'scripts'));
  fs.copyFileSync(path.join(ROOT, 'scripts/build.mjs'), path.join(tree, 'scripts/build.mjs'));
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(tree, 'node_modules'));
  write('package.json', '{"private": true}\n');
  write('tsconfig.json', '{}\n');
  write('extension/cli/solve.ts', "import { word } from './word';\nconsole.log(word);\n");
  write('extension/cli/word.ts', "export const word = 'one';\n");
  // Old mtimes: a file modified after its build began is never trusted (see writeStamp).
  const old = new Date(Date.now() - 60_000);
  for (const rel of ['package.json', 'tsconfig.json', 'extension/cli/solve.ts', 'extension/cli/word.ts', 'scripts/build.mjs']) fs.utimesSync(path.join(tree, rel), old, old);
});
afterAll(() => {
  fs.rmSync(tree, { recursive: true, force: true });
});

const run = () => execFileSync(process.execPath, [out()], { encoding: 'utf8' }).trim();
const age = (rel: string) => {
  const t = new Date(Date.now() - 30_000);
  fs.utimesSync(path.join(tree, rel), t, t);
};

describe('build.mjs --only: the bundle check', () => {
  it('builds once, then skips while nothing changed', () => {
    build();
    expect(run()).toBe('one');
    expect(fs.existsSync(`${out()}.inputs.json`)).toBe(true);
    expect(rebuilt()).toBe(false);
    expect(rebuilt()).toBe(false);
  });

  it('builds again when an input changes (the same size, another mtime)', () => {
    write('extension/cli/word.ts', "export const word = 'two';\n"); // same size, new mtime
    age('extension/cli/word.ts');
    expect(rebuilt()).toBe(true);
    expect(run()).toBe('two');
    expect(rebuilt()).toBe(false);
  });

  it('builds again for a new import, a changed tsconfig.json, and a bundle written by something else', () => {
    write('extension/cli/extra.ts', "export const extra = 'three';\n");
    write('extension/cli/solve.ts', "import { word } from './word';\nimport { extra } from './extra';\nconsole.log(word + extra);\n");
    age('extension/cli/extra.ts');
    age('extension/cli/solve.ts');
    expect(rebuilt()).toBe(true);
    expect(run()).toBe('twothree');
    expect(rebuilt()).toBe(false);
    write('tsconfig.json', '{ }\n');
    age('tsconfig.json');
    expect(rebuilt()).toBe(true);
    expect(rebuilt()).toBe(false);
    fs.writeFileSync(out(), 'console.log("stale")\n');
    expect(rebuilt()).toBe(true);
    expect(run()).toBe('twothree');
  });

  it('builds again when an input is gone (and fails on the missing import)', () => {
    fs.rmSync(path.join(tree, 'extension/cli/extra.ts'));
    expect(() => build()).toThrow();
  });
});
