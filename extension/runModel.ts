/**
 * The state of one run, rebuilt from its engine events. Pure (no vscode, no DOM): the
 * extension host keeps one per run (sidebar summaries, status bar) and the run panel keeps its
 * own copy in the webview (lanes, history, answer), fed by the same events. The events
 * themselves are kept once, by the run's trace (trace.ts).
 */
import type {
  EngineEvent,
  PrefillProgress,
  RunConfig,
  RunSource,
  RunState,
  RunSummary,
  ViewSegmentInfo,
  WorkerInfo,
  WorkerState,
} from '../protocol/messages';

/** One step of one worker: what its lane shows as a paragraph. */
export interface LaneSegment {
  step: number;
  text: string;
  finished: boolean;
}

export interface WorkerModel {
  info: WorkerInfo;
  step: number;
  tokens: number;
  tokensPerSecond: number;
  lastLine: string;
  segments: LaneSegment[];
  /** (time ms, cumulative tokens) samples for the tok/s estimate. */
  rate: { t: number; n: number }[];
}

export interface HistoryEntry {
  worker: number;
  step: number;
  label: string; // "Name [k]"
  text: string;
  block: number;
}

export interface NoteEntry {
  target: number | 'all';
  block: number;
  text: string;
}

/** What an `apply` changed, so that a renderer redraws only that. */
export interface RunChanges {
  state: boolean;
  workers: Set<number>; // lanes whose text or numbers changed
  workerList: boolean; // a worker appeared (a fork) or its info changed
  history: boolean;
  notes: boolean;
  answer: boolean;
  stats: boolean;
  views: boolean;
  attention: boolean;
}

export function emptyChanges(): RunChanges {
  return {
    state: false,
    workers: new Set(),
    workerList: false,
    history: false,
    notes: false,
    answer: false,
    stats: false,
    views: false,
    attention: false,
  };
}

const RATE_WINDOW_MS = 3000;
const LAST_LINE_CHARS = 160;

export function defaultWorkerName(worker: number): string {
  return `Worker ${worker}`;
}

function lastLineOf(text: string): string {
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i]!.trim();
    if (l.length > 0) return l.length > LAST_LINE_CHARS ? '…' + l.slice(l.length - LAST_LINE_CHARS + 1) : l;
  }
  return '';
}

export class RunModel {
  state: RunState = 'loading';
  message: string | undefined;
  readonly workers = new Map<number, WorkerModel>();
  readonly history: HistoryEntry[] = [];
  readonly notes: NoteEntry[] = [];
  answer: { text: string; answer: string | null } | null = null;
  stats = { step: 0, tokens: 0, tokensPerSecond: 0, msPerStep: 0 };
  prefill: PrefillProgress | null = null; // the prompt's prefill, until it is done
  kvBytes: number | undefined;
  views: { step: number; views: ViewSegmentInfo[][] } | null = null;
  attention: { step: number; shares: number[][] } | null = null;
  constructor(
    readonly runId: string,
    readonly title: string,
    readonly config: RunConfig,
    readonly source: RunSource = 'live',
  ) {
    for (let w = 0; w < config.workers; w++) {
      this.ensureWorker(w, config.workerNames[w]);
    }
  }

  get isActive(): boolean {
    return this.state === 'loading' || this.state === 'prefill' || this.state === 'running' || this.state === 'paused' || this.state === 'finishing';
  }

  private ensureWorker(worker: number, name?: string): WorkerModel {
    let w = this.workers.get(worker);
    if (!w) {
      w = {
        info: { worker, name: name ?? defaultWorkerName(worker), state: 'running', temperature: this.config.sampling.temperature },
        step: 0,
        tokens: 0,
        tokensPerSecond: 0,
        lastLine: '',
        segments: [],
        rate: [],
      };
      this.workers.set(worker, w);
    }
    return w;
  }

  /** Applies a batch of events; `now` (ms) dates them for the tok/s estimates. */
  apply(events: readonly EngineEvent[], now: number, changes: RunChanges = emptyChanges()): RunChanges {
    for (const ev of events) {
      this.applyOne(ev, now, changes);
    }
    for (const w of changes.workers) {
      const m = this.workers.get(w);
      if (m) this.updateRate(m, now);
    }
    return changes;
  }

  /** Ages the tok/s estimates (no tokens for a while means the rate falls to 0). */
  tick(now: number): void {
    for (const m of this.workers.values()) this.updateRate(m, now);
  }

  private updateRate(m: WorkerModel, now: number): void {
    m.rate.push({ t: now, n: m.tokens });
    while (m.rate.length > 2 && now - m.rate[0]!.t > RATE_WINDOW_MS) m.rate.shift();
    const first = m.rate[0]!;
    const dt = now - first.t;
    m.tokensPerSecond = dt >= 250 ? ((m.tokens - first.n) * 1000) / dt : m.tokensPerSecond;
    // Nothing is generated while paused or after the end: no stale rates.
    if (m.info.state !== 'running' || !this.isActive || this.state === 'paused') {
      if (m.tokens === first.n || this.state === 'paused' || !this.isActive) m.tokensPerSecond = 0;
    }
  }

