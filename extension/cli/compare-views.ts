/**
 * npm run compare-views -- [--model DIR] [--problem I] [--workers W] [--layout combined|interleaved]
 *                          [--views exact|legacy] [--worker N] [--show N]
 *
 * Does the training data show the model what the engine feeds it? Runs held-out problem I
 * through the real engine (greedy, as npm run eval), rebuilds every engine step's views from
 * the run's events, builds the training sequences make-train-data would emit for that very
 * trajectory (extension/tasks/trainViews.ts, --views), and compares, for every trained token,
 * what its query sees in training (train.py's mask) with the engine's view at that step.
 * Prints the mismatch counts and, for worker N's first --show differing targets, both views.
 */
import * as fs from 'node:fs';
import { completeWorkerNames } from '../collab';
import { DEFAULT_PROMPTS } from '../collab/prompts';
import { runProblem } from '../eval/runProblem';
import { heldOutProblems } from '../tasks/wordProblems';
import { EngineViewRecorder, compareTraceViews } from '../tasks/engineViews';
import { trainViewTexts } from '../tasks/simTokens';
import type { TrainViewsMode } from '../tasks/trainViews';
import { CliError, helpText, parseArgs, repoRoot, runCli, type FlagSpec } from './args';
import { loadForCli, MODEL_FLAGS, out as print } from './model';

const out = (line: string) => print(`${line}\n`);

const SPEC: Record<string, FlagSpec> = {
  problem: { type: 'int', arg: 'I', min: 0, help: 'held-out problem index (default 0)' },
  workers: { type: 'int', arg: 'W', min: 1, help: 'workers (default 2)' },
  layout: { type: 'string', arg: 'L', help: 'combined (default) or interleaved' },
  dump: { type: 'string', arg: 'FILE', help: 'also write the run\'s cache trace (every entry once, every forward\'s view) as JSON, for scripts/train/cache_forward.py' },
  views: { type: 'string', arg: 'V', help: 'training views to check: exact (default) or legacy (before issue 11\'s fix)' },
  worker: { type: 'int', arg: 'N', min: 0, help: 'worker whose differing views are printed (default 1, Bob)' },
  show: { type: 'int', arg: 'N', min: 0, help: 'differing targets to print (default 3)' },
  budget: { type: 'int', arg: 'N', min: 1, help: 'token budget per worker (default 300)' },
  ...MODEL_FLAGS,
  help: { type: 'boolean', help: 'show this help' },
};

runCli(async () => {
  const { flags } = parseArgs(process.argv.slice(2), SPEC);
  if (flags.help) {
    out(helpText('Usage: npm run compare-views -- [--model DIR] [--problem I] [--workers W] [--layout L] [--views exact|legacy]', SPEC));
    return;
  }
  const index = (flags.problem as number | undefined) ?? 0;
  const workers = (flags.workers as number | undefined) ?? 2;
  const layout = String(flags.layout ?? 'combined');
  if (layout !== 'combined' && layout !== 'interleaved') throw new CliError(`--layout: "${layout}" is not combined or interleaved`);
  const mode = String(flags.views ?? 'exact') as TrainViewsMode;
  if (mode !== 'exact' && mode !== 'legacy') throw new CliError(`--views: "${mode}" is not exact or legacy`);
  const focus = (flags.worker as number | undefined) ?? 1;
  const show = (flags.show as number | undefined) ?? 3;
  const budget = (flags.budget as number | undefined) ?? 300;
  const log = (line: string) => process.stderr.write(`hogwild: ${line}\n`);
  const { model, tok } = await loadForCli(repoRoot(), flags, log);
  if (!tok) throw new CliError('the model has no tokenizer');
  const p = heldOutProblems(index + 1)[index];
  const names = completeWorkerNames([], workers);
  let rec: EngineViewRecorder | null = null;
  let promptIds: number[] = [];
  const run = await runProblem(model, tok, { id: p.id, problem: p.text, answer: String(p.answer) }, workers, layout, budget * workers, (native) => {
    rec = new EngineViewRecorder(native);
    promptIds = Array.from(native.promptIds);
    return rec.onEvents;
  });
  model.close();
  if (flags.dump) fs.writeFileSync(String(flags.dump), JSON.stringify({ problem: p.id, workers, layout, texts: run.texts, ...rec!.cacheTrace() }));
  const v = trainViewTexts(tok, names, p.text);
  const text = (ids: readonly number[]) => JSON.stringify(tok.decode([...ids]));
  out(`problem ${p.id}: ${p.text}\nanswer ${p.answer}; the run: ${run.correct ? 'right' : 'wrong'} (${run.answer}), ${run.engineSteps} engine steps`);
  for (let w = 0; w < workers; w++) out(`  ${names[w]}: ${JSON.stringify(run.texts[w])}`);
  out(`prompt: engine ${promptIds.length} tokens, training ${v.prompt.length}; same: ${promptIds.join() === v.prompt.join()}`);
  out(`headers: others ${text(v.headerOthers)}, own ${text(v.headerOwn)}, self-check ${JSON.stringify(DEFAULT_PROMPTS.selfCheck)}`);
  const cmp = compareTraceViews(rec!.trace(), layout, workers, v, mode);
  out(`training views (${mode}): ${cmp.targets} trained tokens; ${cmp.different} see other tokens than the engine fed; ${cmp.gapped} see the right tokens at shifted positions (hidden tokens between)`);
  out(`  claims (a step's first written token): ${cmp.claims}, ${cmp.claimsDifferent} different, ${cmp.claimsGapped} shifted`);
  let shown = 0;
  for (const d of cmp.diffs) {
    if (d.worker !== focus || shown >= show) continue;
    shown++;
    out(`\n${names[d.worker]} [${d.k}], target ${text([d.target])} (written at engine step ${d.step + 1}, sampled at ${d.step}):`);
    out(`  engine view   (${d.engine.length}): ${text(d.engine.slice(promptIds.length))}`);
    out(`  training view (${d.train.length}): ${text(d.train.slice(promptIds.length))}`);
    out(`  (after the ${promptIds.length}-token prompt; training positions ${d.contiguous ? 'contiguous' : 'with gaps'})`);
  }
});
