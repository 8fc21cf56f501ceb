/**
 * The sidebar view (activity-bar container "Hogwild"): the runs and their workers, and a
 * compact cache map of the shown run (the active one, else the newest). Run summaries, and
 * the shown run's cache-map events (cacheMapEvents: no texts), are pushed at most 15 times a
 * second, and only while the view is visible; a (re)loaded view gets the whole run first.
 */
import * as vscode from 'vscode';
import type { ToWebview } from '../../protocol/messages';
import { validateFromWebview } from '../../protocol/validate';
import { replyTo } from '../../protocol/requests';
import { Coalescer, packIds } from '../coalesce';
import { cacheMapEvents } from '../insights/cacheMapEvents';
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
  /** A `runs` message is on its way; a change meanwhile sends the newest once it is taken. */
  private runsInFlight = false;
  private runsPending = false;
  /** The run whose cache map the view has (sent with `init`). */
  private cacheRunId: string | null = null;
  private readonly cacheEvents = new Coalescer((events) => this.cacheRunId && this.post({ type: 'events', runId: this.cacheRunId, events: packIds(events) }), INTERVAL_MS);

  constructor(private readonly host: PanelHost, private readonly openPanel: (runId: string, token?: { block: number; index: number }) => void) {
    super();
    this._register(toDisposable(() => this.cacheEvents.dispose()));
    this._register(
      host.runs.onRunEvents(({ runId, events }) => {
        if (runId !== this.cacheRunId || !this.ready || !this.view?.visible) return;
        const mine = cacheMapEvents(events);
        if (mine.length > 0) this.cacheEvents.push(mine);
      }),
    );
    // Rates decay while nothing arrives (a paused run): refresh once a second while one is live.
    const ticker = setInterval(() => host.runs.liveRun() && this.schedule(), 1000);
    this._register(toDisposable(() => clearInterval(ticker)));
    this._register(toDisposable(() => this.timer && clearTimeout(this.timer)));
    this._register(toDisposable(() => this.viewDisposables.forEach((d) => d.dispose())));
    this._register(host.runs.onDidChangeRuns(() => this.schedule()));
    this._register(host.onDidChangeEngineState((s) => this.post({ type: 'engine', ...s })));
  }

  /** Is the view resolved and ready (the e2e suite waits for it)? */
  get isReady(): boolean {
    return this.ready;
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    for (const d of this.viewDisposables) d.dispose();
    this.view = view;
    this.ready = false;
    this.runsInFlight = false;
    this.runsPending = false;
    view.webview.options = webviewOptions(this.host.extensionUri);
    view.webview.html = webviewHtml(view.webview, this.host.extensionUri, { bundle: 'sidebar', styles: ['common.css', 'cache-map.css', 'sidebar.css'], title: 'Hogwild workers' });
    this.viewDisposables = [
      view.webview.onDidReceiveMessage((raw) => this.onMessage(raw)),
      view.onDidChangeVisibility(() => {
        // Events are not sent while hidden: the map starts over when the view is shown.
        if (!view.visible) this.cacheRunId = null;
        else this.schedule();
      }),
      view.onDidDispose(() => {
        this.view = null;
        this.ready = false;
      }),
    ];
  }

  /** Posts a message; resolves once the workbench has taken it. */
  private post(msg: ToWebview): Thenable<boolean> | undefined {
    if (!this.view || !this.ready) return undefined;
    const sent = this.view.webview.postMessage(msg);
    sent.then(undefined, () => undefined);
    return sent;
  }

  private schedule(): void {
    if (this.timer || !this.view || !this.ready) return;
    if (this.runsInFlight) {
      this.runsPending = true;
      return;
    }
    const wait = Math.max(0, INTERVAL_MS - (Date.now() - this.last));
    this.timer = setTimeout(() => {
      this.timer = null;
      this.last = Date.now();
      if (this.view?.visible) this.sendRuns();
    }, wait);
  }

  private sendRuns(): void {
    // One summary in flight at a time (a busy renderer gets the newest, not a queue of old ones).
    const sent = this.post({ type: 'runs', runs: this.host.runs.summaries(), activeRunId: this.host.runs.activeRunId });
    if (sent) {
      this.runsInFlight = true;
      const done = () => {
        if (!this.runsInFlight) return;
        this.runsInFlight = false;
        clearTimeout(timeout);
        if (this.runsPending) {
          this.runsPending = false;
          this.schedule();
        }
      };
      const timeout = setTimeout(done, 2000);
      sent.then(done, done);
    }
    const shown = this.shownRunId();
    if (shown !== this.cacheRunId) this.sendCacheInit(shown);
  }

  /** The run the view shows: the active one, else the newest (as the webview picks it). */
  private shownRunId(): string | null {
    const all = this.host.runs.all();
    return this.host.runs.activeRunId ?? all[all.length - 1]?.model.runId ?? null;
  }

  /** Everything the shown run's cache map needs so far; `events` follow. */
  private sendCacheInit(runId: string | null): void {
    this.cacheEvents.dispose();
    this.cacheRunId = runId;
    const rec = runId ? this.host.runs.get(runId) : undefined;
    if (!rec) return;
    const m = rec.model;
    this.post({ type: 'init', runId: m.runId, title: m.title, config: m.config, source: m.source, events: packIds(cacheMapEvents(rec.trace.events())) });
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
        this.cacheRunId = null; // a fresh document: the whole run again
        const es = this.host.engineState();
        this.post({ type: 'engine', ...es });
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
          Promise.resolve().then(() => (msg.command === 'open-panel' && msg.runId ? this.openPanel(msg.runId, msg.token) : this.host.command(msg))),
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
