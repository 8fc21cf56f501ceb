/**
 * The one place where native engine events become protocol events. The engine process (for
 * VS Code) and `npm run solve` (for the terminal) both feed the native batches of a run
 * through an EventPipeline, so both show the same run: the same worker and fork names, block
 * labels and kinds, note texts, answer and raw results.
 *
 *  - tokens: text decoded incrementally per worker (multi-byte characters split across
 *    batches come out whole);
 *  - worker: forks get the origin's name with a prime ("Alice′", then "Alice′2");
 *  - block: every block gets a label ("prompt", "Alice [3]", "note to Bob", ...) and its kind
 *    is remembered, so raw results report the real kind and owner of every view segment;
 *  - finisher tokens: the finisher text so far, and the answer read with the answer pattern;
 *  - run-state: a final state is held back and sent by end(), after everything else: the one
 *    end-of-run signal (the engine client ends the run on it).
 * One native batch in, one protocol batch out: the engine thread already batches by time, so
 * no timer is needed here (the webviews have the one JavaScript batching stage).
 */
import {
  BLOCK_KINDS,
  FINAL_RUN_STATES,
  RUN_STATES,
  WORKER_STATES,
  type BlockKind,
  type EngineEvent,
  type EventOf,
  type RawRunResult,
  type RunConfig,
  type RunState,
  type WorkerState,
} from '../../protocol/messages';
import type { NativeEvent } from './native';
import type { HwTokenizer, StreamDecoder } from '../model/tokenizer';
import { extractAnswer, stepLabel } from '../collab';

/** How a note from the user is put in front of the workers ({text}, {to}). */
const NOTE_TEMPLATE = '\n\n> **Note from the user{to}:** {text}\n\n';

const isOneOf = <T extends string>(values: readonly T[], v: string): v is T => (values as readonly string[]).includes(v);

export class EventPipeline {
  private readonly decoders = new Map<number, StreamDecoder>();
  private readonly names = new Map<number, string>();
  private readonly forks = new Map<number, number>(); // forks of each origin so far
  private readonly blocks = new Map<number, { kind: BlockKind; owner: number; label: string }>();
  private finisherIds: number[] = [];
  private lastState: RunState = 'loading';
  private lastMessage: string | undefined;
  private lastViews: EventOf<'views'>['views'] = [];
  private ended = false;
  /** Engine errors reported during the run (the run may go on). */
  readonly errors: string[] = [];

  constructor(
    readonly config: RunConfig,
    private readonly tok: HwTokenizer | null,
    /** The ids of the blocks no tokens event carries (the prompt, the headers), when known. */
    private readonly blockIds?: { prompt: ArrayLike<number>; headerOthers: ArrayLike<number>; headerOwn: ArrayLike<number>; raw: boolean },
  ) {
    config.workerNames.slice(0, config.workers).forEach((n, i) => this.names.set(i, n));
  }

  name(worker: number): string {
    return this.names.get(worker) ?? `Worker ${worker}`;
  }

  hasWorker(worker: number): boolean {
    return this.names.has(worker);
  }

  /** The run's state as the engine last reported it. */
  get runState(): RunState {
    return this.lastState;
  }

  /** The events a run starts with, before the engine says anything. */
  start(): EngineEvent[] {
    const out: EngineEvent[] = [{ type: 'run-state', state: 'loading' }];
    for (let w = 0; w < this.config.workers; w++) out.push({ type: 'worker', info: { worker: w, name: this.name(w), state: 'running', temperature: this.config.sampling.temperature } });
    return out;
  }

  /** One batch of native events -> protocol events. A bad event is reported, not thrown. */
  convert(batch: readonly NativeEvent[]): EngineEvent[] {
    // The engine reports a fork's block before the fork itself: name new workers first, so
    // that their blocks are labelled with their names.
    for (const ev of batch) {
      if (ev.type === 'worker' && !this.names.has(ev.worker)) this.names.set(ev.worker, ev.forkedFrom >= 0 ? this.forkName(ev.forkedFrom) : `Worker ${ev.worker}`);
    }
    const out: EngineEvent[] = [];
    for (const ev of batch) {
      try {
        this.convertOne(ev, out);
      } catch (e) {
        this.errors.push(`could not convert a ${ev.type} event: ${(e as Error).message}`);
      }
    }
    return out;
  }

  /** The run loop ended: decoder remainders, then the final run-state (always the last event). */
  end(error?: Error): EngineEvent[] {
    if (this.ended) return [];
    this.ended = true;
    const out: EngineEvent[] = [];
    for (const [w, d] of this.decoders) {
      const rest = d.flush();
      if (rest) out.push({ type: 'tokens', worker: w, step: 0, ids: new Int32Array(0), text: rest });
    }
    let state = this.lastState;
    let message = this.lastMessage;
    if (error) {
      state = 'failed';
      message = error.message;
    } else if (!isOneOf(FINAL_RUN_STATES, state)) {
      state = 'finished';
    }
    out.push(message !== undefined ? { type: 'run-state', state, message } : { type: 'run-state', state });
    return out;
  }

