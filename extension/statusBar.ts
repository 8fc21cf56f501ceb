/** The status bar item: the active run (state, workers, tok/s) or the engine's trouble. */
import * as vscode from 'vscode';
import type { EngineClient } from './engine/client';
import type { RunManager } from './runs';
import { Disposable, toDisposable } from './disposable';
import { formatBytes, loadText, prefillText } from '../protocol/progress';

export class StatusBar extends Disposable {
  private readonly item: vscode.StatusBarItem;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly runs: RunManager, private readonly engine: EngineClient) {
    super();
    this.item = this._register(vscode.window.createStatusBarItem('hogwild.status', vscode.StatusBarAlignment.Left, 50));
    this.item.name = 'Hogwild';
    this._register(runs.onDidChangeRuns(() => this.schedule()));
    this._register(engine.onDidChangeState.event(() => this.schedule()));
    this._register(engine.onLoadProgress.event(() => this.schedule()));
    // Rates decay while a run is paused; refresh now and then.
    const ticker = setInterval(() => this.runs.liveRun() && this.schedule(), 1000);
    this._register(toDisposable(() => clearInterval(ticker)));
    this._register(toDisposable(() => this.timer && clearTimeout(this.timer)));
    this.update();
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.update();
    }, 250);
  }

  private update(): void {
    const es = this.engine.state;
    const rec = this.runs.liveRun() ?? this.runs.active();
    if (es === 'crashed') {
      this.item.text = '$(error) Hogwild: engine stopped';
      this.item.tooltip = 'The Hogwild engine process stopped. Click to restart it.';
      this.item.command = 'hogwild.restartEngine';
      this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
      this.item.show();
      return;
    }
    this.item.backgroundColor = undefined;
    if (es === 'loading' && !rec?.model.isActive) {
      const load = this.engine.loadProgress;
      this.item.text = `$(sync~spin) Hogwild: ${load?.load ? `loading model · ${loadText(load.load)}` : 'loading model'}`;
      this.item.tooltip = load?.message ?? 'Loading the model';
      this.item.command = undefined;
      this.item.show();
      return;
    }
    if (!rec) {
      this.item.hide();
      return;
    }
    const s = rec.model.summary();
    const icon = s.state === 'running' ? '$(pulse)' : s.state === 'paused' ? '$(debug-pause)' : s.state === 'failed' ? '$(error)' : '$(check)';
    const rate = rec.model.isActive ? ` · ${s.tokensPerSecond.toFixed(1)} tok/s` : '';
    this.item.text = s.prefill
      ? `$(sync~spin) Hogwild: ${prefillText(s.prefill)}`
      : `${icon} Hogwild: ${s.state} · ${s.workers.length} workers · ${s.tokens} tok${rate}`;
    const model = rec.engineModel;
    const kv = s.kvBytes !== undefined ? `\n\nKV cache: ${formatBytes(s.kvBytes)} in use${model?.kvDtype ? ` (${model.kvDtype})` : ''}` : '';
    this.item.tooltip = new vscode.MarkdownString(`**${escapeMd(s.title)}**\n\n${s.workers.map((w) => `- ${escapeMd(w.name)}: ${w.state}, step ${w.step}, ${w.tokens} tokens`).join('\n')}${escapeMd(kv)}\n\nClick to open the run panel.`);
    this.item.command = { title: 'Open Run Panel', command: 'hogwild.openRunPanel', arguments: [s.runId] };
    this.item.show();
  }

}

function escapeMd(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, (c) => `\\${c}`);
}
