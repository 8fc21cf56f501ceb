/**
 * Addition drills for the built-in model, in the cache format of cacheRuns.ts.
 *
 * With three or four workers the run's answer is one sum of the workers' totals, written in
 * one go ("138+77+60+45=\boxed{320}."), and that multi-term addition is what the 12-layer model
 * gets wrong (bench/RESULTS.md, issue 11: every wrong W = 4 run of the shipped model). A real
 * run holds one such sum; a drill run holds dozens, each exactly as a combining worker writes
 * it (its step header, then the sum), trained only on the digits of the result and the token
 * that closes the box. The terms follow the runs' totals: each one or two parts, a part being
 * a*b (a, b in 2..12) minus 0..9, as wordProblems.ts draws them.
 */
import { int, rng32 } from './wordProblems';
import type { CacheRun } from './cacheRuns';
import { sumText, type SimTokens } from './collabSim';

/** One drill sum: its terms and the text a combining worker writes. */
export interface DrillSum {
  terms: number[];
  text: string;
}

/** A part's value as wordProblems.ts draws it. */
function partValue(rand: () => number): number {
  const ab = int(rand, 2, 12) * int(rand, 2, 12);
  return rand() < 0.25 ? ab - int(rand, 1, Math.min(9, ab - 1)) : ab;
}

/**
 * One drill sum, drawn as a run's final sum comes about: a run of W workers (2, 3 or 4: 37.5,
 * 18.75, 43.75%, the multi-worker shares of the fine-tune's MIX=20,30,15,35) over 2..6 parts, dealt to
 * the workers in turn, one term per worker holding a part. So two-term sums of three-part
 * totals are drilled as often as the runs hold them (drills of mostly four single- or two-part
 * terms taught the four-term sums and unlearned those: bench/RESULTS.md, 2026-12-03).
 */
export function drillSum(rand: () => number, unitsFirst = false): DrillSum {
  const x = rand();
  const workers = x < 0.375 ? 2 : x < 0.5625 ? 3 : 4;
  const parts = int(rand, 2, 6);
  const terms = new Array<number>(Math.min(workers, parts)).fill(0);
  for (let p = 0; p < parts; p++) terms[p % workers] += partValue(rand);
  return { terms, text: `${sumText(terms, unitsFirst)}.\n\n` };
}

/**
 * A drill run of seed `seed`: one block of about `tokens` tokens, sums after step headers of
 * workers 1..3 (the combining worker is never the first alone), one forward over the block
 * (each token sees the block's earlier ones, as a worker's own step does). `unitsFirst`: sums
 * as convention v3 writes them (collabSim.ts, sumText), trained from the token after the "="
 * that ends the terms (the digits units first, the box and its digits).
 */
export function drillRun(seed: number, tok: SimTokens, decode: (ids: number[]) => string, opts: { tokens?: number; unitsFirst?: boolean } = {}): { run: CacheRun; sums: DrillSum[] } {
  const tokens = opts.tokens ?? 900;
  const rand = rng32(seed ^ 0x5bd1e995);
  const ids: number[] = [];
  const targets: number[] = [];
  const weights: number[] = [];
  const sums: DrillSum[] = [];
  while (ids.length < tokens) {
    const d = drillSum(rand, opts.unitsFirst);
    sums.push(d);
    const header = tok.header(int(rand, 1, 3), int(rand, 2, 6));
    const content = tok.encode(d.text); // encoded whole, as the engine's worker writes it
    const upTo = (ch: string) => content.findIndex((_, j) => decode(content.slice(0, j + 1)).includes(ch));
    const open = upTo('{');
    const close = upTo('}');
    const first = opts.unitsFirst && d.terms.length >= 3 ? upTo('=') : open; // the trained tokens follow it
    if (open < 0 || close <= open || first < 0) throw new Error(`sum drill: no \\boxed{...} in the tokens of ${JSON.stringify(d.text)}`);
    const start = ids.length + header.length;
    ids.push(...header, ...content);
    for (let i = targets.length; i < ids.length; i++) {
      targets.push(-1);
      weights.push(0);
    }
    // Trained: the result's digits and the box's closing token, each predicted by the query before it.
    for (let j = first + 1; j <= close; j++) {
      targets[start + j - 1] = ids[start + j];
      weights[start + j - 1] = 3;
    }
  }
  const run: CacheRun = {
    blocks: [ids],
    forwards: [{ step: 0, worker: -1, view: [{ block: 0, off: 0, len: ids.length }], block: 0 }],
    targets: [targets],
    weights: [weights],
  };
  return { run, sums };
}
