#!/usr/bin/env node
// The end-to-end tests in a REAL VS Code: code-server (VS Code 1.139 in the browser, with a
// real Node extension host) installed from npm into .codeserver/ (never assumed present),
// driven by Debian's headless chromium through playwright-core.
//
//   1. install Node 24 + code-server into .codeserver/ (first run only; a few minutes)
//   2. npm run package: the linux-x64 VSIX with the native addon inside
//   3. bundle the extension-host suite (test/e2e/suite) and write the small e2e model
//   4. install the VSIX into a fresh sandbox; run the extension-host mocha suite through the
//      extensionTestsPath route (code-server --vscode-option enable-smoke-test-driver)
//   5. restart code-server without that flag and run the UI scenario (ui.mjs): open a file,
//      select text, "Hogwild: Solve Selection", lanes and sidebar fill, pause, note, fork,
//      resume, stop; screenshots in .test-artifacts/e2e/
//
//   node test/e2e/run.mjs [--skip-package] [--only host|ui] [--keep]
//
// Needs Debian packages: chromium (the browser), libkrb5-dev and pkg-config (code-server's
// kerberos module compiles against them on first install).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { format } from 'node:util';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { ensureCodeServer, freePort, installVsix, makeSandbox, startCodeServer, writeUserSettings } from './lib/codeserver.mjs';
import { prepareSuite } from './lib/suite.mjs';
import { DRIVER_FLAG, DRIVER_PREFIX, serveDriverLine } from './lib/driver.mjs';
import { runUiScenario } from './ui.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const flag = (f) => args.includes(f);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : null;
const cacheDir = path.join(root, '.codeserver');
const artifacts = path.join(root, '.test-artifacts', 'e2e');
const vsix = path.join(root, 'out', 'hogwild-vscode-linux-x64.vsix');
const CHROMIUM = process.env.HOGWILD_CHROMIUM || '/usr/bin/chromium';

const timings = [];
const T0 = Date.now();
async function stage(name, fn) {
  const t = Date.now();
  console.log(`\n[e2e] ── ${name}`);
  try {
    return await fn();
  } finally {
    const s = (Date.now() - t) / 1000;
    timings.push([name, s]);
    console.log(`[e2e] ── ${name}: ${s.toFixed(1)} s`);
  }
}

