/**
 * The run panel: one lane per worker streaming live (virtualised text), the shared history
 * of finished steps, the final answer, a note box with a target, run controls and fork per
 * lane. State survives a window reload through getState/setState (plus the extension's
 * serializer, which re-sends the run when it still has it).
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-textarea/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-badge/index.js';

import type { Control, EngineState, InspectResult, ToWebview, WebviewCommand } from '../protocol/messages';
import { RunModel, emptyChanges, modelFromSnapshot, snapshotOf, type LaneSegment, type RunChanges, type RunSnapshot, type WorkerModel } from '../extension/runModel';
import { FrameScheduler, RenderCounter } from './frame';
import { ce, fmtRate, h, setData, setDisabled, setText } from './dom';
import { formatBytes, prefillText } from '../protocol/progress';
import { VirtualList, type ListItem } from './virtualList';
import { onMessage, post, request, vscodeApi } from './vscode';
import { runViews, type RunView } from './runView';
import { chunkBounds } from './chunks';
import { Insights } from './insights/insights';

interface PanelState {
  snapshot: RunSnapshot | null;
  noteTarget: string;
}

const api = vscodeApi<PanelState>();
let model: RunModel | null = null;
let engineState: EngineState = 'idle';
let engineMessage = '';
let pending: RunChanges = emptyChanges();
let fullRender = true;
const counter = new RenderCounter();
let rendersTotal = 0;

// ---------------------------------------------------------------- layout

const titleEl = h('h1', { class: 'run-title' }, 'Hogwild');
const stateBadge = ce('vscode-badge', { class: 'run-state', 'aria-label': 'run state' });
const statsEl = h('span', { class: 'run-stats', 'aria-live': 'off' });
const btn = (label: string, cls: string, title: string) => ce('vscode-button', { class: cls, title, 'aria-label': title }, label);
const pauseBtn = btn('Pause', 'ctl-pause', 'Pause every worker');
const resumeBtn = btn('Resume', 'ctl-resume', 'Resume every worker');
const stepBtn = btn('Step', 'ctl-step', 'One step while paused');
const stopBtn = btn('Stop', 'ctl-stop', 'Stop the run');
const saveBtn = btn('Save Trace…', 'ctl-save', 'Save the run trace (JSON Lines)');
for (const b of [pauseBtn, resumeBtn, stepBtn, saveBtn]) b.setAttribute('secondary', '');
const toolbar = h('header', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Run controls' }, titleEl, stateBadge, statsEl, h('span', { class: 'spacer' }), pauseBtn, resumeBtn, stepBtn, stopBtn, saveBtn);

const bannerText = h('span', { class: 'banner-text' });
const restartBtn = btn('Restart Engine', 'banner-restart', 'Restart the engine process');
const logBtn = btn('Open Log', 'banner-log', 'Show the Hogwild output channel');
logBtn.setAttribute('secondary', '');
const banner = h('div', { class: 'banner', role: 'alert', hidden: true }, bannerText, restartBtn, logBtn);
const noticeEl = h('div', { class: 'notice', role: 'status', 'aria-live': 'polite' });

const lanesEl = h('section', { class: 'lanes', 'aria-label': 'Workers' });
const historyScroll = h('div', { class: 'history-scroll', tabindex: '0', role: 'log', 'aria-label': 'Shared history of finished steps' });
const historyCount = h('span', { class: 'count' });
const historyEl = h('section', { class: 'history' }, h('h2', {}, 'Shared history ', historyCount), historyScroll);
const answerText = h('div', { class: 'answer-text', tabindex: '0' });
const answerValue = h('div', { class: 'answer-value' });
const answerEl = h('section', { class: 'answer', hidden: true }, h('h2', {}, 'Final answer'), answerValue, answerText);

const noteInput = ce('vscode-textarea', { class: 'note-input', placeholder: 'A note for the workers…', rows: '2', 'aria-label': 'Note text', resize: 'vertical' }) as HTMLElement & { value: string };
const noteTarget = ce('vscode-single-select', { class: 'note-target', 'aria-label': 'Note target' }) as HTMLElement & { value: string };
const noteSend = btn('Send Note', 'note-send', 'Inject the note into the chosen views');
const noteEl = h('section', { class: 'note', 'aria-label': 'Inject a note' }, h('label', { class: 'note-label' }, 'Note to'), noteTarget, noteInput, noteSend);

const notesList = h('ul', { class: 'notes-list', 'aria-label': 'Notes sent' });
const insightsEl = h('section', { class: 'insights', 'aria-label': 'Cache and attention views' });

const emptyEl = h('div', { class: 'empty' }, 'No run yet. Select text in an editor and run "Hogwild: Solve Selection".');
const main = h('main', { class: 'panel-body' }, lanesEl, historyEl, answerEl, noteEl, notesList, insightsEl);

const historyList = new VirtualList(historyScroll, 'hist-item', () => scheduler.schedule());

// ---------------------------------------------------------------- cache map, attention, inspector, find

const insights = new Insights({
  lane: (worker) => {
    const l = lanes.get(worker);
    return l ? { list: l.list, scroll: l.list.scroller } : undefined;
  },
  history: historyList,
  askEngine: (ref) => {
    if (!model || !isLive()) return false;
    request<InspectResult>({ type: 'inspect', runId: model.runId, block: ref.block, index: ref.index }).then(
      (r) => insights.onInspectResult(r),
      (e: Error) => insights.onInspectError(e.message),
    );
    return true;
  },
  exportMarkdown: () => model && command('export-markdown', model.runId),
  schedule: () => scheduler.schedule(),
});
insightsEl.append(insights.root);
main.addEventListener('click', (e) => insights.onClick(e));
document.body.append(toolbar, insights.findBar, banner, noticeEl, emptyEl, main);

// ---------------------------------------------------------------- extra views (the seam)

const views: RunView[] = runViews.map((make) => make());
for (const v of views) {
  const host = h('div', { class: 'insight', 'data-view': v.id }, h('h2', {}, v.title));
  const body = h('div', { class: 'insight-body' });
  host.append(body);
  insightsEl.append(host);
  v.mount(body, {
    inspect: (block, index) => (model ? request<InspectResult>({ type: 'inspect', runId: model.runId, block, index }) : Promise.reject(new Error('No run is shown'))),
  });
}
if (views.length > 0) insightsEl.hidden = false;

// ---------------------------------------------------------------- lanes

interface Lane {
  worker: number;
  root: HTMLElement;
  name: HTMLElement;
  state: HTMLElement;
  stats: HTMLElement;
  origin: HTMLElement;
  fork: HTMLElement;
  list: VirtualList;
}

const lanes = new Map<number, Lane>();
// Tests and the benchmark reach the views through this (read-only use).
(window as unknown as { hogwildPanel: unknown }).hogwildPanel = { insights, lanes, historyList };

function makeLane(w: WorkerModel): Lane {
  const name = h('span', { class: 'lane-name' });
  const state = h('span', { class: 'lane-state' });
  const stats = h('span', { class: 'lane-stats' });
  const origin = h('span', { class: 'lane-origin' });
  const fork = btn('Fork', 'lane-fork', `Fork ${w.info.name}: a new worker that continues from the same state`);
  fork.setAttribute('secondary', '');
  fork.addEventListener('click', () => control({ type: 'fork', worker: w.info.worker }));
  const scroll = h('div', { class: 'lane-scroll', tabindex: '0', role: 'log', 'aria-label': `${w.info.name}'s stream` });
  const root = h(
    'article',
    { class: 'lane', 'data-worker': String(w.info.worker), 'aria-label': `Worker ${w.info.name}` },
    h('header', { class: 'lane-head' }, name, state, origin, h('span', { class: 'spacer' }), stats, fork),
    scroll,
  );
  const lane: Lane = { worker: w.info.worker, root, name, state, stats, origin, fork, list: new VirtualList(scroll, 'seg', () => scheduler.schedule()) };
  scroll.addEventListener('keydown', (e) => insights.onLaneKey(w.info.worker, e));
  return lane;
}

/** A step's list items, kept while the step's text and state stay the same. */
const segItems = new WeakMap<LaneSegment, { length: number; finished: boolean; items: ListItem[] }>();

