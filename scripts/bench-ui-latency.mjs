#!/usr/bin/env node
// npm run bench:ui-latency [-- --workers 2 --rate 300 --warmup 8 --rounds 5 --bundles DIR]
//
// Latency of the webviews while a run streams at full speed (issue 10): in VS Code every
// webview shares the workbench's renderer thread, so a panel busy with a stream delays the
// Workers view opening and a Pause showing. Here one page plays the workbench: the real run
// panel bundle and the real sidebar bundle run in two same-origin iframes of it (one renderer
// thread, as in VS Code), in headless Chromium (Debian's /usr/bin/chromium, playwright-core).
// The page streams W workers at R tokens a second each into the panel, 30 messages a second
// (what the extension sends), text like a model that never ends a paragraph. After a warm-up
// it measures, ROUNDS times each:
//   - workers view: from creating the sidebar's iframe to its worker rows showing numbers
//     (load the bundle, 'ready', the extension's 'runs' and 'init', the first render);
//   - pause: from posting the run's 'paused' state to the panel to the panel showing it, and
//     the same for the sidebar's 'runs';
//   - main thread: the lag of a 0 ms timer in the page (what a palette or a click waits for).
// Prints median and 95th percentile of each. --bundles DIR takes panel.js / sidebar.js from
// DIR instead of dist/webview (to compare two builds on one machine).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DARK_THEME_CSS, launchChromium } from './lib/webviewBench.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const W = Number(opt('workers', 2));
const RATE = Number(opt('rate', 300));
const WARMUP_S = Number(opt('warmup', 8));
const ROUNDS = Number(opt('rounds', 5));
const bundles = path.resolve(opt('bundles', path.join(root, 'dist', 'webview')));
for (const b of ['panel.js', 'sidebar.js']) {
  if (!fs.existsSync(path.join(bundles, b))) {
    console.error(`${path.join(bundles, b)} is missing: run node scripts/build.mjs first`);
    process.exit(1);
  }
}

/** A webview document: its bundle, its styles, and acquireVsCodeApi handing posts to the parent. */
const webview = (bundle, styles) => `<!DOCTYPE html><html><head><meta charset="UTF-8">
${styles.map((f) => `<link rel="stylesheet" href="file://${path.join(root, 'media', f)}">`).join('\n')}
<style>html { ${DARK_THEME_CSS} background: #1e1e1e; }</style>
<script>let st; window.acquireVsCodeApi = () => ({ postMessage: (m) => parent.__fromWebview('${bundle}', m), getState: () => st, setState: (s) => { st = s; } });</script>
</head><body class="vscode-dark"><script src="file://${path.join(bundles, `${bundle}.js`)}"></script></body></html>`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hw-bench-ui-'));
fs.writeFileSync(path.join(dir, 'panel.html'), webview('panel', ['common.css', 'cache-map.css', 'panel.css']));
fs.writeFileSync(path.join(dir, 'sidebar.html'), webview('sidebar', ['common.css', 'cache-map.css', 'sidebar.css']));
fs.writeFileSync(
  path.join(dir, 'workbench.html'),
  `<!DOCTYPE html><html><head><meta charset="UTF-8"><style>body { margin: 0; display: flex; height: 100vh; background: #1e1e1e; }
  #side { width: 320px; } #main { flex: 1; } iframe { border: 0; width: 100%; height: 100%; }</style></head>
  <body><div id="side"></div><div id="main"><iframe id="panel" src="panel.html"></iframe></div>
  <script>window.__posted = []; window.__fromWebview = (who, m) => window.__posted.push({ who, m });</script></body></html>`,
);

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const fmt = (xs) => `median ${pct(xs, 50).toFixed(0)} ms, p95 ${pct(xs, 95).toFixed(0)} ms (n=${xs.length})`;

