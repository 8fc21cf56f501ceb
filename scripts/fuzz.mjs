#!/usr/bin/env node
// Bounded fuzzing of every parser of untrusted input (a stage of `npm test`):
//   json, config, safetensors   libFuzzer targets in native/fuzz/ (Debian's clang, ASan + UBSan),
//                               built into native/build-fuzz/, each run for --seconds on a copy
//                               of its committed seed corpus plus its regression inputs
//   messages                    the protocol schemas (test/fuzz/messages.fuzz.ts): random and
//                               mutated messages through every validator
// Prints the executions of each; a crash or a broken invariant fails with the input saved
// under native/build-fuzz/artifacts/ (fix it, then commit the input to native/fuzz/regressions/).
//
//   node scripts/fuzz.mjs [--seconds N] [--only json|config|safetensors|messages]
// HOGWILD_FUZZ_SECONDS sets the default time per target (60).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const r = (...p) => path.join(root, ...p);
const argv = process.argv.slice(2);
const opt = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const seconds = Number(opt('--seconds') ?? process.env.HOGWILD_FUZZ_SECONDS ?? 60);
const only = opt('--only');
const NATIVE = ['json', 'config', 'safetensors'];
const targets = only ? [only] : [...NATIVE, 'messages'];
for (const t of targets) if (![...NATIVE, 'messages'].includes(t)) fail(`--only takes ${[...NATIVE, 'messages'].join(', ')} (got ${t})`);
if (!Number.isFinite(seconds) || seconds <= 0) fail(`--seconds takes a positive number (got ${seconds})`);

function fail(message) {
  console.error(`[fuzz] FAILED: ${message}`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  const res = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', ...opts });
  if (res.error) fail(`${cmd}: ${res.error.message}`);
  return res;
}

const buildDir = r('native', 'build-fuzz');
const artifacts = path.join(buildDir, 'artifacts');
fs.mkdirSync(artifacts, { recursive: true });
// The build folder ignores itself, whatever the top-level .gitignore says.
fs.writeFileSync(path.join(buildDir, '.gitignore'), '*\n');

function buildNative() {
  const clang = run('sh', ['-c', 'command -v clang++']).stdout.trim();
  if (!clang) fail('clang++ is missing: the fuzzers need Debian\'s clang (run scripts/setup.sh, or: sudo apt-get install clang)');
  const rt = run(clang, ['-print-file-name=libclang_rt.fuzzer-x86_64.a']).stdout.trim();
  if (!path.isAbsolute(rt) || !fs.existsSync(rt)) {
    const major = run(clang, ['-dumpversion']).stdout.trim().split('.')[0];
    fail(`clang has no libFuzzer runtime: install it with sudo apt-get install libclang-rt-${major}-dev (scripts/setup.sh does)`);
  }
  const gen = run('sh', ['-c', 'command -v ninja']).stdout.trim() ? ['-G', 'Ninja'] : [];
  if (!fs.existsSync(path.join(buildDir, 'CMakeCache.txt'))) {
    const c = run('cmake', ['-S', r('native', 'fuzz'), '-B', buildDir, ...gen, `-DCMAKE_CXX_COMPILER=${clang}`, '-DCMAKE_BUILD_TYPE=RelWithDebInfo'], { stdio: 'inherit' });
    if (c.status !== 0) fail('configuring the fuzzers failed');
  }
  const b = run('cmake', ['--build', buildDir, '--parallel'], { stdio: 'inherit' });
  if (b.status !== 0) fail('building the fuzzers failed');
}

function runNative(name) {
  const bin = path.join(buildDir, `fuzz_${name}`);
  // New inputs go into the work corpus; the committed seeds and regressions are read only.
  const work = path.join(buildDir, 'corpus', name);
  fs.mkdirSync(work, { recursive: true });
  const seeds = r('native', 'fuzz', 'corpus', name);
  const regressions = r('native', 'fuzz', 'regressions', name);
  const res = run(
    bin,
    [
      `-max_total_time=${seconds}`,
      '-timeout=10',
      '-rss_limit_mb=2048',
      '-max_len=65536',
      '-print_final_stats=1',
      `-dict=${r('native', 'fuzz', 'parsers.dict')}`,
      `-artifact_prefix=${artifacts}/${name}-`,
      work,
      seeds,
      regressions,
    ],
    { maxBuffer: 64 * 1024 * 1024, env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1:allocator_may_return_null=1', UBSAN_OPTIONS: 'print_stacktrace=1' } },
  );
  const out = `${res.stdout}${res.stderr}`;
  const execs = /stat::number_of_executed_units:\s*(\d+)/.exec(out)?.[1] ?? '?';
  const cov = /cov: (\d+)/g;
  let last = '?';
  for (let m; (m = cov.exec(out)); ) last = m[1];
  if (res.status !== 0) {
    console.error(out.split('\n').slice(-60).join('\n'));
    fail(`fuzz_${name} found a problem after ${execs} executions (input saved under ${path.relative(root, artifacts)}/)`);
  }
  console.log(`[fuzz] ${name}: ${execs} executions in ${seconds} s, coverage ${last} edges, no crash`);
}

async function runMessages() {
  const out = path.join(buildDir, 'messages.fuzz.js');
  await esbuild.build({ entryPoints: [r('test', 'fuzz', 'messages.fuzz.ts')], outfile: out, bundle: true, platform: 'node', format: 'cjs', target: 'node20', logLevel: 'warning' });
  const res = run(process.execPath, [out], { stdio: 'inherit', env: { ...process.env, HOGWILD_FUZZ_SECONDS: String(seconds), HOGWILD_ROOT: root } });
  if (res.status !== 0) fail('the message schemas broke an invariant (see above)');
}

if (targets.some((t) => NATIVE.includes(t))) buildNative();
for (const t of targets) {
  if (t === 'messages') await runMessages();
  else runNative(t);
}
