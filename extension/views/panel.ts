/**
 * The run panel: one webview panel per run (revealed again when asked twice). Engine events
 * for its run are coalesced to at most 30 messages per second (the webview renders at most
 * once per animation frame, 60 per second). A WebviewPanelSerializer
 * brings panels back after a window reload: from the live run when the window still has it,
 * else from the run's trace file in the extension's storage, else the webview shows what it
 * saved with setState.
 */
import * as vscode from 'vscode';
import * as fs from 'node:fs';
import type { EngineStatus, FromWebview, InspectResult, ToWebview } from '../../protocol/messages';
import { validateFromWebview } from '../../protocol/validate';
import { replyTo } from '../../protocol/requests';
import { Coalescer, packIds } from '../coalesce';
import type { RunManager } from '../runs';
import type { RunSnapshot } from '../runModel';
import { readTrace } from '../trace';
import { webviewHtml, webviewOptions } from './html';
import { Disposable, toDisposable } from '../disposable';

export const PANEL_VIEW_TYPE = 'hogwild.runPanel';
const PANEL_INTERVAL_MS = 1000 / 30;

export interface PanelHost {
  runs: RunManager;
  extensionUri: vscode.Uri;
  engineState(): EngineStatus;
  onDidChangeEngineState: vscode.Event<EngineStatus>;
  /** Runs a command a webview asked for (already validated). */
  command(msg: Extract<FromWebview, { type: 'command' }>): void;
  /** Applies a control a webview asked for; errors come back as notices. */
  control(runId: string, control: Extract<FromWebview, { type: 'control' }>['control']): Promise<unknown>;
  /** Inspects a cache position of a live run. */
  inspect(runId: string, block: number, index: number): Promise<InspectResult>;
  log(level: 'info' | 'warn' | 'error', text: string): void;
}

export class RunPanel extends Disposable {
  private coalescer: Coalescer;
  private ready = false;
  /** A position to inspect once the webview is ready (a new panel is not yet). */
  private pendingInspect: { block: number; index: number } | null = null;

  constructor(
    readonly panel: vscode.WebviewPanel,
    public runId: string,
    private readonly host: PanelHost,
    private readonly onDispose: (p: RunPanel) => void,
  ) {
    super();
    panel.webview.options = webviewOptions(host.extensionUri);
    panel.iconPath = vscode.Uri.joinPath(host.extensionUri, 'media', 'hogwild.svg');
    panel.webview.html = webviewHtml(panel.webview, host.extensionUri, { bundle: 'panel', styles: ['common.css', 'cache-map.css', 'panel.css'], title: 'Hogwild run' });
    // 30 messages a second at most: smooth enough for text, and half the work of 60 for the
    // renderer that every webview shares with the workbench.
    // One message in flight at a time: a busy renderer gets fewer, larger ones (coalesce.ts).
    this.coalescer = new Coalescer((events) => this.post({ type: 'events', runId: this.runId, events: packIds(events) }), PANEL_INTERVAL_MS);
    // Disposed newest first: the listeners go before the panel itself.
    this._register(panel);
    this._register(toDisposable(() => this.onDispose(this)));
    this._register(toDisposable(() => this.coalescer.dispose()));
    this._register(panel.webview.onDidReceiveMessage((raw) => this.onMessage(raw)));
    this._register(panel.onDidDispose(() => this.dispose()));
    this._register(
      host.runs.onRunEvents(({ runId, events }) => {
        if (runId === this.runId && this.ready) this.coalescer.push(events);
      }),
    );
    this._register(host.onDidChangeEngineState((s) => this.post({ type: 'engine', ...s })));
    this._register(
      panel.onDidChangeViewState((e) => {
        if (e.webviewPanel.active) host.runs.setActive(this.runId);
      }),
    );
    this.updateTitle();
  }

  private updateTitle(): void {
    const rec = this.host.runs.get(this.runId);
    this.panel.title = rec ? `Hogwild: ${rec.model.title}` : 'Hogwild run';
  }

  /** Posts a message; resolves once the workbench has taken it. */
  private post(msg: ToWebview): Thenable<boolean> | undefined {
    if (this.isDisposed) return undefined;
    const sent = this.panel.webview.postMessage(msg);
    sent.then(undefined, () => undefined);
    return sent;
  }

  /** Shows another run in this panel. */
  showRun(runId: string): void {
    this.coalescer.flush();
    this.runId = runId;
    this.updateTitle();
    if (this.ready) this.sendInit();
  }

  private sendInit(): void {
    const rec = this.host.runs.get(this.runId);
    if (!rec) return;
    this.coalescer.dispose();
    const m = rec.model;
    this.post({ type: 'init', runId: m.runId, title: m.title, config: m.config, source: m.source, events: packIds(rec.trace.events()) });
    const es = this.host.engineState();
    this.post({ type: 'engine', ...es });
    this.flushInspect();
  }

