/**
 * The runs of this window: live runs driven by the engine and replays of trace files. Each
 * run has a RunModel (what the views show) and a trace recorder (everything the engine
 * said, kept in memory and appended to a file in the extension's storage as it comes, so it
 * outlives an engine crash). The engine client's events and crashes land here.
 */
import * as vscode from 'vscode';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { Control, EngineEvent, ModelSummary, RunConfig, RunState, RunSummary } from '../protocol/messages';
import { RunModel } from './runModel';
import { TraceRecorder, type ParsedTrace } from './trace';
import type { EngineClient } from './engine/client';
import { Disposable, toDisposable } from './disposable';

export interface RunRecord {
  model: RunModel;
  /** The run's event log (held once), written to `traceFile` as it comes when there is one. */
  trace: TraceRecorder;
  traceFile: string | null;
  engineModel: ModelSummary | null;
  replayTimer?: ReturnType<typeof setTimeout>;
}

const MAX_KEPT_TRACES = 30;
const FINAL: readonly RunState[] = ['finished', 'stopped', 'failed'];

export class RunManager extends Disposable {
  private readonly records = new Map<string, RunRecord>();
  private _activeRunId: string | null = null;
  private replayCount = 0;

  private readonly _onDidChangeRuns = this._register(new vscode.EventEmitter<void>());
  /** Something about the runs changed (events, states, the active run). Not throttled. */
  readonly onDidChangeRuns = this._onDidChangeRuns.event;
  private readonly _onRunEvents = this._register(new vscode.EventEmitter<{ runId: string; events: EngineEvent[] }>());
  readonly onRunEvents = this._onRunEvents.event;
  private readonly _onRunEnded = this._register(new vscode.EventEmitter<{ runId: string; state: RunState; message?: string }>());
  readonly onRunEnded = this._onRunEnded.event;

  constructor(
    readonly engine: EngineClient,
    private readonly traceDir: string,
    private readonly log: (level: 'info' | 'warn' | 'error', text: string) => void,
  ) {
    super();
    this._register(toDisposable(() => this.closeRecords()));
    this._register(engine.onEvents.event(({ runId, events }) => this.onEngineEvents(runId, events)));
    this._register(engine.onRunEnded.event(({ runId, state, message }) => this.endRun(runId, state, message)));
    this._register(
      engine.onCrash.event((crash) => {
        for (const r of this.records.values()) {
          if (r.model.source === 'live' && r.model.isActive) this.endRun(r.model.runId, 'failed', crash.message);
        }
      }),
    );
  }

  get activeRunId(): string | null {
    return this._activeRunId;
  }

  get(runId: string): RunRecord | undefined {
    return this.records.get(runId);
  }

  active(): RunRecord | undefined {
    return this._activeRunId ? this.records.get(this._activeRunId) : undefined;
  }

  /** The live run that is still going, if any (the engine runs one at a time). */
  liveRun(): RunRecord | undefined {
    for (const r of this.records.values()) if (r.model.source === 'live' && r.model.isActive) return r;
    return undefined;
  }

  all(): RunRecord[] {
    return [...this.records.values()];
  }

  summaries(): RunSummary[] {
    const now = Date.now();
    return this.all().map((r) => {
      r.model.tick(now);
      return r.model.summary();
    });
  }

  setActive(runId: string): void {
    if (!this.records.has(runId) || this._activeRunId === runId) return;
    this._activeRunId = runId;
    this._onDidChangeRuns.fire();
  }

