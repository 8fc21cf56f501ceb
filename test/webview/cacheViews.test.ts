// The run panel's cache map, attention heatmap, inspector and find in headless Chromium,
// against traces the real engine recorded in all three layouts (test/fixtures/traces,
// written by `npm run record-trace`). Expected values come from the trace's events
// (traceReference.ts), never from the panel's own state.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Page } from 'playwright-core';
import { WORKER_COLORS, SHARED_GREY } from '../../webview/insights/palette';
import { allEvents, at, browserPerFile, canvasPixels, hex, mapLayoutRows, openPanel, pageErrors, postToPage, readFixtureTrace, screenshot, settle, showTrace, type Theme } from './harness';
import { authorOf, pieceAt, sourceIndex, traceReference, type TraceReference } from './traceReference';

const LAYOUT_TRACES = ['contiguous', 'interleaved', 'combined', 'combined-moves'];
const ROW_H = 22;
const ROW_STEP = 28;
const MAP = '.insight-map .cache-map-canvas';
const TIME = '.heatmap-time-host canvas';

const browser = browserPerFile();

type Rgb = [number, number, number];
const rgbOf = (h: string): Rgb => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)) as Rgb;
const near = (a: readonly number[], b: readonly number[], tol: number) => a.every((v, i) => Math.abs(v - b[i]!) <= tol);

