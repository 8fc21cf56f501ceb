#!/usr/bin/env node
// `npm run bench:prefill [-- --skip-cli | --skip-engine] [-- bench_prefill flags]`: every target of issue 13 from one run.
//
//   1. native/build-tests/bench_prefill (built here, Release): the load, the matmul rate, an
//      8k-token prefill as the engine runs it (rate, attention share, first progress from the
//      request), Stop latency, KV bytes per token, 8 workers x 4k tokens resident;
//   2. on the built-in random model (Qwen3-0.6B shapes) with a 40 KB problem (about 8k tokens):
//      Solve as VS Code runs it (the engine process through the extension's client: the
//      request timed to the first progress event with tokens done, Stop a second later); then
//      the command a user types, `node dist/cli/solve.js` and `npm run solve`, timed from the
//      start of the command to the first progress line with tokens done, with the command's
//      own breakdown (HOGWILD_TIMINGS=1), and Ctrl-C a second later timed until it has ended;
//   3. a summary: one line per target, with its number and whether it is met.
// The dist bundles and the addon must be built (npm run build:native; the npm script builds
// the bundles first).
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const skipCli = argv.includes('--skip-cli');
const skipEngine = argv.includes('--skip-engine');
const benchArgs = argv.filter((a) => a !== '--skip-cli' && a !== '--skip-engine');
const buildDir = path.join(root, 'native', 'build-tests');
const targets = [];

function must(res, what) {
  if (res.error) throw new Error(`${what}: ${res.error.message}`);
  if (res.status !== 0) {
    console.error(`bench:prefill: ${what} failed (exit code ${res.status})`);
    process.exit(res.status ?? 1);
  }
}

// ---------------------------------------------------------------- 1. the engine
if (!skipEngine) await benchEngine();

async function benchEngine() {
console.log('bench:prefill: building native/build-tests/bench_prefill (Release; the first time compiles the engine, minutes)');
must(spawnSync('cmake', ['-S', path.join(root, 'native'), '-B', buildDir, '-DCMAKE_BUILD_TYPE=Release'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] }), 'cmake configure');
must(spawnSync('cmake', ['--build', buildDir, '--parallel', String(os.cpus().length), '--target', 'bench_prefill'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] }), 'cmake build');
// Its lines as they come (a run takes minutes); "target | ..." lines go to the summary.
const engineCode = await new Promise((resolve, reject) => {
  const child = spawn(path.join(buildDir, 'bench_prefill'), benchArgs, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  const line = (l) => {
    const t = /^target \| (.*) \| (.*) \| (.*) \| (met|NOT met)$/.exec(l);
    if (t) targets.push({ what: t[1], value: t[2], goal: t[3], met: t[4] });
    else console.log(l);
  };
  child.stdout.setEncoding('utf8').on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      line(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
  child.on('error', reject);
  child.on('close', (code) => {
    if (buf) line(buf);
    resolve(code);
  });
});
if (engineCode !== 0) {
  console.error(`bench:prefill: bench_prefill failed (exit code ${engineCode})`);
  process.exit(1);
}
}

// ---------------------------------------------------------------- 2. the command
/** About 40 KB of plain English (about 8k tokens): seeded, the same every run. */
function problemText(chars) {
  const words = (
    'the a of and to in is it that for on with as was by at from this be are or an which have has not but all ' +
    'we they their one two three more some can will each when would there what about up out if into time only ' +
    'number numbers value sum total count part parts worker workers step steps problem answer check result first ' +
    'second third next last every other same different small large long short even odd prime square factor ' +
    'divide multiply add subtract equal greater less between table row column list order case rule proof claim'
  ).split(' ');
  let seed = 20250406;
  const rand = (n) => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed % n;
  };
  let text = 'Please read the following notes carefully and then answer the question at the end.\n\n';
  let sentence = 0;
  while (text.length < chars) {
    const n = 8 + rand(12);
    const s = Array.from({ length: n }, () => words[rand(words.length)]);
    if (rand(4) === 0) s.splice(rand(n), 0, String(rand(1000)));
    text += s.join(' ').replace(/^./, (c) => c.toUpperCase()) + (rand(6) === 0 ? '?' : '.');
    text += ++sentence % 6 === 0 ? '\n\n' : ' ';
  }
  return `${text}\n\nQuestion: how many sentences above mention a prime number?`;
}

const PREFILL = /^hogwild: prefill ([\d,]+) \/ ([\d,]+)/;
const TIMING = /^hogwild: timing (.*) (\d+) ms$/;
const num = (s) => Number(s.replace(/,/g, ''));

