#!/usr/bin/env node
// npm run bench:views [-- --workers 8 --tokens 32768 --layers 8 --frames 120 --profile]
//
// The run panel on a long run: replays a synthetic combined-layout trace (W workers x N
// tokens each, steps of ~60 tokens moving into the shared history, attention shares with
// per-layer values every step) into the real panel bundle in headless Chromium (Debian's
// /usr/bin/chromium through playwright-core), then measures frames while scrolling the
// lanes, hovering the cache map, hovering the heatmap and opening the inspector on lane
// tokens. Prints the median and 95th-percentile frame time of each, and the JS heap.
// Targets (issue 10): median < 16 ms, p95 < 33 ms, heap < 250 MB.
//
// --profile: a CPU profile of the replay (the live path: messages in, renders out), summed up
// by function, written to .test-artifacts/bench-views-replay.cpuprofile.
//
// Frame time = the action (its event handlers) + the frame it causes: from the first
// animation-frame callback of that frame to the end of its rendering (a message posted from
// that callback runs once the frame is painted).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DARK_THEME_CSS, launchChromium } from './lib/webviewBench.mjs';
import { summarizeProfile } from '../test/e2e/lib/profileSummary.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const W = opt('workers', 8);
const N = opt('tokens', 32768);
const L = opt('layers', 8);
const FRAMES = opt('frames', 120);
const bundle = path.join(root, 'dist', 'webview', 'panel.js');
if (!fs.existsSync(bundle)) {
  console.error(`${bundle} is missing: run node scripts/build.mjs first`);
  process.exit(1);
}

const html = `<!DOCTYPE html><html><head><meta charset="UTF-8">
${['common.css', 'cache-map.css', 'panel.css'].map((f) => `<link rel="stylesheet" href="file://${path.join(root, 'media', f)}">`).join('\n')}
<style>html { ${DARK_THEME_CSS} }</style>
<script>window.__posted = []; let st; window.acquireVsCodeApi = () => ({ postMessage: (m) => window.__posted.push(m), getState: () => st, setState: (s) => { st = s; } });</script>
</head><body class="vscode-dark"><script src="file://${bundle}"></script></body></html>`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hw-bench-views-'));
fs.writeFileSync(path.join(dir, 'panel.html'), html);