function laneItems(w: WorkerModel): ListItem[] {
  const items: ListItem[] = [];
  w.segments.forEach((s, i) => {
    let cached = segItems.get(s);
    if (!cached || cached.length !== s.text.length || cached.finished !== s.finished) {
      cached = { length: s.text.length, finished: s.finished, items: segmentItems(w, s, i) };
      segItems.set(s, cached);
    }
    for (const it of cached.items) items.push(it);
  });
  return items;
}

function segmentItems(w: WorkerModel, s: LaneSegment, i: number): ListItem[] {
  const items: ListItem[] = [];
  const cuts = chunkBounds(s.text);
  // The stream carries the step header ("**Alice [2]:** ") itself; a label only where it does not.
  const labelled = !s.text.trimStart().startsWith(`**${w.info.name} [`);
  for (let c = 0; c + 1 < cuts.length; c++) {
    const a = cuts[c]!;
    const b = cuts[c + 1]!;
    const first = c === 0;
    items.push({
      key: `s${i}c${c}`,
      // A chunk changes when its text grows or its step finishes.
      version: (b - a) * 2 + (s.finished ? 1 : 0),
      chars: b - a + (first ? 12 : 0),
      render: (el: HTMLElement) => {
        el.classList.toggle('finished', s.finished);
        el.classList.toggle('cont', !first);
        el.dataset.step = String(s.step);
        el.dataset.seg = String(i);
        el.dataset.start = String(a);
        if (first && labelled) el.append(h('span', { class: 'seg-label' }, `${w.info.name} [${s.step}]`));
        el.append(h('span', { class: 'seg-text' }, s.text.slice(a, b)));
      },
      // Streaming: append the new tail to the text node already there (no new nodes).
      update: (el: HTMLElement) => {
        if ((first && labelled) !== (el.firstElementChild?.className === 'seg-label')) return false;
        const node = el.lastElementChild?.firstChild;
        if (!(node instanceof Text) || node.length > b - a || !s.text.startsWith(node.data, a)) return false;
        if (a + node.length < b) node.appendData(s.text.slice(a + node.length, b));
        el.classList.toggle('finished', s.finished);
        return true;
      },
    });
  }
  return items;
}

