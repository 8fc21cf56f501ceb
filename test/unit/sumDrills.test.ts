/**
 * Addition drills (extension/tasks/sumDrills.ts) with the built-in model's real tokenizer:
 * every drill sum is right by an independent computation on its decoded text, exactly the
 * result's digits and the box's closing token are trained (each the target of the token
 * before it), the run is one block computed by one forward, and a seed gives the same run.
 */
import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { drillRun } from '../../extension/tasks/sumDrills';
import { simTokensFor } from '../../extension/tasks/simTokens';
import { completeWorkerNames } from '../../extension/collab/prompts';
import { loadTokenizer } from '../../extension/model/tokenizer';
import { trainedModelDir } from '../../extension/model/builtinModels';

const root = path.resolve(__dirname, '..', '..');

describe('sum drills', () => {
  it('write right sums in the tokens a combining worker writes, and train only the result', async () => {
    const tok = (await loadTokenizer(trainedModelDir(root)))!;
    const decode = (ids: number[]) => tok.decode(ids, { skipSpecial: true });
    const simTok = simTokensFor(tok, completeWorkerNames([], 4));
    const counts = new Map<number, number>();
    for (let seed = 0; seed < 20; seed++) {
      const { run, sums } = drillRun(seed, simTok, decode);
      expect(run.blocks).toHaveLength(1);
      expect(run.forwards).toEqual([{ step: 0, worker: -1, view: [{ block: 0, off: 0, len: run.blocks[0].length }], block: 0 }]);
      const text = decode(run.blocks[0]);
      const found = [...text.matchAll(/\*\*(\w+) \[(\d+)\]:\*\* ([\d+]+)=\\boxed\{(\d+)\}\.\n\n/g)];
      expect(found.length).toBe(sums.length);
      for (const m of found) {
        expect(['Bob', 'Carol', 'Dave']).toContain(m[1]);
        const terms = m[3].split('+').map(Number);
        counts.set(terms.length, (counts.get(terms.length) ?? 0) + 1);
        expect(terms.reduce((a, b) => a + b, 0)).toBe(Number(m[4]));
      }
      // The trained tokens, in order, spell each result and its closing brace, nothing else.
      const ids = run.blocks[0];
      const trained = run.weights[0].map((w, i) => (w > 0 ? i : -1)).filter((i) => i >= 0);
      for (const i of trained) {
        expect(run.weights[0][i]).toBe(3);
        expect(run.targets[0][i]).toBe(ids[i + 1]);
      }
      const spelled = decode(trained.map((i) => ids[i + 1]));
      expect(spelled.replace(/\}\.?/g, ' ').trim().split(/\s+/).map(Number)).toEqual(sums.map((s) => s.terms.reduce((a, b) => a + b, 0)));
      expect(run.weights[0].filter((w, i) => w === 0 && run.targets[0][i] !== -1)).toEqual([]);
      expect(drillRun(seed, simTok, decode).run).toEqual(run);
    }
    for (const n of [2, 3, 4]) expect(counts.get(n) ?? 0).toBeGreaterThan(20);
  });
  it('with unitsFirst (convention v3) write sums of three or more terms units first and train them from there', async () => {
    const tok = (await loadTokenizer(trainedModelDir(root)))!;
    const decode = (ids: number[]) => tok.decode(ids, { skipSpecial: true });
    const simTok = simTokensFor(tok, completeWorkerNames([], 4));
    let long = 0;
    for (let seed = 0; seed < 10; seed++) {
      const { run, sums } = drillRun(seed, simTok, decode, { unitsFirst: true });
      const ids = run.blocks[0];
      const found = [...decode(ids).matchAll(/\*\*\w+ \[\d+\]:\*\* ([\d+]+)=(?:(\d+)=)?\\boxed\{(\d+)\}\.\n\n/g)];
      expect(found.length).toBe(sums.length);
      const expected: string[] = [];
      for (const m of found) {
        const terms = m[1].split('+').map(Number);
        const sum = terms.reduce((a, b) => a + b, 0);
        expect(Number(m[3])).toBe(sum);
        if (terms.length >= 3) {
          long++;
          expect(m[2]).toBe([...String(sum)].reverse().join(''));
          expected.push(`${m[2]}=\\boxed{${sum}}.\n\n`);
        } else {
          expect(m[2]).toBeUndefined();
          expected.push(`${sum}}.\n\n`);
        }
      }
      // The trained tokens, run by run of consecutive positions, spell exactly what follows the terms' "=" (or the box's "{").
      const trained = run.weights[0].map((w, i) => (w > 0 ? i : -1)).filter((i) => i >= 0);
      const runs: number[][] = [];
      for (const i of trained) (runs.length && runs[runs.length - 1].at(-1) === i - 1 ? runs[runs.length - 1] : (runs.push([]), runs[runs.length - 1])).push(i);
      expect(runs.map((r) => decode(r.map((i) => ids[i + 1])))).toEqual(expected);
    }
    expect(long).toBeGreaterThan(100);
  });
});
