// The webview driver of the extension-host suite. A mocha test inside VS Code cannot click in a
// webview, so it asks this side (run.mjs, which holds the browser page) through the automation
// log: a line `[e2e-driver] {"kind": ..., "reply": FILE}`. The driver acts in the webviews with
// Playwright, reads what they show, and writes its answer (or {error}) to FILE, which the test
// waits for. The flag file in the workspace tells the suite that a driver is listening.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const DRIVER_PREFIX = '[e2e-driver] ';
export const DRIVER_FLAG = '.hogwild-e2e-driver';

/** The inner frame of the webview whose document has `selector`. */
export async function webviewFrame(page, selector, timeout = 60_000) {
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

/** Clicks a character of the last step in a worker's lane of the paused run's panel; reads the inspector. */
async function inspectToken(page, req, artifacts) {
  const panel = await webviewFrame(page, `body[data-state="paused"] .lane[data-worker="${req.worker}"] .seg-text`);
  const seg = panel.locator(`.lane[data-worker="${req.worker}"] .seg .seg-text`).last();
  await seg.scrollIntoViewIfNeeded();
  // The middle of character k of the text, relative to the element (the click goes through both iframes).
  const point = await seg.evaluate((el, k) => {
    const n = el.firstChild;
    const at = Math.min(k, n.length - 1);
    const r = document.createRange();
    r.setStart(n, at);
    r.setEnd(n, at + 1);
    const b = r.getBoundingClientRect();
    const e = el.getBoundingClientRect();
    return { x: b.left - e.left + b.width / 2, y: b.top - e.top + b.height / 2, ch: n.data[at] };
  }, req.char ?? 2);
  await seg.click({ position: { x: point.x, y: point.y } });
  await panel.waitForFunction(() => {
    const i = document.querySelector('.inspector');
    return i?.getAttribute('data-state') === 'done' && i.getAttribute('data-source') === 'engine';
  }, undefined, { timeout: 30_000, polling: 100 });
  await page.screenshot({ path: path.join(artifacts, 'inspector.png') });
  return readInspector(panel, point.ch);
}

/** What the panel's inspector shows, read from its DOM. */
function readInspector(panel, clicked) {
  return panel.evaluate((ch) => {
    const i = document.querySelector('.inspector');
    const text = (sel) => i.querySelector(sel)?.textContent ?? null;
    return {
      clicked: ch,
      source: i.getAttribute('data-source'),
      block: Number(i.getAttribute('data-block')),
      index: Number(i.getAttribute('data-index')),
      tokenText: text('.tok-text'),
      tokenId: text('.tok-id'),
      author: text('.f-author'),
      step: text('.f-step'),
      rows: [...i.querySelectorAll('.inspector-table tbody tr')].map((tr) => ({
        worker: Number(tr.getAttribute('data-worker')),
        name: tr.querySelector('th')?.textContent,
        position: tr.querySelector('.pos')?.textContent,
        rotation: tr.querySelector('.rot')?.textContent,
        attention: tr.querySelector('.att')?.textContent,
      })),
      note: text('.inspector-source'),
    };
  }, clicked);
}

/**
 * Clicks the middle of a worker's own block (the last of its strip) in the sidebar's compact
 * cache map, then reads the run panel's inspector once it shows a token of that block: the
 * sidebar -> extension -> panel relay, through the real workbench.
 */
async function sidebarMapClick(page, req, artifacts) {
  const side = await webviewFrame(page, '.cache:not([hidden]) .cache-map-canvas');
  const target = await side.evaluate((w) => {
    const map = window.hogwildSidebar.cacheMap;
    const row = map.layoutRows[w];
    const s = row?.[row.length - 1];
    if (!s) return null;
    const c = document.querySelector('.cache .cache-map-canvas');
    const rowStep = c.clientHeight / map.layoutRows.length;
    return { block: s.seg.block, length: s.seg.length, x: Math.round((Math.max(0, s.x0) + Math.min(c.width, s.x1)) / 2), y: Math.round(w * rowStep + 4) };
  }, req.worker);
  if (!target) throw new Error(`the sidebar's map has no strip for worker ${req.worker}`);
  await side.locator('.cache .cache-map-canvas').click({ position: { x: target.x, y: target.y } });
  const panel = await webviewFrame(page, `.inspector[data-state="done"][data-block="${target.block}"]`, 30_000);
  await page.screenshot({ path: path.join(artifacts, 'sidebar-map-click.png') });
  return { target, inspector: await readInspector(panel, null) };
}

/** The sidebar's compact cache map: its text summary once it has one. */
async function sidebarMap(page, _req, artifacts) {
  const side = await webviewFrame(page, '.cache:not([hidden]) .cache-map-canvas');
  await side.waitForFunction(() => (document.querySelector('.cache .cache-map-summary')?.textContent ?? '').includes(' sees '), undefined, { timeout: 30_000, polling: 100 });
  await page.screenshot({ path: path.join(artifacts, 'sidebar-cache-map.png') });
  return side.evaluate(() => ({
    summary: document.querySelector('.cache .cache-map-summary')?.textContent ?? '',
    rows: Number(document.querySelector('.cache .cache-map-canvas')?.getAttribute('data-rows')),
  }));
}

const HANDLERS = { 'inspect-token': inspectToken, 'sidebar-map': sidebarMap, 'sidebar-map-click': sidebarMapClick };
const served = new Set();

/** Serves one request line of the log (not awaited by the log's handler). */
export async function serveDriverLine(page, line, artifacts) {
  let req;
  try {
    // One request per line; a log chunk may hold more lines.
    req = JSON.parse(line.slice(line.indexOf(DRIVER_PREFIX) + DRIVER_PREFIX.length).split('\n')[0]);
  } catch (e) {
    console.error(`[e2e] driver: an unreadable request ${JSON.stringify(line)}: ${e.message}`);
    return;
  }
  // The same line logged twice is served once.
  if (served.has(req.reply)) return;
  served.add(req.reply);
  let answer;
  try {
    const handler = HANDLERS[req.kind];
    if (!handler) throw new Error(`unknown request kind ${req.kind}`);
    answer = await handler(page, req, artifacts);
  } catch (e) {
    answer = { error: e.message.split('\n')[0] };
  }
  // Written whole, then renamed: the test never reads half an answer.
  fs.writeFileSync(`${req.reply}.part`, JSON.stringify(answer));
  fs.renameSync(`${req.reply}.part`, req.reply);
}
