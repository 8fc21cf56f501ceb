/**
 * Cross-worker attention: a heatmap over time (for each reading worker, its share on each
 * source per step, steps binned to the width), and "who reads whom" now (the latest step)
 * and over the run. A layer selector shows the mean over layers or one layer. Cells are drawn
 * by GridView (WebGL2, Canvas 2D fallback); steps without shares are "not recorded".
 */
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import type { CacheState } from '../../extension/insights/cacheState';
import { FIRST_WORKER_SOURCE, SHARED_SOURCES } from '../../extension/insights/attentionSeries';
import { ce, h, setData, setText } from '../dom';
import { GridView, type Grid, type GridColors } from './grid';
import { cachedTheme, isHighContrast } from './palette';
import { cachedWidth } from '../layoutCache';

const ROW_PX = 12;
const RECOMPUTE_MS = 250;

export class Heatmap {
  readonly root: HTMLElement;
  readonly overTime: GridView;
  readonly now: GridView;
  readonly run: GridView;
  private readonly layerSelect: HTMLElement & { value: string };
  private readonly rowLabels: HTMLElement;
  private readonly tooltip: HTMLElement;
  private readonly summary: HTMLElement;
  private readonly status: HTMLElement;
  private readonly nowCaption: HTMLElement;
  private readonly colLabelsNow: HTMLElement;
  private readonly colLabelsRun: HTMLElement;
  private layer = -1;
  private bins = 0;
  private computedAt = 0;
  private computedKey = '';
  private timeGrid: Grid = { cols: 0, rows: 0, values: new Float32Array(0) };
  private sources = 0;
  private readers = 0;
  private layersShown = -1;

  constructor(
    /** Replaced when a new run starts. */
    public cache: CacheState,
    private readonly nameOf: (worker: number) => string,
    private readonly requestDraw: () => void,
    preferWebGL = true,
  ) {
    this.layerSelect = ce('vscode-single-select', { class: 'layer-select', 'aria-label': 'Layer' }) as HTMLElement & { value: string };
    this.layerSelect.append(ce('vscode-option', { value: '-1', selected: true }, 'All layers (mean)'));
    this.layerSelect.addEventListener('change', () => this.setLayer(Number(this.layerSelect.value)));
    const timeHost = h('div', { class: 'heatmap-time-host' });
    this.rowLabels = h('div', { class: 'heatmap-rows', 'aria-hidden': 'true' });
    this.tooltip = h('div', { class: 'heatmap-tip', role: 'tooltip', hidden: true });
    this.summary = h('div', { class: 'sr-only heatmap-summary', id: 'heatmap-summary' });
    this.status = h('div', { class: 'sr-only', 'aria-live': 'polite' });
    const nowHost = h('div', { class: 'heatmap-matrix-host' });
    const runHost = h('div', { class: 'heatmap-matrix-host' });
    this.nowCaption = h('div', { class: 'matrix-caption' }, 'Now');
    this.colLabelsNow = h('div', { class: 'matrix-cols', 'aria-hidden': 'true' });
    this.colLabelsRun = h('div', { class: 'matrix-cols', 'aria-hidden': 'true' });
    this.root = h(
      'div',
      { class: 'heatmap' },
      h('div', { class: 'heatmap-controls' }, h('label', { class: 'layer-label' }, 'Layer '), this.layerSelect, h('span', { class: 'heatmap-legend' }, h('span', { class: 'legend-ramp' }), ' share 0 → 1 ', h('span', { class: 'legend-swatch sw-missing' }), ' not recorded')),
      h('div', { class: 'heatmap-time' }, this.rowLabels, h('div', { class: 'heatmap-time-stage' }, timeHost, this.tooltip)),
      h(
        'div',
        { class: 'heatmap-matrices' },
        h('figure', { class: 'matrix matrix-now' }, this.nowCaption, this.colLabelsNow, nowHost),
        h('figure', { class: 'matrix matrix-run' }, h('div', { class: 'matrix-caption' }, 'Over the run'), this.colLabelsRun, runHost),
      ),
      this.summary,
      this.status,
    );
    this.overTime = new GridView(timeHost, 'Attention over time: rows are each reader\'s sources, columns are steps', preferWebGL);
    this.now = new GridView(nowHost, 'Who reads whom at the latest step: rows are readers, columns are sources', preferWebGL);
    this.run = new GridView(runHost, 'Who reads whom over the run: rows are readers, columns are sources', preferWebGL);
    for (const g of [this.overTime, this.now, this.run]) g.canvas.setAttribute('aria-describedby', 'heatmap-summary');
    timeHost.addEventListener('mousemove', (e) => this.onHover(e));
    timeHost.addEventListener('mouseleave', () => (this.tooltip.hidden = true));
    new ResizeObserver(() => {
      this.computedKey = '';
      this.requestDraw();
    }).observe(timeHost);
  }