const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 }, deviceScaleFactor: 1 });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`file://${path.join(dir, 'workbench.html')}`);
  await page.waitForFunction(() => window.__posted.some((p) => p.who === 'panel' && p.m.type === 'ready'));

  // The stream, the lag probe and the measurements all run inside the page: a round trip to
  // this process would add its own latency to every number.
  const result = await page.evaluate(
    async ({ W, RATE, WARMUP_S, ROUNDS }) => {
      const names = ['Alice', 'Bob', 'Carol', 'Dave', 'Eve', 'Frank', 'Grace', 'Heidi'];
      const panel = document.getElementById('panel').contentWindow;
      const config = { problem: 'How many positive divisors does 360 have?', workers: W, workerNames: names.slice(0, W), layout: 'combined', sampling: { temperature: 0.6, topP: 0.95, topK: 20, seed: 0 }, maxTokens: 1e6, selfCheckInterval: 1000, maxContext: 0, prompts: { system: '', selfCheck: '', finisher: '', headerOthers: '', headerOwn: '', answerPattern: '' } };
      const words = ['the', 'sum', 'of', 'two', 'primes', 'is', 'even,', 'so', 'we', 'check', 'each', 'case', 'and', 'then', 'carry', 'on.', '360', '=', '2^3', '·', '3^2', '·', '5'];
      let rnd = 12345;
      const next = () => ((rnd = (rnd * 1103515245 + 12345) >>> 0) >>> 8) / 16777216;
      const tokens = Array.from({ length: W }, () => 0);
      let state = 'running';
      const init = [
        { type: 'run-state', state: 'running' },
        ...Array.from({ length: W }, (_, w) => ({ type: 'worker', info: { worker: w, name: names[w], state: 'running', temperature: 0.6 } })),
        { type: 'block', op: 'created', info: { block: 0, kind: 'prompt', owner: -1, length: 20, label: 'prompt' } },
        ...Array.from({ length: W }, (_, w) => ({ type: 'block', op: 'created', info: { block: 1 + w, kind: 'worker', owner: w, length: 0, label: `${names[w]} (current step)` } })),
      ];
      const log = [...init];
      panel.postMessage({ type: 'init', runId: 'bench', title: config.problem, config, source: 'live', events: init }, '*');
      const views = () => Array.from({ length: W }, (_, w) => {
        const v = [{ block: 0, offset: 0, length: 20 }];
        let at = 20;
        for (let o = 0; o < W; o++) {
          if (o === w) continue;
          v.push({ block: 1 + o, offset: at, length: tokens[o] });
          at += tokens[o];
        }
        v.push({ block: 1 + w, offset: at, length: tokens[w] });
        return v;
      });
      // 30 messages a second, RATE tokens per worker per second, one step that never ends.
      let step = 0;
      let carry = 0;
      const tick = () => {
        if (state !== 'running') return;
        carry += RATE / 30;
        const n = Math.floor(carry);
        carry -= n;
        const events = [];
        for (let w = 0; w < W; w++) {
          const pieces = Array.from({ length: n }, (_, i) => (tokens[w] === 0 && i === 0 ? `**${names[w]} [1]:**` : ` ${words[Math.floor(next() * words.length)]}`));
          events.push({ type: 'tokens', worker: w, step: 1, ids: Array.from({ length: n }, () => 100 + Math.floor(next() * 1000)), text: pieces.join(''), pieces });
          tokens[w] += n;
        }
        step += n;
        events.push({ type: 'views', step, views: views() }, { type: 'stats', step, tokens: tokens.reduce((a, b) => a + b, 0), tokensPerSecond: RATE * W, msPerStep: 1000 / RATE });
        for (const e of events) log.push(e);
        panel.postMessage({ type: 'events', runId: 'bench', events }, '*');
      };
      setInterval(tick, 1000 / 30);
      // The main thread's lag: a 0 ms timer, again and again.
      const lags = [];
      let probing = true;
      const probe = () => {
        const t = performance.now();
        setTimeout(() => {
          lags.push(performance.now() - t);
          if (probing) setTimeout(probe, 20);
        }, 0);
      };
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      const until = (f) => new Promise((resolve) => {
        const t0 = performance.now();
        const look = () => (f() ? resolve(performance.now() - t0) : performance.now() - t0 > 60_000 ? resolve(NaN) : setTimeout(look, 2));
        look();
      });
      const summary = () => ({
        runId: 'bench', title: config.problem, state, source: 'live', tokens: tokens.reduce((a, b) => a + b, 0), tokensPerSecond: RATE * W,
        workers: Array.from({ length: W }, (_, w) => ({ worker: w, name: names[w], state: 'running', temperature: 0.6, step: 1, tokens: tokens[w], tokensPerSecond: RATE, lastLine: 'the sum of two primes' })),
      });
      await sleep(WARMUP_S * 1000);
      probe();
      const workersView = [];
      const pausePanel = [];
      const pauseSidebar = [];
      for (let r = 0; r < ROUNDS; r++) {
        // The Workers view opens: a new iframe, its bundle, 'ready', then what the extension sends.
        const side = document.getElementById('side');
        side.replaceChildren();
        window.__posted = window.__posted.filter((p) => p.who !== 'sidebar');
        const t0 = performance.now();
        const frame = document.createElement('iframe');
        frame.src = 'sidebar.html';
        side.append(frame);
        await until(() => window.__posted.some((p) => p.who === 'sidebar' && p.m.type === 'ready'));
        const sw = frame.contentWindow;
        sw.postMessage({ type: 'engine', state: 'loaded' }, '*');
        sw.postMessage({ type: 'runs', runs: [summary()], activeRunId: 'bench' }, '*');
        // The cache map's share of the run so far (no texts), as cacheMapEvents makes it.
        sw.postMessage({ type: 'init', runId: 'bench', title: config.problem, config, source: 'live', events: log.filter((e) => e.type !== 'stats').map((e) => (e.type === 'tokens' ? { ...e, text: '', pieces: undefined } : e)) }, '*');
        await until(() => {
          const rows = [...(frame.contentDocument?.querySelectorAll('.worker-row .w-numbers') ?? [])];
          return rows.length >= W && rows.every((x) => / [1-9]\d* tok/.test(x.textContent ?? ''));
        });
        workersView.push(performance.now() - t0);
        await sleep(1000);

        // Pause: the run's state reaches both views (the extension sends both at once).
        state = 'paused';
        const tp = performance.now();
        panel.postMessage({ type: 'events', runId: 'bench', events: [{ type: 'run-state', state: 'paused' }] }, '*');
        sw.postMessage({ type: 'runs', runs: [summary()], activeRunId: 'bench' }, '*');
        const [a, b] = await Promise.all([
          until(() => panel.document.body.dataset.state === 'paused'),
          until(() => frame.contentDocument.body.dataset.state === 'paused'),
        ]);
        pausePanel.push(a);
        pauseSidebar.push(b);
        void tp;
        await sleep(300);
        state = 'running';
        panel.postMessage({ type: 'events', runId: 'bench', events: [{ type: 'run-state', state: 'running' }] }, '*');
        sw.postMessage({ type: 'runs', runs: [summary()], activeRunId: 'bench' }, '*');
        await sleep(2000);
      }
      probing = false;
      const laneChars = [...panel.document.querySelectorAll('.lane .lane-scroll')].map((l) => l.textContent.length);
      return { workersView, pausePanel, pauseSidebar, lags, tokens, laneChars, renders: Number(panel.document.body.dataset.rendersTotal) };
    },
    { W, RATE, WARMUP_S, ROUNDS },
  );
  console.log(`bench:ui-latency: ${W} workers x ${RATE} tok/s streaming into the run panel (30 messages/s), bundles from ${path.relative(root, bundles) || '.'}`);
  console.log(`  streamed: ${result.tokens.join(' + ')} tokens; ${result.renders} panel renders; lane text in the DOM: ${result.laneChars.join(', ')} characters`);
  console.log(`  workers view, iframe to rows shown: ${fmt(result.workersView)}`);
  console.log(`  pause shown, panel:                 ${fmt(result.pausePanel)}`);
  console.log(`  pause shown, sidebar:               ${fmt(result.pauseSidebar)}`);
  console.log(`  main-thread lag (0 ms timer):       ${fmt(result.lags)}`);
  if (errors.length) {
    console.error(`page errors: ${errors.join(' | ')}`);
    process.exitCode = 1;
  }
} finally {
  await browser.close();
}