function sh(cmd, cmdArgs, opts = {}) {
  const r = spawnSync(cmd, cmdArgs, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${cmdArgs.join(' ')} failed (${r.status ?? r.signal})`);
}

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** What the suite needs from the system, checked before minutes of installing: each names its fix. */
function checkSystem() {
  const fix = 'run `npm run setup` (it installs what is missing), or `sudo apt-get install -y chromium libkrb5-dev pkg-config`';
  if (!fs.existsSync(CHROMIUM)) throw new Error(`the browser ${CHROMIUM} is missing: ${fix} (or point HOGWILD_CHROMIUM at a Chromium)`);
  const pc = spawnSync('pkg-config', ['--exists', 'krb5-gssapi'], { stdio: 'ignore' });
  if (pc.error || pc.status !== 0) throw new Error(`pkg-config or libkrb5-dev is missing (code-server's kerberos module builds against them): ${fix}`);
}

async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: run \`npm run setup\`, or \`sudo apt-get install -y chromium\``);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/** Phase 1: the mocha suite inside the extension host (the extensionTestsPath route). */
async function runHostSuite(cs, sandbox, extDir, suiteIndex) {
  const port = await freePort();
  // Tells the suite that this side clicks in webviews for it (lib/driver.mjs).
  const driverFlag = path.join(sandbox.workspace, DRIVER_FLAG);
  fs.writeFileSync(driverFlag, JSON.stringify({ replyDir: fs.mkdtempSync(path.join(sandbox.root, 'driver-')) }));
  const server = await startCodeServer(cs, sandbox, { port, folder: sandbox.workspace, smokeTestDriver: true, logFile: path.join(artifacts, 'code-server-host.log') });
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    let resolveExit;
    const exited = new Promise((r) => (resolveExit = r));
    const logLines = [];
    await page.exposeFunction('codeAutomationLog', (type, logArgs) => {
      const text = Array.isArray(logArgs) ? format(...logArgs) : String(logArgs);
      if (/ENOTFOUND open-vsx|open-vsx\.org/.test(text)) return;
      if (text.includes(DRIVER_PREFIX)) void serveDriverLine(page, text, artifacts);
      logLines.push(text);
      console.log(`  [host] ${text}`);
    });
    await page.exposeFunction('codeAutomationExit', (code) => resolveExit(Number(code)));
    const payload = [
      ['extensionDevelopmentPath', `vscode-remote://remote${extDir}`],
      ['extensionTestsPath', `vscode-remote://remote${suiteIndex}`],
      ['skipWelcome', 'true'],
    ];
    const url = `${server.url}/?folder=${encodeURIComponent(sandbox.workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
    await page.goto(url);
    let timer;
    const code = await Promise.race([exited, new Promise((r) => (timer = setTimeout(() => r('timeout'), 300_000)))]);
    clearTimeout(timer);
    fs.writeFileSync(path.join(artifacts, 'host-suite.log'), logLines.join('\n') + '\n');
    await page.screenshot({ path: path.join(artifacts, 'host-suite.png') }).catch(() => undefined);
    if (code === 'timeout') throw new Error('the extension-host suite did not finish within 300 s');
    if (code !== 0) throw new Error(`the extension-host suite failed (exit code ${code}); see ${path.join(artifacts, 'host-suite.log')}`);
  } finally {
    await browser.close().catch(() => undefined);
    await server.stop();
    fs.rmSync(driverFlag, { force: true });
  }
}

/** Phase 2: the UI scenario in headless chromium, without the smoke-test driver. */
async function runUi(cs, sandbox) {
  const port = await freePort();
  const server = await startCodeServer(cs, sandbox, { port, folder: sandbox.workspace, logFile: path.join(artifacts, 'code-server-ui.log') });
  const browser = await launchBrowser();
  try {
    await runUiScenario({ browser, url: `${server.url}/?folder=${encodeURIComponent(sandbox.workspace)}`, artifacts, extensionsDir: sandbox.extensions, workspace: sandbox.workspace });
  } finally {
    await browser.close().catch(() => undefined);
    await server.stop();
  }
}

/**
 * A long run's trace (2 workers, ~120k characters each, 150 finished steps) for the replay
 * and virtualisation check of the UI scenario: the panel must keep only a window of it in
 * the DOM. Written in the trace format (protocol.ts) that Save Run Trace writes.
 */
function writeLongTrace(file) {
  const config = {
    problem: 'A long replayed run', workers: 2, workerNames: ['Alice', 'Bob'], layout: 'combined',
    sampling: { temperature: 0.6, topP: 0.95, topK: 20, seed: 1 }, maxTokens: 60000, selfCheckInterval: 1000, maxContext: 0,
    prompts: { system: 'S', selfCheck: 'C', finisher: ' F', headerOthers: 'O', headerOwn: 'W', answerPattern: '\\\\boxed\\{(.*?)\\}' },
  };
  const lines = [JSON.stringify({ type: 'hogwild-trace', version: 1, runId: 'run-long-replay', title: 'A long replayed run', startedAt: new Date(0).toISOString(), config, model: null })];
  lines.push(JSON.stringify({ type: 'events', t: 0, events: [{ type: 'run-state', state: 'running' }] }));
  let t = 1;
  let id = 0;
  for (let step = 1; step <= 75; step++) {
    for (const [w, name] of [[0, 'Alice'], [1, 'Bob']]) {
      const para = `**${name} [${step}]:** ` + Array.from({ length: 20 }, (_, i) => `line ${i} of step ${step}, worker ${name}: some words to fill the lane.`).join('\n') + '\n\n';
      const ids = Array.from({ length: 200 }, () => id++ % 1000);
      lines.push(JSON.stringify({ type: 'events', t: t++, events: [
        { type: 'tokens', worker: w, step, ids, text: para },
        { type: 'step-finished', worker: w, step, label: `${name} [${step}]`, text: para.trim(), historyBlock: 10 + step * 2 + w },
      ] }));
    }
  }
  lines.push(JSON.stringify({ type: 'events', t: t++, events: [{ type: 'answer', text: ' F\\boxed{42}', answer: '42' }, { type: 'run-state', state: 'finished' }] }));
  lines.push(JSON.stringify({ type: 'end', t, state: 'finished' }));
  fs.writeFileSync(file, lines.join('\n') + '\n');
}

function writeWorkspace(sandbox, model, extra) {
  fs.mkdirSync(path.join(sandbox.workspace, '.vscode'), { recursive: true });
  const settings = {
    'hogwild.modelFolder': model,
    'hogwild.device': 'cpu',
    'hogwild.threads': 2,
    'hogwild.workers': 2,
    'hogwild.maxTokens': 40,
    'hogwild.sampling.seed': 7,
    ...extra,
  };
  fs.writeFileSync(path.join(sandbox.workspace, '.vscode', 'settings.json'), JSON.stringify(settings, null, 2));
  writeLongTrace(path.join(sandbox.workspace, 'long-run.hogwild.jsonl'));
  fs.writeFileSync(
    path.join(sandbox.workspace, 'problem.md'),
    'How many positive divisors does 360 have? Explain the steps.\n\nNotes: 360 = 2^3 * 3^2 * 5.\n',
  );
}

async function main() {
  checkSystem();
  fs.rmSync(artifacts, { recursive: true, force: true });
  fs.mkdirSync(artifacts, { recursive: true });
  const cs = await stage('install code-server (cached in .codeserver/)', () => ensureCodeServer(cacheDir));

  if (!flag('--skip-package') || !fs.existsSync(vsix)) {
    await stage('npm run package (VSIX with the addon)', () => sh('npm', ['run', 'package', '--silent']));
  }
  if (!fs.existsSync(vsix)) throw new Error(`${vsix} was not made`);

  const outDir = path.join(root, 'out', 'e2e');
  const suiteIndex = path.join(outDir, 'suite', 'index.js');
  const model = path.join(cacheDir, 'models', 'qwen3-tiny-h256-l4');
  await stage('type-check and bundle the suite, write the e2e model', async () => {
    sh(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'test', 'e2e')]);
    fs.rmSync(outDir, { recursive: true, force: true });
    await prepareSuite(root, outDir, model);
  });

  const sandbox = makeSandbox(path.join(cacheDir, 'sandbox'));
  for (const d of [sandbox.userData, sandbox.extensions, sandbox.workspace]) {
    fs.rmSync(d, { recursive: true, force: true });
    fs.mkdirSync(d, { recursive: true });
  }
  fs.mkdirSync(path.join(sandbox.userData, 'User'), { recursive: true });
  writeUserSettings(sandbox);
  await stage('install the VSIX into code-server', () => installVsix(cs, sandbox, vsix));
  const installed = fs.readdirSync(sandbox.extensions).find((d) => d.startsWith('hogwild-dev.hogwild-vscode'));
  if (!installed) throw new Error(`the VSIX did not install into ${sandbox.extensions}`);
  const extDir = path.join(sandbox.extensions, installed);
  if (!fs.existsSync(path.join(extDir, 'dist', 'native', 'hogwild_native.node'))) throw new Error('the installed extension has no native addon');

  let failed = false;
  if (!only || only === 'host') {
    writeWorkspace(sandbox, model, {});
    try {
      await stage('extension-host suite (mocha, extensionTestsPath)', () => runHostSuite(cs, sandbox, extDir, suiteIndex));
    } catch (e) {
      failed = true;
      console.error(`[e2e] FAILED: ${e.message}`);
    }
  }
  if (!only || only === 'ui') {
    // A long budget: the run must still be going while the scenario pauses, notes and forks.
    // One engine thread: the browser, code-server and the extension host share the 2 cores.
    writeWorkspace(sandbox, model, { 'hogwild.maxTokens': 30000, 'hogwild.threads': 1 });
    try {
      await stage('UI scenario (headless chromium)', () => runUi(cs, sandbox));
    } catch (e) {
      failed = true;
      console.error(`[e2e] FAILED: ${e.stack ?? e.message}`);
    }
  }
  console.log('\n[e2e] timings:');
  for (const [n, s] of timings) console.log(`  ${s.toFixed(1).padStart(7)} s  ${n}`);
  console.log(`  ${((Date.now() - T0) / 1000).toFixed(1).padStart(7)} s  total`);
  console.log(`[e2e] artifacts in ${artifacts}`);
  if (failed) {
    console.error('[e2e] FAILED');
    process.exitCode = 1;
  } else {
    console.log('[e2e] all passed');
  }
}

main().catch((e) => {
  console.error(`[e2e] ${e.stack ?? e.message}`);
  process.exitCode = 1;
});
