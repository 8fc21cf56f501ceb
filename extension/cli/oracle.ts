/**
 * npm run oracle -- [--count N] [--workers 1,2,4] [--layouts combined,interleaved] [--conventions v1,v2]
 *                   [--budget N] [--tokenizer DIR] [--no-control]
 *
 * What a perfect model of each collaboration convention would score in npm run eval on the
 * held-out problems: every run simulated token by token with the engine's timing
 * (extension/tasks/collabSim.ts), tokenised by the given tokenizer (default: the built-in
 * model's), summarised by the evaluation's own code. "x W=1 steps" is the eval's metric: the
 * fewest steps at which W = N reaches W = 1's accuracy, over W = 1's. No model runs: this is
 * the ceiling a trained model can reach, not a measurement of one.
 */
import * as path from 'node:path';
import { loadTokenizer } from '../model/tokenizer';
import { trainedModelDir } from '../model/builtinModels';
import { heldOutProblems } from '../tasks/wordProblems';
import type { SimConvention, SimLayout } from '../tasks/collabSim';
import { meanStepRatios, oracleRuns } from '../tasks/oracle';
import { memoEncoder, simTokensFor } from '../tasks/simTokens';
import { layoutName, pct, summarize } from '../eval/report';
import { digitIds } from '../collab/runConfig';
import { CliError, helpText, parseArgs, parseList, repoRoot, runCli, type FlagSpec } from './args';
import { out } from './model';

const SPEC: Record<string, FlagSpec> = {
  count: { type: 'int', arg: 'N', min: 1, help: 'held-out problems (default 50, as npm run eval)' },
  workers: { type: 'string', arg: 'W,W', help: 'worker counts (default 1,2,4)' },
  layouts: { type: 'string', arg: 'L,L', help: 'shared layouts (default combined,interleaved)' },
  conventions: { type: 'string', arg: 'C,C', help: 'conventions: v1 (the first model\'s), v2, v3 (v2 with sums of 3+ totals units first; default v1,v2)' },
  control: { type: 'boolean', help: 'also the no-sharing control (--no-control: off; default on)' },
  budget: { type: 'int', arg: 'N', min: 1, help: 'token budget per worker (default 300, as npm run eval)' },
  tokenizer: { type: 'string', arg: 'DIR', help: 'folder with tokenizer.json (default: the built-in model\'s)' },
  help: { type: 'boolean', help: 'show this help' },
};

const USAGE = 'Usage: npm run oracle -- [--count N] [--workers 1,2,4] [--layouts combined,interleaved] [--conventions v1,v2] [--budget N] [--tokenizer DIR]';

/** A comma list of which every entry must be one of `allowed` (ok returns null otherwise). */
function list<T>(raw: unknown, what: string, allowed: string, ok: (s: string) => T | null): T[] {
  const items = parseList(raw, what, (s) => {
    const v = ok(s);
    if (v === null) throw new Error(`"${s}" is not one of ${allowed}`);
    return v;
  });
  if (!items.length) throw new CliError(`${what} is empty (allowed: ${allowed})`);
  return items;
}

runCli(async () => {
  const { flags } = parseArgs(process.argv.slice(2), SPEC);
  if (flags.help) {
    out(helpText(USAGE, SPEC));
    return;
  }
  const count = (flags.count as number | undefined) ?? 50;
  const workers = list(flags.workers ?? '1,2,4', '--workers', 'the worker counts 1 to 16', (s) => (/^\d+$/.test(s) && +s >= 1 && +s <= 16 ? +s : null));
  const layouts = list(flags.layouts ?? 'combined,interleaved', '--layouts', 'combined, interleaved', (s) => (s === 'combined' || s === 'interleaved' ? (s as SimLayout) : null));
  const conventions = list(flags.conventions ?? 'v1,v2', '--conventions', 'v1, v2, v3', (s) => (s === 'v1' || s === 'v2' || s === 'v3' ? (s as SimConvention) : null));
  const budget = (flags.budget as number | undefined) ?? 300;
  const dir = path.resolve(flags.tokenizer !== undefined ? String(flags.tokenizer) : trainedModelDir(repoRoot()));
  const tok = await loadTokenizer(dir);
  if (!tok) throw new CliError(`${dir}: no tokenizer.json`);
  const encode = memoEncoder(tok);
  const digits = digitIds(tok);
  const problems = heldOutProblems(count);
  const rows = [
    '| convention | layout | W | right | median answer step | steps to reach W=1 accuracy | x W=1 steps (eval metric) | mean per-problem ratio | runs with a part computed twice |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const convention of conventions) {
    const runs = oracleRuns(problems, { convention, workers, layouts, control: flags.control !== false, budget }, (names) => simTokensFor(tok, names, encode, digits));
    const mean = meanStepRatios(runs);
    for (const g of summarize(runs)) {
      const m = mean.get(`${g.layout}/${g.workers}`);
      rows.push(
        `| ${convention} | ${layoutName(g.layout)} | ${g.workers} | ${pct(g.accuracy)} | ${g.medianCorrectStep ?? '-'} | ${g.stepsToReference ?? 'not reached'} | ${g.ratio !== null ? g.ratio.toFixed(3) : '-'} | ${m != null ? m.toFixed(3) : '-'} | ${pct(g.duplicationRate)} |`,
      );
    }
  }
  out(`# Oracle: a perfect model of each convention, ${problems.length} held-out problems, budget ${budget} tokens per worker, tokenizer ${path.basename(dir)}\n\n${rows.join('\n')}\n\nThe no-sharing control boxes no answer (each worker sees only its own current step, so it redoes the first part until the budget ends; the finisher is not simulated).\n`);
});
