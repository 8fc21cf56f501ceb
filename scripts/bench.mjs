#!/usr/bin/env node
// `npm run bench:cpu` / `npm run bench:hogwild` / `npm run bench:prefill`: builds the native benchmark executables
// (native/bench/*.cpp, Release) and runs the ones named on the command line, in order.
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = path.join(root, 'native', 'build-tests');
const targets = process.argv.slice(2);
if (targets.length === 0) {
  console.error('usage: node scripts/bench.mjs <bench target>...');
  process.exit(2);
}

function run(cmd, args) {
  const res = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (res.status !== 0) process.exit(res.status ?? 1);
}

run('cmake', ['-S', path.join(root, 'native'), '-B', buildDir, '-DCMAKE_BUILD_TYPE=Release']);
run('cmake', ['--build', buildDir, '--parallel', String(os.cpus().length), '--target', ...targets]);
for (const t of targets) run(path.join(buildDir, t), []);