describe.each(LAYOUT_TRACES)('%s trace', (name) => {
  const trace = readFixtureTrace(name);
  const ref = traceReference(allEvents(trace));
  let page: Page;

  beforeAll(async () => {
    page = await openPanel(browser(), 'dark', { width: 1200 });
    await showTrace(page, trace);
  });
  afterAll(async () => {
    expect(pageErrors(page)).toEqual([]);
    await page.close();
  });

  test('the cache map draws every view in the trace\'s order, to scale', async () => {
    const rows = await mapLayoutRows(page);
    expect(rows.map((r) => r.map((s) => s.seg))).toEqual(ref.views);
    // To scale: widths proportional to lengths (the prompt may be compressed).
    for (const r of rows) {
      const scaled = r.filter((s, i) => !(i === 0 && ref.blocks.get(s.seg.block)!.kind === 'prompt') && s.seg.length >= 10);
      const ratios = scaled.map((s) => (s.x1 - s.x0) / s.seg.length);
      for (const q of ratios) expect(Math.abs(q - ratios[0]!) * Math.max(...scaled.map((s) => s.seg.length))).toBeLessThan(3);
    }
  });

  test('the block under x in worker w\'s strip carries its author\'s colour', async () => {
    const rows = await mapLayoutRows(page);
    const img = await canvasPixels(page, MAP);
    let checked = 0;
    rows.forEach((r, w) => {
      const y = w * ROW_STEP + Math.floor(ROW_H / 2);
      for (const s of r) {
        const b = ref.blocks.get(s.seg.block)!;
        if (b.recreatedAfterViews || s.seg.length === 0) continue;
        const px = (s.x1 - s.x0) / s.seg.length;
        for (let index = 0; index < s.seg.length; index++) {
          const x0 = Math.ceil(s.x0 + index * px) + 1;
          const x1 = Math.floor(s.x0 + (index + 1) * px) - 1;
          if (x1 - x0 < 1 || x0 < 0 || x1 >= img.width) continue;
          const author = authorOf(ref, s.seg.block, index);
          if (author === null) continue;
          const want = author >= 0 ? WORKER_COLORS.dark[author % 8]! : SHARED_GREY.dark;
          expect(hex(at(img, Math.floor((x0 + x1) / 2), y)), `worker ${w}, block ${s.seg.block} (${b.kind}), token ${index}`).toBe(want.toLowerCase());
          checked++;
        }
      }
    });
    expect(checked).toBeGreaterThan(20);
  });

  test('kinds are told apart by bands: headers, notes, the history; a fork\'s shared pages in its origin\'s colour', async () => {
    const rows = await mapLayoutRows(page);
    const img = await canvasPixels(page, MAP);
    const seen = new Set<string>();
    rows.forEach((r, w) => {
      const y = w * ROW_STEP;
      for (const s of r) {
        const b = ref.blocks.get(s.seg.block)!;
        if (b.recreatedAfterViews || s.x1 - s.x0 < 4 || s.x0 < 0 || s.x1 > img.width) continue;
        const x = Math.floor((s.x0 + s.x1) / 2);
        const top = hex(at(img, x, y + 3));
        const bottom = hex(at(img, x, y + ROW_H - 3));
        const where = `worker ${w}, block ${s.seg.block} (${b.kind})`;
        if (b.kind === 'header') expect(top, where).toBe('#d4d4d4');
        else if (b.kind === 'note') expect(top, where).toBe('#007fd4');
        else if (b.kind === 'history') expect(bottom, where).toBe(SHARED_GREY.dark.toLowerCase());
        else if (b.kind === 'worker' && b.createdLength > 0) expect(top, where).toBe(WORKER_COLORS.dark[ref.forkOrigin.get(b.owner)! % 8]!.toLowerCase());
        else continue;
        seen.add(b.kind === 'worker' ? 'fork' : b.kind);
      }
    });
    expect([...seen].sort()).toEqual(
      { contiguous: ['fork', 'note'], interleaved: ['history', 'note'], combined: ['fork', 'header', 'note'], 'combined-moves': ['fork', 'history', 'note'] }[name]!,
    );
  });

  test('hover tells block, author, kind, length, offset and query rotation', async () => {
    const rows = await mapLayoutRows(page);
    await page.locator(MAP).scrollIntoViewIfNeeded();
    const box = (await page.locator(MAP).boundingBox())!;
    for (const w of [0, rows.length - 1]) {
      const v = ref.views[w]!;
      const end = v[v.length - 1]!.offset + v[v.length - 1]!.length;
      const s = rows[w]!.reduce((a, b) => (b.x1 - b.x0 > a.x1 - a.x0 ? b : a));
      await page.mouse.move(box.x + (s.x0 + s.x1) / 2, box.y + w * ROW_STEP + 8);
      const tip = page.locator('.cache-map-tip');
      await tip.waitFor({ state: 'visible' });
      const text = await tip.innerText();
      const b = ref.blocks.get(s.seg.block)!;
      expect(text).toContain(`block ${s.seg.block}`);
      expect(text).toContain(`author ${b.owner >= 0 ? ref.names[b.owner] : b.kind === 'note' ? 'the user' : 'shared'}`);
      expect(text).toContain(b.kind);
      expect(text).toContain(`${s.seg.length} tokens`);
      expect(text).toContain(`offset ${s.seg.offset} in`);
      expect(text).toContain(`query rotation ${end - s.seg.offset}`);
    }
  });

  test('the heatmap cell for a reader, source and step has that share\'s shade; the layer switch shows that layer', async () => {
    for (const layer of [-1, 1]) {
      if (layer >= 0) {
        await page.evaluate((l) => {
          const sel = document.querySelector('.layer-select') as HTMLElement & { value: string };
          sel.value = String(l);
          sel.dispatchEvent(new Event('change'));
        }, layer);
        await settle(page);
        await page.waitForFunction((l) => document.querySelector('.heatmap')?.getAttribute('data-layer') === String(l), layer);
      }
      const img = await canvasPixels(page, TIME);
      const cols = Number(await page.locator(TIME).getAttribute('data-cols'));
      const nrows = Number(await page.locator(TIME).getAttribute('data-rows'));
      expect(cols).toBe(ref.lastStep); // one column per step at this width
      const readers = ref.workers;
      const sources = 4 + readers;
      expect(nrows).toBe(readers * sources);
      const bg = rgbOf('#1e1e1e');
      const fg = rgbOf('#d4d4d4');
      let shaded = 0;
      let missing = 0;
      for (let r = 0; r < readers; r++)
        for (let src = 0; src < sources; src++)
          for (let step = 1; step <= ref.lastStep; step++) {
            const x = Math.floor(((step - 1 + 0.5) * img.width) / cols);
            const row = r * sources + src;
            const y = Math.floor(((row + 0.5) * img.height) / nrows);
            const v = ref.share(step, r, src, layer);
            const got = at(img, x, y);
            if (Number.isNaN(v)) {
              // Not recorded: the stripe, never the shade of 0 everywhere in the cell.
              const cellTop = Math.ceil((row * img.height) / nrows);
              const stripe = [0, 1, 2, 3, 4, 5, 6, 7].map((d) => hex(at(img, x, Math.min(img.height - 1, cellTop + d))));
              expect(stripe, `reader ${r} source ${src} step ${step}`).toContain('#cca700');
              missing++;
              continue;
            }
            const t = Math.min(1, v);
            const want = bg.map((c, i) => Math.round(c + (fg[i]! - c) * t));
            expect(near(got, want, layer >= 0 ? 3 : 2), `reader ${r} source ${src} step ${step} layer ${layer}: ${got} vs ${want} (share ${v})`).toBe(true);
            shaded++;
          }
      expect(shaded).toBeGreaterThan(50);
      if (name !== 'contiguous') expect(missing).toBeGreaterThan(0); // the fork reads nothing before it exists
    }
    // Mean over layers again for the next tests.
    await page.evaluate(() => {
      const sel = document.querySelector('.layer-select') as HTMLElement & { value: string };
      sel.value = '-1';
      sel.dispatchEvent(new Event('change'));
    });
    await settle(page);
  });

  test('a click on a lane token opens the inspector with the trace\'s positions and rotations', async () => {
    // The last step of worker 0 (never a fork): click its third character.
    const seg = page.locator('.lane[data-worker="0"] .seg .seg-text').last();
    await seg.scrollIntoViewIfNeeded();
    const point = await seg.evaluate((el) => {
      const n = el.firstChild as Text;
      const r = document.createRange();
      const k = Math.min(2, n.length - 1);
      r.setStart(n, k);
      r.setEnd(n, k + 1);
      const b = r.getBoundingClientRect();
      return { x: b.left + b.width / 2, y: b.top + b.height / 2, ch: n.data[k]! };
    });
    await page.mouse.click(point.x, point.y);
    const insp = page.locator('.inspector');
    await page.waitForFunction(() => document.querySelector('.inspector')?.getAttribute('data-state') === 'done');
    const block = Number(await insp.getAttribute('data-block'));
    const index = Number(await insp.getAttribute('data-index'));
    expect(await insp.locator('.tok-text').innerText()).toContain(JSON.stringify(point.ch).slice(1, -1));
    const author = authorOf(ref, block, index);
    if (author !== null) expect(await insp.locator('.f-author').innerText()).toBe('Alice');
    await checkInspectorRows(page, ref, block, index);
    await screenshot(page, `${name}-inspector`, '.insight-inspector');
  });

  test('an inspect-token message (a click on the sidebar\'s compact map) opens the inspector on that token', async () => {
    // Worker 1's last view: the middle token of its longest block other than the prompt.
    const v = ref.views[1]!;
    const seg = [...v].filter((s) => ref.blocks.get(s.block)!.kind !== 'prompt').sort((a, b) => b.length - a.length)[0]!;
    const index = Math.floor(seg.length / 2);
    // Another run's position changes nothing.
    await postToPage(page, { type: 'inspect-token', runId: 'another-run', block: seg.block, index });
    await postToPage(page, { type: 'inspect-token', runId: trace.header.runId, block: seg.block, index });
    await page.waitForFunction(({ b, i }) => {
      const el = document.querySelector('.inspector');
      return el?.getAttribute('data-state') === 'done' && el.getAttribute('data-block') === String(b) && el.getAttribute('data-index') === String(i);
    }, { b: seg.block, i: index });
    await checkInspectorRows(page, ref, seg.block, index);
  });

  test('prompt tokens: the prompt (collapsed at first) opens, and a click inspects its token', async () => {
    expect(await page.locator('details.prompt').getAttribute('open')).toBeNull();
    await page.locator('details.prompt summary').click();
    const body = page.locator('.prompt-body .prompt-text');
    await body.waitFor();
    const k = 5;
    await clickChar(page, '.prompt-body .prompt-text', k);
    await page.waitForFunction(() => document.querySelector('.inspector')?.getAttribute('data-state') === 'done');
    let acc = 0;
    let want = -1;
    ref.promptPieces.forEach((p, i) => {
      if (want < 0 && k < acc + p.length) want = i;
      acc += p.length;
    });
    expect(Number(await page.locator('.inspector').getAttribute('data-block'))).toBe(ref.promptBlock);
    expect(Number(await page.locator('.inspector').getAttribute('data-index'))).toBe(want);
    await checkInspectorRows(page, ref, ref.promptBlock, want);
    await page.locator('details.prompt summary').click();
  });

  test('a click on a token of the shared history and of a note inspects it', async () => {
    // A note: a character inside its text.
    const note = ref.notes[0]!;
    const noteText = note.pieces.join('');
    const k = noteText.indexOf('multiplication') + 3;
    await clickChar(page, '.note-item .note-text', k);
    await page.waitForFunction((b) => document.querySelector('.inspector')?.getAttribute('data-state') === 'done' && document.querySelector('.inspector')?.getAttribute('data-block') === String(b), note.block);
    expect(Number(await page.locator('.inspector').getAttribute('data-index'))).toBe(pieceAt(note.pieces, k));
    expect(await page.locator('.inspector .tok-text').innerText()).toBe(JSON.stringify(note.pieces[pieceAt(note.pieces, k)]));
    await checkInspectorRows(page, ref, note.block, pieceAt(note.pieces, k));

    if (name === 'contiguous' || name === 'combined') {
      expect(ref.finished).toEqual([]); // these layouts' traces finish no step
      return;
    }
    // The history: an entry of a worker that is not a fork (a fork's first move also carries
    // its origin's copied tokens) with a few characters shown. Move k of the history block is
    // finished step k.
    const histBlock = [...ref.historyRanges.keys()][0]!;
    const moves = ref.historyRanges.get(histBlock)!;
    expect(moves.map((m) => m[2])).toEqual(ref.finished.map((f) => f.worker));
    const shown = await page.locator('.hist-item .hist-text').evaluateAll((els) => els.map((e) => ({ entry: Number(e.closest<HTMLElement>('.hist-item')!.dataset.entry), length: e.textContent!.length })));
    const entry = shown.find((x) => x.length >= 3 && !ref.forkOrigin.has(ref.finished[x.entry]!.worker))!.entry;
    const f = ref.finished[entry]!;
    const item = page.locator(`.hist-item[data-entry="${entry}"]`);
    await item.scrollIntoViewIfNeeded();
    const shownFrom = Number(await item.getAttribute('data-offset')); // the step header is not shown
    await clickChar(page, `.hist-item[data-entry="${entry}"] .hist-text`, 2);
    await page.waitForFunction((b) => document.querySelector('.inspector')?.getAttribute('data-state') === 'done' && document.querySelector('.inspector')?.getAttribute('data-block') === String(b), histBlock);
    const move = moves[entry]!;
    const j = pieceAt(f.pieces, shownFrom + 2);
    expect(Number(await page.locator('.inspector').getAttribute('data-index'))).toBe(move[0] + j);
    expect(await page.locator('.inspector .tok-text').innerText()).toBe(JSON.stringify(f.pieces[j]));
    expect(await page.locator('.inspector .f-author').innerText()).toBe(ref.names[f.worker]);
    expect(await page.locator('.inspector .f-step').innerText()).toBe(String(f.step));
    await checkInspectorRows(page, ref, histBlock, move[0] + j);
  });

  test('who reads whom now (the latest step) and over the run: each cell has the trace\'s share', async () => {
    const readers = ref.workers;
    const sources = 4 + readers;
    const latest = ref.attentionSteps[ref.attentionSteps.length - 1]!;
    const bg = rgbOf('#1e1e1e');
    const fg = rgbOf('#d4d4d4');
    const shade = (v: number) => bg.map((c, i) => Math.round(c + (fg[i]! - c) * Math.min(1, v)));
    for (const [sel, value] of [
      ['.matrix-now canvas', (r: number, src: number) => ref.share(latest, r, src)],
      ['.matrix-run canvas', (r: number, src: number) => {
        const vs = ref.attentionSteps.map((st) => ref.share(st, r, src)).filter((v) => !Number.isNaN(v));
        return vs.length > 0 ? vs.reduce((a, b) => a + b, 0) / vs.length : NaN;
      }],
    ] as const) {
      const img = await canvasPixels(page, sel);
      let checked = 0;
      for (let r = 0; r < readers; r++)
        for (let src = 0; src < sources; src++) {
          const v = value(r, src);
          if (Number.isNaN(v)) continue;
          const x = Math.floor(((src + 0.5) * img.width) / sources);
          const y = Math.floor(((r + 0.5) * img.height) / readers);
          expect(near(at(img, x, y), shade(v), 2), `${sel}: reader ${r} source ${src}: ${at(img, x, y)} vs ${shade(v)} (share ${v})`).toBe(true);
          checked++;
        }
      expect(checked).toBeGreaterThanOrEqual(readers * 4);
    }
  });

  test('keyboard: a lane moves token by token and Enter inspects; the cache map moves block by block', async () => {
    const lane = page.locator('.lane[data-worker="1"] .lane-scroll');
    await lane.focus();
    await page.keyboard.press('ArrowLeft'); // the last token of the lane
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('.inspector')?.getAttribute('data-state') === 'done');
    const lastTokens = allEvents(trace).filter((e) => e.type === 'tokens' && e.worker === 1 && e.ids.length > 0).pop() as { pieces: string[] };
    expect(await page.locator('.inspector .tok-text').innerText()).toBe(JSON.stringify(lastTokens.pieces[lastTokens.pieces.length - 1]));
    expect(await page.evaluate(() => document.body.dataset.findCurrent)).toBe('0');

    // Worker 1's strip, its first block after the prompt that has tokens (an empty block,
    // like a history with no step yet, has nothing to inspect).
    const target = ref.views[1]!.findIndex((seg, i) => i > 0 && seg.length > 0);
    await page.locator(MAP).focus();
    await page.keyboard.press('ArrowDown');
    for (let i = 0; i < target; i++) await page.keyboard.press('ArrowRight');
    await page.keyboard.press('Enter');
    await page.waitForFunction((b) => document.querySelector('.inspector')?.getAttribute('data-block') === String(b), ref.views[1]![target]!.block);
    expect(Number(await page.locator('.inspector').getAttribute('data-index'))).toBe(0);
  });

  test('zoom: + doubles every block\'s width, 0 fits the longest view again', async () => {
    const before = await mapLayoutRows(page);
    await page.locator(MAP).focus();
    await page.keyboard.press('+');
    await settle(page);
    const after = await mapLayoutRows(page);
    expect(await page.locator('.cache-map-zoom').innerText()).toBe('2×');
    before.forEach((r, w) =>
      r.forEach((s, i) => {
        const a = after[w]![i]!;
        if (s.seg.length > 0) expect(Math.abs(a.x1 - a.x0 - 2 * (s.x1 - s.x0)), `worker ${w} segment ${i}`).toBeLessThanOrEqual(2);
      }),
    );
    await page.keyboard.press('0');
    await settle(page);
    expect((await mapLayoutRows(page)).map((r) => r.map((s) => [s.x0, s.x1]))).toEqual(before.map((r) => r.map((s) => [s.x0, s.x1])));
  });

  test('screenshots of each view', async () => {
    await screenshot(page, `${name}-cache-map`, '.insight-map');
    await screenshot(page, `${name}-attention`, '.insight-attention');
    await screenshot(page, `${name}-panel`);
    expect(await page.locator('.cache-map-summary').textContent()).toContain(`sees ${ref.views[0]!.length} blocks`);
    expect(await page.locator('.heatmap-summary').textContent()).toContain('Attention shares (mean over layers)');
  });
});