  /** The name of the next fork of `origin`: "Alice′", then "Alice′2", ... (reserved now). */
  forkName(origin: number): string {
    const k = (this.forks.get(origin) ?? 0) + 1;
    this.forks.set(origin, k);
    return `${this.name(origin)}′${k > 1 ? k : ''}`;
  }

  /** Names a worker the engine just created (a fork the caller named with forkName). */
  nameWorker(worker: number, name: string): void {
    this.names.set(worker, name);
  }

  /** The token ids of a note, as the workers will read it. */
  noteIds(target: number | 'all', text: string): Int32Array {
    if (!this.tok) throw new Error('this model has no tokenizer: notes need one');
    const to = target === 'all' ? '' : ` to ${this.name(target)}`;
    return Int32Array.from(this.tok.encode(NOTE_TEMPLATE.replace('{to}', to).replace('{text}', text.trim())));
  }

  tokenText(id: number): string {
    return this.tok ? this.tok.decode([id]) : '';
  }

  private decoder(worker: number): StreamDecoder | null {
    if (!this.tok) return null;
    let d = this.decoders.get(worker);
    if (!d) {
      d = this.tok.streamDecoder();
      this.decoders.set(worker, d);
    }
    return d;
  }

  private text(ids: ArrayLike<number>): string {
    return this.tok ? this.tok.decode(ids) : '';
  }

  /** Each id's text as a stream decoder emits it (the pieces join to the decoded text). */
  private pieces(ids: ArrayLike<number>): string[] {
    if (!this.tok) return Array.from(ids, () => '');
    const d = this.tok.streamDecoder();
    const out = Array.from(ids, (id) => d.push([id]));
    const rest = d.flush();
    if (rest && out.length > 0) out[out.length - 1] += rest;
    return out;
  }

  /** The prompt's and the headers' tokens (no tokens event carries them); the engine creates the others' header first. */
  private headersSeen = 0;
  private blockText(block: number, kind: BlockKind): EngineEvent | null {
    const b = this.blockIds;
    if (!b) return null;
    let ids: ArrayLike<number> | undefined;
    if (kind === 'prompt') ids = b.prompt;
    else if (kind === 'header' && !b.raw) ids = this.headersSeen++ === 0 ? b.headerOthers : b.headerOwn;
    if (!ids || ids.length === 0) return null;
    return { type: 'block-text', block, ids: Int32Array.from(ids), pieces: this.pieces(ids) };
  }

  private blockLabel(block: number, kind: BlockKind, owner: number): string {
    switch (kind) {
      case 'prompt':
        return 'prompt';
      case 'worker':
        return `${this.name(owner)} (current step)`;
      case 'note':
        return owner >= 0 ? `note to ${this.name(owner)}` : 'note to all';
      case 'history':
        return `history ${block}`;
      case 'finisher':
        return 'finisher';
      case 'header':
        return owner >= 0 ? `header (${this.name(owner)})` : 'header';
    }
  }

