/**
 * The run panel's and the sidebar's real bundles (dist/webview/panel.js, sidebar.js) in headless Chromium (playwright-core
 * with Debian's /usr/bin/chromium; never a browser download), fed like the extension feeds
 * it: a stub acquireVsCodeApi records what the panel posts, and window.postMessage brings it
 * the extension's messages. Theme variables as VS Code sets them, per theme.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { parseTrace, type ParsedTrace } from '../../extension/trace';
import type { EngineEvent } from '../../protocol/messages';
import type { MapSegment } from '../../webview/insights/cacheMap';

export const repoRoot = path.resolve(__dirname, '..', '..');
export const artifactsDir = path.join(repoRoot, '.test-artifacts', 'webview');
export const CHROMIUM = process.env.HOGWILD_CHROMIUM ?? '/usr/bin/chromium';

export type Theme = 'dark' | 'light' | 'high-contrast';

const THEMES: Record<Theme, { cls: string; vars: Record<string, string> }> = {
  dark: {
    cls: 'vscode-dark',
    vars: {
      '--vscode-editor-background': '#1e1e1e',
      '--vscode-editor-foreground': '#d4d4d4',
      '--vscode-foreground': '#cccccc',
      '--vscode-descriptionForeground': '#9d9d9d',
      '--vscode-focusBorder': '#007fd4',
      '--vscode-widget-border': '#454545',
      '--vscode-editorWarning-foreground': '#cca700',
      '--vscode-textLink-foreground': '#3794ff',
      '--vscode-input-background': '#3c3c3c',
      '--vscode-input-foreground': '#cccccc',
    },
  },
  light: {
    cls: 'vscode-light',
    vars: {
      '--vscode-editor-background': '#ffffff',
      '--vscode-editor-foreground': '#000000',
      '--vscode-foreground': '#616161',
      '--vscode-descriptionForeground': '#717171',
      '--vscode-focusBorder': '#0090f1',
      '--vscode-widget-border': '#d4d4d4',
      '--vscode-editorWarning-foreground': '#bf8803',
      '--vscode-textLink-foreground': '#006ab1',
      '--vscode-input-background': '#ffffff',
      '--vscode-input-foreground': '#616161',
    },
  },
  'high-contrast': {
    cls: 'vscode-high-contrast',
    vars: {
      '--vscode-editor-background': '#000000',
      '--vscode-editor-foreground': '#ffffff',
      '--vscode-foreground': '#ffffff',
      '--vscode-descriptionForeground': '#ffffff',
      '--vscode-focusBorder': '#f38518',
      '--vscode-contrastBorder': '#6fc3df',
      '--vscode-widget-border': '#6fc3df',
      '--vscode-editorWarning-foreground': '#ffd370',
      '--vscode-textLink-foreground': '#21a6ff',
      '--vscode-input-background': '#000000',
      '--vscode-input-foreground': '#ffffff',
    },
  },
};

export type Bundle = 'panel' | 'sidebar';

/** The style sheets each webview loads (extension/views/panel.ts and sidebar.ts). */
const STYLES: Record<Bundle, string[]> = { panel: ['common.css', 'cache-map.css', 'panel.css'], sidebar: ['common.css', 'cache-map.css', 'sidebar.css'] };

export function harnessHtml(theme: Theme, opts: { noWebGL2?: boolean; bundle?: Bundle } = {}): string {
  const bundle = opts.bundle ?? 'panel';
  const t = THEMES[theme];
  const vars = Object.entries({ ...t.vars, '--vscode-font-family': 'sans-serif', '--vscode-font-size': '13px', '--vscode-editor-font-family': 'monospace', '--vscode-editor-font-size': '13px' })
    .map(([k, v]) => `${k}: ${v};`)
    .join(' ');
  const css = STYLES[bundle].map((f) => `<link rel="stylesheet" href="file://${path.join(repoRoot, 'media', f)}">`).join('\n');
  // WebGL2 "missing": getContext('webgl2') answers null, as on a machine without it.
  const noGl = opts.noWebGL2
    ? `<script>const orig = HTMLCanvasElement.prototype.getContext; HTMLCanvasElement.prototype.getContext = function (kind, ...a) { return kind === 'webgl2' ? null : orig.call(this, kind, ...a); };</script>`
    : '';
  return `<!DOCTYPE html><html lang="en"><head><meta charset="UTF-8">${css}
<style>html { ${vars} background: var(--vscode-editor-background); }</style>${noGl}
<script>
  window.__posted = [];
  let state;
  window.acquireVsCodeApi = () => ({ postMessage: (m) => window.__posted.push(m), getState: () => state, setState: (s) => { state = s; } });
</script></head>
<body class="${t.cls}"><script src="file://${path.join(repoRoot, 'dist', 'webview', `${bundle}.js`)}"></script></body></html>`;
}

export async function launch(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--allow-file-access-from-files', '--enable-precise-memory-info'],
  });
}

/**
 * One Chromium for the calling test file: launched before its tests, closed after them. Call
 * it at the top level; the getter answers inside tests and hooks.
 */
export function browserPerFile(): () => Browser {
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
  });
  return () => browser!;
}

