/**
 * The engine client: forks the engine process (dist/engine-host.js, with the Node that runs
 * the extension host: VS Code's own), talks to it over typed IPC (protocol.ts, structured
 * clone so typed arrays pass as they are) and supervises it. No vscode import: the state
 * machine is unit-tested against real child processes.
 *
 *   idle --start--> starting --ready--> ready --load--> loading --loaded--> loaded
 *     ^                |                   ^              |   (cancel: kill -> idle)
 *     |                v                   |              v
 *     +--- stopping <-(shutdown)      crashed <-(exit without a shutdown, from any state)
 *
 * A crash never throws into the caller's stack: pending requests reject with an
 * EngineCrashedError, `onCrash` fires with the runs that were live, and `restart()` (or any
 * later request) starts a fresh process.
 */
import { fork, type ChildProcess } from 'node:child_process';
import {
  FINAL_RUN_STATES,
  InspectResult,
  ModelSummary,
  type Control,
  type Device,
  type KvDtype,
  type EngineEvent,
  type EngineMessage,
  type EngineRequest,
  type EngineState,
  type LogLevel,
  type RunConfig,
  type RunState,
} from '../../protocol/messages';
import { validateEngineMessage } from '../../protocol/validate';
import { RequestTracker, type WithoutId } from '../../protocol/requests';
import type { LoadProgress } from '../../protocol/progress';
import { Disposable, toDisposable } from '../disposable';

export interface EngineClientOptions {
  /** The engine host script (dist/engine-host.js). */
  hostPath: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Node binary; default: the running one (VS Code's own Node in the extension host). */
  execPath?: string;
  execArgv?: string[];
  /** Receives the engine's log lines and stderr. */
  log: (level: LogLevel, text: string) => void;
  /** How long the process may take to say `ready` (default 20 s). */
  startTimeoutMs?: number;
}

/** A model load's progress: the line the engine wrote, its fraction, and the bytes when it reads weights. */
export interface LoadStatus {
  message: string;
  fraction?: number;
  load?: LoadProgress;
}

export interface EngineCrash {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Runs that were live when the engine died. */
  runIds: string[];
  /** The state the client was in. */
  during: EngineState;
  message: string;
}

export class EngineCrashedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EngineCrashedError';
  }
}

export class CancelledError extends Error {
  constructor(message = 'Cancelled') {
    super(message);
    this.name = 'CancelledError';
  }
}

type Listener<T> = (e: T) => void;

/** A minimal event emitter in the style of vscode.EventEmitter. */
export class Emitter<T> {
  private listeners: Listener<T>[] = [];
  readonly event = (l: Listener<T>): { dispose(): void } => {
    this.listeners.push(l);
    return { dispose: () => (this.listeners = this.listeners.filter((x) => x !== l)) };
  };
  fire(e: T): void {
    for (const l of this.listeners.slice()) {
      try {
        l(e);
      } catch (err) {
        // A listener's bug must not break the client.
        console.error('[hogwild] listener failed', err);
      }
    }
  }
  dispose(): void {
    this.listeners = [];
  }
}


const STDERR_TAIL = 4000;

export class EngineClient extends Disposable {
  private child: ChildProcess | null = null;
  private _state: EngineState = 'idle';
  /** Requests in flight, paired with their replies; sends go to the current process. */
  private readonly requests = new RequestTracker<EngineRequest>((msg) => this.sendToChild(msg));
  private liveRuns = new Set<string>();
  private startPromise: Promise<void> | null = null;
  private loadPromise: Promise<ModelSummary> | null = null;
  private loadKey = '';
  private stderrTail = '';
  private intentionalExit = false;
  private stopping: Promise<void> | null = null;
  private _model: ModelSummary | null = null;
  private _pid: number | null = null;

  readonly onDidChangeState = this._register(new Emitter<{ state: EngineState; message?: string }>());
  readonly onEvents = this._register(new Emitter<{ runId: string; events: EngineEvent[] }>());
  /** A run's last event batch ended with a final run-state (the one end-of-run signal). */
  readonly onRunEnded = this._register(new Emitter<{ runId: string; state: RunState; message?: string }>());
  readonly onCrash = this._register(new Emitter<EngineCrash>());
  /** What a model load in flight is doing (null when none is): the status bar and the sidebar show it. */
  readonly onLoadProgress = this._register(new Emitter<LoadStatus | null>());
  private _loadProgress: LoadStatus | null = null;

  constructor(private readonly opts: EngineClientOptions) {
    super();
    // Disposed first (newest first): the process is asked to stop while listeners still hear it.
    this._register(toDisposable(() => void this.stopProcess(1000)));
  }

  get state(): EngineState {
    return this._state;
  }

  /** The latest progress of the model load in flight, or null. */
  get loadProgress(): LoadStatus | null {
    return this._loadProgress;
  }

