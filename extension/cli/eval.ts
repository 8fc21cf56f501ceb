/**
 * npm run eval -- [--problems FILE.jsonl] [--count N] [--workers 1,2,4] [--layouts combined,interleaved]
 *                 [--control] [--budget N] [--model DIR] [--out DIR]
 *
 * Accuracy against sequential forward steps (the Hogwild! paper's Figure 3) for W = 1 against
 * W = N, greedy, on the real engine. Problems: JSON Lines {"id", "problem", "answer",
 * "parts"?: ["apples", ...], "partExprs"?: ["7*8", ...]} (default: the built-in task's held-out problems). --control adds
 * the no-sharing control (views of [prompt, own step] only) for every W > 1. Writes
 * OUT/eval.json, OUT/eval.md and OUT/eval.svg.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Layout } from '../../protocol/messages';
import { heldOutProblems } from '../tasks/wordProblems';
import { runProblem, type EvalProblem, type EvalRun } from '../eval/runProblem';
import { layoutName, markdownTable, summarize, svgPlot } from '../eval/report';
import { CliError, helpText, parseArgs, parseList, repoRoot, runCli, type FlagSpec } from './args';
import { loadForCli, MODEL_FLAGS, out } from './model';

const SPEC: Record<string, FlagSpec> = {
  problems: { type: 'string', arg: 'FILE', help: 'JSON Lines of {"id","problem","answer","parts"?} (default: the held-out set)' },
  count: { type: 'int', arg: 'N', min: 1, help: 'problems to take (default 50)' },
  workers: { type: 'string', arg: 'W,W', help: 'worker counts (default 1,2,4)' },
  layouts: { type: 'string', arg: 'L,L', help: 'layouts (default combined,interleaved)' },
  control: { type: 'boolean', help: 'also run the no-sharing control (--no-control: off; default on)' },
  budget: { type: 'int', arg: 'N', min: 1, help: 'token budget per worker (default 300; a run gets N x W)' },
  out: { type: 'string', arg: 'DIR', help: 'output folder (default eval-out)' },
  ...MODEL_FLAGS,
  help: { type: 'boolean', help: 'show this help' },
};

const USAGE = 'Usage: npm run eval -- [--problems FILE.jsonl] [--count N] [--workers 1,2,4] [--layouts combined,interleaved] [--model DIR] [--out DIR]';

export function readProblems(file: string): EvalProblem[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`${file}: cannot read: ${(err as Error).message}`);
  }
  const out: EvalProblem[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let v: Record<string, unknown>;
    try {
      v = JSON.parse(line);
    } catch (err) {
      throw new CliError(`${file}:${i + 1}: not valid JSON: ${(err as Error).message}`);
    }
    if (typeof v.problem !== 'string' || v.problem.trim() === '') throw new CliError(`${file}:${i + 1}: "problem" must be a non-empty string`);
    if (typeof v.answer !== 'string' && typeof v.answer !== 'number') throw new CliError(`${file}:${i + 1}: "answer" must be a string or a number`);
    for (const key of ['parts', 'partExprs']) {
      const x = v[key];
      if (x !== undefined && !(Array.isArray(x) && x.every((p) => typeof p === 'string'))) throw new CliError(`${file}:${i + 1}: "${key}" must be a list of strings`);
    }
    out.push({ id: typeof v.id === 'string' ? v.id : `line${i + 1}`, problem: v.problem, answer: String(v.answer), parts: v.parts as string[] | undefined, partExprs: v.partExprs as string[] | undefined });
  });
  if (out.length === 0) throw new CliError(`${file}: no problems`);
  return out;
}

export function defaultProblems(count: number): EvalProblem[] {
  return heldOutProblems(count).map((p) => ({ id: p.id, problem: p.text, answer: String(p.answer), parts: p.parts.map((x) => x.item), partExprs: p.parts.map((x) => `${x.groups}*${x.size}`) }));
}

runCli(async () => {
  const { flags } = parseArgs(process.argv.slice(2), SPEC);
  if (flags.help) {
    out(helpText(USAGE, SPEC));
    return;
  }
  const count = (flags.count as number | undefined) ?? 50;
  const problems = flags.problems !== undefined ? readProblems(String(flags.problems)).slice(0, count) : defaultProblems(count);
  const workers = parseList(flags.workers ?? '1,2,4', '--workers', (s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1 || n > 16) throw new Error(`"${s}" is not a worker count from 1 to 16`);
    return n;
  });
  const layouts = parseList(flags.layouts ?? 'combined,interleaved', '--layouts', (s) => {
    if (!['combined', 'interleaved', 'contiguous'].includes(s)) throw new Error(`"${s}" is not combined, interleaved or contiguous`);
    return s as Layout;
  });
  const budget = (flags.budget as number | undefined) ?? 300;
  const outDir = path.resolve(String(flags.out ?? 'eval-out'));
  const log = (line: string) => process.stderr.write(`hogwild: ${line}\n`);

  const plan: { workers: number; layout: Layout }[] = [];
  for (const layout of layouts) for (const w of workers) if (w > 1 || layout === layouts[0]) plan.push({ workers: w, layout });
  if (flags.control !== false) for (const w of workers) if (w > 1) plan.push({ workers: w, layout: 'isolated' });

  const { model, tok, dir } = await loadForCli(repoRoot(), flags, log);
  if (!tok) throw new CliError(`${dir} has no tokenizer: the evaluation needs text`);
  const runs: EvalRun[] = [];
  const total = plan.length * problems.length;
  const t0 = Date.now();
  const tty = process.stderr.isTTY;
  const progress = (done: number, label: string) => {
    const frac = done / total;
    const bar = '#'.repeat(Math.round(frac * 30)).padEnd(30, '.');
    const eta = done > 0 ? ((Date.now() - t0) / done) * (total - done) / 1000 : 0;
    const line = `[${bar}] ${done}/${total} ${label} eta ${eta.toFixed(0)} s`;
    if (tty) process.stderr.write(`\r${line}\x1b[K`);
    else if (done === total || done % Math.max(1, Math.floor(total / 20)) === 0) process.stderr.write(`${line}\n`);
  };
  // W = 1 once per run set: its view has no other workers (combined and interleaved differ only by headers).
  for (const item of plan) {
    for (const p of problems) {
      progress(runs.length, `${layoutName(item.layout)} W=${item.workers}`);
      runs.push(await runProblem(model, tok, p, item.workers, item.layout, budget * item.workers));
    }
  }
  progress(runs.length, 'done');
  if (tty) process.stderr.write('\n');
  model.close();

  const groups = summarize(runs);
  fs.mkdirSync(outDir, { recursive: true });
  const title = `Accuracy vs sequential steps: ${path.basename(dir)}, ${problems.length} problems, greedy`;
  const md = `# ${title}\n\n${markdownTable(groups)}\nSteps are sequential forward passes of the engine (all workers advance together). The no-sharing control runs the same workers with views of [prompt, own step] only.\n`;
  fs.writeFileSync(path.join(outDir, 'eval.json'), JSON.stringify({ model: dir, problems: problems.length, budgetPerWorker: budget, groups, runs }, null, 1) + '\n');
  fs.writeFileSync(path.join(outDir, 'eval.md'), md);
  fs.writeFileSync(path.join(outDir, 'eval.svg'), svgPlot(groups, title));
  out(md);
  log(`wrote ${path.join(outDir, 'eval.json')}, eval.md and eval.svg in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
});
