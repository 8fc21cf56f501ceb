#!/usr/bin/env node
// `npm test`: every test of the project, in order, stopping at the first failure.
//
//   0. build     the esbuild bundles (scripts/build.mjs) and, when its sources exist, the
//                native addon (npm run build:native; incremental, seconds when up to date)
//   1. native    each native/tests/*.cpp is an executable target of native/CMakeLists.txt;
//                configured and built in native/build-tests, then run one by one (with the
//                CUDA backend built, also its GPU-free tests: build-tests/gpu_free_cuda_tests.txt)
//   2. unit      vitest run (test/unit/**/*.test.ts, see vitest.config.ts)
//   2b. webview  the run panel's and the sidebar's bundles in headless Chromium against recorded
//                traces (test/webview, vitest.webview.config.ts; Debian's /usr/bin/chromium)
//   3. lint      ESLint (eslint.config.mjs) and the clang-format check (scripts/lint.mjs)
//   4. fuzz      libFuzzer on the native parsers and the message schemas, bounded
//                (scripts/fuzz.mjs; HOGWILD_FUZZ_SECONDS per target, default 60)
//   5. e2e       node test/e2e/run.mjs, the VS Code end-to-end suite, when that file exists
//
// Options:
//   --no-build        skip stage 0
//   --skip-STAGE      skip a stage (native, unit, webview, lint, fuzz, e2e)
//   --only STAGE      run only that stage (after the build)
//   -- ARGS           passed on to vitest (e.g. `npm test -- --only unit -- tokenizer`,
//                     `npm test -- --only webview -- sidebar`)
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const r = (...p) => path.join(root, ...p);

const argv = process.argv.slice(2);
const dd = argv.indexOf('--');
const own = dd >= 0 ? argv.slice(0, dd) : argv;
const vitestArgs = dd >= 0 ? argv.slice(dd + 1) : [];
const flag = (f) => own.includes(f);
const onlyIdx = own.indexOf('--only');
const only = onlyIdx >= 0 ? own[onlyIdx + 1] : null;
const STAGES = ['native', 'unit', 'webview', 'lint', 'fuzz', 'e2e'];
if (only !== null && !STAGES.includes(only)) {
  fail(`--only takes ${STAGES.join(', ')} (got ${only ?? 'nothing'})`);
}
const want = (stage) => (only ? only === stage : !flag(`--skip-${stage}`));

function fail(message) {
  console.error(`\n[test] FAILED: ${message}`);
  process.exit(1);
}

function run(label, cmd, args, opts = {}) {
  console.log(`\n[test] ${label}: ${[cmd, ...args].join(' ')}`);
  const t0 = Date.now();
  const res = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  if (res.error) fail(`${label}: ${res.error.message}`);
  if (res.signal) fail(`${label}: killed by ${res.signal} after ${secs} s`);
  if (res.status !== 0) fail(`${label}: exit code ${res.status} after ${secs} s`);
  console.log(`[test] ${label}: ok (${secs} s)`);
}

const listCpp = (dir) =>
  fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.cpp')).sort() : [];

// ---------------------------------------------------------------- 0. build
if (!flag('--no-build')) {
  run('build bundles', process.execPath, [r('scripts/build.mjs')]);
  if (listCpp(r('native/addon')).length > 0) {
    run('build addon', 'npm', ['run', '--silent', 'build:native']);
    // Copy the fresh addon into dist/native as well.
    run('copy addon', process.execPath, [r('scripts/build.mjs')]);
  } else {
    console.log('[test] build addon: skipped (native/addon has no sources yet)');
  }
}

// ---------------------------------------------------------------- 1. native tests
if (want('native')) {
  const tests = listCpp(r('native/tests')).map((f) => f.replace(/\.cpp$/, ''));
  if (tests.length === 0) {
    console.log('\n[test] native: skipped (native/tests has no *.cpp yet)');
  } else {
    const buildDir = r('native/build-tests');
    fs.mkdirSync(buildDir, { recursive: true });
    // The build folder ignores itself, whatever the top-level .gitignore says.
    fs.writeFileSync(path.join(buildDir, '.gitignore'), '*\n');
    run('native configure', 'cmake', ['-S', r('native'), '-B', buildDir, '-DCMAKE_BUILD_TYPE=Release']);
    // With the CUDA backend built (nvcc found), its GPU-free tests too (the list comes from CMake).
    const gpuFreeList = path.join(buildDir, 'gpu_free_cuda_tests.txt');
    const gpuFree = fs.existsSync(gpuFreeList)
      ? fs.readFileSync(gpuFreeList, 'utf8').split('\n').map((s) => s.trim()).filter(Boolean)
      : [];
    tests.push(...gpuFree.filter((t) => !tests.includes(t)));
    run('native build', 'cmake', [
      '--build', buildDir, '--parallel', String(Math.max(1, os.cpus().length)), '--target', ...tests,
    ]);
    for (const t of tests) {
      const exe = path.join(buildDir, t);
      if (!fs.existsSync(exe)) fail(`native test ${t}: ${exe} was not built`);
      run(`native ${t}`, exe, [], { env: { ...process.env, HW_REPO_ROOT: root } });
    }
  }
}

// ---------------------------------------------------------------- 2. unit tests
if (want('unit')) {
  const vitest = r('node_modules/vitest/vitest.mjs');
  run('unit (vitest)', process.execPath, [vitest, 'run', ...vitestArgs]);
}

// ---------------------------------------------------------------- 2b. webviews in Chromium
if (want('webview')) {
  const vitest = r('node_modules/vitest/vitest.mjs');
  run('webview (vitest, headless Chromium)', process.execPath, [vitest, 'run', '--config', r('vitest.webview.config.ts'), ...vitestArgs]);
}

// ---------------------------------------------------------------- 3. lint
if (want('lint')) {
  run('lint', process.execPath, [r('scripts/lint.mjs')]);
}

// ---------------------------------------------------------------- 4. fuzzing
if (want('fuzz')) {
  run('fuzz', process.execPath, [r('scripts/fuzz.mjs')]);
}

// ---------------------------------------------------------------- 5. VS Code end-to-end
// HOOK: the extension engineer's suite. It installs code-server itself and drives a real
// VS Code (see ../shared/notes/vscode-e2e.md); it runs only when test/e2e/run.mjs exists.
if (want('e2e')) {
  const e2e = r('test/e2e/run.mjs');
  if (fs.existsSync(e2e)) {
    run('e2e (VS Code)', process.execPath, [e2e]);
  } else {
    console.log('\n[test] e2e: skipped (test/e2e/run.mjs does not exist yet)');
  }
}

console.log('\n[test] all stages passed');
