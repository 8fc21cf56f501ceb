/**
 * The sidebar view: the runs and, for the selected one, its workers (name, state, step,
 * tokens, tok/s, latest line) with pause / resume / stop / fork per worker, and a compact
 * cache map of its workers' views (the run panel's CacheMap, fed the map's share of the
 * run's events: `init` and `events` for the run the extension shows here). The extension
 * sends coalesced `runs` summaries; rendering happens at most once per frame.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-badge/index.js';

import type { Control, EngineState, RunSummary, ToWebview, WebviewCommand } from '../protocol/messages';
import { FrameScheduler, RenderCounter } from './frame';
import { ce, fmtRate, h, setData, setDisabled, setText } from './dom';
import { formatBytes, prefillText } from '../protocol/progress';
import { onMessage, post, request, vscodeApi } from './vscode';
import { CacheState } from '../extension/insights/cacheState';
import { CacheMap } from './insights/cacheMap';
import { DrawPacer } from './insights/drawPacer';

interface SidebarState {
  selected: string | null;
}

const api = vscodeApi<SidebarState>();
let runs: RunSummary[] = [];
let activeRunId: string | null = null;
let selected: string | null = api.getState()?.selected ?? null;
let engineState: EngineState = 'idle';
let engineMessage = '';
let engineProgress = '';
const counter = new RenderCounter();

const btn = (label: string, cls: string, title: string, secondary = true) => {
  const b = ce('vscode-button', { class: cls, title, 'aria-label': title }, label);
  if (secondary) b.setAttribute('secondary', '');
  return b;
};

const engineEl = h('div', { class: 'engine', role: 'status', 'aria-live': 'polite' });
const restartBtn = btn('Restart Engine', 'engine-restart', 'Restart the engine process', false);
const logBtn = btn('Open Log', 'engine-log', 'Show the Hogwild output channel');
const engineBox = h('div', { class: 'engine-box', hidden: true }, engineEl, h('div', { class: 'row' }, restartBtn, logBtn));
// A model load's progress ("Loading X: reading the weights 620 MB / 1.20 GB (52%)").
const loadEl = h('div', { class: 'engine-load', role: 'status', 'aria-live': 'polite', hidden: true });
const runSelect = ce('vscode-single-select', { class: 'run-select', 'aria-label': 'Run' }) as HTMLElement & { value: string };
const runTitle = h('div', { class: 'run-title' });
const runState = ce('vscode-badge', { class: 'run-state' });
const runStats = h('div', { class: 'run-stats' });
const pauseBtn = btn('Pause', 'run-pause', 'Pause the run');
const resumeBtn = btn('Resume', 'run-resume', 'Resume the run');
const stopBtn = btn('Stop', 'run-stop', 'Stop the run', false);
const panelBtn = btn('Open Panel', 'run-panel', 'Open the run panel');
const runControls = h('div', { class: 'row run-controls', role: 'toolbar', 'aria-label': 'Run controls' }, pauseBtn, resumeBtn, stopBtn, panelBtn);
const runBox = h('section', { class: 'run', hidden: true }, runSelect, h('div', { class: 'row' }, runTitle, runState), runStats, runControls);
const workersEl = h('ul', { class: 'workers', 'aria-label': 'Workers' });

// The compact cache map of the shown run (a click opens the run panel, whose inspector
// tells the token clicked); its run is the one the extension last sent an `init` for.
let cache = new CacheState();
let cacheRunId: string | null = null;
const nameOf = (w: number) => current()?.workers.find((x) => x.worker === w)?.name ?? `Worker ${w}`;
// Redrawn at most 4 times a second while the run streams (drawPacer.ts says why).
const mapPacer = new DrawPacer(250, () => scheduler.schedule());
// A click on a block opens the run panel with its inspector on the token clicked.
const cacheMap = new CacheMap(cache, nameOf, (token) => cacheRunId && request({ type: 'command', command: 'open-panel', runId: cacheRunId, token }).catch(() => undefined), () => mapPacer.drawSoon(), true);
const cacheBox = h('section', { class: 'cache', 'aria-label': 'Cache map', hidden: true }, h('h2', { class: 'cache-title' }, 'Cache'), cacheMap.root);
const solveBtn = btn('Solve Selection', 'solve', 'Start a run on the editor selection', false);
const emptyEl = h('div', { class: 'empty' }, h('p', {}, 'No runs yet. Select a problem in an editor and run "Hogwild: Solve Selection".'), solveBtn);
document.body.append(engineBox, loadEl, emptyEl, runBox, cacheBox, workersEl);

const scheduler = new FrameScheduler(render);

function current(): RunSummary | undefined {
  return runs.find((r) => r.runId === selected) ?? runs.find((r) => r.runId === activeRunId) ?? runs[runs.length - 1];
}

function control(runId: string, c: Control): void {
  // Failures are shown by the extension (an error notification).
  request({ type: 'control', runId, control: c }).catch(() => undefined);
}

const live = (r: RunSummary) => r.source === 'live' && (r.state === 'running' || r.state === 'paused' || r.state === 'prefill' || r.state === 'loading' || r.state === 'finishing');

interface Row {
  root: HTMLElement;
  name: HTMLElement;
  state: HTMLElement;
  numbers: HTMLElement;
  line: HTMLElement;
  pause: HTMLElement;
  resume: HTMLElement;
  stop: HTMLElement;
  fork: HTMLElement;
}
const rows = new Map<number, Row>();
let rowsRun = '';

function makeRow(worker: number): Row {
  const name = h('span', { class: 'w-name' });
  const state = h('span', { class: 'w-state' });
  const numbers = h('div', { class: 'w-numbers' });
  const line = h('div', { class: 'w-line', title: '' });
  const pause = btn('Pause', 'w-pause', 'Pause this worker');
  const resume = btn('Resume', 'w-resume', 'Resume this worker');
  const stop = btn('Stop', 'w-stop', 'Stop this worker (it finishes)');
  const fork = btn('Fork', 'w-fork', 'Fork this worker');
  const root = h('li', { class: 'worker-row', 'data-worker': String(worker) }, h('div', { class: 'row' }, name, state), numbers, line, h('div', { class: 'row w-controls' }, pause, resume, stop, fork));
  const run = () => current()?.runId ?? '';
  pause.addEventListener('click', () => control(run(), { type: 'pause', worker }));
  resume.addEventListener('click', () => control(run(), { type: 'resume', worker }));
  stop.addEventListener('click', () => control(run(), { type: 'stop', worker }));
  fork.addEventListener('click', () => control(run(), { type: 'fork', worker }));
  return { root, name, state, numbers, line, pause, resume, stop, fork };
}

function render(): void {
  counter.tick();
  document.body.dataset.renders = String(counter.perSecond);
  engineBox.hidden = engineState !== 'crashed';
  setText(engineEl, engineState === 'crashed' ? `Engine stopped: ${engineMessage}` : '');
  setData(document.body, 'engine', engineState);
  loadEl.hidden = engineState !== 'loading' || engineProgress === '';
  setText(loadEl, engineState === 'loading' ? engineProgress : '');
  const r = current();
  emptyEl.hidden = !!r;
  runBox.hidden = !r;
  workersEl.hidden = !r;
  cacheBox.hidden = !r || cacheRunId !== r.runId || cache.views.length === 0;
  if (!cacheBox.hidden && (!r || mapPacer.due(r.state === 'running'))) cacheMap.draw();
  if (!r) return;
  setData(document.body, 'state', r.state);
  // Run picker (only when there is a choice).
  runSelect.hidden = runs.length < 2;
  const want = runs.map((x) => x.runId).join(',');
  if (runSelect.dataset.runs !== want) {
    runSelect.dataset.runs = want;
    runSelect.replaceChildren(...runs.map((x) => ce('vscode-option', { value: x.runId, selected: x.runId === r.runId }, x.title)));
  }
  setText(runTitle, r.title);
  setText(runState, r.source === 'replay' ? `${r.state} (replay)` : r.prefill ? prefillText(r.prefill) : r.state);
  setData(runState, 'state', r.state);
  const kv = r.kvBytes !== undefined ? ` · KV ${formatBytes(r.kvBytes)}` : '';
  setText(runStats, `${r.tokens} tokens · ${fmtRate(r.tokensPerSecond)} tok/s${kv}${r.message ? ` · ${r.message}` : ''}`);
  const isLive = live(r);
  setDisabled(pauseBtn, !isLive || r.state === 'paused');
  setDisabled(resumeBtn, !isLive || r.state !== 'paused');
  setDisabled(stopBtn, !isLive);

  if (rowsRun !== r.runId) {
    rows.clear();
    workersEl.replaceChildren();
    rowsRun = r.runId;
  }
  const byName = new Map(r.workers.map((w) => [w.worker, w.name]));
  for (const w of r.workers) {
    let row = rows.get(w.worker);
    if (!row) {
      row = makeRow(w.worker);
      rows.set(w.worker, row);
      workersEl.append(row.root);
    }
    setText(row.name, w.name);
    const st = r.state === 'failed' ? 'failed' : !isLive ? (r.state === 'stopped' && w.state !== 'finished' ? 'stopped' : 'finished') : r.state === 'paused' && w.state === 'running' ? 'paused' : w.state;
    setText(row.state, w.forkedFrom !== undefined ? `${st} · forked from ${byName.get(w.forkedFrom) ?? w.forkedFrom}` : st);
    setData(row.root, 'state', st);
    setText(row.numbers, `step ${w.step} · ${w.tokens} tok · ${fmtRate(w.tokensPerSecond)} tok/s`);
    setText(row.line, w.lastLine);
    if (row.line.title !== w.lastLine) row.line.title = w.lastLine;
    const wl = isLive && w.state !== 'finished';
    setDisabled(row.pause, !wl || w.state === 'paused' || r.state === 'paused');
    setDisabled(row.resume, !wl || (w.state !== 'paused' && r.state !== 'paused'));
    setDisabled(row.stop, !wl);
    setDisabled(row.fork, !wl);
  }
}

pauseBtn.addEventListener('click', () => current() && control(current()!.runId, { type: 'pause' }));
resumeBtn.addEventListener('click', () => current() && control(current()!.runId, { type: 'resume' }));
stopBtn.addEventListener('click', () => current() && control(current()!.runId, { type: 'stop' }));
function command(c: WebviewCommand, runId?: string): void {
  request(runId ? { type: 'command', command: c, runId } : { type: 'command', command: c }).catch(() => undefined);
}
panelBtn.addEventListener('click', () => current() && command('open-panel', current()!.runId));
restartBtn.addEventListener('click', () => command('restart-engine'));
logBtn.addEventListener('click', () => command('open-log'));
solveBtn.addEventListener('click', () => command('solve-selection'));
runSelect.addEventListener('change', () => {
  selected = runSelect.value || null;
  api.setState({ selected });
  if (selected) post({ type: 'select-run', runId: selected });
  scheduler.schedule();
});

onMessage((msg: ToWebview) => {
  switch (msg.type) {
    case 'runs':
      runs = msg.runs;
      if (msg.activeRunId !== activeRunId) {
        activeRunId = msg.activeRunId;
        selected = activeRunId; // a new run takes the view
        api.setState({ selected });
      }
      scheduler.schedule();
      break;
    case 'init':
      cache = new CacheState();
      cache.apply(msg.events);
      cacheRunId = msg.runId;
      cacheMap.cache = cache;
      cacheMap.invalidate();
      break;
    case 'events':
      if (msg.runId !== cacheRunId) break;
      cache.apply(msg.events);
      scheduler.schedule();
      break;
    case 'engine':
      engineState = msg.state;
      engineMessage = msg.message ?? '';
      engineProgress = msg.progress ?? '';
      scheduler.schedule();
      break;
    default:
      break;
  }
});

// Tests reach the map through this (read-only use).
(window as unknown as { hogwildSidebar: unknown }).hogwildSidebar = { cacheMap, cache: () => cache };
scheduler.schedule();
post({ type: 'ready' });