/**
 * Runs one command on the problem: the time (from the spawn) of the first progress line and
 * of the first with tokens done; then Ctrl-C (SIGINT to its process group, as a terminal
 * sends it) a second later, and the time until the command has ended.
 */
function timeCommand(label, cmd, args) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, HOGWILD_TIMINGS: '1', NO_COLOR: '1' }, detached: true });
    const r = { label, firstLine: -1, firstWork: -1, work: '', marks: [], interruptAt: -1, endedAt: -1, stdout: '', stderr: '', code: null };
    let buf = '';
    const at = () => (performance.now() - t0) / 1000;
    child.stdout.setEncoding('utf8').on('data', (d) => (r.stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => {
      r.stderr += d;
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const t = TIMING.exec(line);
        if (t) r.marks.push({ what: t[1], s: Number(t[2]) / 1000 });
        const p = PREFILL.exec(line);
        if (p && r.firstLine < 0) r.firstLine = at();
        if (p && num(p[1]) > 0 && r.firstWork < 0) {
          r.firstWork = at();
          r.work = `${p[1]} / ${p[2]}`;
          setTimeout(() => {
            r.interruptAt = at();
            try {
              process.kill(-child.pid, 'SIGINT');
            } catch {
              // already ended
            }
          }, 1000);
        }
      }
    });
    const guard = setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }, 600_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(guard);
      r.endedAt = at();
      r.code = code;
      resolve(r);
    });
  });
}

function report(r, primary) {
  console.log(`\n${r.label}`);
  if (r.firstWork < 0) {
    console.log(`   no progress line with tokens done (exit code ${r.code}); stderr ends:\n${r.stderr.split('\n').slice(-6).join('\n')}`);
    if (primary) targets.push({ what: 'first progress with tokens done, the command', value: 'none', goal: '<= 2 s', met: 'NOT met' });
    return;
  }
  console.log(`   first progress line ${r.firstLine.toFixed(2)} s after the command started; the first with tokens done (${r.work}) after ${r.firstWork.toFixed(2)} s (target <= 2 s)`);
  if (r.marks.length > 0) {
    // The command's own clock starts with its node process (npm's own start comes before it).
    let last = 0;
    const parts = r.marks.map((m) => {
      const d = m.s - last;
      last = m.s;
      return `${m.what} +${d.toFixed(2)} s`;
    });
    console.log(`   where the time went (node's clock): ${parts.join(', ')}`);
  }
  const stopped = /\bstopped: 0 tokens\b/.test(r.stdout);
  if (r.interruptAt >= 0) {
    console.log(`   Ctrl-C at ${r.interruptAt.toFixed(2)} s: the command ended ${(r.endedAt - r.interruptAt).toFixed(2)} s later (exit code ${r.code}, ${stopped ? 'run stopped, 0 tokens' : 'no "stopped" summary'}) (target <= 1 s)`);
  }
  if (primary) {
    targets.push({ what: `first progress with tokens done, ${r.label.split(':')[0]}`, value: `${r.firstWork.toFixed(2)} s`, goal: '<= 2 s', met: r.firstWork <= 2 ? 'met' : 'NOT met' });
    if (r.interruptAt >= 0) targets.push({ what: 'Ctrl-C during the prefill, until the command ended', value: `${(r.endedAt - r.interruptAt).toFixed(2)} s`, goal: '<= 1 s', met: stopped && r.endedAt - r.interruptAt <= 1 ? 'met' : 'NOT met' });
  }
}

/**
 * The extension's path: the engine process (dist/engine-host.js) driven by the extension's own
 * client, the model loaded first (timed apart), then Solve's request timed to the first
 * progress event with tokens done; Stop a second later, timed until the run has ended.
 */