/**
 * The inspector's table, row by row, against the trace: positions and rotations from its
 * last views, and (a replay has no per-token attention) the block's share at the last step
 * with attention; the note under the table says what the trace lacks.
 */
async function checkInspectorRows(page: Page, ref: TraceReference, block: number, index: number): Promise<void> {
  const rows = await page.locator('.inspector-table tbody tr').evaluateAll((trs) => trs.map((tr) => ({ w: Number(tr.getAttribute('data-worker')), pos: tr.querySelector('.pos')!.textContent, rot: tr.querySelector('.rot')!.textContent, att: tr.querySelector('.att')!.textContent! })));
  expect(rows.length).toBe(ref.views.length);
  const b = ref.blocks.get(block)!;
  const latest = ref.attentionSteps[ref.attentionSteps.length - 1]!;
  for (const { att, ...r } of rows) {
    const v = ref.views[r.w]!;
    const s = v.find((x) => x.block === block);
    const end = v[v.length - 1]!.offset + v[v.length - 1]!.length;
    const seen = !!s && index < s.length;
    if (seen) expect(r).toEqual({ w: r.w, pos: String(s.offset + index), rot: String(end - s.offset) });
    else expect(r).toEqual({ w: r.w, pos: 'not in view', rot: '—' });
    const share = seen ? ref.share(latest, r.w, sourceIndex(b.kind, b.owner)) : NaN;
    if (Number.isNaN(share)) expect(att, `worker ${r.w}'s attention`).toBe('not recorded');
    else expect(Math.abs(parseFloat(att) - share * 100), `worker ${r.w}'s attention: ${att} vs ${share}`).toBeLessThanOrEqual(0.0051);
  }
  expect(await page.locator('.inspector-source').innerText()).toMatch(/^From the trace \(replay\)\. Not in the trace: per-token attention/);
}

