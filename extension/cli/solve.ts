/**
 * npm run solve -- "problem" [options]
 *   Several workers solve the problem together over one shared KV cache (Hogwild!). Every
 *   worker streams into the terminal, labelled and coloured; then the final answer and a
 *   summary of the cache layout (blocks, lengths, each worker's view).
 *
 * npm run solve -- --raw --prompt-ids 1,2,3 --worker-ids "5,6;7;8" --steps 24 [options]
 *   A raw run for prompt debugging: exact token ids, no template, headers, history moves
 *   (unless --step-ids), self-check, finisher or stop on end of sequence. --json prints the
 *   result (see RawJson below).
 */
import * as L from '../../protocol/limits';
import type { Layout, RunConfig } from '../../protocol/messages';
import type { NativeRun } from '../engine/native';
import { buildNativeRunConfig, completeWorkerNames, DEFAULT_PROMPTS, RunConfigError } from '../collab';
import { CliRun, type RunRecord } from './runRecord';
import { CliError, helpText, parseArgs, parseIdList, repoRoot, runCli, type FlagSpec } from './args';
import { loadForCli, MODEL_FLAGS, out } from './model';
import { Lanes, paint, sanitize, useColor } from './terminal';
import { ProgressBar } from './progress';
import { formatBytes } from '../../protocol/progress';
import { mark } from './timings';

const SPEC: Record<string, FlagSpec> = {
  'kv-budget-mb': { type: 'number', arg: 'MB', min: 0, help: 'KV memory budget of the run in MB (default 0 = 80% of the available memory)' },
  workers: { type: 'int', arg: 'N', min: 1, max: L.MAX_WORKERS, help: 'workers (default 2)' },
  layout: { type: 'string', arg: 'L', help: 'contiguous, interleaved or combined (default combined; raw: contiguous)' },
  ...MODEL_FLAGS,
  'max-tokens': { type: 'int', arg: 'N', min: 1, max: L.MAX_TOKENS, help: 'token budget of all workers together (default 128)' },
  temperature: { type: 'number', arg: 'T', min: 0, max: L.MAX_TEMPERATURE, help: 'sampling temperature, 0 = greedy (default 0.6; raw: 0)' },
  'top-k': { type: 'int', arg: 'K', min: 0, max: L.MAX_TOP_K, help: 'top-k, 0 = off (default 20; raw: 0)' },
  'top-p': { type: 'number', arg: 'P', min: 0, max: 1, help: 'top-p, 1 = off (default 0.95; raw: 1)' },
  seed: { type: 'int', arg: 'S', min: 0, max: L.MAX_SEED, help: 'random seed; worker w uses seed + w (default 0)' },
  names: { type: 'string', arg: 'A,B,...', help: 'worker names (default Alice, Bob, Carol, ...)' },
  'self-check-interval': { type: 'int', arg: 'N', min: 1, max: L.MAX_SELF_CHECK_INTERVAL, help: 'generated tokens between self-check questions (default 1000)' },
  'finisher-tokens': { type: 'int', arg: 'N', min: 1, help: 'greedy tokens for the final answer (default 32)' },
  json: { type: 'boolean', help: 'print the result as JSON instead of streaming' },
  color: { type: 'boolean', help: 'colours on (--no-color: off; default: when stdout is a terminal, NO_COLOR honoured)' },
  // Raw mode (issue 5).
  raw: { type: 'boolean', help: 'raw run: exact token ids, no protocol text' },
  'prompt-ids': { type: 'string', arg: 'IDS', help: 'raw: the shared prompt, e.g. 1,2,3' },
  'worker-ids': { type: 'string', arg: 'IDS;IDS', help: 'raw: each worker\'s first ids, e.g. "5,6;7;8"' },
  steps: { type: 'int', arg: 'N', min: 1, max: L.MAX_STEP, help: 'raw: exactly this many steps' },
  'step-ids': { type: 'string', arg: 'IDS', help: 'raw: ids that end a step (interleaved / combined)' },
  'top-logits': { type: 'int', arg: 'K', min: 0, max: L.MAX_TOP_LOGITS, help: 'raw: report the top K logits of the last step' },
  help: { type: 'boolean', help: 'show this help' },
};

const USAGE = [
  'Usage: npm run solve -- "problem" [--workers N] [--layout combined] [--model DIR] [options]',
  '       npm run solve -- --raw --prompt-ids 1,2,3 --worker-ids "5,6;7;8" --steps 24 [--json] [options]',
].join('\n');

const RAW_ONLY = ['prompt-ids', 'worker-ids', 'steps', 'step-ids', 'top-logits'];
const PROTOCOL_ONLY = ['names', 'self-check-interval', 'finisher-tokens', 'max-tokens'];

