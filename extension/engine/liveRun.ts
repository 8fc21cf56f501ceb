/**
 * A run in the engine process: its native handle and the pipeline that turns its events into
 * protocol events. Each native batch becomes one `events` message; the last one ends with the
 * final run-state. Apart from host.ts so that tests can feed it a recorded native stream.
 */
import type { EngineEvent, EngineMessage, LogLevel, RunConfig } from '../../protocol/messages';
import type { NativeEvent, NativeRun, NativeRunConfig } from './native';
import type { HwTokenizer } from '../model/tokenizer';
import { headerParts } from '../collab';
import { EventPipeline } from './pipeline';

export class LiveRun {
  ended = false;
  run: NativeRun | null = null;
  readonly events: EventPipeline;

  constructor(
    readonly runId: string,
    config: RunConfig,
    private readonly tok: HwTokenizer | null,
    private readonly post: (msg: EngineMessage) => void,
    private readonly log: (level: LogLevel, text: string) => void,
    native?: NativeRunConfig,
  ) {
    this.events = new EventPipeline(config, tok, native && { prompt: native.promptIds, headerOthers: native.headerOthersIds, headerOwn: native.headerOwnIds, raw: native.raw });
  }

  /** The run's first events, before the engine says anything. */
  start(): void {
    this.send(this.events.start());
  }

  /** One batch from the engine thread (it batches by time; nothing is held back here). */
  onNative(batch: readonly NativeEvent[]): void {
    this.send(this.events.convert(batch));
    this.wake();
  }

  private waiters: (() => void)[] = [];
  /** Resolves at the next batch from the engine thread, or when the run ends. */
  nextBatch(): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private send(events: EngineEvent[]): void {
    for (const e of this.events.errors.splice(0)) this.log('error', `run ${this.runId}: ${e}`);
    if (events.length > 0) this.post({ type: 'events', runId: this.runId, events });
  }

  /** Called when the native run loop has ended: the last batch ends with the final run-state. */
  end(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.send(this.events.end(error));
    this.wake();
  }

  /** Forks a worker; the fork's step headers carry its own name. */
  fork(worker: number): number {
    if (!this.run) throw new Error('the run has not started');
    if (!this.events.hasWorker(worker)) throw new Error(`fork: there is no worker ${worker}`);
    const name = this.events.forkName(worker);
    const prefix = this.tok ? Int32Array.from(headerParts(this.tok, name).prefix) : undefined;
    const id = this.run.fork(worker, prefix);
    this.events.nameWorker(id, name);
    return id;
  }
}