  private convertOne(ev: NativeEvent, out: EngineEvent[]): void {
    switch (ev.type) {
      case 'run-state': {
        const state = isOneOf(RUN_STATES, ev.state) ? ev.state : 'running';
        this.lastState = state;
        if (isOneOf(FINAL_RUN_STATES, state)) {
          this.lastMessage = ev.message;
          return; // sent by end(), after everything else
        }
        out.push(ev.message !== undefined ? { type: 'run-state', state, message: ev.message } : { type: 'run-state', state });
        return;
      }
      case 'worker': {
        if (!this.names.has(ev.worker)) this.names.set(ev.worker, ev.forkedFrom >= 0 ? this.forkName(ev.forkedFrom) : `Worker ${ev.worker}`);
        const state: WorkerState = isOneOf(WORKER_STATES, ev.state) ? ev.state : 'running';
        const info: EventOf<'worker'>['info'] = { worker: ev.worker, name: this.name(ev.worker), state, temperature: ev.temperature };
        if (ev.forkedFrom >= 0) info.forkedFrom = ev.forkedFrom;
        out.push({ type: 'worker', info });
        return;
      }
      case 'tokens': {
        // One piece per id (what that id added to the stream; they join to the text), so that
        // a view finds the token under any character of a lane.
        const d = this.decoder(ev.worker);
        const pieces = Array.from(ev.ids, (id) => (d ? d.push([id]) : ''));
        out.push({ type: 'tokens', worker: ev.worker, step: ev.step, ids: Int32Array.from(ev.ids), text: pieces.join(''), pieces });
        return;
      }
      case 'step-finished': {
        const label = stepLabel(this.name(ev.worker), ev.step);
        // A history block is named after the latest step moved into it.
        if (ev.historyBlock >= 0) this.blocks.set(ev.historyBlock, { kind: 'history', owner: -1, label });
        out.push({ type: 'step-finished', worker: ev.worker, step: ev.step, label, text: this.text(ev.ids), historyBlock: ev.historyBlock });
        return;
      }
      case 'block': {
        const kind: BlockKind = isOneOf(BLOCK_KINDS, ev.kind) ? ev.kind : 'header';
        const known = this.blocks.get(ev.block);
        // History blocks keep the step label they were given; the others follow their owner.
        const label = known && known.kind === kind && kind === 'history' ? known.label : this.blockLabel(ev.block, kind, ev.owner);
        this.blocks.set(ev.block, { kind, owner: ev.owner, label });
        out.push({ type: 'block', op: ev.op, info: { block: ev.block, kind, owner: ev.owner, length: ev.length, label } });
        if (ev.op === 'created') {
          const text = this.blockText(ev.block, kind);
          if (text) out.push(text);
        }
        return;
      }
      case 'views': {
        this.lastViews = ev.views.map((v) => {
          const segs: EventOf<'views'>['views'][number] = [];
          for (let i = 0; i + 2 < v.length; i += 3) segs.push({ block: v[i]!, offset: v[i + 1]!, length: v[i + 2]! });
          return segs;
        });
        out.push({ type: 'views', step: ev.step, views: this.lastViews });
        return;
      }
      case 'attention':
        out.push(attentionEvent(ev));
        return;
      case 'stats':
        out.push({ type: 'stats', step: ev.step, tokens: ev.tokens, tokensPerSecond: ev.tokensPerSecond, msPerStep: ev.msPerStep, ...(ev.kvBytes !== undefined ? { kvBytes: ev.kvBytes } : {}) });
        return;
      case 'progress':
        out.push({ type: 'progress', phase: 'prefill', done: ev.done, total: ev.total, tokensPerSecond: ev.tokensPerSecond });
        return;
      case 'note':
        out.push({ type: 'note', target: ev.target < 0 ? 'all' : ev.target, block: ev.block, text: this.text(ev.ids), ids: Int32Array.from(ev.ids), pieces: this.pieces(ev.ids) });
        return;
      case 'finisher-tokens':
        for (const id of ev.ids) this.finisherIds.push(id);
        out.push(this.answer());
        return;
      case 'raw-result':
        out.push({ type: 'raw-result', result: this.rawResult(ev) });
        return;
      case 'error':
        this.errors.push(ev.message);
        if (isOneOf(FINAL_RUN_STATES, this.lastState)) {
          this.lastMessage ??= ev.message;
          return;
        }
        out.push({ type: 'run-state', state: this.lastState, message: ev.message });
        return;
    }
  }

  /** The finisher prompt and its greedy continuation so far, and the answer read from it. */
  private answer(): EventOf<'answer'> {
    const text = this.config.prompts.finisher + (this.tok ? this.tok.decode(this.finisherIds, { skipSpecial: true }) : '');
    let answer: string | null;
    try {
      answer = extractAnswer(text, this.config.prompts.answerPattern);
    } catch (e) {
      // A pattern that fails or takes too long finds nothing, and the user is told why.
      this.errors.push((e as Error).message);
      answer = null;
    }
    return { type: 'answer', text, answer };
  }

  private rawResult(ev: Extract<NativeEvent, { type: 'raw-result' }>): RawRunResult {
    return {
      workers: ev.workers.map((w, i) => {
        const out: RawRunResult['workers'][number] = { worker: i, ids: Array.from(w.ids) };
        if (w.topIds && w.topLogits && w.topIds.length > 0) out.topLogits = Array.from(w.topIds, (id, j) => ({ id, logit: w.topLogits![j]! }));
        return out;
      }),
      views: this.lastViews.map((segs) =>
        segs.map((s) => {
          const b = this.blocks.get(s.block);
          return { block: s.block, kind: b?.kind ?? 'header', owner: b?.owner ?? -1, offset: s.offset, length: s.length };
        }),
      ),
    };
  }
}

/**
 * The attention event: the mean shares, and per layer (the native layerShares[w] is
 * [layers][segments] flat) rounded to 4 decimals, which a shade needs and a trace can afford.
 */
function attentionEvent(ev: Extract<NativeEvent, { type: 'attention' }>): EventOf<'attention'> {
  const shares = ev.shares.map((s) => Array.from(s));
  const out: EventOf<'attention'> = { type: 'attention', step: ev.step, shares };
  if (!ev.layerShares || ev.layerShares.length !== shares.length) return out;
  const round = (x: number) => Math.round(x * 1e4) / 1e4;
  out.layers = ev.layerShares.map((flat, w) => {
    const nseg = shares[w]!.length;
    const layers: number[][] = [];
    if (nseg > 0) for (let at = 0; at + nseg <= flat.length; at += nseg) layers.push(Array.from(flat.subarray(at, at + nseg), round));
    return layers;
  });
  return out;
}