/** Clicks character k of the first element matching `selector` (a text node inside it). */
async function clickChar(page: Page, selector: string, k: number): Promise<void> {
  const el = page.locator(selector).first();
  await el.scrollIntoViewIfNeeded();
  const point = await el.evaluate((e, k) => {
    const n = e.firstChild as Text;
    const r = document.createRange();
    r.setStart(n, k);
    r.setEnd(n, k + 1);
    const b = r.getBoundingClientRect();
    return { x: b.left + b.width / 2, y: b.top + b.height / 2 };
  }, k);
  await page.mouse.click(point.x, point.y);
}

describe('renderers', () => {
  const trace = readFixtureTrace('combined-moves');

  const GRIDS = ['.heatmap-time-host canvas', '.matrix-now canvas', '.matrix-run canvas'];

  /**
   * Waits until every grid's canvas is as wide as its host (a busy machine can lay the panel out
   * after the first draw; the grid redraws at the new width), so that two pages compare cell
   * for cell. A canvas that never follows its host fails here.
   */
  async function gridsFitHosts(page: Page): Promise<void> {
    await page.waitForFunction(
      (sels) => sels.every((s) => { const c = document.querySelector(s) as HTMLCanvasElement; return c.width === Math.max(1, c.parentElement!.clientWidth); }),
      GRIDS,
      { timeout: 5000 },
    );
    await settle(page);
  }

  async function gridPixels(page: Page): Promise<Uint8Array[]> {
    await gridsFitHosts(page);
    const out: Uint8Array[] = [];
    for (const sel of GRIDS) out.push((await canvasPixels(page, sel)).data);
    return out;
  }

  test('the Canvas 2D fallback draws the same cells with WebGL2 missing, and after a lost context', async () => {
    const gl = await openPanel(browser(), 'dark');
    await showTrace(gl, trace);
    expect(await gl.locator(TIME).getAttribute('data-backend')).toBe('webgl2');
    const want = await gridPixels(gl);

    const noGl = await openPanel(browser(), 'dark', { noWebGL2: true });
    await showTrace(noGl, trace);
    expect(await noGl.locator(TIME).getAttribute('data-backend')).toBe('canvas2d');
    const got = await gridPixels(noGl);
    for (let g = 0; g < 3; g++) {
      expect(got[g]!.length, `grid ${g}: ${GRIDS[g]}'s size`).toBe(want[g]!.length);
      let diff = 0;
      for (let i = 0; i < want[g]!.length; i++) diff = Math.max(diff, Math.abs(got[g]![i]! - want[g]![i]!));
      expect(diff, `grid ${g}`).toBeLessThanOrEqual(1);
    }
    await screenshot(noGl, 'fallback-canvas2d-attention', '.insight-attention');

    // Lose the WebGL contexts: each grid swaps in a 2D canvas and redraws the same cells.
    await gl.evaluate(() => {
      for (const c of document.querySelectorAll<HTMLCanvasElement>('.grid-canvas')) (c.getContext('webgl2') as WebGL2RenderingContext).getExtension('WEBGL_lose_context')!.loseContext();
    });
    await gl.waitForFunction(() => [...document.querySelectorAll('.grid-canvas')].every((c) => c.getAttribute('data-backend') === 'canvas2d'));
    const after = await gridPixels(gl);
    for (let g = 0; g < 3; g++) {
      let diff = 0;
      for (let i = 0; i < want[g]!.length; i++) diff = Math.max(diff, Math.abs(after[g]![i]! - want[g]![i]!));
      expect(diff, `grid ${g} after a lost context`).toBeLessThanOrEqual(1);
    }
    expect(pageErrors(gl)).toEqual([]);
    await gl.close();
    await noGl.close();
  });

  test.each(['high-contrast', 'light'] as Theme[])('%s theme: solid colours only (no blends, no anti-aliasing)', async (theme) => {
    const page = await openPanel(browser(), theme);
    await showTrace(page, trace);
    const img = await canvasPixels(page, MAP);
    const palette = theme === 'light' ? 'light' : 'dark';
    const allowed = new Set(
      [...WORKER_COLORS[palette], SHARED_GREY[palette], ...(theme === 'light' ? ['#ffffff', '#000000', '#d4d4d4', '#0090f1', '#bf8803'] : ['#000000', '#ffffff', '#6fc3df', '#f38518', '#ffd370'])].map((c) => c.toLowerCase()),
    );
    const seen = new Map<string, number>();
    for (let i = 0; i < img.data.length; i += 4) {
      const c = hex([img.data[i]!, img.data[i + 1]!, img.data[i + 2]!]);
      seen.set(c, (seen.get(c) ?? 0) + 1);
    }
    expect([...seen.keys()].filter((c) => !allowed.has(c))).toEqual([]);
    if (theme === 'high-contrast') {
      // Every block has the contrast border, and the heatmap uses 5 solid steps.
      expect(seen.get('#6fc3df') ?? 0).toBeGreaterThan(100);
      const heat = await canvasPixels(page, TIME);
      const steps = [0, 1, 2, 3, 4].map((k) => hex([0, 0, 0].map((_, i) => Math.round([0, 0, 0][i]! + (255 - 0) * (k / 4)))));
      const heatColors = new Set<string>();
      for (let i = 0; i < heat.data.length; i += 4) heatColors.add(hex([heat.data[i]!, heat.data[i + 1]!, heat.data[i + 2]!]));
      expect([...heatColors].filter((c) => !steps.includes(c) && c !== '#ffd370')).toEqual([]);
    }
    await screenshot(page, `theme-${theme}-cache-map`, '.insight-map');
    await screenshot(page, `theme-${theme}-attention`, '.insight-attention');
    await page.close();
  });
});

