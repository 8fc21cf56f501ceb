// The sidebar's compact cache map (the run panel's CacheMap in its compact form) in headless
// Chromium: fed what the extension sends it (runs summaries, then the cache-map share of the
// run's events through cacheMapEvents), against the recorded traces of the three layouts.
// Expected values come from the trace's events (traceReference.ts).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Page } from 'playwright-core';
import type { EngineEvent } from '../../protocol/messages';
import { RunModel } from '../../extension/runModel';
import { cacheMapEvents } from '../../extension/insights/cacheMapEvents';
import { SHARED_GREY, WORKER_COLORS } from '../../webview/insights/palette';
import { allEvents, at, browserPerFile, canvasPixels, hex, mapLayoutRows, openPanel, pageErrors, postToPage, readFixtureTrace, screenshot, settle, type MapSeg, type Pixels, type Theme } from './harness';
import { authorOf, traceReference, type TraceReference } from './traceReference';
import type { ParsedTrace } from '../../extension/trace';

const MAP = '.cache .cache-map-canvas';
const ROW_H = 12;
const ROW_STEP = 16;
const WIDTH = 320; // a sidebar of usual width

const browser = browserPerFile();

/** What the extension sends a sidebar for a run: its summary, then the cache map's events. */
async function showRun(page: Page, t: ParsedTrace, events: EngineEvent[]): Promise<void> {
  const model = new RunModel(t.header.runId, t.header.title, t.header.config, 'replay');
  model.apply(allEvents(t), 0);
  const runs = { type: 'runs', runs: [model.summary()], activeRunId: t.header.runId };
  const init = { type: 'init', runId: t.header.runId, title: t.header.title, config: t.header.config, source: 'replay', events: cacheMapEvents(events) };
  await postToPage(page, runs, init);
  await settle(page);
}

/**
 * Each author run (consecutive tokens of one known author) at least 5 pixels wide: the
 * pixel in its middle, half-way down the strip's author part, has that author's colour.
 */
function checkAuthorColours(img: Pixels, rows: MapSeg[][], ref: TraceReference, palette: 'dark' | 'light'): number {
  let checked = 0;
  rows.forEach((r, w) => {
    const y = w * ROW_STEP + Math.floor(ROW_H / 2);
    for (const s of r) {
      const b = ref.blocks.get(s.seg.block)!;
      if (b.recreatedAfterViews || s.seg.length === 0) continue;
      const px = (s.x1 - s.x0) / s.seg.length;
      let i = 0;
      while (i < s.seg.length) {
        const author = authorOf(ref, s.seg.block, i);
        let j = i + 1;
        while (j < s.seg.length && authorOf(ref, s.seg.block, j) === author && author !== null) j++;
        const a = s.x0 + i * px;
        const z = s.x0 + j * px;
        if (author !== null && z - a >= 5 && a >= 0 && z <= img.width) {
          const want = author >= 0 ? WORKER_COLORS[palette][author % 8]! : SHARED_GREY[palette];
          expect(hex(at(img, Math.floor((a + z) / 2), y)), `worker ${w}, block ${s.seg.block} (${b.kind}), tokens ${i}..${j - 1}`).toBe(want.toLowerCase());
          checked++;
        }
        i = j;
      }
    }
  });
  return checked;
}

/** The summary a screen reader gets, per worker: "<name> sees N blocks, T tokens". */
function summaryHeads(ref: TraceReference, names: string[]): string[] {
  return ref.views.map((v, w) => `${names[w]} sees ${v.length} blocks, ${v.length > 0 ? v[v.length - 1]!.offset + v[v.length - 1]!.length : 0} tokens`);
}

function workerNames(events: EngineEvent[]): string[] {
  const names: string[] = [];
  for (const e of events) if (e.type === 'worker') names[e.info.worker] = e.info.name;
  return names;
}

describe.each(['contiguous', 'interleaved', 'combined', 'combined-moves'])('sidebar, %s trace', (name) => {
  const trace = readFixtureTrace(name);
  const events = allEvents(trace);
  const ref = traceReference(events);
  let page: Page;

  beforeAll(async () => {
    page = await openPanel(browser(), 'dark', { bundle: 'sidebar', width: WIDTH, height: 700 });
    await showRun(page, trace, events);
  });
  afterAll(async () => {
    expect(pageErrors(page)).toEqual([]);
    await page.close();
  });

  test('the compact map draws every worker\'s view in order, each author in its colour', async () => {
    await page.locator(MAP).waitFor();
    const rows = await mapLayoutRows(page, 'sidebar');
    expect(rows.map((r) => r.map((s) => s.seg))).toEqual(ref.views);
    const box = (await page.locator(MAP).boundingBox())!;
    expect(box.width).toBeLessThan(WIDTH);
    expect(box.height).toBe(ref.views.length * ROW_STEP);
    const checked = checkAuthorColours(await canvasPixels(page, MAP), rows, ref, 'dark');
    expect(checked).toBeGreaterThan(ref.views.length * 2);
  });

  test('a text summary for screen readers names every view\'s blocks and tokens', async () => {
    const heads = summaryHeads(ref, workerNames(events));
    await page.waitForFunction((want) => want.every((h) => document.querySelector('.cache .cache-map-summary')?.textContent?.includes(h)), heads);
    const canvas = page.locator(MAP);
    const described = await canvas.getAttribute('aria-describedby');
    expect(await page.locator(`#${described}`).textContent()).toContain(heads[0]!);
    expect(await canvas.getAttribute('role')).toBe('img');
    await screenshot(page, `sidebar-${name}`);
  });
});

