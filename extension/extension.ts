/**
 * Hogwild for VS Code: activation. Wires the engine client (a forked engine process), the
 * runs, the sidebar view, the run panels, the status bar, the commands and the settings.
 */
import * as vscode from 'vscode';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { EngineClient, CancelledError } from './engine/client';
import { RunManager, type RunRecord } from './runs';
import { RunPanels, PANEL_VIEW_TYPE, type PanelHost } from './views/panel';
import { SidebarProvider, SIDEBAR_VIEW_ID } from './views/sidebar';
import { StatusBar } from './statusBar';
import { expandHome, readSettings, settingsGetter, toRunConfig, type HogwildSettings } from './settings';
import { MAX_TRACE_BYTES, parseTrace, readTrace, type ParsedTrace } from './trace';
import { markdownOfRun } from './insights/markdown';
import type { Control, EngineStatus, FromWebview, ModelSummary, RawRunConfig, RunConfig } from '../protocol/messages';
import { validateRunConfig } from '../protocol/validate';
import { MAX_NOTE_CHARS } from '../protocol/limits';
import { openEvalReport } from './views/evalReport';
import { CONFIRM_TOKENS, confirmText, countTokens, overContext } from './problemSize';

/** What activate() returns: the extension-host tests drive and observe the extension with it. */
export interface HogwildApi {
  engine: EngineClient;
  runs: RunManager;
  panels: RunPanels;
  sidebar: SidebarProvider;
  output: vscode.LogOutputChannel;
  /** Starts a run on `problem` without any UI prompt; resolves with the run id. */
  solve(problem: string): Promise<string | undefined>;
}

let api: HogwildApi | undefined;