// ---------------------------------------------------------------- rendering

const scheduler = new FrameScheduler(render);

/** A finished step without its "**Name [k]:** " header (the label says it already). */
function stripHeader(text: string, label: string): string {
  const t = text.trimStart();
  const head = `**${label}:**`;
  return t.startsWith(head) ? t.slice(head.length).trimStart() : text;
}

/** A worker's state as shown: the run's pause and end override the worker's own. */
function workerDisplayState(m: RunModel, w: WorkerModel): string {
  if (m.state === 'failed') return 'failed';
  if (!m.isActive) return w.info.state === 'paused' ? 'stopped' : m.state === 'stopped' && w.info.state !== 'finished' ? 'stopped' : 'finished';
  if (m.state === 'paused' && w.info.state === 'running') return 'paused';
  return w.info.state;
}

const isLive = () => !!model && model.source === 'live' && model.isActive;

function renderToolbar(m: RunModel): void {
  setText(titleEl, m.title);
  const s = m.summary();
  setText(stateBadge, m.source === 'replay' ? `${m.state} (replay)` : s.prefill ? prefillText(s.prefill) : m.state);
  setData(stateBadge, 'state', m.state);
  const kv = s.kvBytes !== undefined ? ` · KV ${formatBytes(s.kvBytes)}` : '';
  setText(statsEl, `${s.tokens} tokens · ${fmtRate(s.tokensPerSecond)} tok/s${m.stats.msPerStep ? ` · ${m.stats.msPerStep.toFixed(0)} ms/step` : ''}${kv}`);
  const live = isLive();
  setDisabled(pauseBtn, !live || m.state === 'paused');
  setDisabled(resumeBtn, !live || m.state !== 'paused');
  setDisabled(stepBtn, !live || m.state !== 'paused');
  setDisabled(stopBtn, !live);
  setDisabled(noteSend, !live);
  setDisabled(saveBtn, m.source !== 'live');
}

