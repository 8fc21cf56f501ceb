// The UI scenario of the end-to-end tests, in headless chromium against code-server: a person
// opens a file, selects the problem, runs "Hogwild: Solve Selection" from the palette, watches
// two lanes and the sidebar fill, pauses, injects a note, forks a worker, resumes and stops.
// Assertions read the text from inside the webviews (two nested iframes each).
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';

const STEP_TIMEOUT = 60_000;

function log(msg) {
  console.log(`  [ui] ${msg}`);
}

/** Runs a palette command by its label. */
async function palette(page, label) {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget .quick-input-box input');
  await input.waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
  await input.fill(`>${label}`);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: label }).first();
  await row.waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
  await row.click();
  await input.waitFor({ state: 'hidden', timeout: STEP_TIMEOUT }).catch(() => undefined);
}

/** The inner frame of the webview whose document has `selector`. */
async function webviewFrame(page, selector, timeout = STEP_TIMEOUT) {
  const t0 = Date.now();
  for (;;) {
    for (const f of page.frames()) {
      if (f === page.mainFrame()) continue;
      try {
        if (await f.$(selector)) return f;
      } catch {
        /* detached while looking */
      }
    }
    if (Date.now() - t0 > timeout) throw new Error(`no webview with ${selector} within ${timeout} ms`);
    await page.waitForTimeout(200);
  }
}

