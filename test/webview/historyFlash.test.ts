// The cache map's flash when a finished step moves into the shared history: for about 1.5 s
// the range the step landed on is outlined in the focus colour, in every view that holds the
// history, and only that range; then the blocks are drawn as before. Pixels of the panel's
// real bundle in headless Chromium, against a trace the engine recorded (interleaved layout:
// steps move into the history). Where the step lands comes from the trace's events
// (traceReference.ts), never from the panel's state.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Page } from 'playwright-core';
import type { EngineEvent } from '../../protocol/messages';
import { allEvents, at, browserPerFile, canvasPixels, hex, openPanel, pageErrors, plain, postToPage, readFixtureTrace, settle, type MapSeg } from './harness';
import { traceReference } from './traceReference';

const ROW_H = 22;
const ROW_STEP = 28;
const MAP = '.insight-map .cache-map-canvas';
const FOCUS = '#007fd4'; // --vscode-focusBorder of the harness's dark theme

interface Probe {
  x: number;
  y: number;
  kind: 'edge' | 'middle' | 'older';
}

interface Frame {
  t: number;
  edge: boolean[];
  middle: boolean[];
  older: boolean[];
}

const browser = browserPerFile();

/**
 * The trace cut at its last move into the history: the events before the step finishes,
 * and the move itself up to the views that show the longer history.
 */
function splitAtLastMove(events: EngineEvent[]): { before: EngineEvent[]; move: EngineEvent[] } {
  const k = events.map((e) => e.type === 'step-finished' && e.historyBlock >= 0).lastIndexOf(true);
  const hb = k >= 0 ? (events[k] as Extract<EngineEvent, { type: 'step-finished' }>).historyBlock : -1;
  const merged = events.find((e, i): e is Extract<EngineEvent, { type: 'block' }> => i > k && e.type === 'block' && e.op === 'merged' && e.info.block === hb);
  // The engine's views come at its next step: the first that holds the longer history.
  const v = events.findIndex((e, i) => i > k && e.type === 'views' && e.views.some((row) => row.some((s) => s.block === hb && s.length >= (merged?.info.length ?? Infinity))));
  if (k < 0 || !merged || v < 0) throw new Error('the trace has no move into the history followed by views that show it');
  return { before: events.slice(0, k), move: events.slice(k, v + 1) };
}