  setLayer(layer: number): void {
    this.layer = layer;
    this.layerSelect.value = String(layer);
    this.computedKey = '';
    this.requestDraw();
  }

  private sourceName(src: number): string {
    return src < FIRST_WORKER_SOURCE ? SHARED_SOURCES[src]! : `${this.nameOf(src - FIRST_WORKER_SOURCE)}'s step`;
  }

  private colors(): GridColors {
    const t = cachedTheme();
    return { lo: t.background, hi: t.foreground, missA: t.background, missB: t.missing, steps: isHighContrast(t.kind) ? 5 : 0 };
  }

  private syncLayers(): void {
    const L = this.cache.attention.layers;
    if (L === this.layersShown) return;
    this.layersShown = L;
    const opts = [ce('vscode-option', { value: '-1', selected: this.layer < 0 }, 'All layers (mean)')];
    for (let l = 0; l < L; l++) opts.push(ce('vscode-option', { value: String(l), selected: this.layer === l }, `Layer ${l}`));
    this.layerSelect.replaceChildren(...opts);
  }

  /** Recomputes the grids when the data or the layer changed (at most every RECOMPUTE_MS). */
  draw(force = false): void {
    const a = this.cache.attention;
    this.syncLayers();
    const readers = Math.max(a.readers, this.cache.views.length);
    const sources = FIRST_WORKER_SOURCE + readers;
    const host = this.overTime.canvas.parentElement!;
    const width = Math.max(1, Math.floor(cachedWidth(host) || 300));
    const bins = Math.max(1, Math.min(a.lastStep, Math.floor(width / 2)));
    const key = `${a.recordedSteps}:${a.lastStep}:${this.layer}:${bins}:${readers}`;
    const now = performance.now();
    if (!force && key === this.computedKey) return;
    if (!force && now - this.computedAt < RECOMPUTE_MS && this.computedKey !== '') {
      setTimeout(() => this.requestDraw(), RECOMPUTE_MS);
      return;
    }
    this.computedKey = key;
    this.computedAt = now;
    this.bins = bins;
    this.sources = sources;
    this.readers = readers;
    const values = new Float32Array(readers * sources * bins);
    for (let r = 0; r < readers; r++) values.set(a.binned(r, sources, bins, this.layer), r * sources * bins);
    this.timeGrid = { cols: bins, rows: readers * sources, values };
    const colors = this.colors();
    this.overTime.draw(this.timeGrid, colors, readers * sources * ROW_PX);
    const latest = a.latestStep;
    const nowVals = new Float32Array(readers * sources).fill(NaN);
    const runVals = new Float32Array(readers * sources);
    for (let r = 0; r < readers; r++)
      for (let s = 0; s < sources; s++) {
        if (latest > 0) nowVals[r * sources + s] = a.value(latest, r, s, this.layer);
        runVals[r * sources + s] = a.meanOverRun(r, s, this.layer);
      }
    this.now.draw({ cols: sources, rows: readers, values: nowVals }, colors, readers * 18);
    this.run.draw({ cols: sources, rows: readers, values: runVals }, colors, readers * 18);
    setText(this.nowCaption, latest > 0 ? `Now (step ${latest})` : 'Now (not recorded)');
    this.renderLabels(readers, sources);
    setText(this.summary, this.describe(latest, readers, sources, nowVals, runVals));
    setData(this.root, 'layer', String(this.layer));
    setData(this.root, 'bins', String(bins));
  }

