#!/usr/bin/env node
// The lint stage of `npm test`: ESLint (eslint.config.mjs) over the TypeScript and scripts, and
// clang-format (native/.clang-format) in check mode over the C++ of native/. Any finding fails.
//
//   node scripts/lint.mjs [--fix]     --fix rewrites what both tools can fix
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fix = process.argv.includes('--fix');

function fail(message) {
  console.error(`[lint] FAILED: ${message}`);
  process.exit(1);
}

// ---------------------------------------------------------------- ESLint
const eslint = path.join(root, 'node_modules', 'eslint', 'bin', 'eslint.js');
const targets = ['extension', 'webview', 'protocol', 'test', 'scripts', 'eslint.config.mjs', 'vitest.config.ts'].filter((p) => fs.existsSync(path.join(root, p)));
const es = spawnSync(process.execPath, [eslint, '--max-warnings=0', ...(fix ? ['--fix'] : []), ...targets], { cwd: root, stdio: 'inherit' });
if (es.status !== 0) fail('ESLint found problems (above); `node scripts/lint.mjs --fix` fixes some');
console.log(`[lint] ESLint: ${targets.join(', ')}: clean`);

// ---------------------------------------------------------------- clang-format
// Every C++ and CUDA source of native/, build folders aside.
const cpp = [];
for (const f of fs.readdirSync(path.join(root, 'native'), { recursive: true })) {
  if (/^build/.test(f) || !/\.(cpp|h|cu|cuh|inc)$/.test(f)) continue;
  cpp.push(path.join(root, 'native', f));
}
const which = spawnSync('sh', ['-c', 'command -v clang-format'], { encoding: 'utf8' });
if (!which.stdout.trim()) fail('clang-format is missing (run scripts/setup.sh, or: sudo apt-get install clang-format)');
const cf = spawnSync('clang-format', [fix ? '-i' : '--dry-run', ...(fix ? [] : ['-Werror']), '--style=file', ...cpp], { cwd: root, stdio: 'inherit' });
if (cf.status !== 0) fail('clang-format: files above are not formatted (node scripts/lint.mjs --fix)');
console.log(`[lint] clang-format: ${cpp.length} files: clean`);