  private setLoadProgress(p: LoadStatus | null): void {
    if (p === null && this._loadProgress === null) return;
    this._loadProgress = p;
    this.onLoadProgress.fire(p);
  }
  get model(): ModelSummary | null {
    return this._model;
  }
  /** The engine process's pid (null when none runs). */
  get pid(): number | null {
    return this._pid;
  }
  get runs(): string[] {
    return [...this.liveRuns];
  }

  private setState(state: EngineState, message?: string): void {
    if (this._state === state && message === undefined) return;
    this._state = state;
    this.onDidChangeState.fire({ state, message });
  }

  /** Starts the engine process unless one runs; resolves once it says `ready`. */
  start(): Promise<void> {
    if (this.isDisposed) return Promise.reject(new Error('The Hogwild engine client is disposed'));
    if (this.child && this.startPromise) return this.startPromise;
    this.startPromise = this.spawn();
    return this.startPromise;
  }

  private spawn(): Promise<void> {
    this.setState('starting');
    this.intentionalExit = false;
    this.stderrTail = '';
    const env: NodeJS.ProcessEnv = { ...(this.opts.env ?? process.env), ELECTRON_RUN_AS_NODE: '1' };
    let child: ChildProcess;
    try {
      child = fork(this.opts.hostPath, [], {
        cwd: this.opts.cwd,
        env,
        execPath: this.opts.execPath,
        execArgv: this.opts.execArgv ?? [],
        serialization: 'advanced',
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      });
    } catch (e) {
      this.setState('crashed', `Could not start the engine process: ${(e as Error).message}`);
      return Promise.reject(e);
    }
    this.child = child;
    this._pid = child.pid ?? null;
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (d: string) => this.logLines('info', d));
    child.stderr?.on('data', (d: string) => {
      this.stderrTail = (this.stderrTail + d).slice(-STDERR_TAIL);
      this.logLines('warn', d);
    });
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        const msg = `The engine process did not start within ${(this.opts.startTimeoutMs ?? 20000) / 1000} s`;
        this.opts.log('error', msg);
        this.kill();
        reject(new Error(msg));
      }, this.opts.startTimeoutMs ?? 20000);
      child.on('message', (raw: unknown) => {
        const v = validateEngineMessage(raw);
        if (!v.ok) {
          this.opts.log('error', `Ignored an invalid message from the engine: ${v.error}`);
          return;
        }
        const msg = v.value;
        if (msg.type === 'ready' && !settled) {
          settled = true;
          clearTimeout(timer);
          this._pid = msg.pid;
          this.setState('ready');
          this.opts.log('info', `Engine process started (pid ${msg.pid})`);
          resolve();
          return;
        }
        this.onMessage(msg);
      });
      child.on('error', (err) => {
        this.opts.log('error', `Engine process error: ${err.message}`);
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          reject(err);
        }
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        this.onExit(child, code, signal);
        if (!settled) {
          settled = true;
          reject(new EngineCrashedError(this.exitMessage(code, signal)));
        }
      });
    });
  }

  private logLines(level: LogLevel, chunk: string): void {
    for (const line of chunk.split('\n')) if (line.trim() !== '') this.opts.log(level, `[engine] ${line}`);
  }

  private exitMessage(code: number | null, signal: NodeJS.Signals | null): string {
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const tail = this.stderrTail.trim().split('\n').slice(-3).join(' | ');
    return `The Hogwild engine process ${how}${tail ? `: ${tail}` : ''}`;
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return; // an old process, already replaced
    this.child = null;
    this.startPromise = null;
    this.loadPromise = null;
    this.loadKey = '';
    this._model = null;
    this._pid = null;
    const during = this._state;
    const runIds = [...this.liveRuns];
    this.liveRuns.clear();
    if (this.intentionalExit) {
      this.rejectAll(new CancelledError('The engine process was stopped'));
      this.setState('idle');
      return;
    }
    const message = this.exitMessage(code, signal);
    this.opts.log('error', message);
    this.rejectAll(new EngineCrashedError(message));
    this.setState('crashed', message);
    this.onCrash.fire({ code, signal, runIds, during, message });
  }

  private rejectAll(err: Error): void {
    this.requests.rejectAll(err);
  }

  private onMessage(msg: EngineMessage): void {
    switch (msg.type) {
      case 'reply':
        this.requests.settle(msg);
        return;
      case 'progress':
        this.requests.progress(msg.inReplyTo, msg.message, msg.fraction, msg.load);
        return;
      case 'loaded':
        this._model = msg.model;
        return;
      case 'events': {
        this.onEvents.fire({ runId: msg.runId, events: msg.events });
        const last = msg.events[msg.events.length - 1];
        if (last?.type === 'run-state' && (FINAL_RUN_STATES as readonly string[]).includes(last.state)) {
          this.liveRuns.delete(msg.runId);
          this.onRunEnded.fire({ runId: msg.runId, state: last.state, message: last.message });
        }
        return;
      }
      case 'log':
        this.opts.log(msg.level, `[engine] ${msg.text}`);
        return;
      case 'ready':
        return;
    }
  }

  private sendToChild(msg: EngineRequest): void {
    const child = this.child;
    if (!child || !child.connected) throw new EngineCrashedError('The engine process is not running');
    try {
      child.send(msg, (err) => {
        if (err) this.requests.fail(msg.id, new EngineCrashedError(`Could not reach the engine process: ${err.message}`));
      });
    } catch (e) {
      throw new EngineCrashedError(`Could not reach the engine process: ${(e as Error).message}`);
    }
  }

  private async request<T>(req: WithoutId<EngineRequest>, opts: Parameters<RequestTracker<EngineRequest>['request']>[1] = {}): Promise<T> {
    await this.start();
    return this.requests.request<T>(req, opts);
  }

  /**
   * Loads a model (once: the same folder, device, threads and K/V type reuse the loaded one).
   * `modelDir` '' is the built-in model. Cancel with `cancelLoad()`.
   */
  load(
    modelDir: string,
    device: Device,
    threads: number,
    onProgress?: (message: string, fraction?: number, load?: LoadProgress) => void,
    kvDtype: KvDtype = 'auto',
  ): Promise<ModelSummary> {
    const key = JSON.stringify([modelDir, device, threads, kvDtype]);
    if (this.loadPromise && this.loadKey === key) return this.loadPromise;
    if (this._model && this.loadKey === key && (this._state === 'loaded' || this._state === 'ready')) return Promise.resolve(this._model);
    if (this.liveRuns.size > 0 && this.loadKey !== key) {
      return Promise.reject(new Error('A run is in progress with the loaded model; stop it before loading another model'));
    }
    this.loadKey = key;
    let p: Promise<ModelSummary> | null = null;
    p = (async () => {
      await this.start();
      this.setState('loading');
      try {
        const model = await this.request<ModelSummary>(
          { type: 'load', modelDir, device, threads, kvDtype },
          {
            schema: ModelSummary,
            onProgress: (message, fraction, load) => {
              this.setLoadProgress({ message, fraction, load });
              onProgress?.(message, fraction, load);
            },
          },
        );
        this._model = model;
        this.setLoadProgress(null);
        this.setState('loaded');
        return model;
      } catch (e) {
        this.setLoadProgress(null);
        if (this._state === 'loading') this.setState('ready', (e as Error).message);
        if (this.loadKey === key) this.loadKey = '';
        throw e;
      } finally {
        if (this.loadPromise === p) this.loadPromise = null;
      }
    })();
    this.loadPromise = p;
    return p;
  }

  /** The loaded model when it is the one these arguments would load, else null. */
  loadedFor(modelDir: string, device: Device, threads: number, kvDtype: KvDtype = 'auto'): ModelSummary | null {
    const key = JSON.stringify([modelDir, device, threads, kvDtype]);
    return this._model && this._state === 'loaded' && this.loadKey === key && !this.loadPromise ? this._model : null;
  }

  /** Cancels a model load: the load runs in native code, so the process is ended. */
  async cancelLoad(): Promise<void> {
    if (this._state !== 'loading' && this._state !== 'starting') return;
    this.opts.log('info', 'Model load cancelled: stopping the engine process');
    await this.stopProcess();
  }

  async startRun(runId: string, config: RunConfig): Promise<void> {
    if (!this._model) throw new Error('No model is loaded');
    await this.request<void>({ type: 'start', runId, config });
    this.liveRuns.add(runId);
  }

  control(runId: string, control: Control): Promise<unknown> {
    return this.request<unknown>({ type: 'control', runId, control });
  }

  inspect(runId: string, block: number, index: number, attention: boolean): Promise<InspectResult> {
    return this.request<InspectResult>({ type: 'inspect', runId, block, index, attention }, { schema: InspectResult });
  }

  /** Stops the engine process (gracefully, then by force) and starts a fresh one. */
  async restart(): Promise<void> {
    await this.stopProcess();
    await this.start();
  }

  /** Asks the engine to shut down; kills it if it does not exit within `graceMs`. Idempotent while it stops. */
  stopProcess(graceMs = 3000): Promise<void> {
    this.stopping ??= this.stopChild(graceMs).finally(() => (this.stopping = null));
    return this.stopping;
  }

  private async stopChild(graceMs: number): Promise<void> {
    const child = this.child;
    if (!child) {
      if (this._state === 'crashed') this.setState('idle');
      return;
    }
    this.intentionalExit = true;
    this.setState('stopping');
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    if (child.connected) {
      try {
        child.send({ type: 'shutdown', id: this.requests.newId() } satisfies EngineRequest);
      } catch {
        /* already gone */
      }
    }
    const timer = setTimeout(() => {
      try {
        child.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }, graceMs);
    await exited;
    clearTimeout(timer);
  }

  /** Kills the engine process at once (tests, and a host that does not start). */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.child?.kill(signal);
  }

  /** dispose() that resolves once the engine process has gone (deactivate, CLIs, tests). */
  async shutdown(): Promise<void> {
    const stopped = this.stopProcess(1000);
    this.dispose();
    await stopped;
  }
}