export function activate(context: vscode.ExtensionContext): HogwildApi {
  const output = vscode.window.createOutputChannel('Hogwild', { log: true });
  const log = (level: 'info' | 'warn' | 'error', text: string) => output[level](text);
  context.subscriptions.push(output);

  const storage = context.globalStorageUri.fsPath;
  const engine = new EngineClient({
    hostPath: context.asAbsolutePath(path.join('dist', 'engine-host.js')),
    cwd: context.extensionPath,
    env: { ...process.env, HOGWILD_DATA_DIR: storage, HOGWILD_EXTENSION_DIR: context.extensionPath },
    log,
  });
  const runs = new RunManager(engine, path.join(storage, 'traces'), log);
  let engineMessage: string | undefined;
  const engineStateEmitter = new vscode.EventEmitter<EngineStatus>();
  const engineStatus = (): EngineStatus => ({ state: engine.state, message: engineMessage, ...(engine.loadProgress ? { progress: engine.loadProgress.message } : {}) });
  const engineSub = engine.onDidChangeState.event((s) => {
    engineMessage = s.message;
    engineStateEmitter.fire(engineStatus());
  });
  // A model load's progress reaches the views as part of the engine's status.
  const loadSub = engine.onLoadProgress.event(() => engineStateEmitter.fire(engineStatus()));
  context.subscriptions.push(engineStateEmitter, { dispose: () => engineSub.dispose() }, { dispose: () => loadSub.dispose() }, runs, engine);

  const host: PanelHost = {
    runs,
    extensionUri: context.extensionUri,
    engineState: engineStatus,
    onDidChangeEngineState: engineStateEmitter.event,
    command: (msg) => runWebviewCommand(msg),
    control: (runId, c) => runControl(runId, c),
    inspect: (runId, block, index) => {
      const rec = runs.get(runId);
      if (!rec || rec.model.source !== 'live' || !rec.model.isActive) return Promise.reject(new Error('Only a live run can be inspected'));
      return engine.inspect(runId, block, index, true);
    },
    log,
  };
  const panels = new RunPanels(host);
  const sidebar = new SidebarProvider(host, (runId, token) => {
    const p = panels.show(runId);
    if (token) p.inspectToken(token.block, token.index);
  });
  context.subscriptions.push(
    panels,
    sidebar,
    vscode.window.registerWebviewPanelSerializer(PANEL_VIEW_TYPE, panels),
    vscode.window.registerWebviewViewProvider(SIDEBAR_VIEW_ID, sidebar),
    new StatusBar(runs, engine),
  );

  // ------------------------------------------------------------ context keys

  const updateContext = () => {
    const live = runs.liveRun();
    void vscode.commands.executeCommand('setContext', 'hogwild.hasRun', runs.all().length > 0);
    void vscode.commands.executeCommand('setContext', 'hogwild.runActive', !!live);
    void vscode.commands.executeCommand('setContext', 'hogwild.runPaused', live?.model.state === 'paused');
  };
  let ctxTimer: ReturnType<typeof setTimeout> | null = null;
  context.subscriptions.push(
    runs.onDidChangeRuns(() => {
      if (ctxTimer) return;
      ctxTimer = setTimeout(() => {
        ctxTimer = null;
        updateContext();
      }, 100);
    }),
  );
  updateContext();

  // ------------------------------------------------------------ engine problems

  const showEngineError = async (message: string, extra: string[] = []) => {
    const pick = await vscode.window.showErrorMessage(`Hogwild: ${message}`, 'Open Log', 'Restart Engine', ...extra);
    if (pick === 'Open Log') output.show(true);
    else if (pick === 'Restart Engine') await restartEngine();
    return pick;
  };

  const crashSub = engine.onCrash.event((crash) => {
    const kept = crash.runIds.length > 0 ? ' The run so far is kept: save its trace or restart the engine.' : '';
    void showEngineError(`${crash.message}.${kept}`, crash.runIds.length > 0 ? ['Save Trace'] : []).then((pick) => {
      if (pick === 'Save Trace' && crash.runIds[0]) void saveTrace(crash.runIds[0]);
    });
  });
  const endedSub = runs.onRunEnded(({ runId, state, message }) => {
    const rec = runs.get(runId);
    if (state === 'failed' && engine.state !== 'crashed' && rec?.model.source === 'live') void showEngineError(`The run failed: ${message ?? 'unknown error'}`);
  });
  context.subscriptions.push({ dispose: () => crashSub.dispose() }, endedSub);

  async function restartEngine(): Promise<void> {
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'Hogwild: restarting the engine' }, async () => {
      try {
        await engine.restart();
        log('info', 'Engine restarted');
      } catch (e) {
        void showEngineError(`The engine did not restart: ${(e as Error).message}`);
      }
    });
  }

  // ------------------------------------------------------------ settings and model

  function currentSettings(): HogwildSettings | undefined {
    const cfg = vscode.workspace.getConfiguration('hogwild');
    const { settings, errors } = readSettings(settingsGetter(cfg, vscode.workspace.isTrusted));
    if (errors.length > 0) {
      for (const e of errors) log('error', e.message);
      const first = errors[0]!;
      const more = errors.length > 1 ? ` (and ${errors.length - 1} more problem${errors.length > 2 ? 's' : ''}, see the log)` : '';
      void vscode.window.showErrorMessage(`Hogwild: invalid setting: ${first.message}${more}`, 'Open Settings', 'Open Log').then((pick) => {
        if (pick === 'Open Settings') void vscode.commands.executeCommand('workbench.action.openSettings', first.key);
        else if (pick === 'Open Log') output.show(true);
      });
      return undefined;
    }
    return settings;
  }

  async function ensureModel(s: HogwildSettings): Promise<ModelSummary | undefined> {
    const dir = s.modelFolder ? expandHome(s.modelFolder, os.homedir()) : '';
    const label = dir ? path.basename(dir) : 'the built-in model';
    const loaded = engine.loadedFor(dir, s.device, s.threads, s.kvDtype);
    if (loaded) return loaded;
    return vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'Hogwild', cancellable: true },
      async (progress, token) => {
        progress.report({ message: `Loading ${label}…` });
        const sub = token.onCancellationRequested(() => void engine.cancelLoad());
        let last = 0;
        try {
          const model = await engine.load(
            dir,
            s.device,
            s.threads,
            (message, fraction) => {
              const inc = fraction !== undefined ? Math.max(0, fraction * 100 - last) : undefined;
              if (fraction !== undefined) last = fraction * 100;
              progress.report({ message, increment: inc });
            },
            s.kvDtype,
          );
          log('info', `Model loaded: ${model.arch} from ${model.dir} on ${model.device} (${model.layers} layers, hidden ${model.hidden}, vocab ${model.vocab})`);
          return model;
        } catch (e) {
          if (token.isCancellationRequested || e instanceof CancelledError) {
            log('info', 'Model load cancelled');
            void vscode.window.showInformationMessage('Hogwild: model load cancelled.');
            return undefined;
          }
          log('error', `Model load failed: ${(e as Error).message}`);
          void showEngineError(`Could not load ${label}: ${(e as Error).message}`);
          return undefined;
        } finally {
          sub.dispose();
        }
      },
    );
  }

  // ------------------------------------------------------------ runs

  function problemTitle(problem: string): string {
    const line = problem.trim().split('\n')[0]!.trim();
    return line.length > 48 ? `${line.slice(0, 45)}…` : line || 'Untitled problem';
  }

  function waitForEnd(runId: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const rec = runs.get(runId);
      if (!rec || !rec.model.isActive) return resolve();
      const t = setTimeout(() => {
        sub.dispose();
        resolve();
      }, ms);
      const sub = runs.onRunEnded((e) => {
        if (e.runId === runId) {
          clearTimeout(t);
          sub.dispose();
          resolve();
        }
      });
    });
  }

  async function solve(problem: string, opts: { interactive: boolean }): Promise<string | undefined> {
    if (problem.trim() === '') {
      void vscode.window.showWarningMessage('Hogwild: the problem is empty. Select some text, or type a problem.');
      return undefined;
    }
    const s = currentSettings();
    if (!s) return undefined;
    const live = runs.liveRun();
    if (live) {
      const pick = opts.interactive
        ? await vscode.window.showWarningMessage(`Hogwild: the run "${live.model.title}" is still going.`, 'Stop It and Start', 'Cancel')
        : 'Stop It and Start';
      if (pick !== 'Stop It and Start') return undefined;
      await runs.control(live.model.runId, { type: 'stop' }).catch(() => undefined);
      await waitForEnd(live.model.runId, 15000);
    }
    return launch(s, toRunConfig(s, problem), problemTitle(problem), opts);
  }

  /** Loads the model if needed and starts `config` as the live run, in its panel. */
  async function launch(s: HogwildSettings, config: RunConfig, title: string, opts: { interactive: boolean }): Promise<string | undefined> {
    const model = await ensureModel(s);
    if (!model) return undefined;
    if (config.maxContext > 0 && model.maxContext > 0 && config.maxContext > model.maxContext) {
      void vscode.window.showErrorMessage(`Hogwild: hogwild.maxContext (${config.maxContext}) is larger than the model's context (${model.maxContext}).`);
      return undefined;
    }
    let rec: RunRecord;
    try {
      rec = await runs.startLive(config, title, s.saveTraces);
    } catch (e) {
      void showEngineError(`The run did not start: ${(e as Error).message}`);
      return undefined;
    }
    panels.show(rec.model.runId, { preserveFocus: !opts.interactive });
    return rec.model.runId;
  }

  /**
   * A raw run from three input boxes. Ids are written "1,2,3"; anything else is text,
   * tokenised exactly as written (no chat template). Workers are separated by ";" for ids
   * and by " || " for text.
   */
  async function rawRunFromUser(): Promise<RawRunConfig | undefined> {
    const idList = /^\s*\d+(\s*,\s*\d+)*\s*$/;
    const prompt = await vscode.window.showInputBox({
      title: 'Hogwild: Raw Run (1/3): the shared prompt',
      prompt: 'Token ids ("1,2,3") or text, used exactly as given: no chat template, no headers, no protocol text',
      ignoreFocusOut: true,
      validateInput: (v) => (v.trim() === '' ? 'The prompt is empty' : undefined),
    });
    if (prompt === undefined) return undefined;
    const workers = await vscode.window.showInputBox({
      title: 'Hogwild: Raw Run (2/3): each worker\'s first input',
      prompt: 'Ids per worker separated by ";" ("5,6;7;8"), or texts separated by " || "',
      ignoreFocusOut: true,
      validateInput: (v) => (v.trim() === '' ? 'Give at least one worker an input' : undefined),
    });
    if (workers === undefined) return undefined;
    const steps = await vscode.window.showInputBox({
      title: 'Hogwild: Raw Run (3/3): steps',
      value: '24',
      ignoreFocusOut: true,
      validateInput: (v) => (/^\d+$/.test(v.trim()) && Number(v) >= 1 ? undefined : 'A whole number of steps, at least 1'),
    });
    if (steps === undefined) return undefined;
    const ids = (t: string) => t.split(',').map((x) => Number(x.trim()));
    const parts = workers.split(';');
    const workerIds = parts.every((w) => idList.test(w)) ? parts.map(ids) : [];
    return {
      promptIds: idList.test(prompt) ? ids(prompt) : [],
      promptText: idList.test(prompt) ? undefined : prompt,
      workerIds,
      workerTexts: workerIds.length > 0 ? undefined : workers.split(' || '),
      steps: Number(steps.trim()),
    };
  }

  async function problemFromUser(): Promise<string | undefined> {
    const editor = vscode.window.activeTextEditor;
    if (editor) {
      const sel = editor.selection;
      const text = sel.isEmpty ? editor.document.getText() : editor.document.getText(sel);
      if (text.trim() !== '') return (await sizeChecked(text, sel.isEmpty ? path.basename(editor.document.fileName) : null)) ? text : undefined;
    }
    return vscode.window.showInputBox({
      title: 'Hogwild: Solve',
      prompt: 'The problem for the workers to solve together',
      placeHolder: 'e.g. How many positive divisors does 360 have?',
      ignoreFocusOut: true,
      validateInput: (v) => (v.trim() === '' ? 'Type a problem' : v.length > 100_000 ? 'At most 100000 characters' : undefined),
    });
  }

  /**
   * A long problem is measured in tokens first: over the context it is refused at once; a
   * whole file (`wholeFile` names it) of more than ~4k tokens is sent only after a yes.
   */
  async function sizeChecked(text: string, wholeFile: string | null): Promise<boolean> {
    if (text.length < 8000) return true; // well under 4k tokens whatever the tokenizer
    const s = currentSettings();
    if (!s) return false;
    const model = await ensureModel(s);
    if (!model) return false;
    const tokens = await countTokens(model.dir, text);
    if (tokens === null) return true; // no tokenizer: the run's own check refuses what does not fit
    const over = overContext(tokens, s.maxContext, model.maxContext);
    if (over) {
      void vscode.window.showErrorMessage(`Hogwild: ${over}. Select a part of the file, or raise hogwild.maxContext.`);
      return false;
    }
    if (wholeFile === null || tokens <= CONFIRM_TOKENS) return true;
    const pick = await vscode.window.showWarningMessage(confirmText(tokens, wholeFile), { modal: true }, 'Solve');
    return pick === 'Solve';
  }

  /** The run a command acts on: the given one, else the active one, else the live one. */
  function targetRun(runId?: unknown): RunRecord | undefined {
    if (typeof runId === 'string' && runs.get(runId)) return runs.get(runId);
    const a = runs.active();
    if (a && a.model.isActive && a.model.source === 'live') return a;
    return runs.liveRun() ?? a;
  }

  async function runControl(runId: string, c: Control): Promise<unknown> {
    const result = await runs.control(runId, c);
    log('info', `Control ${c.type}${'worker' in c && c.worker !== undefined ? ` (worker ${c.worker})` : ''} on ${runId}${typeof result === 'number' ? ` -> ${result}` : ''}`);
    return result;
  }

  async function controlCommand(c: Control, runId?: unknown): Promise<unknown> {
    const rec = targetRun(runId);
    if (!rec || !rec.model.isActive || rec.model.source !== 'live') {
      void vscode.window.showInformationMessage('Hogwild: no run in progress.');
      return undefined;
    }
    try {
      return await runControl(rec.model.runId, c);
    } catch (e) {
      void vscode.window.showErrorMessage(`Hogwild: ${(e as Error).message}`);
      return undefined;
    }
  }

  async function pickWorker(rec: RunRecord, title: string, withAll: boolean): Promise<number | 'all' | undefined> {
    const items: (vscode.QuickPickItem & { value: number | 'all' })[] = [];
    if (withAll) items.push({ label: 'All workers', value: 'all' });
    for (const w of [...rec.model.workers.values()].sort((a, b) => a.info.worker - b.info.worker)) {
      items.push({ label: w.info.name, description: `${w.info.state} · step ${w.step} · ${w.tokens} tokens`, detail: w.lastLine || undefined, value: w.info.worker });
    }
    const pick = await vscode.window.showQuickPick(items, { title, placeHolder: 'Choose a worker' });
    return pick?.value;
  }

  async function saveTrace(runId?: unknown): Promise<void> {
    const rec = typeof runId === 'string' ? runs.get(runId) : runs.active() ?? runs.all().filter((r) => r.trace).pop();
    if (!rec || !rec.trace) {
      void vscode.window.showInformationMessage('Hogwild: no run trace to save.');
      return;
    }
    const base = vscode.workspace.workspaceFolders?.[0]?.uri ?? vscode.Uri.file(os.homedir());
    const uri = await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.joinPath(base, `${rec.model.runId}.hogwild.jsonl`), filters: { 'Hogwild trace': ['jsonl'] }, title: 'Save Run Trace' });
    if (!uri) return;
    try {
      // Through the workspace's file system: a virtual workspace's folder works too.
      await vscode.workspace.fs.writeFile(uri, Buffer.from(rec.trace.text(), 'utf8'));
      void vscode.window.showInformationMessage(`Hogwild: trace saved to ${uri.scheme === 'file' ? uri.fsPath : uri.toString()}`);
    } catch (e) {
      void vscode.window.showErrorMessage(`Hogwild: could not save the trace: ${(e as Error).message}`);
    }
  }

  async function exportMarkdown(runId?: unknown): Promise<void> {
    const rec = typeof runId === 'string' ? runs.get(runId) : runs.active() ?? runs.all().pop();
    if (!rec) {
      void vscode.window.showInformationMessage('Hogwild: no run to export.');
      return;
    }
    // Next to the trace when it was saved in the workspace; the run's name otherwise.
    const base = vscode.workspace.workspaceFolders?.[0]?.uri ?? vscode.Uri.file(os.homedir());
    const uri = await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.joinPath(base, `${rec.model.runId}.hogwild.md`), filters: { Markdown: ['md'] }, title: 'Export Run as Markdown' });
    if (!uri) return;
    try {
      await fs.promises.writeFile(uri.fsPath, markdownOfRun(rec.model, rec.trace.events()), 'utf8');
      void vscode.window.showInformationMessage(`Hogwild: run exported to ${uri.fsPath}`);
    } catch (e) {
      void vscode.window.showErrorMessage(`Hogwild: could not export the run: ${(e as Error).message}`);
    }
  }

  async function openTrace(arg?: unknown): Promise<string | undefined> {
    let uri: vscode.Uri | undefined;
    if (typeof arg === 'string') uri = vscode.Uri.file(arg);
    else if (arg instanceof vscode.Uri) uri = arg;
    else {
      const uris = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { 'Hogwild trace': ['jsonl'], 'All files': ['*'] }, title: 'Open Run Trace' });
      uri = uris?.[0];
    }
    if (!uri) return undefined;
    const file = uri.scheme === 'file' ? uri.fsPath : uri.toString();
    try {
      const trace = uri.scheme === 'file' ? await readTrace(uri.fsPath) : await readTraceUri(uri);
      const rec = runs.replay(trace);
      panels.show(rec.model.runId);
      log('info', `Replaying ${file}: ${trace.batches.length} batches`);
      return rec.model.runId;
    } catch (e) {
      void vscode.window.showErrorMessage(`Hogwild: cannot open the trace: ${(e as Error).message}`);
      return undefined;
    }
  }

  /** A trace in a virtual workspace, through its file system (same size limit as readTrace). */
  async function readTraceUri(uri: vscode.Uri): Promise<ParsedTrace> {
    const stat = await vscode.workspace.fs.stat(uri);
    if (stat.size > MAX_TRACE_BYTES) throw new Error(`${uri.toString()}: too large for a trace (${stat.size} bytes)`);
    return parseTrace(Buffer.from(await vscode.workspace.fs.readFile(uri)).toString('utf8'), uri.toString());
  }

  function runWebviewCommand(msg: Extract<FromWebview, { type: 'command' }>): void {
    switch (msg.command) {
      case 'restart-engine':
        void restartEngine();
        return;
      case 'open-log':
        output.show(true);
        return;
      case 'save-trace':
        void saveTrace(msg.runId);
        return;
      case 'export-markdown':
        void exportMarkdown(msg.runId);
        return;
      case 'open-panel':
        if (msg.runId && runs.get(msg.runId)) panels.show(msg.runId);
        return;
      case 'solve-selection':
        void vscode.commands.executeCommand('hogwild.solveSelection');
        return;
    }
  }

  // ------------------------------------------------------------ commands

  const reg = (id: string, fn: (...args: unknown[]) => unknown) => context.subscriptions.push(vscode.commands.registerCommand(id, fn));

  reg('hogwild.solveSelection', async (arg?: unknown) => {
    // From the palette or the editor menu: the selection; tests may pass the problem text.
    const problem = typeof arg === 'string' ? arg : await problemFromUser();
    if (problem === undefined) return undefined;
    return solve(problem, { interactive: typeof arg !== 'string' });
  });
  reg('hogwild.rawRun', async (arg?: unknown) => {
    // Tests pass a RawRunConfig; people answer three input boxes.
    const raw = arg && typeof arg === 'object' ? (arg as RawRunConfig) : await rawRunFromUser();
    if (!raw) return undefined;
    const s = currentSettings();
    if (!s) return undefined;
    const live = runs.liveRun();
    if (live) {
      void vscode.window.showWarningMessage(`Hogwild: the run "${live.model.title}" is still going; stop it first.`);
      return undefined;
    }
    const checked = validateRunConfig({ ...toRunConfig(s, 'raw run'), raw });
    if (!checked.ok) {
      void vscode.window.showErrorMessage(`Hogwild: ${checked.error}`);
      return undefined;
    }
    return launch(s, checked.value, `raw: ${raw.workerIds.length || raw.workerTexts?.length || 0} workers, ${raw.steps} steps`, {
      interactive: arg === undefined,
    });
  });
  reg('hogwild.evaluate', async (file?: unknown) => {
    try {
      return await openEvalReport(typeof file === 'string' ? file : undefined);
    } catch (err) {
      void vscode.window.showErrorMessage(`Hogwild: ${(err as Error).message}`);
      return undefined;
    }
  });
  reg('hogwild.pause', (runId?: unknown) => controlCommand({ type: 'pause' }, runId));
  reg('hogwild.resume', (runId?: unknown) => controlCommand({ type: 'resume' }, runId));
  reg('hogwild.step', (runId?: unknown) => controlCommand({ type: 'step' }, runId));
  reg('hogwild.stop', (runId?: unknown) => controlCommand({ type: 'stop' }, runId));
  reg('hogwild.injectNote', async (arg?: unknown) => {
    const rec = targetRun();
    if (!rec || !rec.model.isActive || rec.model.source !== 'live') {
      void vscode.window.showInformationMessage('Hogwild: no run in progress.');
      return undefined;
    }
    // Tests pass { target, text }; people get a picker and an input box.
    const a = (arg && typeof arg === 'object' ? arg : {}) as { target?: unknown; text?: unknown };
    const target = a.target === 'all' || typeof a.target === 'number' ? (a.target as number | 'all') : await pickWorker(rec, 'Hogwild: Inject Note — to whom?', true);
    if (target === undefined) return undefined;
    const text =
      typeof a.text === 'string'
        ? a.text
        : await vscode.window.showInputBox({
            title: 'Hogwild: Inject Note',
            prompt: target === 'all' ? 'A note every worker will see' : `A note only ${rec.model.workers.get(target)?.info.name} will see`,
            ignoreFocusOut: true,
            validateInput: (v) => (v.trim() === '' ? 'Type a note' : v.length > MAX_NOTE_CHARS ? `At most ${MAX_NOTE_CHARS} characters` : undefined),
          });
    if (!text) return undefined;
    return controlCommand({ type: 'inject', target, text }, rec.model.runId);
  });
  reg('hogwild.forkWorker', async (arg?: unknown) => {
    const rec = targetRun();
    if (!rec || !rec.model.isActive || rec.model.source !== 'live') {
      void vscode.window.showInformationMessage('Hogwild: no run in progress.');
      return undefined;
    }
    const worker = typeof arg === 'number' ? arg : await pickWorker(rec, 'Hogwild: Fork Worker — which one?', false);
    if (worker === undefined || worker === 'all') return undefined;
    return controlCommand({ type: 'fork', worker }, rec.model.runId);
  });
  reg('hogwild.openRunPanel', (runId?: unknown) => {
    const rec = typeof runId === 'string' ? runs.get(runId) : runs.active() ?? runs.all().pop();
    if (!rec) {
      void vscode.window.showInformationMessage('Hogwild: no run yet. Use "Hogwild: Solve Selection" to start one.');
      return undefined;
    }
    panels.show(rec.model.runId);
    return rec.model.runId;
  });
  reg('hogwild.selectModelFolder', async () => {
    const uris = await vscode.window.showOpenDialog({ canSelectFiles: false, canSelectFolders: true, canSelectMany: false, title: 'Select a Hugging Face model folder (config.json, *.safetensors, tokenizer.json)', openLabel: 'Use This Model' });
    const dir = uris?.[0]?.fsPath;
    if (!dir) return;
    const fs = await import('node:fs');
    if (!fs.existsSync(path.join(dir, 'config.json'))) {
      void vscode.window.showErrorMessage(`Hogwild: ${dir} has no config.json; choose a Hugging Face model folder.`);
      return;
    }
    await vscode.workspace.getConfiguration('hogwild').update('modelFolder', dir, vscode.ConfigurationTarget.Global);
    void vscode.window.showInformationMessage(`Hogwild: model folder set to ${dir}; it loads with the next run.`);
  });
  reg('hogwild.restartEngine', () => restartEngine());
  reg('hogwild.saveRunTrace', (runId?: unknown) => saveTrace(runId));
  reg('hogwild.exportRunMarkdown', (runId?: unknown) => exportMarkdown(runId));
  reg('hogwild.openRunTrace', (arg?: unknown) => openTrace(arg));
  reg('hogwild.showLog', () => output.show(true));

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration('hogwild')) return;
      const cfg = vscode.workspace.getConfiguration('hogwild');
      const { errors } = readSettings(settingsGetter(cfg, vscode.workspace.isTrusted));
      for (const err of errors) log('warn', `Setting problem: ${err.message}`);
    }),
  );

  log('info', `Hogwild activated (extension host Node ${process.version}, ${process.platform}-${process.arch})`);
  api = { engine, runs, panels, sidebar, output, solve: (problem) => solve(problem, { interactive: false }) };
  return api;
}

export async function deactivate(): Promise<void> {
  await api?.engine.shutdown();
  api = undefined;
}