  private renderLabels(readers: number, sources: number): void {
    const key = `${readers}:${sources}:${[...Array(readers).keys()].map((w) => this.nameOf(w)).join(',')}`;
    if (this.rowLabels.dataset.key === key) return;
    this.rowLabels.dataset.key = key;
    const rows: HTMLElement[] = [];
    for (let r = 0; r < readers; r++)
      for (let s = 0; s < sources; s++) {
        const row = h('div', { class: `heatmap-row${s === 0 ? ' first' : ''}` }, s === 0 ? `${this.nameOf(r)} → ` : '', this.sourceName(s));
        row.style.height = `${ROW_PX}px`; // the CSSOM: the webview's CSP blocks style attributes
        rows.push(row);
      }
    this.rowLabels.replaceChildren(...rows);
    const cols = () => [...Array(sources).keys()].map((s) => h('span', { class: 'matrix-col', title: this.sourceName(s) }, s < FIRST_WORKER_SOURCE ? SHARED_SOURCES[s]!.slice(0, 4) : this.nameOf(s - FIRST_WORKER_SOURCE).slice(0, 5)));
    this.colLabelsNow.replaceChildren(...cols());
    this.colLabelsRun.replaceChildren(...cols());
  }

  private fmt(v: number): string {
    return Number.isNaN(v) ? 'not recorded' : `${(v * 100).toFixed(1)}%`;
  }

  private describe(latest: number, readers: number, sources: number, nowVals: Float32Array, runVals: Float32Array): string {
    if (this.cache.attention.recordedSteps === 0) return 'Attention shares: not recorded in this run.';
    const layer = this.layer < 0 ? 'mean over layers' : `layer ${this.layer}`;
    const parts: string[] = [];
    for (let r = 0; r < readers; r++) {
      const top = (vals: Float32Array) =>
        [...Array(sources).keys()]
          .map((s) => ({ s, v: vals[r * sources + s]! }))
          .filter((x) => !Number.isNaN(x.v))
          .sort((a, b) => b.v - a.v)
          .slice(0, 3)
          .map((x) => `${this.sourceName(x.s)} ${this.fmt(x.v)}`)
          .join(', ');
      parts.push(`${this.nameOf(r)} reads ${top(nowVals) || 'not recorded'} at step ${latest}; over the run ${top(runVals) || 'not recorded'}.`);
    }
    return `Attention shares (${layer}). ${parts.join(' ')}`;
  }

  private onHover(e: MouseEvent): void {
    const cell = this.overTime.cellAt(e);
    if (!cell || this.sources === 0) {
      this.tooltip.hidden = true;
      return;
    }
    const [col, row] = cell;
    const reader = Math.floor(row / this.sources);
    const src = row % this.sources;
    const steps = this.cache.attention.lastStep;
    const from = Math.floor((col * steps) / this.bins) + 1;
    const to = Math.max(from, Math.floor(((col + 1) * steps) / this.bins));
    const v = this.timeGrid.values[row * this.timeGrid.cols + col]!;
    const text = `${this.nameOf(reader)} → ${this.sourceName(src)}, step${to > from ? `s ${from}–${to}` : ` ${from}`}: ${this.fmt(v)}`;
    setText(this.tooltip, text);
    this.tooltip.hidden = false;
    const rect = this.overTime.canvas.getBoundingClientRect();
    this.tooltip.style.left = `${Math.min(rect.width - 220, Math.max(0, e.clientX - rect.left + 12))}px`;
    this.tooltip.style.top = `${e.clientY - rect.top + 12}px`;
  }

  /** For tests: where the cell (reader, source, bin) of the time grid is, in canvas pixels. */
  cellCenter(reader: number, source: number, bin: number): { x: number; y: number } {
    const c = this.overTime.canvas;
    const row = reader * this.sources + source;
    return { x: Math.floor(((bin + 0.5) * c.width) / this.bins), y: Math.floor(((row + 0.5) * c.height) / (this.readers * this.sources)) };
  }
}
