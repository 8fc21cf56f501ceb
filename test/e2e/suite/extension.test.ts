/**
 * Extension-host tests, inside a real VS Code with the packaged extension and the real
 * native engine (a small random model, see make-model.ts; the workspace settings point at it).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { HogwildApi } from '../../../extension/extension';
import { parseTrace } from '../../../extension/trace';
import type { EngineEvent } from '../../../protocol/messages';

const EXT_ID = 'hogwild-dev.hogwild-vscode';

async function waitFor<T>(what: string, f: () => T | undefined | false | null, timeoutMs = 60_000, everyMs = 50): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * The webview driver (test/e2e/lib/driver.mjs): run.mjs holds the browser page and clicks in
 * webviews for the suite. Its flag file in the workspace says it listens; null without one
 * (the suite under @vscode/test-electron, run-electron.mjs, has no page to click in).
 */
function driverDir(): string | null {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const flag = folder ? path.join(folder, '.hogwild-e2e-driver') : '';
  return flag && fs.existsSync(flag) ? (JSON.parse(fs.readFileSync(flag, 'utf8')) as { replyDir: string }).replyDir : null;
}

let driverRequests = 0;
/** Asks the driver to act in the webviews (through the automation log); resolves with its answer. */
async function askDriver<T>(dir: string, request: Record<string, unknown>, timeoutMs = 90_000): Promise<T> {
  const reply = path.join(dir, `reply-${process.pid}-${++driverRequests}.json`);
  console.log(`[e2e-driver] ${JSON.stringify({ ...request, reply })}`);
  const text = await waitFor(`the driver's answer to ${String(request.kind)}`, () => fs.existsSync(reply) && fs.readFileSync(reply, 'utf8'), timeoutMs, 100);
  const answer = JSON.parse(text) as T & { error?: string };
  if (answer.error) throw new Error(`the driver could not ${String(request.kind)}: ${answer.error}`);
  return answer;
}

/** What the run panel's inspector shows, as the driver read it from the webview's DOM. */
interface InspectorText {
  source: string;
  block: number;
  index: number;
  tokenText: string;
  tokenId: string;
  author: string;
  step: string;
  rows: { worker: number; name: string; position: string; rotation: string; attention: string }[];
}

async function setSetting(key: string, value: unknown): Promise<void> {
  await vscode.workspace.getConfiguration('hogwild').update(key, value, vscode.ConfigurationTarget.Workspace);
}

/** Runs `fn` with some workspace settings changed, then puts the old values back. */
async function withSettings<T>(values: Record<string, unknown>, fn: () => Promise<T>): Promise<T> {
  const cfg = vscode.workspace.getConfiguration('hogwild');
  const old = Object.keys(values).map((k) => [k, cfg.inspect(k)?.workspaceValue] as const);
  for (const [k, v] of Object.entries(values)) await setSetting(k, v);
  try {
    return await fn();
  } finally {
    for (const [k, v] of old) await setSetting(k, v);
  }
}