async function until(frame, what, fn, arg, timeout = STEP_TIMEOUT) {
  try {
    await frame.waitForFunction(fn, arg, { timeout, polling: 100 });
  } catch (e) {
    throw new Error(`timed out waiting for ${what}: ${e.message.split('\n')[0]}`);
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
  log(`ok - ${msg}`);
}

export async function runUiScenario({ browser, url, artifacts, extensionsDir }) {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  const consoleProblems = [];
  page.on('console', (m) => {
    const t = m.text();
    if (/Refused to|Content Security Policy|Uncaught/.test(t) && /hogwild|vscode-elements|panel\.js|sidebar\.js|webview/i.test(t)) consoleProblems.push(t);
  });
  page.on('pageerror', (e) => consoleProblems.push(`pageerror: ${e.message}`));
  const shot = async (name) => {
    const file = path.join(artifacts, `${name}.png`);
    await page.screenshot({ path: file });
    log(`screenshot ${file}`);
  };
  let t = Date.now();
  const lap = (what) => {
    log(`${what} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
    t = Date.now();
  };

  try {
    await page.goto(url);
    await page.locator('.part.activitybar').waitFor({ timeout: STEP_TIMEOUT });
    await page.locator('.monaco-workbench').waitFor({ timeout: STEP_TIMEOUT });
    lap('workbench up');

    // Open problem.md through quick open and select its first line.
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible' });
    await input.fill('problem.md');
    const fileRow = page.locator('.quick-input-list .monaco-list-row', { hasText: 'problem.md' }).first();
    await fileRow.waitFor({ timeout: STEP_TIMEOUT });
    await fileRow.click();
    const editor = page.locator('.editor-instance .monaco-editor .view-lines').first();
    await editor.waitFor({ timeout: STEP_TIMEOUT });
    await page.locator('.view-line', { hasText: 'positive divisors' }).first().click();
    await page.keyboard.press('Home');
    await page.keyboard.press('Shift+End');
    await page.waitForTimeout(200);
    lap('problem.md open, first line selected');

    await palette(page, 'Hogwild: Solve Selection');
    lap('Solve Selection run from the palette');

    // The run panel: tokens in at least two lanes.
    const panel = await webviewFrame(page, '.lanes', 120_000);
    await until(panel, 'tokens in two lanes', () => [...document.querySelectorAll('.lane .lane-scroll')].filter((l) => (l.textContent ?? '').length > 40).length >= 2, undefined, 120_000);
    lap('tokens streaming in two lanes of the panel');
    const title = await panel.locator('.run-title').textContent();
    assert(title.includes('positive divisors'), `the panel's title is the selected text ("${title}")`);

    // The sidebar.
    await palette(page, 'Hogwild: Focus on Workers View');
    const sidebar = await webviewFrame(page, '.workers');
    await until(sidebar, 'two workers with tokens in the sidebar', () => {
      const rows = [...document.querySelectorAll('.worker-row')];
      return rows.length >= 2 && rows.every((r) => /step \d+ · [1-9]\d* tok/.test(r.querySelector('.w-numbers')?.textContent ?? ''));
    });
    const rowsText = await sidebar.locator('.worker-row').allTextContents();
    lap('sidebar shows the workers');
    assert(rowsText.some((r) => r.includes('Alice')) && rowsText.some((r) => r.includes('Bob')), 'the sidebar lists Alice and Bob');

    // Pause from the palette.
    await palette(page, 'Hogwild: Pause');
    await until(panel, 'the run to pause', () => document.body.dataset.state === 'paused');
    const pausedTokens = await panel.evaluate(() => [...document.querySelectorAll('.lane .lane-scroll')].map((l) => (l.textContent ?? '').length));
    lap('paused');
    await page.waitForTimeout(700);
    const stillTokens = await panel.evaluate(() => [...document.querySelectorAll('.lane .lane-scroll')].map((l) => (l.textContent ?? '').length));
    assert(JSON.stringify(pausedTokens) === JSON.stringify(stillTokens), 'no text arrives while paused');
    await shot('paused');

    // Inject a note from the panel's note box (to all workers).
    const note = 'Use the divisor-count formula (a+1)(b+1)(c+1).';
    await panel.locator('vscode-textarea.note-input textarea').fill(note);
    await panel.locator('vscode-button.note-send').click();
    await until(panel, 'the note to be accepted', () => /Note injected/.test(document.querySelector('.notice')?.textContent ?? ''));
    lap('note injected');

    // Fork Alice from her lane.
    await panel.locator('.lane[data-worker="0"] vscode-button.lane-fork').click();
    await until(panel, 'the fork to be accepted', () => /Forked worker 0/.test(document.querySelector('.notice')?.textContent ?? ''));
    lap('Alice forked');

    // Resume from the sidebar.
    await sidebar.locator('vscode-button.run-resume').click();
    await until(panel, 'the run to resume', () => document.body.dataset.state === 'running');
    lap('resumed from the sidebar');
    await until(panel, 'the note in the panel', (n) => [...document.querySelectorAll('.notes-list li')].some((li) => li.textContent.includes(n)), note);
    await until(panel, 'the fork lane with text', () => {
      const lane = document.querySelector('.lane[data-worker="2"]');
      return lane && /forked from Alice/.test(lane.querySelector('.lane-origin')?.textContent ?? '') && (lane.querySelector('.lane-scroll')?.textContent ?? '').length > 10;
    });
    await until(sidebar, 'three workers in the sidebar', () => document.querySelectorAll('.worker-row').length >= 3);
    lap('the note and the fork appear; the fork streams');
    await shot('forked');

    // Stop from the panel's toolbar.
    await panel.locator('vscode-button.ctl-stop').click();
    await until(panel, 'the run to stop', () => ['stopped', 'finished'].includes(document.body.dataset.state ?? ''));
    lap('stopped');
    await page.waitForTimeout(300);
    await shot('stopped');

    // What the webviews show, read from inside them.
    const lanes = await panel.evaluate(() =>
      [...document.querySelectorAll('.lane')].map((l) => ({
        worker: l.getAttribute('data-worker'),
        name: l.querySelector('.lane-name')?.textContent,
        stats: l.querySelector('.lane-stats')?.textContent,
        chars: (l.querySelector('.lane-scroll')?.textContent ?? '').length,
        head: (l.querySelector('.lane-scroll')?.textContent ?? '').slice(0, 60),
      })),
    );
    for (const l of lanes) log(`lane ${l.worker} ${l.name}: ${l.stats}; ${l.chars} chars: ${JSON.stringify(l.head)}`);
    assert(lanes.length === 3, 'three lanes (Alice, Bob and the fork)');
    assert(lanes.every((l) => l.chars > 10), 'every lane has text');
    assert(lanes[0].head.includes('**Alice [1]:**') && lanes[1].head.includes('**Bob [1]:**'), 'lanes start with the step headers "**Alice [1]:**" and "**Bob [1]:**"');
    const notes = await panel.locator('.notes-list li').allTextContents();
    assert(notes.some((n) => n.includes(note)), 'the panel lists the note');
    const state = await sidebar.evaluate(() => document.body.dataset.state);
    assert(['stopped', 'finished'].includes(state), `the sidebar shows the run ${state}`);
    const renders = await panel.evaluate(() => Number(document.body.dataset.renders));
    assert(renders <= 61, `panel renders stay within 60 per second (last second: ${renders})`);
    const sidebarRows = await sidebar.locator('.worker-row').allTextContents();
    assert(sidebarRows.length === 3 && sidebarRows.some((r) => r.includes('forked from Alice')), 'the sidebar shows the fork and its origin');
    // The panel comes back after a window reload (serializer + the run's trace / saved state).
    const before = lanes.map((l) => l.head);
    await palette(page, 'Developer: Reload Window');
    await page.waitForTimeout(1000);
    await page.locator('.part.activitybar').waitFor({ timeout: STEP_TIMEOUT });
    const restored = await webviewFrame(page, '.lanes', 90_000);
    await until(restored, 'the restored panel to show the lanes', (n) => document.querySelectorAll('.lane').length === n && [...document.querySelectorAll('.lane .lane-scroll')].every((l) => (l.textContent ?? '').length > 10), lanes.length);
    const after = await restored.evaluate(() => [...document.querySelectorAll('.lane .lane-scroll')].map((l) => (l.textContent ?? '').slice(0, 60)));
    lap('panel restored after a window reload');
    assert(JSON.stringify(after) === JSON.stringify(before), 'the restored panel shows the same lanes');
    const restoredNotes = await restored.locator('.notes-list li').allTextContents();
    assert(restoredNotes.some((n) => n.includes(note)), 'the restored panel lists the note');
    await shot('restored');

    // The engine dies mid-run: the extension survives, the panel and the sidebar say so, the
    // error notification offers Restart Engine, and that works.
    await page.locator('.view-line', { hasText: 'positive divisors' }).first().click().catch(() => undefined);
    await palette(page, 'Hogwild: Solve Selection');
    const live = await webviewFrame(page, 'body[data-source="live"][data-state="running"] .lanes', 120_000);
    await until(live, 'a new live run with tokens', () => [...document.querySelectorAll('.lane .lane-scroll')].filter((l) => (l.textContent ?? '').length > 20).length >= 2, undefined, 120_000);
    const pids = execFileSync('pgrep', ['-f', `${extensionsDir}/.*/dist/engine-host.js`], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
    assert(pids.length === 1, `one engine process runs (pid ${pids.join(', ')})`);
    process.kill(pids[0], 'SIGKILL');
    await until(live, 'the panel to report the crash', () => !document.querySelector('.banner')?.hidden && /engine process stopped/.test(document.querySelector('.banner-text')?.textContent ?? ''));
    lap('engine killed; the panel reports it');
    const bannerText = await live.locator('.banner-text').textContent();
    assert(/SIGKILL/.test(bannerText) && /run so far is kept/.test(bannerText), `the panel explains the crash ("${bannerText.slice(0, 90)}…")`);
    const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'SIGKILL' }).first();
    await toast.waitFor({ timeout: STEP_TIMEOUT });
    await shot('crashed');
    assert(await toast.locator('.monaco-button', { hasText: 'Open Log' }).count() === 1, 'the error notification offers Open Log');
    await toast.locator('.monaco-button', { hasText: 'Restart Engine' }).click();
    await until(live, 'the engine to be back', () => document.body.dataset.engine === 'ready');
    lap('Restart Engine from the notification');
    assert(await live.evaluate(() => document.body.dataset.state) === 'failed', 'the crashed run stays failed with its text kept');
    assert((await live.evaluate(() => (document.querySelector('.lane .lane-scroll')?.textContent ?? '').length)) > 20, 'the crashed run keeps its text');

    assert(consoleProblems.length === 0, `no CSP violations or uncaught errors in the webviews${consoleProblems.length ? `: ${consoleProblems.join(' | ')}` : ''}`);
  } catch (e) {
    await shot('failure').catch(() => undefined);
    throw e;
  } finally {
    await page.close().catch(() => undefined);
  }
}
