// The UI scenario of the end-to-end tests, in headless chromium against code-server: a person
// opens a file, selects the problem, runs "Hogwild: Solve Selection" from the palette, watches
// two lanes and the sidebar fill, pauses, injects a note, forks a worker, resumes and stops.
// Assertions read the text from inside the webviews (two nested iframes each).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { webviewFrame } from './lib/driver.mjs';
import { summarizeProfile, summarizeTrace } from './lib/profileSummary.mjs';

const STEP_TIMEOUT = 60_000;
// While a run streams, a 2-core machine has shown the Workers view loading and a Pause showing
// 40-55 s late (the webviews share the workbench's renderer; issue 10 tracks making that fast).
// The steps still fail when the view or the pause never comes; the times are logged.
const SLOW_WHILE_STREAMING = 150_000;

function log(msg) {
  console.log(`  [ui] ${msg}`);
}

/**
 * Runs a palette command by its label. The quick input must then close or change to the
 * command's own input; if it still shows our filter, the pick was not taken (seen on a loaded
 * machine: the list re-rendered under the click), so the row is picked again with Enter.
 */
async function palette(page, label) {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget .quick-input-box input');
  await input.waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
  await input.fill(`>${label}`);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: label }).first();
  await row.waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
  await row.click();
  const taken = async () => !(await input.isVisible().catch(() => false)) || (await input.inputValue().catch(() => '')) !== `>${label}`;
  const t0 = Date.now();
  while (Date.now() - t0 < 5000 && !(await taken())) await page.waitForTimeout(100);
  if (!(await taken())) {
    log(`palette: "${label}" was not taken by the click; choosing it with the keyboard`);
    await row.hover();
    await page.keyboard.press('Enter');
  }
}

/**
 * Opens the Workers view from the palette and returns its webview frame. The view has been
 * slow to load while a run streams (CI: over 60 s, when the panel starved the workbench's
 * renderer; see webview/frame.ts): after 20 s the step logs what the sidebar shows, keeps a
 * screenshot, and opens the view from the activity bar if the sidebar shows something else.
 */
async function openWorkersView(page, shot) {
  await palette(page, 'Hogwild: Focus on Workers View');
  try {
    return await webviewFrame(page, '.workers', 20_000);
  } catch {
    const sidebarPart = page.locator('.part.sidebar');
    const visible = await sidebarPart.isVisible().catch(() => false);
    const title = visible ? await sidebarPart.locator('.composite.title').first().textContent().catch(() => '?') : '';
    const showsHogwild = visible && /hogwild/i.test(title ?? '');
    log(`the Workers view did not show within 20 s of the palette command (sidebar ${visible ? `shows "${title?.trim()}"` : 'hidden'})${showsHogwild ? '; waiting for its webview' : '; opening it from the activity bar'}`);
    await shot('workers-view-not-open');
    // Clicking the activity bar item of the container already shown would close it.
    if (!showsHogwild) await page.locator('.part.activitybar .action-item a[aria-label^="Hogwild"]').first().click();
    return webviewFrame(page, '.workers', SLOW_WHILE_STREAMING);
  }
}

async function until(frame, what, fn, arg, timeout = STEP_TIMEOUT) {
  try {
    await frame.waitForFunction(fn, arg, { timeout, polling: 100 });
  } catch (e) {
    throw new Error(`timed out waiting for ${what}: ${e.message.split('\n')[0]}`, { cause: e });
  }
}

/** The last 60 characters of every lane, each scrolled to its end first (the lanes are virtualised). */
async function laneTails(frame) {
  return frame.evaluate(async () => {
    const scrollers = [...document.querySelectorAll('.lane .lane-scroll')];
    for (const sc of scrollers) {
      sc.scrollTop = sc.scrollHeight;
      sc.dispatchEvent(new Event('scroll'));
    }
    await new Promise((r) => setTimeout(r, 300));
    return scrollers.map((sc) => (sc.textContent ?? '').slice(-60));
  });
}

function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
  log(`ok - ${msg}`);
}