function layoutFlag(v: unknown, fallback: Layout): Layout {
  if (v === undefined) return fallback;
  if (v !== 'contiguous' && v !== 'interleaved' && v !== 'combined') {
    throw new CliError(`--layout takes contiguous, interleaved or combined, got "${String(v)}"`);
  }
  return v;
}

function parseWorkerIds(raw: string): number[][] {
  const parts = raw.split(';');
  return parts.map((p, w) => {
    if (p.trim() === '') throw new CliError(`--worker-ids: worker ${w} has no ids (separate workers with ";" and ids with ",")`);
    return parseIdList(p, `--worker-ids (worker ${w})`);
  });
}

runCli(async () => {
  const { flags, positional } = parseArgs(process.argv.slice(2), SPEC, { maxPositional: 1 });
  if (flags.help) {
    out(helpText(USAGE, SPEC));
    return;
  }
  const raw = flags.raw === true;
  if (raw) {
    for (const k of PROTOCOL_ONLY) if (flags[k] !== undefined) throw new CliError(`--${k} has no meaning in a raw run`);
    if (positional.length > 0) throw new CliError('a raw run takes --prompt-ids, not problem text');
    if (flags['prompt-ids'] === undefined) throw new CliError('--raw needs --prompt-ids (the shared prompt)');
    if (flags['worker-ids'] === undefined) throw new CliError('--raw needs --worker-ids (each worker\'s first ids, e.g. "5,6;7;8")');
    if (flags.steps === undefined) throw new CliError('--raw needs --steps N');
  } else {
    for (const k of RAW_ONLY) if (flags[k] !== undefined) throw new CliError(`--${k} needs --raw`);
    if (positional.length === 0 || positional[0].trim() === '') throw new CliError(`no problem given (${USAGE.split('\n')[0].replace('Usage: ', '')})`);
  }
  const json = flags.json === true;
  const color = useColor(flags.color as boolean | undefined, process.stdout);
  const log = (line: string) => process.stderr.write(`hogwild: ${line}\n`);

  // Parse everything before the (slow) model load, so that bad input fails at once.
  const promptIds = raw ? parseIdList(String(flags['prompt-ids']), '--prompt-ids') : [];
  const workerIds = raw ? parseWorkerIds(String(flags['worker-ids'])) : [];
  const stepIds = raw && flags['step-ids'] !== undefined ? parseIdList(String(flags['step-ids']), '--step-ids') : undefined;
  if (raw && flags.workers !== undefined && flags.workers !== workerIds.length) {
    throw new CliError(`--workers ${flags.workers} but --worker-ids lists ${workerIds.length} workers`);
  }
  const workers = raw ? workerIds.length : ((flags.workers as number | undefined) ?? 2);
  if (raw && workers > L.MAX_WORKERS) throw new CliError(`${workers} workers is more than the limit of ${L.MAX_WORKERS}`);
  const layout = layoutFlag(flags.layout, raw ? 'contiguous' : 'combined');
  const names = completeWorkerNames(flags.names !== undefined ? String(flags.names).split(',') : [], workers);
  const topP = (flags['top-p'] as number | undefined) ?? (raw ? 1 : 0.95);
  if (topP <= 0) throw new CliError(`--top-p must be above 0, got ${topP}`);

  const cfg: RunConfig = {
    problem: raw ? '' : positional[0],
    workers,
    workerNames: names,
    layout,
    sampling: {
      temperature: (flags.temperature as number | undefined) ?? (raw ? 0 : 0.6),
      topP,
      topK: (flags['top-k'] as number | undefined) ?? (raw ? 0 : 20),
      seed: (flags.seed as number | undefined) ?? 0,
    },
    maxTokens: (flags['max-tokens'] as number | undefined) ?? 128,
    selfCheckInterval: (flags['self-check-interval'] as number | undefined) ?? 1000,
    maxContext: (flags['max-context'] as number | undefined) ?? 0,
    prompts: { ...DEFAULT_PROMPTS },
    raw: raw
      ? { promptIds, workerIds, steps: flags.steps as number, stepIds, topLogits: (flags['top-logits'] as number | undefined) ?? 0 }
      : undefined,
  };

  const root = repoRoot();
  mark('arguments read');
  const { model, tok, dir, builtIn } = await loadForCli(root, flags, json ? () => undefined : log, { progress: !json });
  let run: NativeRun;
  try {
    let native;
    try {
      native = buildNativeRunConfig(cfg, tok, model.config, {
        finisherMaxTokens: (flags['finisher-tokens'] as number | undefined) ?? 32,
        contextSetting: '--max-context',
        kvBudgetBytes: ((flags['kv-budget-mb'] as number | undefined) ?? 0) * 1e6,
        kvBudgetSetting: '--kv-budget-mb',
        mark,
      });
    } catch (err) {
      if (err instanceof RunConfigError) throw new CliError(err.message);
      throw err;
    }

    // The same pipeline as the engine process: the terminal shows what VS Code shows.
    const lanes = new Lanes(names.slice(), color, out, process.stdout.columns ?? 100);
    const streaming = !json && !raw;
    const t0 = Date.now();
    const laneStep = new Map<number, number>();
    const bar = new ProgressBar(process.stderr);
    let sawProgress = false;
    let sawWork = false;
    const cli = new CliRun(cfg, tok, (events, errors) => {
      for (const m of errors) {
        bar.end();
        if (streaming) lanes.flushAll();
        log(`engine: ${m}`);
      }
      for (const e of events) {
        if (e.type !== 'progress') continue;
        if (!sawProgress) mark(`first progress event (${e.done} / ${e.total})`);
        if (e.done > 0 && !sawWork) mark(`first progress with tokens done (${e.done} / ${e.total})`);
        sawProgress = true;
        sawWork ||= e.done > 0;
        if (!json) bar.update(e);
      }
      if (!streaming) return;
      for (const e of events) {
        if (e.type === 'worker' && e.info.forkedFrom !== undefined && !lanes.has(e.info.worker)) {
          lanes.addWorker(e.info.worker, e.info.name);
        } else if (e.type === 'tokens') {
          // A worker's next step starts on a line of its own (step 0: the decoder's remainder).
          if (e.step > 0 && laneStep.has(e.worker) && laneStep.get(e.worker) !== e.step) lanes.flush(e.worker);
          if (e.step > 0) laneStep.set(e.worker, e.step);
          lanes.push(e.worker, tok ? e.text : Array.from(e.ids).join(' ') + ' ');
        }
      }
    });
    const rec = cli.record;
    cli.start();
    if (streaming) {
      log(`${workers} workers (${names.join(', ')}), ${layout} layout, budget ${cfg.maxTokens} tokens` + (builtIn ? ' - random model, meaningless text' : ''));
    }
    let finished: Promise<void>;
    try {
      mark('run config built');
      run = model.startRun(native, (batch) => cli.onNative(batch));
      mark('run started');
      // Asked for at once: see the note on NativeRun.done() in the report (the promise must
      // not be fetched after other JavaScript has run).
      finished = run.done();
    } catch (err) {
      throw new CliError((err as Error).message);
    }
    const active = run;
    let interrupts = 0;
    const onSigint = () => {
      interrupts++;
      if (interrupts === 1) {
        log('stopping (Ctrl-C again to quit at once)');
        try {
          active.stop();
        } catch {
          // already ending
        }
      } else {
        process.exit(130);
      }
    };
    process.on('SIGINT', onSigint);
    let failure: Error | undefined;
    await finished.catch((e: unknown) => (failure = e instanceof Error ? e : new Error(String(e))));
    process.off('SIGINT', onSigint);
    cli.end(failure);
    bar.end();
    const ms = Date.now() - t0;
    if (streaming) lanes.flushAll();
    const m = rec.model;
    if (m.state === 'failed') throw new CliError(`the run failed: ${m.message ?? m.state}`);

    if (raw) {
      printRaw(rec, cfg, tok, json, names);
      return;
    }

    // The answer: the finisher text and its greedy continuation, read with the answer pattern.
    const finisherText = tok && m.answer ? m.answer.text.slice(cfg.prompts.finisher.length) : '';
    const answer = m.answer?.answer ?? null;
    const viewList = rec.viewList();
    const blocks = rec.liveBlocks();
    const nameOf = (w: number) => rec.name(w);
    if (json) {
      const result = {
        problem: cfg.problem,
        model: dir,
        layout,
        workers: [...rec.fed.keys()].sort((a, b) => a - b).map((w) => ({
          worker: w,
          name: nameOf(w),
          forkedFrom: rec.forkedFrom(w),
          ids: rec.fed.get(w) ?? [],
          text: tok ? (rec.texts.get(w) ?? '') : null,
        })),
        history: m.history.map((h) => ({ worker: h.worker, step: h.step, label: h.label, block: h.block, text: tok ? h.text : null })),
        finisher: { text: tok ? finisherText : null },
        answer,
        blocks: blocks.map(({ block, kind, owner, length, label }) => ({ block, kind, owner, length, label })),
        views: viewList,
        stats: {
          state: m.state,
          steps: m.stats.step,
          tokens: m.stats.tokens,
          tokensPerSecond: Math.round(m.stats.tokensPerSecond * 100) / 100,
          ms,
        },
      };
      out(JSON.stringify(result) + '\n');
      return;
    }

    // Human summary.
    const bold = (s: string) => paint(s, 1, color);
    out('\n');
    out(`${bold('Final answer:')} ${answer !== null ? sanitize(answer) : '(none found)'}\n`);
    if (answer === null && finisherText) out(`  the finisher wrote: ${sanitize(JSON.stringify(finisherText.slice(0, 200)))}\n`);
    const total = blocks.reduce((a, b) => a + b.length, 0);
    out(`\n${bold('Cache layout')} (${blocks.length} blocks, ${total} tokens)\n`);
    // The labels are the pipeline's, the ones the run panel shows.
    for (const b of blocks) out(`  #${String(b.block).padEnd(3)} ${b.kind.padEnd(9)} ${String(b.length).padStart(6)}  ${sanitize(b.label)}\n`);
    out(`\n${bold('Views')} (step ${rec.viewStep}): block#[offset..end) per worker\n`);
    viewList.forEach((v, w) => {
      out(`  ${nameOf(w).padEnd(8)} ${v.map((s) => `${s.kind}#${s.block}[${s.offset}..${s.offset + s.length})`).join(' ')}\n`);
    });
    const s = m.stats;
    const kv = m.kvBytes !== undefined ? `, KV cache ${formatBytes(m.kvBytes)}${model.kvDtype ? ` (${model.kvDtype})` : ''}` : '';
    out(
      `\n${m.state}: ${s.tokens} tokens in ${s.step} steps, ${s.tokensPerSecond.toFixed(1)} tok/s (all workers), ${(ms / 1000).toFixed(1)} s${kv}\n`,
    );
    if (m.message) out(`${m.message}\n`);
  } finally {
    model.close();
  }
});

/**
 * The raw result. JSON (stable, documented in the README):
 * {
 *   "layout": "contiguous", "steps": 24, "promptIds": [1,2,3],
 *   "workers": [{ "worker": 0, "firstIds": [5,6], "ids": [...24 ids...], "text": "..." | null,
 *                 "topLogits": [{ "id": 42, "logit": 3.25 }, ...] }],
 *   "views": [[{ "block": 0, "kind": "prompt", "owner": -1, "offset": 0, "length": 3 }, ...], ...]
 * }
 */
function printRaw(rec: RunRecord, cfg: RunConfig, tok: import('../model/tokenizer').HwTokenizer | null, json: boolean, names: string[]): void {
  const raw = cfg.raw!;
  const res = rec.raw;
  if (!res) throw new CliError('the engine ended the raw run without a result');
  const workers = res.workers.map((r) => {
    const entry: { worker: number; firstIds: number[]; ids: number[]; text: string | null; topLogits?: { id: number; logit: number }[] } = {
      worker: r.worker,
      firstIds: raw.workerIds[r.worker] ?? [],
      ids: r.ids,
      text: tok ? tok.decode(r.ids) : null,
    };
    if ((raw.topLogits ?? 0) > 0 && r.topLogits) entry.topLogits = r.topLogits;
    return entry;
  });
  // The raw result's views, with the real kind and owner of every block.
  const views = res.views;
  if (json) {
    // Step timings for benchmarks (scripts/bench-product.mjs): the loop only, no load or prefill.
    const sorted = [...rec.stepMs].sort((a, b) => a - b);
    const stats = { msPerStepMedian: sorted.length ? Math.round(sorted[sorted.length >> 1] * 1000) / 1000 : 0, msPerStep: rec.stepMs.map((x) => Math.round(x * 1000) / 1000) };
    out(JSON.stringify({ layout: cfg.layout, steps: raw.steps, promptIds: raw.promptIds, workers, views, stats }) + '\n');
    return;
  }
  out(`raw run: ${cfg.layout} layout, ${raw.steps} steps, prompt ${raw.promptIds.length} ids\n`);
  for (const w of workers) {
    out(`\n${names[w.worker]} (worker ${w.worker}), first ids ${w.firstIds.join(',')}\n  ids: ${w.ids.join(',')}\n`);
    if (w.text !== null) out(`  text: ${sanitize(JSON.stringify(w.text))}\n`);
    if (w.topLogits) out(`  top logits: ${w.topLogits.map((t) => `${t.id}:${t.logit.toFixed(3)}`).join(' ')}\n`);
    out(`  view: ${(views[w.worker] ?? []).map((s) => `${s.kind}#${s.block}[${s.offset}..${s.offset + s.length})`).join(' ')}\n`);
  }
}