function renderBanner(m: RunModel | null): void {
  let text = '';
  let showRestart = false;
  if (engineState === 'crashed') {
    text = `The engine process stopped: ${engineMessage || 'unknown reason'}.${m && m.source === 'live' ? ' The run so far is kept; save its trace or restart the engine.' : ''}`;
    showRestart = true;
  } else if (m && m.state === 'failed') {
    text = `The run failed: ${m.message ?? 'unknown reason'}`;
  }
  banner.hidden = text === '';
  setText(bannerText, text);
  restartBtn.hidden = !showRestart;
}

function renderTargets(m: RunModel): void {
  const want = ['all', ...[...m.workers.keys()].sort((a, b) => a - b).map(String)];
  const have = [...noteTarget.querySelectorAll('vscode-option')].map((o) => o.getAttribute('value'));
  if (want.join(',') === have.join(',')) return;
  const current = noteTarget.value || api.getState()?.noteTarget || 'all';
  noteTarget.replaceChildren(
    ...want.map((v) => ce('vscode-option', { value: v, selected: v === current }, v === 'all' ? 'All workers' : m.workers.get(Number(v))!.info.name)),
  );
}

function render(): void {
  counter.tick();
  document.body.dataset.renders = String(counter.perSecond);
  document.body.dataset.rendersTotal = String(++rendersTotal);
  const m = model;
  const ch = pending;
  const full = fullRender;
  pending = emptyChanges();
  fullRender = false;
  emptyEl.hidden = !!m;
  main.hidden = !m;
  toolbar.hidden = !m;
  renderBanner(m);
  if (!m) return;
  m.tick(Date.now());
  renderToolbar(m);
  setData(document.body, 'state', m.state);
  setData(document.body, 'source', m.source);

  // Lanes: one per worker, forks appended.
  const workers = [...m.workers.values()].sort((a, b) => a.info.worker - b.info.worker);
  if (full || ch.workerList || lanes.size !== workers.length) {
    for (const w of workers) {
      if (!lanes.has(w.info.worker)) {
        const lane = makeLane(w);
        lanes.set(w.info.worker, lane);
        lanesEl.append(lane.root);
      }
    }
    for (const [id, lane] of lanes) {
      if (!m.workers.has(id)) {
        lane.root.remove();
        lanes.delete(id);
      }
    }
    renderTargets(m);
  }
  for (const w of workers) {
    const lane = lanes.get(w.info.worker)!;
    setText(lane.name, w.info.name);
    const st = workerDisplayState(m, w);
    setText(lane.state, st);
    setData(lane.root, 'state', st);
    setText(lane.origin, w.info.forkedFrom !== undefined ? `forked from ${m.workers.get(w.info.forkedFrom)?.info.name ?? w.info.forkedFrom}` : '');
    setText(lane.stats, `step ${w.step} · ${w.tokens} tok · ${fmtRate(w.tokensPerSecond)} tok/s`);
    setDisabled(lane.fork, !isLive() || w.info.state === 'finished');
    if (full || ch.workers.has(w.info.worker)) lane.list.setItems(laneItems(w));
    lane.list.render();
  }

  if (full || ch.history) {
    setText(historyCount, `(${m.history.length})`);
    historyList.setItems(
      m.history.map((e, i) => ({
        key: `h${i}`,
        version: 0,
        chars: e.text.length + e.label.length,
        render: (el: HTMLElement) => {
          el.dataset.worker = String(e.worker);
          el.dataset.entry = String(i);
          const shown = stripHeader(e.text, e.label);
          el.dataset.offset = String(e.text.length - shown.length);
          el.append(h('span', { class: 'hist-label' }, e.label), h('span', { class: 'hist-text' }, shown));
        },
      })),
    );
  }
  historyList.render();

  if (full || ch.answer) {
    answerEl.hidden = !m.answer;
    if (m.answer) {
      setText(answerValue, m.answer.answer ?? '(no answer found in the finisher text)');
      answerValue.classList.toggle('missing', m.answer.answer === null);
      setText(answerText, m.answer.text);
    }
  }
  if (full || ch.notes) {
    notesList.replaceChildren(
      ...m.notes.map((n, i) =>
        h(
          'li',
          { class: 'note-item', 'data-note': String(i), 'data-block': String(n.block), 'data-offset': '0' },
          h('span', { class: 'note-to' }, n.target === 'all' ? 'to all' : `to ${m.workers.get(n.target)?.info.name ?? n.target}`),
          ' ',
          h('span', { class: 'note-text' }, n.text),
        ),
      ),
    );
  }
  if (ch.workers.size > 0 || ch.history || ch.notes) insights.textChanged();
  insights.render(m);
  for (const v of views) v.update(m, full ? { ...ch, workerList: true, history: true, answer: true, notes: true, stats: true, views: true, attention: true, state: true } : ch);
  // Renders for a scroll or a hover change nothing worth saving.
  if (full || ch.state || ch.workerList || ch.workers.size > 0 || ch.history || ch.notes || ch.answer) saveState();
}

