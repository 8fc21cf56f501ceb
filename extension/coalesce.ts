/**
 * Coalescing of engine events: a stream of small batches becomes fewer, larger ones.
 * `mergeEvents` joins consecutive token events of the same worker and step (ids and text
 * concatenated) and keeps only the newest snapshot of `stats`; `Coalescer` flushes what
 * accumulated at most once per interval (default 1000/60 ms), one delivery at a time. Pure:
 * the extension uses it before each webview.
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

/**
 * Flushes what accumulated at most once per interval, and never while the previous flush is
 * still being delivered: when `flushTo` returns a promise (a webview's postMessage resolves
 * once the workbench has taken the message), events wait here, merged, until it settles.
 * A busy renderer then gets fewer, larger messages instead of a queue of small ones, and a
 * state change (a pause) waits behind at most one message, not seconds of stream.
 */
export class Coalescer {
  private buf: EngineEvent[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private last = 0;
  private inFlight = false;
  private generation = 0;

  constructor(
    private readonly flushTo: (events: EngineEvent[]) => unknown,
    private readonly intervalMs = 1000 / 60,
    /** A delivery that has not settled after this long no longer holds the next one back. */
    private readonly deliveryTimeoutMs = 2000,
  ) {}

  push(events: readonly EngineEvent[]): void {
    for (const e of events) this.buf.push(e);
    this.arm();
  }

  private arm(): void {
    if (this.timer || this.inFlight || this.buf.length === 0) return;
    const wait = Math.max(0, this.intervalMs - (Date.now() - this.last));
    this.timer = setTimeout(() => this.flush(), wait);
  }

  /** Sends what is buffered now (even while a delivery is in flight). */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.buf.length === 0) return;
    const events = mergeEvents(this.buf);
    this.buf = [];
    this.last = Date.now();
    const sent = this.flushTo(events);
    if (sent && typeof (sent as PromiseLike<unknown>).then === 'function') this.await(sent as PromiseLike<unknown>);
  }

  private await(sent: PromiseLike<unknown>): void {
    const gen = ++this.generation;
    this.inFlight = true;
    const settled = () => {
      clearTimeout(timeout);
      if (gen !== this.generation) return; // a later flush or a dispose took over
      this.inFlight = false;
      this.arm();
    };
    const timeout = setTimeout(settled, this.deliveryTimeoutMs);
    sent.then(settled, settled);
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.buf = [];
    this.inFlight = false;
    this.generation++;
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