describe('find', () => {
  test('reaches a match in a virtualised part of a long lane and highlights it', async () => {
    const page = await openPanel(browser(), 'dark', { height: 700 });
    // A long synthetic lane: one worker, 4000 tokens; the needle near the start.
    const events: unknown[] = [
      { type: 'run-state', state: 'running' },
      { type: 'worker', info: { worker: 0, name: 'Alice', state: 'running', temperature: 0 } },
      { type: 'block', op: 'created', info: { block: 0, kind: 'prompt', owner: -1, length: 0, label: 'prompt' } },
      { type: 'block-text', block: 0, ids: [1, 2], pieces: ['Solve', ' it'] },
      { type: 'block', op: 'created', info: { block: 1, kind: 'worker', owner: 0, length: 0, label: 'Alice (current step)' } },
    ];
    for (let i = 0; i < 4000; i++) {
      const piece = i === 30 ? ' zebracorn' : i % 40 === 39 ? ` w${i}\n` : ` w${i}`;
      events.push({ type: 'tokens', worker: 0, step: 1, ids: [100 + i], text: piece, pieces: [piece] });
    }
    events.push({ type: 'views', step: 4000, views: [[{ block: 0, offset: 0, length: 2 }, { block: 1, offset: 2, length: 4000 }]] });
    await postToPage(page, { type: 'init', runId: 'long', title: 'long', config: { problem: 'p', workers: 1, workerNames: ['Alice'], layout: 'contiguous', sampling: { temperature: 0, topP: 1, topK: 0, seed: 0 }, maxTokens: 9999, selfCheckInterval: 1000, maxContext: 0, prompts: { system: '', selfCheck: '', finisher: '', headerOthers: '', headerOwn: '', answerPattern: '' } }, source: 'replay', events });
    await settle(page);
    const lane = page.locator('.lane[data-worker="0"] .lane-scroll');
    // Virtualised: the start of the lane is not in the DOM (the lane follows its end).
    expect(await lane.locator('.seg').count()).toBeLessThan(8);
    expect(await lane.innerText()).not.toContain('zebracorn');
    await page.locator('.find-input').fill('ZebraCorn');
    await page.locator('.find-input').press('Enter');
    await settle(page);
    const found = await page.evaluate(() => {
      const hl = (CSS as unknown as { highlights: Map<string, { forEach(f: (r: Range) => void): void; size: number }> }).highlights.get('hw-find-current')!;
      let text = '';
      let inView = false;
      const sc = document.querySelector('.lane[data-worker="0"] .lane-scroll')!.getBoundingClientRect();
      hl.forEach((r) => {
        text = r.toString();
        const b = r.getBoundingClientRect();
        inView = b.top >= sc.top && b.bottom <= sc.bottom;
      });
      return { size: hl.size, text, inView, count: document.querySelector('.find-count')!.textContent };
    });
    expect(found).toEqual({ size: 1, text: 'zebracorn', inView: true, count: '1 of 1' });
    expect(await lane.innerText()).toContain('zebracorn');
    await screenshot(page, 'find-long-lane');
    expect(pageErrors(page)).toEqual([]);
    await page.close();
  });
});