const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 }, deviceScaleFactor: 1 });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`file://${path.join(dir, 'panel.html')}`);
  await page.waitForFunction(() => window.__posted.some((m) => m.type === 'ready'));

  // ------------------------------------------------------------ the synthetic replay
  const profiling = args.includes('--profile');
  const cdp = await page.context().newCDPSession(page);
  if (profiling) {
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.start');
  }
  const t0 = Date.now();
  const loaded = await page.evaluate(
    async ({ W, N, L }) => {
      const names = ['Alice', 'Bob', 'Carol', 'Dave', 'Eve', 'Frank', 'Grace', 'Heidi', 'Ivan', 'Judy', 'Mallory', 'Niaj', 'Olivia', 'Peggy', 'Rupert', 'Sybil'];
      const config = { problem: 'A long run', workers: W, workerNames: names.slice(0, W), layout: 'combined', sampling: { temperature: 0.6, topP: 0.95, topK: 20, seed: 0 }, maxTokens: W * N, selfCheckInterval: 1000, maxContext: 0, prompts: { system: '', selfCheck: '', finisher: '', headerOthers: '', headerOwn: '', answerPattern: '' } };
      const words = ['the', 'sum', 'of', 'two', 'primes', 'is', 'even', 'so', 'we', 'check', 'each', 'case', 'and', 'then', 'carry', 'on'];
      let rnd = 12345;
      const next = () => ((rnd = (rnd * 1103515245 + 12345) >>> 0) >>> 8) / 16777216;
      const post = (msg) => window.postMessage(msg, '*');
      const frame = () => new Promise((r) => setTimeout(r, 0));
      // Blocks: 0 prompt, 1 history, 2/3 headers, 4.. workers (ids reused after moves, as the engine does).
      const prompt = Array.from({ length: 600 }, (_, i) => ` ${words[i % words.length]}`);
      const init = [
        { type: 'run-state', state: 'running' },
        ...Array.from({ length: W }, (_, w) => ({ type: 'worker', info: { worker: w, name: names[w], state: 'running', temperature: 0.6 } })),
        { type: 'block', op: 'created', info: { block: 0, kind: 'prompt', owner: -1, length: prompt.length, label: 'prompt' } },
        { type: 'block-text', block: 0, ids: prompt.map((_, i) => i + 1), pieces: prompt },
        { type: 'block', op: 'created', info: { block: 1, kind: 'history', owner: -1, length: 0, label: 'history' } },
        { type: 'block', op: 'created', info: { block: 2, kind: 'header', owner: -1, length: 8, label: 'header' } },
        { type: 'block', op: 'created', info: { block: 3, kind: 'header', owner: -1, length: 6, label: 'header' } },
        ...Array.from({ length: W }, (_, w) => ({ type: 'block', op: 'created', info: { block: 4 + w, kind: 'worker', owner: w, length: 0, label: `${names[w]} (current step)` } })),
      ];
      post({ type: 'init', runId: 'bench', title: `bench: ${W} workers x ${N} tokens`, config, source: 'replay', events: init });
      await frame();
      const own = Array.from({ length: W }, () => 0); // tokens in each worker's current block
      const stepOf = Array.from({ length: W }, () => 1);
      const stepLen = Array.from({ length: W }, () => 40 + Math.floor(next() * 40));
      let history = 0;
      const BATCH = 64; // steps per message, like a coalesced live stream
      let batch = [];
      for (let s = 1; s <= N; s++) {
        for (let w = 0; w < W; w++) {
          const word = words[Math.floor(next() * words.length)];
          const piece = own[w] === 0 ? `**${names[w]} [${stepOf[w]}]:** ${word}` : ` ${word}${next() < 0.02 ? '.\n\n' : ''}`;
          batch.push({ type: 'tokens', worker: w, step: stepOf[w], ids: [100 + Math.floor(next() * 1000)], text: piece, pieces: [piece] });
          own[w]++;
        }
        const segs = (w) => {
          const v = [{ block: 0, offset: 0, length: prompt.length }];
          let at = prompt.length;
          v.push({ block: 1, offset: at, length: history });
          at += history;
          v.push({ block: 2, offset: at, length: 8 });
          at += 8;
          for (let o = 0; o < W; o++) {
            if (o === w) continue;
            v.push({ block: 4 + o, offset: at, length: own[o] });
            at += own[o];
          }
          v.push({ block: 3, offset: at, length: 6 });
          at += 6;
          v.push({ block: 4 + w, offset: at, length: own[w] });
          return v;
        };
        const views = Array.from({ length: W }, (_, w) => segs(w));
        batch.push({ type: 'views', step: s, views });
        const shares = views.map((v) => {
          const raw = v.map(() => next() + 0.01);
          const sum = raw.reduce((a, b) => a + b, 0);
          return raw.map((x) => Math.round((x / sum) * 1e4) / 1e4);
        });
        const layers = shares.map((sh) => Array.from({ length: L }, () => sh.map((x) => Math.min(1, Math.round(x * (0.5 + next()) * 1e4) / 1e4))));
        batch.push({ type: 'attention', step: s, shares, layers });
        for (let w = 0; w < W; w++) {
          if (own[w] < stepLen[w]) continue;
          batch.push({ type: 'step-finished', worker: w, step: stepOf[w], label: `${names[w]} [${stepOf[w]}]`, text: '', historyBlock: 1 });
          history += own[w];
          batch.push({ type: 'block', op: 'merged', info: { block: 1, kind: 'history', owner: -1, length: history, label: 'history' } });
          batch.push({ type: 'block', op: 'freed', info: { block: 4 + w, kind: 'worker', owner: w, length: 0, label: `${names[w]} (current step)` } });
          batch.push({ type: 'block', op: 'created', info: { block: 4 + w, kind: 'worker', owner: w, length: 0, label: `${names[w]} (current step)` } });
          own[w] = 0;
          stepOf[w]++;
          stepLen[w] = 40 + Math.floor(next() * 40);
        }
        if (s % BATCH === 0 || s === N) {
          batch.push({ type: 'stats', step: s, tokens: s * W, tokensPerSecond: 0, msPerStep: 0 });
          post({ type: 'events', runId: 'bench', events: batch });
          batch = [];
          await frame();
        }
      }
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      return { history, steps: stepOf.reduce((a, b) => a + b, 0) };
    },
    { W, N, L },
  );
  const loadMs = Date.now() - t0;
  if (profiling) {
    const { profile } = await cdp.send('Profiler.stop');
    const out = path.join(root, '.test-artifacts', 'bench-views-replay.cpuprofile');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, JSON.stringify(profile));
    for (const line of summarizeProfile(profile, 25)) console.log(`[bench:views] ${line}`);
  }

  // ------------------------------------------------------------ frames
  const measure = (kind) =>
    page.evaluate(
      async ({ kind, FRAMES }) => {
        const panel = window.hogwildPanel;
        const times = [];
        const laneScrolls = [...document.querySelectorAll('.lane-scroll')];
        const map = document.querySelector('.insight-map .cache-map-canvas');
        const heat = document.querySelector('.heatmap-time-host');
        const target = kind === 'scroll' ? laneScrolls[0] : kind === 'hover-map' ? map : kind === 'hover-heatmap' ? heat : laneScrolls[0];
        target.scrollIntoView({ block: 'center' });
        await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
        for (let i = 0; i < FRAMES; i++) {
          await new Promise((r) => setTimeout(r, 20)); // idle between frames, like a user
          const a0 = performance.now();
          if (kind === 'scroll') {
            const sc = laneScrolls[i % laneScrolls.length];
            sc.scrollTop = Math.max(0, sc.scrollHeight * (1 - (i + 1) / (FRAMES + 1)) - sc.clientHeight);
          } else if (kind === 'hover-map' || kind === 'hover-heatmap') {
            const r = target.getBoundingClientRect();
            const x = r.left + ((i * 37) % Math.max(1, r.width));
            const y = r.top + ((i * 13) % Math.max(1, r.height));
            (kind === 'hover-map' ? map : target).dispatchEvent(new MouseEvent('mousemove', { clientX: x, clientY: y, bubbles: true }));
          } else {
            // A click on a token in a lane: the inspector opens on it.
            const segs = document.querySelectorAll('.lane .seg .seg-text');
            const el = segs[i % segs.length];
            const n = el.firstChild;
            const range = document.createRange();
            const k = Math.min(n.length - 1, 3 + (i % 20));
            range.setStart(n, k);
            range.setEnd(n, k + 1);
            const b = range.getBoundingClientRect();
            el.dispatchEvent(new MouseEvent('click', { clientX: b.left + b.width / 2, clientY: b.top + b.height / 2, bubbles: true }));
          }
          const action = performance.now() - a0;
          const frame = await new Promise((resolve) =>
            requestAnimationFrame(() => {
              const f0 = performance.now();
              const ch = new window.MessageChannel();
              ch.port1.onmessage = () => resolve(performance.now() - f0);
              ch.port2.postMessage(0);
            }),
          );
          times.push(action + frame);
        }
        const inspected = kind === 'inspect' ? document.querySelector('.inspector')?.getAttribute('data-state') : null;
        void panel;
        return { times, inspected };
      },
      { kind, FRAMES },
    );
  const stats = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
    return { median: q(0.5), p95: q(0.95), max: s[s.length - 1] };
  };
  console.log(`[bench:views] ${W} workers x ${N} tokens (combined layout, ${L} layers of shares, ${loaded.steps} worker steps, history ${loaded.history} tokens); replay took ${(loadMs / 1000).toFixed(1)} s`);
  console.log(`[bench:views] ${FRAMES} frames each; frame = action + the frame it causes, in ms (targets: median < 16, p95 < 33)`);
  for (const kind of ['scroll', 'hover-map', 'hover-heatmap', 'inspect']) {
    const r = await measure(kind);
    const s = stats(r.times);
    console.log(`  ${kind.padEnd(14)} median ${s.median.toFixed(2).padStart(7)}   p95 ${s.p95.toFixed(2).padStart(7)}   max ${s.max.toFixed(2).padStart(7)}${r.inspected ? `   (inspector: ${r.inspected})` : ''}`);
  }
  await cdp.send('HeapProfiler.collectGarbage');
  const heap = await cdp.send('Runtime.getHeapUsage');
  console.log(`[bench:views] JS heap after GC: ${(heap.usedSize / 1e6).toFixed(1)} MB used of ${(heap.totalSize / 1e6).toFixed(1)} MB (target < 250 MB)`);
  if (errors.length > 0) {
    console.error(`[bench:views] page errors:\n${errors.join('\n')}`);
    process.exitCode = 1;
  }
} finally {
  await browser.close();
}
