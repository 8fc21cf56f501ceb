#!/usr/bin/env node
// `npm run bench:product`: the CPU engine measured on the path people use, next to bench_cpu.
//
//   node scripts/bench-product.mjs [--rounds R] [--threads T] [--tokens N] [--steps S]
//                                  [--only speed|editor] [--root DIR[,DIR...]] [--model DIR]
//
// speed (interleaved rounds; each round runs every measurement once, so the drifts of a
//   shared machine hit all of them alike; medians and ranges over the rounds):
//   - memory read bandwidth:   bench_cpu --bandwidth-only (the same run, every round)
//   - kernel path:             bench_cpu --model-only (hw::Model::forward, n = 1 and 4)
//   - real CLI, 1 sequence:    npm run generate (addon, engine thread, sampling, token batches)
//   - real CLI, 4 workers:     npm run solve -- --raw (Hogwild loop, events)
//   all on one random Qwen2.5-0.5B-shaped bf16 checkpoint, T threads, greedy.
// editor (responsiveness, at the extension's default thread count: the engine host picks
//   cores - 1):
//   - event-loop delay p99 in this process while the real EngineClient (the extension's own
//     client: forked dist/engine-host.js, typed messages) runs 4 workers;
//   - slowdown of a competing single-threaded process (a fixed busy computation) during it;
//   - the run's own step time with one busy-looping process beside it, against quiet.
//
// --root DIR,... measures other checkouts' CLI and engine (e.g. an older commit, for before /
// after numbers), each in every round, interleaved; bench_cpu always comes from this checkout.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = parseFlags(process.argv.slice(2), {
  rounds: 5, threads: 2, tokens: 128, steps: 64, only: '', root: here, model: '', 'editor-steps': 96, spin: '',
});
// What is measured: each tree as it is, and (--spin 0,50,...) the first tree with HW_SPIN_US
// set to each value (the runtime's spin budget, src/cpu/parallel.h).
const trees = String(args.root).split(',').map((r) => path.resolve(r));
const treeName = (root) => (root === here ? 'this tree' : path.basename(root));
const roots = [
  ...trees.map((root) => ({ root, env: process.env, name: treeName(root) })),
  ...String(args.spin).split(',').filter((x) => x !== '').map((us) => ({ root: trees[0], env: { ...process.env, HW_SPIN_US: us }, name: `${treeName(trees[0])}, spin ${us} us` })),
];
const label = (v) => v.name;
const buildDir = path.join(here, 'native', 'build-tests');
const benchCpu = path.join(buildDir, 'bench_cpu');

function parseFlags(argv, defaults) {
  const out = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)$/.exec(argv[i]);
    if (!m || !(m[1] in defaults) || i + 1 >= argv.length) {
      console.error(`bench-product: unknown or incomplete flag "${argv[i]}"; flags: ${Object.keys(defaults).map((k) => `--${k}`).join(' ')}`);
      process.exit(2);
    }
    const v = argv[++i];
    out[m[1]] = typeof defaults[m[1]] === 'number' ? Number(v) : v;
    if (typeof defaults[m[1]] === 'number' && !(out[m[1]] > 0)) {
      console.error(`bench-product: --${m[1]} takes a positive number, got "${v}"`);
      process.exit(2);
    }
  }
  return out;
}

// ---- small statistics ------------------------------------------------------------------
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const summary = (xs, d = 1, unit = '') =>
  xs.length ? `${fmt(median(xs), d)}${unit} (${fmt(Math.min(...xs), d)}-${fmt(Math.max(...xs), d)})` : 'n/a';

// ---- the machine -----------------------------------------------------------------------
function machine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const vendor = /vendor_id\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? '';
  return `${model} (${vendor}), ${os.cpus().length} logical CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`;
}