// ---------------------------------------------------------------- state

let saveTimer: ReturnType<typeof setTimeout> | null = null;
/** The snapshot holds every lane's text: built and posted at most once a second. */
function saveState(): void {
  if (saveTimer) return;
  saveTimer = setTimeout(() => {
    saveTimer = null;
    api.setState({ snapshot: model ? snapshotOf(model) : null, noteTarget: noteTarget.value || 'all' });
  }, 1000);
}

function control(c: Control): void {
  if (!model) return;
  request<string | undefined>({ type: 'control', runId: model.runId, control: c }).then(
    (line) => line && showNotice('info', line),
    (e: Error) => showNotice('error', e.message),
  );
}

// ---------------------------------------------------------------- input

pauseBtn.addEventListener('click', () => control({ type: 'pause' }));
resumeBtn.addEventListener('click', () => control({ type: 'resume' }));
stepBtn.addEventListener('click', () => control({ type: 'step' }));
stopBtn.addEventListener('click', () => control({ type: 'stop' }));
function command(c: WebviewCommand, runId?: string): void {
  request(runId ? { type: 'command', command: c, runId } : { type: 'command', command: c }).catch((e: Error) => showNotice('error', e.message));
}
saveBtn.addEventListener('click', () => model && command('save-trace', model.runId));
restartBtn.addEventListener('click', () => command('restart-engine'));
logBtn.addEventListener('click', () => command('open-log'));

function sendNote(): void {
  const text = (noteInput.value ?? '').trim();
  if (!text || !model) return;
  const t = noteTarget.value || 'all';
  control({ type: 'inject', target: t === 'all' ? 'all' : Number(t), text });
  noteInput.value = '';
}
noteSend.addEventListener('click', sendNote);
noteInput.addEventListener('keydown', (e: KeyboardEvent) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    sendNote();
  }
});
noteTarget.addEventListener('change', () => saveState());

// ---------------------------------------------------------------- messages

function showNotice(level: string, message: string): void {
  noticeEl.dataset.level = level;
  setText(noticeEl, message);
}

onMessage((msg: ToWebview) => {
  switch (msg.type) {
    case 'init': {
      model = new RunModel(msg.runId, msg.title, msg.config, msg.source);
      for (const l of lanes.values()) l.root.remove();
      lanes.clear();
      model.apply(msg.events, Date.now());
      insights.reset(model, msg.events);
      fullRender = true;
      scheduler.schedule();
      break;
    }
    case 'events':
      if (!model || msg.runId !== model.runId) return;
      model.apply(msg.events, Date.now(), pending);
      insights.apply(msg.events);
      scheduler.schedule();
      break;
    case 'engine':
      engineState = msg.state;
      engineMessage = msg.message ?? '';
      document.body.dataset.engine = msg.state;
      scheduler.schedule();
      break;
    case 'notice':
      showNotice(msg.level, msg.message);
      break;
    case 'inspect-token':
      // The sidebar's compact map was clicked on this position.
      if (model && msg.runId === model.runId) insights.inspect({ block: msg.block, index: msg.index });
      break;
    default:
      for (const v of views) v.onMessage?.(msg);
  }
});

// Restore what the panel showed before a reload; the extension re-sends the run if it has it.
const saved = api.getState();
if (saved?.snapshot) {
  model = modelFromSnapshot(saved.snapshot);
  insights.reset(model);
  fullRender = true;
}
scheduler.schedule();
// Rates decay while nothing arrives; refresh the numbers a few times a second.
setInterval(() => {
  if (model && model.isActive) scheduler.schedule();
}, 500);
post({ type: 'ready' });