describe('sidebar, live', () => {
  test('the compact map follows a run as its events come, and a click opens the run panel on the token clicked', async () => {
    const trace = readFixtureTrace('combined-moves');
    const events = allEvents(trace);
    const ref = traceReference(events);
    const page = await openPanel(browser(), 'dark', { bundle: 'sidebar', width: WIDTH, height: 700 });
    // The run so far (up to its third views event), then the rest as 'events' batches.
    let cut = 0;
    let seen = 0;
    events.forEach((e, i) => {
      if (e.type === 'views' && ++seen === 3) cut = i + 1;
    });
    await showRun(page, trace, events.slice(0, cut));
    const early = await mapLayoutRows(page, 'sidebar');
    expect(early.map((r) => r.map((s) => s.seg))).toEqual(traceReference(events.slice(0, cut)).views);
    const rest = events.slice(cut);
    for (let i = 0; i < rest.length; i += 40) await postToPage(page, { type: 'events', runId: trace.header.runId, events: cacheMapEvents(rest.slice(i, i + 40)) });
    // Another run's events are not this map's.
    await postToPage(page, { type: 'events', runId: 'another-run', events: [{ type: 'views', step: 99, views: [[{ block: 0, offset: 0, length: 1 }]] }] });
    await settle(page);
    const rows = await mapLayoutRows(page, 'sidebar');
    expect(rows.map((r) => r.map((s) => s.seg))).toEqual(ref.views);
    expect(checkAuthorColours(await canvasPixels(page, MAP), rows, ref, 'dark')).toBeGreaterThan(ref.views.length * 2);
    // The summary catches up (it is rewritten at most once a second).
    const heads = summaryHeads(ref, workerNames(events));
    await page.waitForFunction((want) => want.every((h) => document.querySelector('.cache .cache-map-summary')?.textContent?.includes(h)), heads, { timeout: 10_000 });

    // A click 2 px into worker 0's own step: the panel opens on that block's token there.
    const box = (await page.locator(MAP).boundingBox())!;
    const own = rows[0]![rows[0]!.length - 1]!;
    expect(own.seg).toEqual(ref.views[0]![ref.views[0]!.length - 1]);
    await page.mouse.click(box.x + own.x0 + 2, box.y + ROW_H / 2);
    const posted = await page.evaluate(() => (window as unknown as { __posted: { type: string; command?: string; runId?: string; token?: unknown }[] }).__posted.filter((m) => m.type === 'command'));
    expect(posted.map((m) => [m.command, m.runId])).toEqual([['open-panel', trace.header.runId]]);
    const wantIndex = Math.min(own.seg.length - 1, Math.floor((2 / Math.max(1, own.x1 - own.x0)) * own.seg.length));
    expect(posted[0]!.token).toEqual({ block: own.seg.block, index: wantIndex });
    expect(pageErrors(page)).toEqual([]);
    await page.close();
  });

  test.each(['high-contrast', 'light'] as Theme[])('%s theme: solid colours only', async (theme) => {
    const trace = readFixtureTrace('combined');
    const events = allEvents(trace);
    const ref = traceReference(events);
    const page = await openPanel(browser(), theme, { bundle: 'sidebar', width: WIDTH, height: 700 });
    await showRun(page, trace, events);
    const img = await canvasPixels(page, MAP);
    const palette = theme === 'light' ? 'light' : 'dark';
    const allowed = new Set(
      [...WORKER_COLORS[palette], SHARED_GREY[palette], ...(theme === 'light' ? ['#ffffff', '#000000', '#d4d4d4', '#0090f1', '#bf8803'] : ['#000000', '#ffffff', '#6fc3df', '#f38518', '#ffd370'])].map((c) => c.toLowerCase()),
    );
    const seen = new Set<string>();
    for (let i = 0; i < img.data.length; i += 4) seen.add(hex([img.data[i]!, img.data[i + 1]!, img.data[i + 2]!]));
    expect([...seen].filter((c) => !allowed.has(c))).toEqual([]);
    if (theme === 'high-contrast') expect(seen.has('#6fc3df')).toBe(true); // the contrast border on every block
    expect(checkAuthorColours(img, await mapLayoutRows(page, 'sidebar'), ref, palette)).toBeGreaterThan(ref.views.length);
    await screenshot(page, `sidebar-theme-${theme}`);
    expect(pageErrors(page)).toEqual([]);
    await page.close();
  });
});