  private applyOne(ev: EngineEvent, _now: number, ch: RunChanges): void {
    switch (ev.type) {
      case 'run-state': {
        this.state = ev.state;
        this.message = ev.message;
        ch.state = true;
        if (ev.state === 'finished' || ev.state === 'stopped' || ev.state === 'failed') {
          for (const m of this.workers.values()) {
            m.tokensPerSecond = 0;
            ch.workers.add(m.info.worker);
          }
        }
        break;
      }
      case 'worker': {
        const m = this.ensureWorker(ev.info.worker, ev.info.name);
        m.info = { ...ev.info };
        ch.workerList = true;
        ch.workers.add(ev.info.worker);
        break;
      }
      case 'tokens': {
        const m = this.ensureWorker(ev.worker);
        let seg = m.segments[m.segments.length - 1];
        if (!seg || seg.step !== ev.step || seg.finished) {
          seg = { step: ev.step, text: '', finished: false };
          m.segments.push(seg);
        }
        seg.text += ev.text;
        m.step = ev.step;
        m.tokens += ev.ids.length;
        const line = lastLineOf(seg.text);
        if (line) m.lastLine = line;
        ch.workers.add(ev.worker);
        break;
      }
      case 'step-finished': {
        const m = this.ensureWorker(ev.worker);
        const seg = m.segments.find((s) => s.step === ev.step && !s.finished);
        if (seg) seg.finished = true;
        this.history.push({ worker: ev.worker, step: ev.step, label: ev.label, text: ev.text, block: ev.historyBlock });
        ch.history = true;
        ch.workers.add(ev.worker);
        break;
      }
      case 'note':
        this.notes.push({ target: ev.target, block: ev.block, text: ev.text });
        ch.notes = true;
        break;
      case 'answer':
        this.answer = { text: ev.text, answer: ev.answer };
        ch.answer = true;
        break;
      case 'progress':
        this.prefill = ev.done < ev.total ? { done: ev.done, total: ev.total, tokensPerSecond: ev.tokensPerSecond } : null;
        ch.stats = true;
        ch.state = true;
        break;
      case 'stats':
        this.stats = { step: ev.step, tokens: ev.tokens, tokensPerSecond: ev.tokensPerSecond, msPerStep: ev.msPerStep };
        if (ev.kvBytes !== undefined) this.kvBytes = ev.kvBytes;
        ch.stats = true;
        break;
      case 'views':
        this.views = { step: ev.step, views: ev.views };
        ch.views = true;
        break;
      case 'attention':
        this.attention = { step: ev.step, shares: ev.shares };
        ch.attention = true;
        break;
      case 'block':
      case 'raw-result':
        break;
    }
  }

  workerState(worker: number): WorkerState | undefined {
    return this.workers.get(worker)?.info.state;
  }

  /** Generated tokens of all workers (the engine's count when it sent one). */
  get totalTokens(): number {
    let n = 0;
    for (const m of this.workers.values()) n += m.tokens;
    return Math.max(n, this.stats.tokens);
  }

  summary(): RunSummary {
    const workers = [...this.workers.values()]
      .sort((a, b) => a.info.worker - b.info.worker)
      .map((m) => ({
        ...m.info,
        step: m.step,
        tokens: m.tokens,
        tokensPerSecond: Math.round(m.tokensPerSecond * 10) / 10,
        lastLine: m.lastLine,
      }));
    const tps = workers.reduce((s, w) => s + w.tokensPerSecond, 0);
    return {
      runId: this.runId,
      title: this.title,
      state: this.state,
      source: this.source,
      message: this.message,
      tokens: this.totalTokens,
      tokensPerSecond: Math.round((this.isActive ? tps : 0) * 10) / 10,
      workers,
      ...(this.prefill && this.isActive ? { prefill: this.prefill } : {}),
      ...(this.kvBytes !== undefined ? { kvBytes: this.kvBytes } : {}),
    };
  }
}

/** A compact copy of what a panel shows, for a webview's saved state (survives a reload). */
export interface RunSnapshot {
  runId: string;
  title: string;
  source: RunSource;
  config: RunConfig;
  state: RunState;
  message?: string;
  workers: { info: WorkerInfo; step: number; tokens: number; lastLine: string; segments: LaneSegment[] }[];
  history: HistoryEntry[];
  notes: NoteEntry[];
  answer: { text: string; answer: string | null } | null;
  stats: RunModel['stats'];
}

const SNAPSHOT_MAX_CHARS = 2_000_000;

export function snapshotOf(m: RunModel): RunSnapshot {
  // Keep the newest text when a run is huge: drop the oldest segments first.
  let budget = SNAPSHOT_MAX_CHARS;
  const workers = [...m.workers.values()].map((w) => {
    const segs: LaneSegment[] = [];
    for (let i = w.segments.length - 1; i >= 0 && budget > 0; i--) {
      const s = w.segments[i]!;
      budget -= s.text.length;
      segs.unshift({ ...s });
    }
    return { info: { ...w.info }, step: w.step, tokens: w.tokens, lastLine: w.lastLine, segments: segs };
  });
  const history: HistoryEntry[] = [];
  for (let i = m.history.length - 1; i >= 0 && budget > 0; i--) {
    budget -= m.history[i]!.text.length;
    history.unshift({ ...m.history[i]! });
  }
  return {
    runId: m.runId,
    title: m.title,
    source: m.source,
    config: m.config,
    state: m.state,
    message: m.message,
    workers,
    history,
    notes: m.notes.map((n) => ({ ...n })),
    answer: m.answer ? { ...m.answer } : null,
    stats: { ...m.stats },
  };
}

export function modelFromSnapshot(s: RunSnapshot): RunModel {
  const m = new RunModel(s.runId, s.title, s.config, s.source);
  m.state = s.state;
  m.message = s.message;
  m.workers.clear();
  for (const w of s.workers) {
    m.workers.set(w.info.worker, { info: w.info, step: w.step, tokens: w.tokens, tokensPerSecond: 0, lastLine: w.lastLine, segments: w.segments, rate: [] });
  }
  m.history.push(...s.history);
  m.notes.push(...s.notes);
  m.answer = s.answer;
  m.stats = s.stats;
  return m;
}