describe('a step moving into the shared history', () => {
  const trace = readFixtureTrace('interleaved');
  const { before, move } = splitAtLastMove(allEvents(trace));
  const ref = traceReference([...before, ...move]);
  const hb = (move[0] as Extract<EngineEvent, { type: 'step-finished' }>).historyBlock;
  const ranges = ref.historyRanges.get(hb)!;
  const [from, to, author] = ranges[ranges.length - 1]!;
  let page: Page;

  beforeAll(async () => {
    page = await openPanel(browser(), 'dark', { width: 1200 });
    await postToPage(page, { type: 'init', runId: trace.header.runId, title: trace.header.title, config: trace.header.config, source: 'replay', events: before });
    await settle(page);
    await page.locator(MAP).scrollIntoViewIfNeeded();
    await settle(page);
  });
  afterAll(async () => {
    expect(pageErrors(page)).toEqual([]);
    await page.close();
  });

  test('outlines the range it landed on in every view for about 1.5 s, then draws the blocks as before', async () => {
    expect(to).toBeGreaterThan(from);
    expect(author).toBe((move[0] as Extract<EngineEvent, { type: 'step-finished' }>).worker);
    // Where the move lands in each view that holds the history: from the trace's views, placed
    // on the map's own scale (its layout gives the x of each block).
    const rows = ref.views.map((v) => v.find((s) => s.block === hb));
    expect(rows.filter(Boolean).length).toBeGreaterThan(0);

    // Post the move and watch the canvas every frame, both from inside the page: a loaded
    // machine must not make the test miss a 1.5 s flash between two round trips. The probes
    // are placed on the map's own scale (its layout gives the x of each block) at the range
    // the trace says the step landed on.
    const seen = await page.evaluate(
      ({ msg, hb, from, to, rowH, rowStep, focus }) =>
        new Promise<{ frames: Frame[]; probes: Probe[] }>((resolve) => {
          const map = (window as unknown as { hogwildPanel: { insights: { map: { layoutRows: MapSeg[][] } } } }).hogwildPanel.insights.map;
          const c = document.querySelector('.insight-map .cache-map-canvas') as HTMLCanvasElement;
          const copy = document.createElement('canvas');
          const frames: Frame[] = [];
          let probes: Probe[] = [];
          const place = () => {
            const out: Probe[] = [];
            map.layoutRows.forEach((r, w) => {
              const s = r.find((x) => x.seg.block === hb);
              if (!s) return;
              const span = s.x1 - s.x0;
              const a = Math.round(s.x0 + (from / s.seg.length) * span);
              const z = Math.round(s.x0 + (to / s.seg.length) * span);
              const y = w * rowStep;
              // The top edge inside the moved range (the outline is 2 px wide) and its middle row.
              for (const x of [a + 3, Math.floor((a + z) / 2), z - 4]) {
                if (x > a + 2 && x < z - 3) out.push({ x, y, kind: 'edge' }, { x, y: y + 1, kind: 'edge' }, { x, y: y + Math.floor(rowH / 2), kind: 'middle' });
              }
              // The history before the move keeps its look.
              if (a - s.x0 > 10) out.push({ x: Math.floor((s.x0 + a) / 2), y, kind: 'older' });
            });
            return out;
          };
          const t0 = performance.now();
          const look = () => {
            const t = performance.now() - t0;
            const moved = map.layoutRows.some((r) => r.some((s) => s.seg.block === hb && s.seg.length >= to));
            if (moved) {
              probes = place();
              copy.width = c.width;
              copy.height = c.height;
              const ctx = copy.getContext('2d')!;
              ctx.drawImage(c, 0, 0);
              const d = ctx.getImageData(0, 0, copy.width, copy.height).data;
              const isFocus = (p: Probe) => {
                const i = (p.y * copy.width + p.x) * 4;
                return '#' + [d[i]!, d[i + 1]!, d[i + 2]!].map((v) => v.toString(16).padStart(2, '0')).join('') === focus;
              };
              frames.push({ t, edge: probes.filter((p) => p.kind === 'edge').map(isFocus), middle: probes.filter((p) => p.kind === 'middle').map(isFocus), older: probes.filter((p) => p.kind === 'older').map(isFocus) });
            }
            const lit = frames.some((f) => f.edge.length > 0 && f.edge.every(Boolean));
            const last = frames[frames.length - 1];
            if ((lit && last && !last.edge.some(Boolean)) || t > 10_000) resolve({ frames, probes });
            else requestAnimationFrame(look);
          };
          window.postMessage(msg, '*');
          requestAnimationFrame(look);
        }),
      { msg: { type: 'events', runId: trace.header.runId, events: plain(move) }, hb, from, to, rowH: ROW_H, rowStep: ROW_STEP, focus: FOCUS },
    );
    expect(seen.probes.filter((p) => p.kind === 'edge').length, 'probes inside the moved range').toBeGreaterThan(0);
    // Every view that holds the history (the trace's views) flashes.
    const flashed = [...new Set(seen.probes.filter((p) => p.kind === 'edge').map((p) => Math.floor(p.y / ROW_STEP)))].sort();
    expect(flashed).toEqual(rows.flatMap((s, w) => (s ? [w] : [])));
    const lit = seen.frames.filter((f) => f.edge.every(Boolean));
    expect(lit.length, 'frames with the moved range outlined').toBeGreaterThan(0);
    const on = lit[0]!.t;
    const off = seen.frames.find((f) => f.t > on && !f.edge.some(Boolean))?.t;
    expect(off, 'the outline goes away').toBeDefined();
    // About 1.5 s (the map redraws at most 4 times a second while a run streams; a loaded
    // machine may draw later, never earlier; the first lit frame may come a frame late).
    expect(off! - on).toBeGreaterThan(1000);
    expect(off! - on).toBeLessThan(6000);
    // Only the moved range is outlined, and only its outline: the blocks inside keep their colour.
    for (const f of lit) {
      expect(f.older.some(Boolean), `the older history at ${f.t.toFixed(0)} ms`).toBe(false);
      expect(f.middle.some(Boolean), `inside the range at ${f.t.toFixed(0)} ms`).toBe(false);
    }

    // Afterwards: the top edge of the range shows the block's own colour, as its middle does.
    await settle(page);
    const img = await canvasPixels(page, MAP);
    for (const p of seen.probes.filter((q) => q.kind === 'edge' && q.y % ROW_STEP === 0)) {
      const top = hex(at(img, p.x, p.y));
      expect(top, `x ${p.x}, row ${p.y / ROW_STEP}`).not.toBe(FOCUS);
      expect(top, `x ${p.x}, row ${p.y / ROW_STEP}`).toBe(hex(at(img, p.x, p.y + Math.floor(ROW_H / 2))));
    }
  });
});