  static newRunId(): string {
    return `run-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  }

  /** Creates a live run and asks the engine to start it (the model must be loaded). */
  async startLive(config: RunConfig, title: string, saveTrace: boolean): Promise<RunRecord> {
    const runId = RunManager.newRunId();
    const model = new RunModel(runId, title, config, 'live');
    const traceFile = saveTrace ? path.join(this.traceDir, `${runId}.jsonl`) : null;
    const trace = new TraceRecorder(
      { type: 'hogwild-trace', version: 1, runId, title, startedAt: new Date().toISOString(), config, model: this.engine.model },
      traceFile ?? undefined,
    );
    const rec: RunRecord = { model, trace, traceFile, engineModel: this.engine.model };
    this.records.set(runId, rec);
    this._activeRunId = runId;
    this._onDidChangeRuns.fire();
    if (saveTrace) this.pruneTraces();
    try {
      await this.engine.startRun(runId, config);
      this.log('info', `Run ${runId} started: ${config.workers} workers, ${config.layout} layout, budget ${config.maxTokens} tokens`);
    } catch (e) {
      this.endRun(runId, 'failed', (e as Error).message);
      throw e;
    }
    return rec;
  }

  private onEngineEvents(runId: string, events: EngineEvent[]): void {
    const rec = this.records.get(runId);
    if (!rec) return;
    rec.model.apply(events, Date.now());
    rec.trace.add(events);
    this._onRunEvents.fire({ runId, events });
    this._onDidChangeRuns.fire();
  }

  /** Ends a run (the engine said so, or it died): the final state goes into the model and trace. */
  private endRun(runId: string, state: RunState, message?: string): void {
    const rec = this.records.get(runId);
    if (!rec) return;
    if (!FINAL.includes(rec.model.state) || rec.model.state !== state) {
      if (!FINAL.includes(rec.model.state)) {
        const ev: EngineEvent = message !== undefined ? { type: 'run-state', state, message } : { type: 'run-state', state };
        rec.model.apply([ev], Date.now());
        rec.trace.add([ev]);
        this._onRunEvents.fire({ runId, events: [ev] });
      }
    }
    rec.trace.end(rec.model.state, rec.model.message);
    this.log(state === 'failed' ? 'error' : 'info', `Run ${runId} ended: ${rec.model.state}${rec.model.message ? ` (${rec.model.message})` : ''}`);
    this._onRunEnded.fire({ runId, state: rec.model.state, message: rec.model.message });
    this._onDidChangeRuns.fire();
  }

  async control(runId: string, control: Control): Promise<unknown> {
    const rec = this.records.get(runId);
    if (!rec) throw new Error(`No run ${runId}`);
    if (rec.model.source !== 'live') throw new Error('A replayed trace cannot be controlled');
    if (!rec.model.isActive) throw new Error(`The run has ${rec.model.state === 'failed' ? 'failed' : 'ended'}; it takes no more controls`);
    return this.engine.control(runId, control);
  }

  /** Replays a parsed trace into a new run (no engine); resolves when the replay is set up. */
  replay(trace: ParsedTrace, opts: { instant?: boolean; maxSeconds?: number } = {}): RunRecord {
    const runId = `${trace.header.runId.slice(0, 40)}-replay${++this.replayCount}`;
    const model = new RunModel(runId, `${trace.header.title} (replay)`, trace.header.config, 'replay');
    // A replay keeps its own log (in memory): a panel opened mid-replay catches up from it.
    const log = new TraceRecorder({ ...trace.header, runId, title: model.title });
    const rec: RunRecord = { model, trace: log, traceFile: null, engineModel: trace.header.model };
    this.records.set(runId, rec);
    this._activeRunId = runId;
    const batches = trace.batches.slice();
    if (trace.end) batches.push({ type: 'events', t: trace.end.t, events: [trace.end.message !== undefined ? { type: 'run-state', state: trace.end.state, message: trace.end.message } : { type: 'run-state', state: trace.end.state }] });
    const apply = (events: EngineEvent[]) => {
      model.apply(events, Date.now());
      log.add(events);
      this._onRunEvents.fire({ runId, events });
      this._onDidChangeRuns.fire();
    };
    if (opts.instant || batches.length === 0) {
      apply(batches.flatMap((b) => b.events));
      return rec;
    }
    // Keep the original rhythm, with long pauses shortened and the whole replay bounded.
    const maxMs = (opts.maxSeconds ?? 20) * 1000;
    const gaps = batches.map((b, i) => Math.min(250, Math.max(0, b.t - (i > 0 ? batches[i - 1]!.t : 0))));
    const total = gaps.reduce((a, b) => a + b, 0);
    const scale = total > maxMs ? maxMs / total : 1;
    let i = 0;
    const next = () => {
      if (i >= batches.length) return;
      const evs: EngineEvent[] = [];
      // Batches that fall within one frame go together.
      do {
        evs.push(...batches[i]!.events);
        i++;
      } while (i < batches.length && gaps[i]! * scale < 16);
      apply(evs);
      if (i < batches.length) rec.replayTimer = setTimeout(next, gaps[i]! * scale);
    };
    rec.replayTimer = setTimeout(next, 0);
    this._onDidChangeRuns.fire();
    return rec;
  }

  async saveTrace(runId: string, file: string): Promise<void> {
    const rec = this.records.get(runId);
    if (!rec) throw new Error(`No run ${runId}`);
    await rec.trace.saveTo(file);
  }

  /** Where a run's trace was written as it came (for restoring a panel after a reload). */
  traceFileOf(runId: string): string {
    return path.join(this.traceDir, `${runId}.jsonl`);
  }

  private pruneTraces(): void {
    try {
      const files = fs
        .readdirSync(this.traceDir)
        .filter((f) => f.endsWith('.jsonl'))
        .map((f) => ({ f, t: fs.statSync(path.join(this.traceDir, f)).mtimeMs }))
        .sort((a, b) => b.t - a.t);
      for (const { f } of files.slice(MAX_KEPT_TRACES)) fs.rmSync(path.join(this.traceDir, f), { force: true });
    } catch {
      /* best effort */
    }
  }

  /** Ends the traces of the runs still going (the window closes). */
  private closeRecords(): void {
    for (const r of this.records.values()) {
      if (r.replayTimer) clearTimeout(r.replayTimer);
      if (!r.trace.isEnded) r.trace.end(r.model.isActive ? 'stopped' : r.model.state, r.model.isActive ? 'the window closed' : r.model.message);
      r.trace.dispose();
    }
  }
}