describe('Hogwild extension (real VS Code, real engine)', function () {
  let api: HogwildApi;

  before(async () => {
    const ext = vscode.extensions.getExtension<HogwildApi>(EXT_ID);
    assert.ok(ext, `extension ${EXT_ID} is installed`);
    api = await ext.activate();
    assert.ok(api && api.engine && api.runs, 'activate() returns the API');
  });

  it('registers every command of the manifest, in category "Hogwild"', async () => {
    const ext = vscode.extensions.getExtension(EXT_ID)!;
    const declared = (ext.packageJSON.contributes.commands as { command: string; category: string }[]);
    assert.ok(declared.length >= 12);
    for (const c of declared) assert.equal(c.category, 'Hogwild', `${c.command} has category Hogwild`);
    const all = new Set(await vscode.commands.getCommands(true));
    for (const c of declared) assert.ok(all.has(c.command), `${c.command} is registered`);
    for (const id of ['hogwild.solveSelection', 'hogwild.pause', 'hogwild.resume', 'hogwild.step', 'hogwild.stop', 'hogwild.injectNote', 'hogwild.forkWorker', 'hogwild.openRunPanel', 'hogwild.selectModelFolder', 'hogwild.restartEngine', 'hogwild.saveRunTrace', 'hogwild.openRunTrace', 'hogwild.rawRun']) {
      assert.ok(all.has(id), `${id} is registered`);
    }
    assert.deepEqual(ext.packageJSON.extensionKind, ['workspace']);
  });

  it('refuses an invalid setting without replacing it', async () => {
    await setSetting('workers', 0);
    try {
      const runId = await vscode.commands.executeCommand<string | undefined>('hogwild.solveSelection', 'What is 1+1?');
      assert.equal(runId, undefined, 'no run starts with hogwild.workers = 0');
      assert.equal(vscode.workspace.getConfiguration('hogwild').get('workers'), 0, 'the value is left as the user set it');
    } finally {
      await setSetting('workers', undefined);
    }
  });

  it('the engine client starts the engine process', async () => {
    await api.engine.start();
    assert.ok(['ready', 'loaded'].includes(api.engine.state), `state ${api.engine.state}`);
    assert.equal(typeof api.engine.pid, 'number');
  });

  it('a tiny run completes: tokens from both workers, an answer, a panel and a trace', async () => {
    await setSetting('maxTokens', 40);
    try {
      const runId = await vscode.commands.executeCommand<string>('hogwild.solveSelection', 'What is 2 + 3? Answer briefly.');
      assert.ok(runId, 'a run id');
      const rec = api.runs.get(runId)!;
      await waitFor('the run to end', () => !rec.model.isActive, 120_000);
      assert.equal(rec.model.state, 'finished', `state ${rec.model.state} ${rec.model.message ?? ''}`);
      const workers = [...rec.model.workers.values()];
      assert.equal(workers.length, 2);
      for (const w of workers) assert.ok(w.tokens > 0, `${w.info.name} wrote tokens`);
      assert.ok(rec.model.totalTokens >= 40, `budget used (${rec.model.totalTokens})`);
      assert.ok(rec.model.answer, 'the finisher produced an answer event');
      assert.ok(api.panels.open.some((p) => p.runId === runId), 'the run panel is open');
      const trace = parseTrace(rec.trace!.text());
      assert.equal(trace.header.runId, runId);
      assert.equal(trace.end?.state, 'finished');
      assert.ok(rec.traceFile && fs.existsSync(rec.traceFile), 'the trace was written to storage');
    } finally {
      await setSetting('maxTokens', undefined);
    }
  });

  it('Raw Run: exact ids (identical inputs, identical streams) and text tokenised as written', async () => {
    const rawResult = (runId: string) => {
      const rec = api.runs.get(runId)!;
      const events = parseTrace(rec.trace!.text()).batches.flatMap((b) => b.events);
      const r = events.find((e) => e.type === 'raw-result');
      assert.ok(r && r.type === 'raw-result', 'the run reported its raw result');
      return r.result;
    };
    // Greedy, so that identical inputs must give identical streams (sampling draws per worker).
    const byIds = await withSettings({ 'sampling.temperature': 0 }, () =>
      Promise.resolve(vscode.commands.executeCommand<string>('hogwild.rawRun', { promptIds: [1, 2, 3], workerIds: [[5, 6], [5, 6]], steps: 6 })),
    );
    assert.ok(byIds, 'a raw run id');
    await waitFor('the raw run to end', () => !api.runs.get(byIds)!.model.isActive, 120_000);
    assert.equal(api.runs.get(byIds)!.model.state, 'finished');
    const ids = rawResult(byIds);
    assert.equal(ids.workers.length, 2);
    assert.equal(ids.workers[0].ids.length, 6, 'exactly 6 steps');
    assert.deepEqual(ids.workers[0].ids, ids.workers[1].ids, 'identical first inputs give identical streams');

    const byText = await vscode.commands.executeCommand<string>('hogwild.rawRun', { promptIds: [], promptText: 'Count: one, two,', workerIds: [], workerTexts: [' three', ' four'], steps: 4 });
    assert.ok(byText, 'a raw run id (text)');
    await waitFor('the text raw run to end', () => !api.runs.get(byText)!.model.isActive, 120_000);
    const text = rawResult(byText);
    assert.equal(text.workers.length, 2);
    assert.ok(text.workers.every((w) => w.ids.length === 4));
    // The prompt block holds the text's own tokens and nothing else: "Count" ":" " one" "," " two" ","
    // (6 Qwen3 tokens); a chat template would have added <|im_start|>user ... around them.
    assert.equal(text.views[0][0].length, 6, `prompt block of ${text.views[0][0].length} tokens`);
  });

  it('pause, inject a note, fork, resume and stop a live run', async () => {
    await setSetting('maxTokens', 100_000);
    try {
      const runId = await vscode.commands.executeCommand<string>('hogwild.solveSelection', 'List the prime numbers below 50.');
      const rec = api.runs.get(runId)!;
      await waitFor('tokens from both workers', () => [...rec.model.workers.values()].every((w) => w.tokens > 3), 60_000);
      // One worker alone (the sidebar's per-worker buttons send these).
      await api.runs.control(runId, { type: 'pause', worker: 1 });
      await waitFor('Bob paused', () => rec.model.workers.get(1)!.info.state === 'paused', 20_000);
      const bob = rec.model.workers.get(1)!.tokens;
      const alice = rec.model.workers.get(0)!.tokens;
      await waitFor('Alice going on alone', () => rec.model.workers.get(0)!.tokens > alice + 5, 30_000);
      assert.ok(rec.model.workers.get(1)!.tokens <= bob + 1, 'Bob wrote nothing while paused');
      await api.runs.control(runId, { type: 'resume', worker: 1 });
      await waitFor('Bob running again', () => rec.model.workers.get(1)!.info.state === 'running' && rec.model.workers.get(1)!.tokens > bob + 2, 30_000);
      await vscode.commands.executeCommand('hogwild.pause');
      await waitFor('paused', () => rec.model.state === 'paused', 20_000);
      const before = rec.model.totalTokens;
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(rec.model.totalTokens - before <= 4, 'no tokens while paused');
      await vscode.commands.executeCommand('hogwild.injectNote', { target: 'all', text: 'Check the even numbers first.' });
      const forked = await vscode.commands.executeCommand<number>('hogwild.forkWorker', 0);
      assert.equal(typeof forked, 'number', 'fork returns the new worker id');
      await waitFor('the fork to appear', () => rec.model.workers.has(forked), 20_000);
      assert.equal(rec.model.workers.get(forked)!.info.forkedFrom, 0);
      await vscode.commands.executeCommand('hogwild.resume');
      await waitFor('running again', () => rec.model.state === 'running', 20_000);
      await waitFor('the note event', () => rec.model.notes.some((n) => n.text.includes('even numbers')), 20_000);
      await waitFor('tokens from the fork', () => (rec.model.workers.get(forked)?.tokens ?? 0) > 2, 60_000);
      await vscode.commands.executeCommand('hogwild.stop');
      await waitFor('the run to end', () => !rec.model.isActive, 60_000);
      assert.ok(['stopped', 'finished'].includes(rec.model.state), `state ${rec.model.state}`);
    } finally {
      await setSetting('maxTokens', undefined);
    }
  });

  it('the run panel\'s inspector shows the engine\'s answer for a clicked token; the sidebar draws the cache map', async function () {
    const dir = driverDir();
    if (!dir) {
      console.log('      (no webview driver: this launcher cannot click in webviews)');
      this.skip();
    }
    await setSetting('maxTokens', 100_000);
    try {
      const runId = await vscode.commands.executeCommand<string>('hogwild.solveSelection', 'Name three prime numbers and add them.');
      const rec = api.runs.get(runId)!;
      await waitFor('tokens from both workers', () => [...rec.model.workers.values()].every((w) => w.tokens > 6), 60_000);
      await vscode.commands.executeCommand('hogwild.pause');
      await waitFor('paused', () => rec.model.state === 'paused', 20_000);
      await vscode.commands.executeCommand('hogwild.workers.focus');

      // Click a token of Alice's lane in the panel; read the inspector.
      const shown = await askDriver<InspectorText>(dir!, { kind: 'inspect-token', worker: 0, char: 2 });
      assert.equal(shown.source, 'engine', 'a live run asks the engine');
      // The engine's own answer for that cache position, asked directly.
      const engine = await api.engine.inspect(runId, shown.block, shown.index, true);
      assert.equal(shown.tokenText, JSON.stringify(engine.text), 'the token text');
      assert.equal(shown.tokenId.trim(), `id ${engine.token}`, 'the token id');
      assert.equal(engine.author, 0, 'a token of Alice\'s lane was written by Alice');
      assert.equal(shown.author, 'Alice');
      assert.equal(shown.step, String(engine.step), 'the step');
      const att = new Map((engine.attention ?? []).map((a) => [a.worker, a.share]));
      assert.equal(shown.rows.length, engine.seenAt.length, 'one row per worker');
      for (const s of engine.seenAt) {
        const row = shown.rows.find((r) => r.worker === s.worker);
        assert.ok(row, `a row for worker ${s.worker}`);
        assert.deepEqual(
          { position: row.position, rotation: row.rotation, attention: row.attention },
          {
            position: s.position === null ? 'not in view' : String(s.position),
            rotation: s.rotation === null ? '—' : String(s.rotation),
            attention: att.has(s.worker) ? `${(att.get(s.worker)! * 100).toFixed(2)}%` : 'not recorded',
          },
          `worker ${s.worker}'s row`,
        );
      }
      // And apart from the engine: the run's last views (its trace) place the token the same.
      const events = parseTrace(rec.trace!.text()).batches.flatMap((b) => b.events);
      const views = ([...events].reverse().find((e) => e.type === 'views') as Extract<EngineEvent, { type: 'views' }>).views;
      for (const row of shown.rows) {
        const v = views[row.worker]!;
        const seg = v.find((x) => x.block === shown.block);
        const end = v[v.length - 1]!.offset + v[v.length - 1]!.length;
        assert.equal(row.position, seg && shown.index < seg.length ? String(seg.offset + shown.index) : 'not in view', `worker ${row.worker}'s position, from the views`);
        if (seg) assert.equal(row.rotation, String(end - seg.offset), `worker ${row.worker}'s query rotation, from the views`);
      }
      console.log(`      inspector: block ${shown.block} index ${shown.index} ${shown.tokenText}: ${shown.rows.map((r) => `${r.name} ${r.position}/${r.rotation}/${r.attention}`).join(', ')}`);

      // The sidebar's compact cache map: its text summary names every worker's view.
      const side = await askDriver<{ summary: string; rows: number }>(dir!, { kind: 'sidebar-map' });
      assert.equal(side.rows, views.length, 'a strip per worker');
      views.forEach((v, w) => {
        const want = `${rec.model.workers.get(w)!.info.name} sees ${v.length} blocks, ${v[v.length - 1]!.offset + v[v.length - 1]!.length} tokens`;
        assert.ok(side.summary.includes(want), `the sidebar's summary says "${want}" (${side.summary.slice(0, 200)})`);
      });

      // A click on Bob's own block in the sidebar's map opens the panel's inspector on a token
      // of that block (the sidebar -> extension -> panel relay), with the engine's numbers.
      const relayed = await askDriver<{ target: { block: number; length: number }; inspector: InspectorText }>(dir!, { kind: 'sidebar-map-click', worker: 1 });
      const bobOwn = views[1]![views[1]!.length - 1]!;
      assert.equal(relayed.target.block, bobOwn.block, 'the click landed on Bob\'s own block (the last of his view in the trace)');
      const ins = relayed.inspector;
      assert.equal(ins.block, bobOwn.block, 'the panel inspects the block clicked in the sidebar');
      assert.ok(ins.index >= 0 && ins.index < bobOwn.length, `a token inside it (${ins.index} of ${bobOwn.length})`);
      assert.equal(ins.source, 'engine', 'a live run asks the engine');
      const bobTok = await api.engine.inspect(runId, ins.block, ins.index, true);
      assert.equal(bobTok.author, 1, 'the engine says Bob wrote it');
      assert.equal(ins.author, rec.model.workers.get(1)!.info.name);
      assert.equal(ins.tokenText, JSON.stringify(bobTok.text), 'the token text is the engine\'s');
      for (const s of bobTok.seenAt) {
        const row = ins.rows.find((r) => r.worker === s.worker);
        assert.equal(row?.position, s.position === null ? 'not in view' : String(s.position), `worker ${s.worker}'s position of the relayed token`);
      }
      console.log(`      relayed from the sidebar: block ${ins.block} index ${ins.index} ${ins.tokenText}`);
      await vscode.commands.executeCommand('hogwild.stop');
      await waitFor('the run to end', () => !rec.model.isActive, 60_000);
    } finally {
      await setSetting('maxTokens', undefined);
    }
  });

  it('shows the prefill of a long problem and stops during it, leaving the engine usable', async () => {
    // About 20k tokens: long enough that the prefill is still going when Stop arrives.
    const runId = await vscode.commands.executeCommand<string>('hogwild.solveSelection', 'word '.repeat(20_000));
    const rec = api.runs.get(runId)!;
    await waitFor('prefill progress', () => (rec.model.summary().prefill?.done ?? 0) > 0, 60_000);
    const p = rec.model.summary().prefill!;
    assert.ok(p.total >= 20_000 && p.done < p.total, `progress ${p.done} / ${p.total}`);
    assert.equal(rec.model.totalTokens, 0, 'no tokens before the prefill is done');
    const t0 = Date.now();
    await vscode.commands.executeCommand('hogwild.stop');
    await waitFor('the run to stop', () => !rec.model.isActive, 30_000);
    assert.equal(rec.model.state, 'stopped');
    assert.equal(rec.model.totalTokens, 0, 'stopped before any token');
    console.log(`[e2e] stop during the prefill: ended ${Date.now() - t0} ms after the command`);
    // The engine is usable right after.
    await setSetting('maxTokens', 8);
    try {
      const next = await vscode.commands.executeCommand<string>('hogwild.solveSelection', 'What is 2 + 2?');
      await waitFor('the next run to finish', () => !api.runs.get(next)!.model.isActive, 120_000);
      assert.equal(api.runs.get(next)!.model.state, 'finished');
    } finally {
      await setSetting('maxTokens', undefined);
    }
  });

  it('keeps up with 8 workers at full engine speed', async () => {
    await setSetting('workers', 8);
    await setSetting('maxTokens', 800);
    try {
      const t0 = Date.now();
      const runId = await vscode.commands.executeCommand<string>('hogwild.solveSelection', 'Eight workers: what is 12 * 12?');
      const rec = api.runs.get(runId)!;
      await waitFor('the 8-worker run to end', () => !rec.model.isActive, 180_000);
      assert.equal(rec.model.state, 'finished', `${rec.model.state} ${rec.model.message ?? ''}`);
      assert.equal(rec.model.workers.size, 8);
      for (const w of rec.model.workers.values()) assert.ok(w.tokens > 0, `${w.info.name} wrote tokens`);
      const names = [...rec.model.workers.values()].map((w) => w.info.name);
      assert.deepEqual(names, ['Alice', 'Bob', 'Carol', 'Dave', 'Eve', 'Frank', 'Grace', 'Heidi']);
      // Coalescing: far fewer batches than tokens.
      const batches = parseTrace(rec.trace!.text()).batches.length;
      assert.ok(batches < rec.model.totalTokens / 4, `${batches} batches for ${rec.model.totalTokens} tokens`);
      console.log(`      8 workers: ${rec.model.totalTokens} tokens in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${batches} batches`);
    } finally {
      await setSetting('workers', undefined);
      await setSetting('maxTokens', undefined);
    }
  });

  it('survives an engine crash mid-run, keeps the trace, and Restart Engine works', async () => {
    await setSetting('maxTokens', 100_000);
    let runId: string;
    try {
      runId = (await vscode.commands.executeCommand<string>('hogwild.solveSelection', 'Count to one hundred.'))!;
      const rec = api.runs.get(runId)!;
      await waitFor('tokens', () => rec.model.totalTokens > 10, 60_000);
      const pid = api.engine.pid!;
      process.kill(pid, 'SIGKILL');
      await waitFor('the crash to be seen', () => api.engine.state === 'crashed', 20_000);
      await waitFor('the run to fail', () => rec.model.state === 'failed', 20_000);
      assert.match(rec.model.message ?? '', /SIGKILL/);
      const trace = parseTrace(rec.trace!.text());
      assert.equal(trace.end?.state, 'failed');
      assert.ok(trace.batches.some((b) => b.events.some((e) => e.type === 'tokens')), 'the tokens before the crash are in the trace');
      const file = path.join(os.tmpdir(), `hogwild-e2e-${Date.now()}.jsonl`);
      await api.runs.saveTrace(runId, file);
      assert.ok(fs.statSync(file).size > 0);
      await vscode.commands.executeCommand('hogwild.restartEngine');
      await waitFor('the engine to be ready again', () => api.engine.state === 'ready', 30_000);
      assert.notEqual(api.engine.pid, pid);
    } finally {
      await setSetting('maxTokens', undefined);
    }
    // A run after the restart works (the model loads again).
    await setSetting('maxTokens', 24);
    try {
      const again = await vscode.commands.executeCommand<string>('hogwild.solveSelection', 'And now 3 + 4?');
      const rec2 = api.runs.get(again)!;
      await waitFor('the run after the restart to end', () => !rec2.model.isActive, 120_000);
      assert.equal(rec2.model.state, 'finished');
    } finally {
      await setSetting('maxTokens', undefined);
    }
  });

  it('Open Run Trace replays a saved run without the engine', async () => {
    const done = api.runs.all().find((r) => r.model.source === 'live' && r.model.state === 'finished' && r.trace);
    assert.ok(done, 'a finished run from an earlier test');
    const file = path.join(os.tmpdir(), `hogwild-e2e-replay-${Date.now()}.jsonl`);
    await api.runs.saveTrace(done.model.runId, file);
    await api.engine.stopProcess();
    assert.equal(api.engine.state, 'idle');
    const replayId = await vscode.commands.executeCommand<string>('hogwild.openRunTrace', file);
    assert.ok(replayId);
    const rep = api.runs.get(replayId)!;
    await waitFor('the replay to finish', () => rep.model.state === 'finished', 60_000);
    assert.equal(rep.model.source, 'replay');
    assert.equal(rep.model.totalTokens, done.model.totalTokens);
    for (const [w, m] of done.model.workers) assert.equal(rep.model.workers.get(w)?.segments.map((s) => s.text).join(''), m.segments.map((s) => s.text).join(''));
    assert.equal(api.engine.state, 'idle', 'the replay did not start the engine');
    await assert.rejects(api.runs.control(replayId, { type: 'pause' }), /cannot be controlled/);
  });

  it('runs the built-in trained model when no model folder is set: steps end, the history fills, the answer is a number', async () => {
    await withSettings({ modelFolder: '', maxTokens: 1200, layout: 'interleaved', 'sampling.temperature': 0 }, async () => {
      const t0 = Date.now();
      const runId = await vscode.commands.executeCommand<string>('hogwild.solveSelection', 'Mia has 3 boxes of 4 apples and 2 bags of 5 pears. How many fruits does Mia have in total?');
      assert.ok(runId, 'the run started');
      const model = api.engine.model!;
      assert.equal(model.builtIn, false, 'the default is the trained model, not the random one');
      assert.equal(model.layers, 12, 'the shipped 12-layer model');
      const rec = api.runs.get(runId)!;
      await waitFor('the run to end', () => !rec.model.isActive, 180_000);
      assert.equal(rec.model.state, 'finished', `state ${rec.model.state} ${rec.model.message ?? ''}`);
      assert.ok(rec.model.history.length >= 2, `finished steps moved into the shared history (${rec.model.history.length})`);
      assert.equal(new Set(rec.model.history.map((h) => h.worker)).size, 2, 'both workers finished steps');
      assert.match(rec.model.answer?.answer ?? '', /^\d+$/, `the answer is a number (${rec.model.answer?.answer})`);
      console.log(`      built-in model: loaded and solved in ${((Date.now() - t0) / 1000).toFixed(1)} s, answer ${rec.model.answer?.answer}`);
    });
  });
});
