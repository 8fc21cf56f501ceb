/**
 * Coalescing of engine events: a stream of small batches becomes fewer, larger ones.
 * `mergeEvents` joins consecutive token events of the same worker and step (ids and text
 * concatenated) and keeps only the newest snapshot of `stats`; `Coalescer` flushes what
 * accumulated at most once per interval (default 1000/60 ms). Pure: used by the engine
 * process (before IPC) and by the extension (before each webview).
 */
import type { EngineEvent } from '../protocol/messages';

function concatIds(a: Int32Array, b: Int32Array): Int32Array {
  const out = new Int32Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** The one worker an event concerns, or null (run-wide events, notes to all, blocks, views). */
function workerOf(ev: EngineEvent): number | null {
  if (ev.type === 'worker') return ev.info.worker;
  if (ev.type === 'note') return ev.target === 'all' ? null : ev.target;
  return 'worker' in ev ? ev.worker : null;
}

export function mergeEvents(events: readonly EngineEvent[]): EngineEvent[] {
  const out: EngineEvent[] = [];
  // Index of the last tokens event per worker since anything else about that worker.
  const openTokens = new Map<number, number>();
  let lastStats = -1;
  for (const ev of events) {
    if (ev.type === 'tokens') {
      const at = openTokens.get(ev.worker);
      const prev = at !== undefined ? out[at] : undefined;
      if (prev && prev.type === 'tokens' && prev.step === ev.step) {
        const merged: EngineEvent = { type: 'tokens', worker: ev.worker, step: ev.step, ids: concatIds(prev.ids, ev.ids), text: prev.text + ev.text };
        if (prev.pieces && ev.pieces) merged.pieces = prev.pieces.concat(ev.pieces);
        out[at!] = merged;
        continue;
      }
      openTokens.set(ev.worker, out.length);
      out.push(ev);
      continue;
    }
    if (ev.type === 'stats') {
      if (lastStats >= 0) {
        out[lastStats] = ev; // the newest numbers win; position of the first is fine
        continue;
      }
      lastStats = out.length;
      out.push(ev);
      continue;
    }
    // Anything else may order against token events (a step ending, a fork, a state change):
    // later tokens of the worker it concerns (of every worker, when it concerns no single
    // one) start a new event. A fork copies its origin's block as it is at that moment, and a
    // created or freed block changes where tokens land: no token moves across either.
    const w = workerOf(ev);
    if (ev.type === 'worker' || (ev.type === 'block' && ev.op !== 'grown')) openTokens.clear();
    else if (w !== null) openTokens.delete(w);
    else if (ev.type !== 'views' && ev.type !== 'attention' && ev.type !== 'block') openTokens.clear();
    out.push(ev);
  }
  return out;
}

export class Coalescer {
  private buf: EngineEvent[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private last = 0;

  constructor(
    private readonly flushTo: (events: EngineEvent[]) => void,
    private readonly intervalMs = 1000 / 60,
  ) {}

  push(events: readonly EngineEvent[]): void {
    for (const e of events) this.buf.push(e);
    if (this.timer) return;
    const wait = Math.max(0, this.intervalMs - (Date.now() - this.last));
    this.timer = setTimeout(() => this.flush(), wait);
  }

  /** Sends what is buffered now. */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.buf.length === 0) return;
    const events = mergeEvents(this.buf);
    this.buf = [];
    this.last = Date.now();
    this.flushTo(events);
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.buf = [];
  }
}

/**
 * Bulk data for a webview: every token event's ids become a view into ONE fresh Int32Array,
 * so that a message carries one ArrayBuffer however many events it has (VS Code transfers
 * each distinct buffer of a message separately; buffers that Node's IPC pooled are larger
 * than their views and shared between messages).
 */
export function packIds(events: readonly EngineEvent[]): EngineEvent[] {
  let total = 0;
  for (const e of events) if (e.type === 'tokens') total += e.ids.length;
  const bulk = new Int32Array(total);
  let at = 0;
  return events.map((e) => {
    if (e.type !== 'tokens') return e;
    bulk.set(e.ids, at);
    const ids = bulk.subarray(at, at + e.ids.length);
    at += e.ids.length;
    return { ...e, ids };
  });
}