/** A fresh page with the panel (or the sidebar) loaded (nothing posted yet but 'ready'). */
export async function openPanel(browser: Browser, theme: Theme = 'dark', opts: { noWebGL2?: boolean; width?: number; height?: number; bundle?: Bundle } = {}): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: opts.width ?? 1200, height: opts.height ?? 900 }, deviceScaleFactor: 1 });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hw-panel-'));
  const file = path.join(dir, `${opts.bundle ?? 'panel'}.html`);
  fs.writeFileSync(file, harnessHtml(theme, opts));
  await page.goto(`file://${file}`);
  await page.waitForFunction(() => (window as unknown as { __posted: { type: string }[] }).__posted.some((m) => m.type === 'ready'));
  (page as unknown as { __errors: string[] }).__errors = errors;
  return page;
}

export function pageErrors(page: Page): string[] {
  return (page as unknown as { __errors: string[] }).__errors;
}

export function readFixtureTrace(name: string): ParsedTrace {
  const file = path.join(repoRoot, 'test', 'fixtures', 'traces', `${name}.jsonl`);
  return parseTrace(fs.readFileSync(file, 'utf8'), file);
}

export function allEvents(t: ParsedTrace): EngineEvent[] {
  return t.batches.flatMap((b) => b.events);
}

/** JSON with typed arrays as plain arrays (what structured clone would carry anyway). */
const toJson = (x: unknown) => JSON.stringify(x, (_k, v) => (ArrayBuffer.isView(v) ? Array.from(v as unknown as ArrayLike<number>) : v));

/** JSON-safe events (typed arrays as plain arrays). */
export function plain(events: EngineEvent[]): unknown[] {
  return JSON.parse(toJson(events));
}

/**
 * Posts a message to the page as the extension would. It crosses into the page as ONE JSON
 * string: Playwright serialises an object argument value by value, which for a whole trace
 * costs seconds on a loaded machine.
 */
export async function postToPage(page: Page, ...messages: unknown[]): Promise<void> {
  await page.evaluate((json) => {
    for (const m of JSON.parse(json) as unknown[]) window.postMessage(m, '*');
  }, toJson(messages));
}

/** Posts an 'init' for a whole trace, as the extension does for a replay; waits for the render. */
export async function showTrace(page: Page, t: ParsedTrace, source: 'replay' | 'live' = 'replay'): Promise<void> {
  await postToPage(page, { type: 'init', runId: t.header.runId, title: t.header.title, config: t.header.config, source, events: allEvents(t) });
  await settle(page);
}

/** A cache map segment as the tests copy it out of the page. */
export type MapSeg = Pick<MapSegment, 'worker' | 'seg' | 'x0' | 'x1'>;

/** The cache map's layout, row by row (worker by worker), copied out of the run panel or the sidebar. */
export async function mapLayoutRows(page: Page, bundle: Bundle = 'panel'): Promise<MapSeg[][]> {
  return page.evaluate((bundle) => {
    const w = window as unknown as { hogwildPanel: { insights: { map: { layoutRows: MapSeg[][] } } }; hogwildSidebar: { cacheMap: { layoutRows: MapSeg[][] } } };
    const map = bundle === 'sidebar' ? w.hogwildSidebar.cacheMap : w.hogwildPanel.insights.map;
    return map.layoutRows.map((r) => r.map((s) => ({ worker: s.worker, seg: { ...s.seg }, x0: s.x0, x1: s.x1 })));
  }, bundle);
}

/** Waits until two animation frames have passed with the panel rendered. */
export async function settle(page: Page): Promise<void> {
  await page.evaluate(() => new Promise<void>((r) => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r, 50)))));
}

export async function screenshot(page: Page, name: string, selector?: string): Promise<void> {
  fs.mkdirSync(artifactsDir, { recursive: true });
  const target = selector ? page.locator(selector).first() : page;
  await target.screenshot({ path: path.join(artifactsDir, `${name}.png`) });
}

export function hex(c: readonly number[]): string {
  return '#' + c.map((x) => x.toString(16).padStart(2, '0')).join('');
}

export interface Pixels {
  width: number;
  height: number;
  data: Uint8Array; // RGBA, row by row
}

/**
 * Every pixel of a canvas (one evaluate, not one per pixel). The RGBA bytes come back as one
 * base64 string: as an array, Playwright would serialise each number as an object, megabytes
 * of protocol traffic per canvas that took minutes on a loaded 2-core machine.
 */
export async function canvasPixels(page: Page, selector: string): Promise<Pixels> {
  const r = await page.evaluate((sel) => {
    const c = document.querySelector(sel) as HTMLCanvasElement;
    const copy = document.createElement('canvas');
    copy.width = c.width;
    copy.height = c.height;
    const ctx = copy.getContext('2d')!;
    ctx.drawImage(c, 0, 0);
    const bytes = ctx.getImageData(0, 0, c.width, c.height).data;
    let bin = '';
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return { width: c.width, height: c.height, b64: btoa(bin) };
  }, selector);
  return { width: r.width, height: r.height, data: new Uint8Array(Buffer.from(r.b64, 'base64')) };
}

export const at = (img: Pixels, x: number, y: number): [number, number, number] => {
  const i = (y * img.width + x) * 4;
  return [img.data[i]!, img.data[i + 1]!, img.data[i + 2]!];
};
