/**
 * The sidebar view (activity-bar container "Hogwild"): the runs and their workers. Run
 * summaries are pushed at most 15 times a second, and only while the view is visible.
 */
import * as vscode from 'vscode';
import type { ToWebview } from '../../protocol/messages';
import { validateFromWebview } from '../../protocol/validate';
import { replyTo } from '../../protocol/requests';
import type { PanelHost } from './panel';
import { webviewHtml, webviewOptions } from './html';
import { Disposable, toDisposable } from '../disposable';

export const SIDEBAR_VIEW_ID = 'hogwild.workers';
const INTERVAL_MS = 1000 / 15;

export class SidebarProvider extends Disposable implements vscode.WebviewViewProvider {
  private view: vscode.WebviewView | null = null;
  private viewDisposables: vscode.Disposable[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private last = 0;
  private ready = false;

  constructor(private readonly host: PanelHost, private readonly openPanel: (runId: string) => void) {
    super();
    // Rates decay while nothing arrives (a paused run): refresh once a second while one is live.
    const ticker = setInterval(() => host.runs.liveRun() && this.schedule(), 1000);
    this._register(toDisposable(() => clearInterval(ticker)));
    this._register(toDisposable(() => this.timer && clearTimeout(this.timer)));
    this._register(toDisposable(() => this.viewDisposables.forEach((d) => d.dispose())));
    this._register(host.runs.onDidChangeRuns(() => this.schedule()));
    this._register(host.onDidChangeEngineState((s) => this.post({ type: 'engine', state: s.state, message: s.message })));
  }

  /** Is the view resolved and ready (the e2e suite waits for it)? */
  get isReady(): boolean {
    return this.ready;
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    for (const d of this.viewDisposables) d.dispose();
    this.view = view;
    this.ready = false;
    view.webview.options = webviewOptions(this.host.extensionUri);
    view.webview.html = webviewHtml(view.webview, this.host.extensionUri, { bundle: 'sidebar', styles: ['common.css', 'sidebar.css'], title: 'Hogwild workers' });
    this.viewDisposables = [
      view.webview.onDidReceiveMessage((raw) => this.onMessage(raw)),
      view.onDidChangeVisibility(() => view.visible && this.schedule()),
      view.onDidDispose(() => {
        this.view = null;
        this.ready = false;
      }),
    ];
  }

  private post(msg: ToWebview): void {
    if (this.view && this.ready) void this.view.webview.postMessage(msg);
  }

  private schedule(): void {
    if (this.timer || !this.view || !this.ready) return;
    const wait = Math.max(0, INTERVAL_MS - (Date.now() - this.last));
    this.timer = setTimeout(() => {
      this.timer = null;
      this.last = Date.now();
      if (this.view?.visible) this.sendRuns();
    }, wait);
  }

  private sendRuns(): void {
    this.post({ type: 'runs', runs: this.host.runs.summaries(), activeRunId: this.host.runs.activeRunId });
  }

  private onMessage(raw: unknown): void {
    const v = validateFromWebview(raw);
    if (!v.ok) {
      this.host.log('warn', `Ignored an invalid message from the sidebar: ${v.error}`);
      return;
    }
    const msg = v.value;
    switch (msg.type) {
      case 'ready': {
        this.ready = true;
        const es = this.host.engineState();
        this.post({ type: 'engine', state: es.state, message: es.message });
        this.sendRuns();
        return;
      }
      case 'control':
        this.answer(
          msg.id,
          this.host.control(msg.runId, msg.control).catch((e: Error) => {
            void vscode.window.showErrorMessage(`Hogwild: ${e.message}`);
            throw e;
          }),
        );
        return;
      case 'select-run':
        this.host.runs.setActive(msg.runId);
        return;
      case 'command':
        this.answer(
          msg.id,
          Promise.resolve().then(() => (msg.command === 'open-panel' && msg.runId ? this.openPanel(msg.runId) : this.host.command(msg))),
        );
        return;
      case 'inspect':
        this.answer(msg.id, Promise.reject(new Error('The sidebar shows no cache positions')));
        return;
    }
  }

  /** Replies to request `id` with the outcome of `work` (its result stays in the extension). */
  private answer(id: number, work: Promise<unknown>): void {
    work.then(
      () => this.post(replyTo(id, { ok: true })),
      (e: unknown) => this.post(replyTo(id, { ok: false, error: e instanceof Error ? e.message : String(e) })),
    );
  }

}