export async function runUiScenario({ browser, url, artifacts, extensionsDir, workspace }) {
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
    if (process.env.HOGWILD_E2E_PROFILE) {
      // A CPU profile of the workbench's renderer (the webviews share its main thread) while streaming.
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.start');
      await page.waitForTimeout(6000);
      const { profile } = await cdp.send('Profiler.stop');
      fs.writeFileSync(path.join(artifacts, 'streaming.cpuprofile'), JSON.stringify(profile));
      log('profile written');
      for (const line of summarizeProfile(profile)) log(line);
      // Then a timeline trace: what "(program)" was (style, layout, paint), and for which document.
      const trace = [];
      cdp.on('Tracing.dataCollected', (d) => trace.push(...d.value));
      const done = new Promise((r) => cdp.once('Tracing.tracingComplete', r));
      await cdp.send('Tracing.start', { categories: 'devtools.timeline,disabled-by-default-devtools.timeline,v8', transferMode: 'ReportEvents' });
      await page.waitForTimeout(4000);
      await cdp.send('Tracing.end');
      await done;
      fs.writeFileSync(path.join(artifacts, 'streaming.trace.json'), JSON.stringify(trace));
      for (const line of summarizeTrace(trace)) log(line);
    }
    const title = await panel.locator('.run-title').textContent();
    assert(title.includes('positive divisors'), `the panel's title is the selected text ("${title}")`);

    // The sidebar.
    const sidebar = await openWorkersView(page, shot);
    await until(sidebar, 'two workers with tokens in the sidebar', () => {
      const rows = [...document.querySelectorAll('.worker-row')];
      return rows.length >= 2 && rows.every((r) => /step \d+ · [1-9]\d* tok/.test(r.querySelector('.w-numbers')?.textContent ?? ''));
    });
    const rowsText = await sidebar.locator('.worker-row').allTextContents();
    lap('sidebar shows the workers');
    assert(rowsText.some((r) => r.includes('Alice')) && rowsText.some((r) => r.includes('Bob')), 'the sidebar lists Alice and Bob');

    // Keyboard: every enabled control and every scrolling text area takes the focus.
    const unfocusable = async (frame) =>
      frame.evaluate(() =>
        [...document.querySelectorAll('vscode-button, vscode-textarea, vscode-single-select, .lane-scroll, .history-scroll')]
          .filter((e) => !e.hasAttribute('disabled') && !e.closest('[hidden]'))
          // Custom elements may hand the focus to a control inside their shadow root.
          .filter((e) => e.tabIndex < 0 && !e.shadowRoot?.delegatesFocus && !e.shadowRoot?.querySelector('textarea, input, button, [tabindex="0"]'))
          .map((e) => e.className || e.tagName),
      );
    const nf = [...(await unfocusable(panel)), ...(await unfocusable(sidebar))];
    assert(nf.length === 0, `every control of the panel and the sidebar is reachable by keyboard${nf.length ? `: not ${nf.join(', ')}` : ''}`);
    await panel.locator('.lane[data-worker="0"] .lane-scroll').focus();
    await page.keyboard.press('Tab');
    const next = await panel.evaluate(() => document.activeElement?.className ?? '');
    assert(/lane-scroll|lane-fork/.test(next), `Tab moves on from a lane to the next control (${next})`);

    const streamingRenders = await panel.evaluate(() => Number(document.body.dataset.renders));
    assert(streamingRenders > 0 && streamingRenders <= 61, `the panel renders at most 60 times a second while streaming (last second: ${streamingRenders})`);

    // Pause from the palette.
    await palette(page, 'Hogwild: Pause');
    lap('palette: Hogwild: Pause');
    // Which side saw the pause first says where a slow pause waits (the extension's summaries
    // reach the sidebar, the run's events reach the panel).
    const sidebarPaused = until(sidebar, 'the sidebar to show the pause', () => document.body.dataset.state === 'paused', undefined, SLOW_WHILE_STREAMING).then(() => log(`sidebar shows the pause (${((Date.now() - t) / 1000).toFixed(1)} s)`));
    await until(panel, 'the run to pause', () => document.body.dataset.state === 'paused', undefined, SLOW_WHILE_STREAMING);
    log(`panel shows the pause (${((Date.now() - t) / 1000).toFixed(1)} s)`);
    await sidebarPaused;
    const laneCounts = () => panel.evaluate(() => [...document.querySelectorAll('.lane .lane-stats')].map((l) => (l.textContent ?? '').replace(/ · [\d.]+ tok\/s/, '')));
    const pausedTokens = await laneCounts();
    lap('paused');
    await page.waitForTimeout(700);
    const stillTokens = await laneCounts();
    assert(JSON.stringify(pausedTokens) === JSON.stringify(stillTokens), `no tokens arrive while paused (${stillTokens.join('; ')})`);
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
      })),
    );
    // The lanes are virtualised: scroll each to the top to read how it starts.
    const heads = await panel.evaluate(async () => {
      const out = [];
      for (const sc of document.querySelectorAll('.lane .lane-scroll')) {
        sc.scrollTop = 0;
        sc.dispatchEvent(new Event('scroll'));
      }
      await new Promise((r) => setTimeout(r, 300));
      for (const sc of document.querySelectorAll('.lane .lane-scroll')) out.push((sc.textContent ?? '').slice(0, 60));
      return out;
    });
    for (const [i, l] of lanes.entries()) log(`lane ${l.worker} ${l.name}: ${l.stats}; starts ${JSON.stringify(heads[i])}`);
    assert(lanes.length === 3, 'three lanes (Alice, Bob and the fork)');
    assert(lanes.every((l) => l.chars > 10), 'every lane has text');
    assert(heads[0].startsWith('**Alice [1]:**') && heads[1].startsWith('**Bob [1]:**') && /^Alice′ \[\d+\]/.test(heads[2]), 'lanes start with the step headers "**Alice [1]:**", "**Bob [1]:**" (the fork with its label and the step it was forked in)');
    const notes = await panel.locator('.notes-list li').allTextContents();
    assert(notes.some((n) => n.includes(note)), 'the panel lists the note');
    const state = await sidebar.evaluate(() => document.body.dataset.state);
    assert(['stopped', 'finished'].includes(state), `the sidebar shows the run ${state}`);
    const renders = await panel.evaluate(() => Number(document.body.dataset.renders));
    assert(renders <= 61, `panel renders stay within 60 per second (last second: ${renders})`);
    const idle = await panel.evaluate(async () => {
      // After the tail of the run: the last history moves flash for 1.5 s, and renders are
      // spaced by their cost (frame.ts). A render loop would go on after that.
      await new Promise((r) => setTimeout(r, 2000));
      const before = Number(document.body.dataset.rendersTotal);
      await new Promise((r) => setTimeout(r, 1000));
      return Number(document.body.dataset.rendersTotal) - before;
    });
    assert(idle <= 2, `an ended run's panel does not keep rendering (${idle} renders in a second)`);
    const sidebarRows = await sidebar.locator('.worker-row').allTextContents();
    assert(sidebarRows.length === 3 && sidebarRows.some((r) => r.includes('forked from Alice')), 'the sidebar shows the fork and its origin');
    // The panel comes back after a window reload (serializer + the run's trace / saved state).
    const before = lanes.map((l) => `${l.name} ${l.stats.replace(/ · [\d.]+ tok\/s/, '')}`);
    const wantTails = await laneTails(panel);
    await palette(page, 'Developer: Reload Window');
    await page.waitForTimeout(1000);
    await page.locator('.part.activitybar').waitFor({ timeout: STEP_TIMEOUT });
    const restored = await webviewFrame(page, '.lanes', 90_000);
    await until(restored, 'the restored panel to show the lanes', (n) => document.querySelectorAll('.lane').length === n && [...document.querySelectorAll('.lane .lane-scroll')].every((l) => (l.textContent ?? '').length > 10), lanes.length);
    const after = await restored.evaluate(() => [...document.querySelectorAll('.lane')].map((l) => `${l.querySelector('.lane-name')?.textContent} ${(l.querySelector('.lane-stats')?.textContent ?? '').replace(/ · [\d.]+ tok\/s/, '')}`));
    // The lanes are virtualised: what a lane renders depends on where it is scrolled (the
    // heads above scrolled every lane to the top), so both sides read their tails at the end.
    let got = [];
    for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
      got = await laneTails(restored);
      if (JSON.stringify(got) === JSON.stringify(wantTails)) break;
    }
    if (JSON.stringify(got) !== JSON.stringify(wantTails)) {
      throw new Error(`the restored lanes do not end with the same text\n want ${JSON.stringify(wantTails)}\n got  ${JSON.stringify(got)}`);
    }
    log('ok - the restored lanes end with the same text');
    lap('panel restored after a window reload');
    assert(JSON.stringify(after) === JSON.stringify(before), `the restored panel shows the same lanes (${after.join('; ')})`);
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

    // Open Run Trace: a long run replays without the engine; the lanes keep only a window
    // of their text in the DOM (virtualised) and scrolling brings back the start.
    await page.keyboard.press('Escape');
    await palette(page, 'Hogwild: Open Run Trace...');
    // code-server's own file dialog: a quick input titled like the dialog, taking a path.
    await page.locator('.quick-input-widget .quick-input-title', { hasText: 'Open Run Trace' }).waitFor({ timeout: STEP_TIMEOUT });
    const pathInput = page.locator('.quick-input-widget .quick-input-box input');
    // The dialog fills in its folder asynchronously: wait for its listing before typing.
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'long-run.hogwild.jsonl' }).first().waitFor({ timeout: STEP_TIMEOUT });
    await pathInput.fill(path.join(workspace, 'long-run.hogwild.jsonl'));
    await page.waitForTimeout(300);
    await pathInput.press('Enter');
    if (!(await pathInput.waitFor({ state: 'hidden', timeout: 5000 }).then(() => true, () => false))) {
      await pathInput.fill(path.join(workspace, 'long-run.hogwild.jsonl'));
      await pathInput.press('Enter');
    }
    lap('trace chosen in the file dialog');
    const replay = await webviewFrame(page, 'body[data-source="replay"] .lanes', 60_000);
    await until(replay, 'the replay to finish', () => document.body.dataset.state === 'finished' && document.querySelectorAll('.lane').length === 2, undefined, 60_000);
    await replay.waitForTimeout(300);
    const v = await replay.evaluate(() => {
      const lanes = [...document.querySelectorAll('.lane')];
      return {
        stats: lanes.map((l) => l.querySelector('.lane-stats')?.textContent ?? ''),
        domItems: lanes.map((l) => l.querySelectorAll('.seg').length),
        domChars: lanes.map((l) => (l.querySelector('.lane-scroll')?.textContent ?? '').length),
        scrollHeight: lanes.map((l) => l.querySelector('.lane-scroll')?.scrollHeight ?? 0),
        last: (lanes[0]?.querySelector('.lane-scroll')?.textContent ?? '').trim().slice(-90),
        history: document.querySelector('.history h2')?.textContent ?? '',
        historyItems: document.querySelectorAll('.hist-item').length,
        answer: document.querySelector('.answer-value')?.textContent ?? '',
      };
    });
    lap(`long trace replayed: ${JSON.stringify(v.stats)}, ${JSON.stringify(v.domItems)} items / ${JSON.stringify(v.domChars)} chars in the DOM, ${v.historyItems} history items`);
    assert(v.stats.every((x) => x.includes('15000 tok')), 'each replayed lane counts 15000 tokens');
    assert(v.domItems.every((n) => n > 0 && n < 60) && v.domChars.every((n) => n < 40_000), 'only a window of each 120k-character lane is in the DOM');
    assert(v.scrollHeight.every((h) => h > 20_000), 'the lanes scroll over the whole text');
    assert(v.last.includes('line 19 of step 75'), `the lane follows the end of the stream ("…${v.last.slice(-50)}")`);
    assert(v.history.includes('(150)') && v.historyItems < 80, 'the shared history lists 150 steps, virtualised');
    assert(v.answer === '42', 'the replay shows the final answer');
    await replay.evaluate(() => {
      const sc = document.querySelector('.lane .lane-scroll');
      sc.scrollTop = 0;
      sc.dispatchEvent(new Event('scroll'));
    });
    await until(replay, 'the start of the lane after scrolling up', () => (document.querySelector('.lane .lane-scroll')?.textContent ?? '').includes('**Alice [1]:** line 0 of step 1'));
    lap('scrolled to the start of a lane');
    await shot('replay');

    assert(consoleProblems.length === 0, `no CSP violations or uncaught errors in the webviews${consoleProblems.length ? `: ${consoleProblems.join(' | ')}` : ''}`);
  } catch (e) {
    await shot('failure').catch(() => undefined);
    // What the workbench showed: an open quick input and notifications explain most failures.
    const input = page.locator('.quick-input-widget .quick-input-box input');
    if (await input.isVisible().catch(() => false)) log(`at the failure a quick input was open with "${await input.inputValue().catch(() => '?')}"`);
    for (const toast of await page.locator('.notification-toast .notification-list-item-message').allTextContents().catch(() => [])) log(`notification: ${toast}`);
    if (consoleProblems.length) log(`webview console problems: ${consoleProblems.join(' | ')}`);
    throw e;
  } finally {
    await page.close().catch(() => undefined);
  }
}