// ---- setup -----------------------------------------------------------------------------
function sh(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status ?? r.signal}):\n${(r.stderr || '').slice(-2000)}${(r.stdout || '').slice(-1000)}`);
  }
  return r.stdout;
}

function setup() {
  sh('cmake', ['-S', path.join(here, 'native'), '-B', buildDir, '-DCMAKE_BUILD_TYPE=Release'], { cwd: here });
  sh('cmake', ['--build', buildDir, '--parallel', String(os.cpus().length), '--target', 'bench_cpu'], { cwd: here });
  for (const root of trees)
    for (const f of ['dist/cli/generate.js', 'dist/cli/solve.js', 'dist/engine-host.js', 'native/build/Release/hogwild_native.node']) {
      if (!fs.existsSync(path.join(root, f))) throw new Error(`${path.join(root, f)} is missing: run "npm run build:native && npm run build" in ${root}`);
    }
  let dir = String(args.model);
  if (!dir) {
    dir = path.join(os.tmpdir(), 'hw-bench-qwen25-0.5b');
    if (!fs.existsSync(path.join(dir, 'model.safetensors'))) sh(benchCpu, ['--write-checkpoint', dir]);
  }
  return dir;
}

// ---- one measurement each --------------------------------------------------------------
function jsonLine(text, what) {
  const m = /json: (\{.*\})/.exec(text);
  if (!m) throw new Error(`${what}: no json line in its output:\n${text.slice(-2000)}`);
  return JSON.parse(m[1]);
}

const bandwidth = () => jsonLine(sh(benchCpu, ['--bandwidth-only', '--threads', String(args.threads)]), 'bench_cpu --bandwidth-only').bandwidthGBs;

function kernelPath(dir) {
  const j = jsonLine(sh(benchCpu, ['--model-only', '--isa', 'default', '--model', dir, '--threads', String(args.threads), '--steps', '8', '--bw-gib', '0.25']), 'bench_cpu --model-only');
  return { ms1: j.msPerStep['1'], ms4: j.msPerStep['4'], weightBytes: j.weightBytes };
}

const PROMPT = Array.from({ length: 16 }, (_, i) => 1000 + 37 * i).join(',');

function cliGenerate({ root, env }, dir, threads) {
  const o = sh(process.execPath, [path.join(root, 'dist/cli/generate.js'), '--model', dir, '--threads', String(threads), '--prompt-ids', PROMPT,
    '--max-tokens', String(args.tokens), '--temperature', '0', '--ignore-eos', '--json'], { cwd: root, env });
  const j = JSON.parse(o.trim().split('\n').pop());
  return 1000 / j.tokensPerSecond; // ms per decode step
}

function cliSolveRaw({ root, env }, dir, threads, steps) {
  const o = sh(process.execPath, [path.join(root, 'dist/cli/solve.js'), '--raw', '--model', dir, '--threads', String(threads), '--prompt-ids', PROMPT,
    '--worker-ids', '11;12;13;14', '--steps', String(steps), '--json'], { cwd: root, env });
  const j = JSON.parse(o.trim().split('\n').pop());
  return j.stats.msPerStepMedian; // one step of all 4 workers (the loop only)
}

// ---- speed -----------------------------------------------------------------------------
function speed(dir) {
  const T = args.threads;
  console.log(`\n== speed: Qwen2.5-0.5B shape, random bf16, ${T} threads, greedy; generate ${args.tokens} tokens, solve --raw 4 workers x ${args.steps} steps; ${args.rounds} interleaved rounds`);
  const k = { bw: [], k1: [], k4: [], k1Share: [], k4VsK1: [] };
  const per = new Map(roots.map((r) => [r, { gen: [], solve: [], genShare: [], genVsK: [], solveVsGen: [] }]));
  let weightBytes = 0;
  const share = (ms, bw) => (100 * weightBytes) / (ms * 1e-3) / 1e9 / bw;
  for (let r = 0; r < args.rounds; r++) {
    const bw = bandwidth();
    const kp = kernelPath(dir);
    weightBytes = kp.weightBytes;
    k.bw.push(bw); k.k1.push(kp.ms1); k.k4.push(kp.ms4); k.k1Share.push(share(kp.ms1, bw)); k.k4VsK1.push(kp.ms4 / kp.ms1);
    let line = `  round ${r + 1}: bandwidth ${fmt(bw, 2)} GB/s | bench_cpu n=1 ${fmt(kp.ms1, 2)} ms, n=4 ${fmt(kp.ms4, 2)} ms`;
    for (const root of roots) {
      const p = per.get(root);
      const gen = cliGenerate(root, dir, T);
      const solve = cliSolveRaw(root, dir, T, args.steps);
      p.gen.push(gen); p.solve.push(solve); p.genShare.push(share(gen, bw));
      p.genVsK.push((100 * kp.ms1) / gen); p.solveVsGen.push(solve / gen);
      line += ` | ${label(root)}: generate ${fmt(gen, 2)} ms/token, solve --raw W=4 ${fmt(solve, 2)} ms/step`;
    }
    console.log(line);
  }
  const tps = (ms, n = 1) => ms.map((x) => (1000 * n) / x);
  const row = (name, ms, n, shares) =>
    console.log(`  ${name.padEnd(44)}${summary(ms, 2).padEnd(26)}${summary(tps(ms, n)).padEnd(24)}${shares ? summary(shares) : ''}`);
  console.log(`\n  weights read per step: ${fmt(weightBytes / 1e6, 1)} MB; memory read bandwidth: ${summary(k.bw, 2, ' GB/s')}  [median (min-max) over rounds]`);
  console.log(`  ${'path'.padEnd(44)}${'ms / step'.padEnd(26)}${'tokens / s'.padEnd(24)}% of bandwidth`);
  row('bench_cpu --model-only n=1', k.k1, 1, k.k1Share);
  row('bench_cpu --model-only n=4', k.k4, 4);
  for (const root of roots) {
    const p = per.get(root);
    row(`generate, 1 sequence (${label(root)})`, p.gen, 1, p.genShare);
    row(`solve --raw, 4 workers (${label(root)})`, p.solve, 4);
  }
  for (const root of roots) {
    const p = per.get(root);
    console.log(`\n  targets, ${label(root)} (per-round ratios, median (min-max)):`);
    console.log(`  generate tok/s / bench_cpu n=1 tok/s: ${summary(p.genVsK, 1, '%')} (target >= 90%)`);
    console.log(`  generate share of bandwidth:          ${summary(p.genShare, 1, '%')} (target >= 70%)`);
    console.log(`  solve --raw W=4 step / generate step: ${summary(p.solveVsGen, 3, 'x')} (target <= 1.15x; bench_cpu n=4/n=1: ${summary(k.k4VsK1, 3, 'x')})`);
  }
}

// ---- editor responsiveness -------------------------------------------------------------
// A fixed single-threaded computation in its own process; resolves with its wall time in ms.
const COMPETITOR = 'let x=0;const t=process.hrtime.bigint();for(let i=0;i<5e7;i++)x=(x*1103515245+12345)%2147483647;' +
  'process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6)+" "+x)';
function competitor() {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['-e', COMPETITOR], { stdio: ['ignore', 'pipe', 'inherit'] });
    let s = '';
    c.stdout.on('data', (d) => (s += d));
    c.on('exit', (code) => (code === 0 ? resolve(Number(s.split(' ')[0])) : reject(new Error(`competitor exited ${code}`))));
  });
}
const busyLoop = () => spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' });

async function loadClient({ root, env }, dir) {
  // The extension's own engine client, bundled from source (as the unit tests do).
  const esbuild = createRequire(path.join(here, 'package.json'))('esbuild');
  const out = path.join(os.tmpdir(), `hw-bench-client-${process.pid}.cjs`);
  await esbuild.build({ entryPoints: [path.join(root, 'extension/engine/client.ts')], bundle: true, platform: 'node', format: 'cjs', outfile: out, logLevel: 'silent' });
  const { EngineClient } = createRequire(import.meta.url)(out);
  fs.rmSync(out, { force: true });
  const logs = [];
  const client = new EngineClient({ hostPath: path.join(root, 'dist/engine-host.js'), env, log: (l, t) => logs.push(`${l}: ${t}`), startTimeoutMs: 60000 });
  await client.load(dir, 'cpu', 0); // 0: the engine host's automatic choice, cores - 1
  return client;
}

async function clientRun(client, prompts, id, steps) {
  const cfg = {
    problem: '', workers: 4, workerNames: ['A', 'B', 'C', 'D'], layout: 'contiguous',
    sampling: { temperature: 0, topP: 1, topK: 0, seed: 0 }, maxTokens: 100000, selfCheckInterval: 100000, maxContext: 0,
    prompts,
    raw: { promptIds: PROMPT.split(',').map(Number), workerIds: [[11], [12], [13], [14]], steps },
  };
  const stepMs = [];
  const sub = client.onEvents.event((e) => {
    if (e.runId !== id) return;
    for (const ev of e.events) if (ev.type === 'stats') stepMs.push(ev.msPerStep);
  });
  const ended = new Promise((resolve) => {
    const s = client.onRunEnded.event((e) => {
      if (e.runId === id) {
        s.dispose();
        resolve(e);
      }
    });
  });
  await client.startRun(id, cfg);
  const end = await ended;
  sub.dispose();
  if (end.state !== 'finished') console.log(`  (run ${id} ended ${end.state}${end.message ? `: ${end.message}` : ''})`);
  return { stepMs: stepMs.length ? median(stepMs) : NaN };
}

async function editor(dir) {
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  const T = Math.max(1, cores - 1);
  console.log(`\n== editor responsiveness: 4 workers x ${args['editor-steps']} steps through the extension's EngineClient at its default thread count (cores - 1 = ${T}); ${args.rounds} rounds`);
  const clients = new Map();
  for (const root of roots) clients.set(root, { client: await loadClient(root, dir), prompts: await promptsFrom(root.root), alone: [], during: [], p99: [], max: [], steps: [] });
  try {
    for (let r = 0; r < args.rounds; r++) {
      for (const root of roots) {
        const c = clients.get(root);
        c.alone.push(await competitor());
        const h = monitorEventLoopDelay({ resolution: 10 });
        h.enable();
        const run = clientRun(c.client, c.prompts, `bench-${r}`, args['editor-steps']);
        let done = false;
        run.then(() => (done = true), () => (done = true));
        const times = [];
        while (!done) times.push(await competitor());
        const res = await run;
        h.disable();
        // Competitors that ran wholly inside the run count (the last one may not have).
        c.during.push(median(times.length > 1 ? times.slice(0, -1) : times));
        c.p99.push(h.percentile(99) / 1e6);
        c.max.push(h.max / 1e6);
        c.steps.push(res.stepMs);
        console.log(`  round ${r + 1}, ${label(root)}: event-loop delay p99 ${fmt(c.p99.at(-1), 1)} ms (max ${fmt(c.max.at(-1), 1)}) | competitor ${fmt(c.alone.at(-1), 0)} ms alone, ` +
          `${fmt(c.during.at(-1), 0)} ms during (${times.length} runs) | ${fmt(res.stepMs, 1)} ms/step`);
      }
    }
    for (const root of roots) {
      const c = clients.get(root);
      console.log(`  ${label(root)}: event-loop delay p99 ${summary(c.p99, 1, ' ms')} (target < 50 ms), max ${summary(c.max, 1, ' ms')}; ` +
        `competing process slowdown ${summary(c.during.map((d, i) => d / c.alone[i]), 2, 'x')}; 4-worker step ${summary(c.steps, 1, ' ms')}`);
    }
  } finally {
    for (const c of clients.values()) await c.client.dispose();
  }

  // The run's own slowdown with a busy-looping process beside it (people compile while they watch).
  for (const threads of [...new Set([args.threads, T])]) {
    const res = new Map(roots.map((root) => [root, { quiet: [], busy: [] }]));
    for (let r = 0; r < args.rounds; r++) {
      for (const root of roots) {
        const x = res.get(root);
        x.quiet.push(cliSolveRaw(root, dir, threads, args.steps));
        const b = busyLoop();
        try {
          x.busy.push(cliSolveRaw(root, dir, threads, args.steps));
        } finally {
          b.kill('SIGKILL');
        }
      }
    }
    for (const root of roots) {
      const { quiet, busy } = res.get(root);
      console.log(`  solve --raw W=4, ${threads} thread(s), ${label(root)}: ${summary(quiet, 1, ' ms')} per step quiet, ${summary(busy, 1, ' ms')} beside a busy loop: ` +
        `${summary(busy.map((b, i) => b / quiet[i]), 2, 'x')} (target <= 2x)`);
    }
  }
}

