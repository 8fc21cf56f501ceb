/**
 * What `npm run solve` keeps of a run: the protocol events that the shared pipeline
 * (engine/pipeline.ts) makes of the native ones, the same events VS Code shows, reduced by the
 * same run model.
 */
import type { BlockKind, EngineEvent, RawRunResult, RunConfig, ViewSegmentInfo } from '../../protocol/messages';
import { RunModel } from '../runModel';
import type { NativeEvent } from '../engine/native';
import type { HwTokenizer } from '../model/tokenizer';
import { EventPipeline } from '../engine/pipeline';

/**
 * A run as the command line consumes it: the native batches go through the same pipeline as
 * in the engine process; every protocol batch is recorded and handed to `onBatch` (the lanes).
 */
export class CliRun {
  readonly pipeline: EventPipeline;
  readonly record: RunRecord;

  constructor(
    config: RunConfig,
    tok: HwTokenizer | null,
    private readonly onBatch: (events: EngineEvent[], errors: string[]) => void,
  ) {
    this.pipeline = new EventPipeline(config, tok);
    this.record = new RunRecord(config);
  }

  start(): void {
    this.take(this.pipeline.start());
  }

  onNative(batch: readonly NativeEvent[]): void {
    this.take(this.pipeline.convert(batch));
  }

  end(error?: Error): void {
    this.take(this.pipeline.end(error));
  }

  private take(events: EngineEvent[]): void {
    this.record.take(events);
    this.onBatch(events, this.pipeline.errors.splice(0));
  }
}

export interface BlockState {
  block: number;
  kind: BlockKind;
  owner: number;
  length: number;
  label: string;
  freed: boolean;
}

export interface ViewEntry {
  block: number;
  kind: BlockKind;
  owner: number;
  offset: number;
  length: number;
}

/**
 * The CLI's view of a run: the run model every view uses (names, forks, history, answer,
 * stats, state: extension/runModel.ts), plus what only the terminal prints: the blocks, the
 * views, every id each worker wrote, and the raw result.
 */
export class RunRecord {
  readonly model: RunModel;
  readonly blocks = new Map<number, BlockState>();
  views: ViewSegmentInfo[][] = [];
  viewStep = 0;
  readonly fed = new Map<number, number[]>(); // worker -> every id written into its block
  readonly texts = new Map<number, string>(); // worker -> the decoded text of those ids
  raw: RawRunResult | null = null;
  readonly stepMs: number[] = []; // wall time of every step, in order (for benchmarks)

  constructor(config: RunConfig) {
    this.model = new RunModel('cli', 'cli', config);
  }

  take(events: readonly EngineEvent[]): void {
    this.model.apply(events, Date.now());
    for (const e of events) this.takeOne(e);
  }

  private takeOne(e: EngineEvent): void {
    switch (e.type) {
      case 'block': {
        const { block, kind, owner, length, label } = e.info;
        this.blocks.set(block, { block, kind, owner, length, label, freed: e.op === 'freed' });
        return;
      }
      case 'views':
        this.views = e.views;
        this.viewStep = e.step;
        // Views carry the current length of every block they show.
        for (const v of e.views) {
          for (const seg of v) {
            const b = this.blocks.get(seg.block);
            if (b && seg.length > b.length) b.length = seg.length;
          }
        }
        return;
      case 'tokens': {
        const list = this.fed.get(e.worker) ?? [];
        for (const id of e.ids) list.push(id);
        this.fed.set(e.worker, list);
        this.texts.set(e.worker, (this.texts.get(e.worker) ?? '') + e.text);
        return;
      }
      case 'raw-result':
        this.raw = e.result;
        return;
      case 'stats':
        this.stepMs.push(e.msPerStep);
        return;
      default:
        return;
    }
  }

  name(worker: number): string {
    return worker < 0 ? 'shared' : (this.model.workers.get(worker)?.info.name ?? `Worker ${worker}`);
  }

  /** The worker a fork was made from, -1 for the first workers. */
  forkedFrom(worker: number): number {
    return this.model.workers.get(worker)?.info.forkedFrom ?? -1;
  }

  /** Each worker's view as blocks in order, with their kinds and owners. */
  viewList(): ViewEntry[][] {
    return this.views.map((v) =>
      v.map((s) => {
        const b = this.blocks.get(s.block);
        return { block: s.block, kind: b?.kind ?? 'header', owner: b?.owner ?? -1, offset: s.offset, length: s.length };
      }),
    );
  }

  /** Live blocks: not freed, or still in a view (an id may be reused after a move). */
  liveBlocks(): BlockState[] {
    const inView = new Set(this.views.flat().map((seg) => seg.block));
    return [...this.blocks.values()].filter((b) => !b.freed || inView.has(b.block)).sort((a, b) => a.block - b.block);
  }
}