  /** Opens the panel's token inspector on a cache position of its run (now, or once it is ready). */
  inspectToken(block: number, index: number): void {
    this.pendingInspect = { block, index };
    if (this.ready) this.flushInspect();
  }

  private flushInspect(): void {
    const t = this.pendingInspect;
    if (!t || !this.host.runs.get(this.runId)) return;
    this.pendingInspect = null;
    this.post({ type: 'inspect-token', runId: this.runId, block: t.block, index: t.index });
  }

  private onMessage(raw: unknown): void {
    const v = validateFromWebview(raw);
    if (!v.ok) {
      this.host.log('warn', `Ignored an invalid message from the run panel: ${v.error}`);
      this.post({ type: 'notice', level: 'error', message: `Rejected a message: ${v.error}` });
      return;
    }
    const msg = v.value;
    switch (msg.type) {
      case 'ready':
        this.ready = true;
        this.sendInit();
        return;
      case 'control': {
        const c = msg.control;
        // The reply's result is a line for the panel's notice (none: nothing to say).
        this.answer(msg.id, msg.runId !== this.runId ? Promise.reject(new Error('That control was for another run')) : this.host.control(msg.runId, c).then((result) =>
          c.type === 'fork' && typeof result === 'number' ? `Forked worker ${c.worker}: new worker ${result}` : c.type === 'inject' ? 'Note injected' : undefined,
        ));
        return;
      }
      case 'inspect':
        this.answer(msg.id, msg.runId !== this.runId ? Promise.reject(new Error('That position is in another run')) : this.host.inspect(msg.runId, msg.block, msg.index));
        return;
      case 'select-run':
        if (this.host.runs.get(msg.runId)) this.showRun(msg.runId);
        return;
      case 'command':
        this.answer(msg.id, Promise.resolve().then(() => this.host.command({ ...msg, runId: msg.runId ?? this.runId })));
        return;
    }
  }

  /** Replies to request `id` with the outcome of `work`. */
  private answer(id: number, work: Promise<unknown>): void {
    work.then(
      (result) => this.post(replyTo(id, { ok: true, result })),
      (e: unknown) => this.post(replyTo(id, { ok: false, error: e instanceof Error ? e.message : String(e) })),
    );
  }

  reveal(): void {
    this.panel.reveal(undefined, false);
  }

}

export class RunPanels extends Disposable implements vscode.WebviewPanelSerializer {
  private readonly panels = new Set<RunPanel>();

  constructor(private readonly host: PanelHost) {
    super();
    this._register(toDisposable(() => [...this.panels].forEach((p) => p.dispose())));
  }

  /** All open panels (the e2e tests look at them). */
  get open(): RunPanel[] {
    return [...this.panels];
  }

  /** Opens (or reveals) the panel of a run. */
  show(runId: string, opts: { preserveFocus?: boolean } = {}): RunPanel {
    for (const p of this.panels) {
      if (p.runId === runId) {
        p.panel.reveal(undefined, opts.preserveFocus ?? false);
        return p;
      }
    }
    const panel = vscode.window.createWebviewPanel(PANEL_VIEW_TYPE, 'Hogwild run', { viewColumn: vscode.ViewColumn.Beside, preserveFocus: opts.preserveFocus ?? false }, { ...webviewOptions(this.host.extensionUri), retainContextWhenHidden: false });
    return this.adopt(panel, runId);
  }

  private adopt(panel: vscode.WebviewPanel, runId: string): RunPanel {
    const p = new RunPanel(panel, runId, this.host, (x) => this.panels.delete(x));
    this.panels.add(p);
    return p;
  }

  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
    const snap = (state as { snapshot?: RunSnapshot } | undefined)?.snapshot;
    const runId = typeof snap?.runId === 'string' ? snap.runId : '';
    if (runId && this.host.runs.get(runId)) {
      this.adopt(panel, runId);
      return;
    }
    // After a reload the engine run is gone; its trace (written as it came) brings it back.
    if (runId && /^[A-Za-z0-9_.-]{1,64}$/.test(runId)) {
      const file = this.host.runs.traceFileOf(runId);
      if (fs.existsSync(file)) {
        try {
          const trace = await readTrace(file);
          const rec = this.host.runs.replay(trace, { instant: true });
          this.adopt(panel, rec.model.runId);
          return;
        } catch (e) {
          this.host.log('warn', `Could not restore run ${runId} from its trace: ${(e as Error).message}`);
        }
      }
    }
    // Nothing to re-send: the webview shows its saved snapshot.
    this.adopt(panel, runId || 'none');
  }
}