async function promptsFrom(dir) {
  const esbuild = createRequire(path.join(here, 'package.json'))('esbuild');
  const out = path.join(os.tmpdir(), `hw-bench-prompts-${process.pid}.cjs`);
  await esbuild.build({ entryPoints: [path.join(dir, 'extension/collab/prompts.ts')], bundle: true, platform: 'node', format: 'cjs', outfile: out, logLevel: 'silent' });
  const { DEFAULT_PROMPTS } = createRequire(import.meta.url)(out);
  fs.rmSync(out, { force: true });
  return { ...DEFAULT_PROMPTS };
}

// ---- main ------------------------------------------------------------------------------
const started = new Date();
console.log(`bench-product ${started.toISOString()}\nmachine: ${machine()}`);
for (const root of trees) console.log(`measured tree "${treeName(root)}": ${root}, git ${gitHead(root)}`);
console.log(`bench_cpu from ${here}`);
const dir = setup();
console.log(`model: ${dir}`);
if (args.only !== 'editor') speed(dir);
if (args.only !== 'speed') await editor(dir);
console.log(`\nload average at the end: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; ${((Date.now() - started) / 1000).toFixed(0)} s`);

function gitHead(dir) {
  try {
    return execFileSync('git', ['-C', dir, 'log', '-1', '--format=%h %s'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '(not a git checkout)';
  }
}