async function timeRequest(modelDir, problem) {
  const built = await esbuild.build({
    stdin: {
      contents: "export { EngineClient } from './extension/engine/client'; export { DEFAULT_PROMPTS } from './extension/collab/prompts';",
      resolveDir: root,
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    write: false,
    logLevel: 'warning',
  });
  const mod = { exports: {} };
  new Function('module', 'exports', 'require', built.outputFiles[0].text)(mod, mod.exports, createRequire(import.meta.url));
  const { EngineClient, DEFAULT_PROMPTS } = mod.exports;
  const c = new EngineClient({ hostPath: path.join(root, 'dist', 'engine-host.js'), cwd: root, env: { ...process.env, HOGWILD_EXTENSION_DIR: root }, log: () => undefined });
  try {
    const tLoad = performance.now();
    let firstLoad = -1;
    await c.load(modelDir, 'cpu', 0, (_m, _f, load) => {
      if (load && firstLoad < 0) firstLoad = (performance.now() - tLoad) / 1000;
    });
    const loadS = (performance.now() - tLoad) / 1000;
    const config = {
      problem,
      workers: 2,
      workerNames: ['Alice', 'Bob'],
      layout: 'combined',
      sampling: { temperature: 0.6, topP: 0.95, topK: 20, seed: 0 },
      maxTokens: 8,
      selfCheckInterval: 1000,
      maxContext: 0,
      prompts: { ...DEFAULT_PROMPTS },
    };
    const r = { loadS, firstLoad, firstEvent: -1, firstWork: -1, work: '', stopAt: -1, endedAt: -1, state: '' };
    const t0 = performance.now();
    const at = () => (performance.now() - t0) / 1000;
    const ended = new Promise((resolve) => c.onRunEnded.event((e) => e.runId === 'bench' && resolve(e)));
    c.onEvents.event(({ runId, events }) => {
      if (runId !== 'bench') return;
      for (const e of events) {
        if (e.type !== 'progress') continue;
        if (r.firstEvent < 0) r.firstEvent = at();
        if (e.done > 0 && r.firstWork < 0) {
          r.firstWork = at();
          r.work = `${e.done.toLocaleString('en-US')} / ${e.total.toLocaleString('en-US')}`;
          setTimeout(() => {
            r.stopAt = at();
            c.control('bench', { type: 'stop' }).catch(() => undefined);
          }, 1000);
        }
      }
    });
    await c.startRun('bench', config);
    const end = await ended;
    r.endedAt = at();
    r.state = end.state;
    return r;
  } finally {
    await c.dispose();
  }
}

if (!skipCli) {
  const solveJs = path.join(root, 'dist', 'cli', 'solve.js');
  if (!fs.existsSync(solveJs)) {
    console.error('bench:prefill: dist/cli/solve.js is missing (node scripts/build.mjs)');
    process.exit(1);
  }
  // The built-in random model is written once (about 1.2 GB); not part of the timing.
  must(spawnSync(process.execPath, [path.join(root, 'dist', 'cli', 'make-default-model.js')], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] }), 'make-default-model');
  const text = problemText(40_000);
  const flags = ['--model', 'qwen3-0.6b-random', '--workers', '2', '--max-tokens', '8'];
  console.log(`\n7. the command, on the built-in random model with a ${(text.length / 1000).toFixed(0)} KB problem:`);
  const req = await timeRequest(path.join(root, '.models', 'qwen3-0.6b-random'), text);
  console.log('\nSolve in VS Code (the engine process and the extension\'s client; the model loaded before the request)');
  console.log(`   model load ${req.loadS.toFixed(2)} s, its first progress report after ${req.firstLoad.toFixed(2)} s`);
  console.log(`   from the request: the first progress event after ${req.firstEvent.toFixed(2)} s; the first with tokens done (${req.work}) after ${req.firstWork.toFixed(2)} s (target <= 2 s)`);
  console.log(`   Stop at ${req.stopAt.toFixed(2)} s: the run ended (${req.state}) ${(req.endedAt - req.stopAt).toFixed(2)} s later (target <= 1 s)`);
  targets.push({ what: 'first progress with tokens done, Solve in VS Code (from the request)', value: `${req.firstWork.toFixed(2)} s`, goal: '<= 2 s', met: req.firstWork >= 0 && req.firstWork <= 2 ? 'met' : 'NOT met' });
  targets.push({ what: 'Stop during the prefill, Solve in VS Code', value: `${(req.endedAt - req.stopAt).toFixed(2)} s`, goal: '<= 1 s', met: req.state === 'stopped' && req.endedAt - req.stopAt <= 1 ? 'met' : 'NOT met' });
  report(await timeCommand('node dist/cli/solve.js: the CLI itself', process.execPath, [solveJs, text, ...flags]), true);
  report(await timeCommand('npm run solve: with npm\'s start and the bundle check (presolve)', 'npm', ['run', '--silent', 'solve', '--', text, ...flags]), true);
}

// ---------------------------------------------------------------- 3. summary
console.log('\nsummary (issue 13 targets):');
const w = Math.max(...targets.map((t) => t.what.length));
for (const t of targets) console.log(`  ${t.what.padEnd(w)}  ${t.value.padStart(9)}  target ${t.goal.padEnd(8)} ${t.met}`);
