/**
 * The built-in task family: deterministic for a seed, and every gold answer matches an
 * answer computed independently from the problem's TEXT (not from the generator's numbers).
 * The collaboration simulator (the training data's source) splits parts without duplicates
 * and one worker writes the right \boxed{} answer.
 */
import { describe, expect, it } from 'vitest';
import { HELD_OUT_SEED_BASE, heldOutProblems, makeProblem } from '../../extension/tasks/wordProblems';
import { Sim, type SimLayout } from '../../extension/tasks/collabSim';

/** Reads "a <container> of b <items>" (+ "of which / minus / but c ...") out of the text and adds up. */
function answerFromText(text: string): { total: number; parts: number } {
  const re = /(\d+) [a-z]+ of (\d+) [a-z]+(?: \((?:of which|minus) (\d+) [^)]*\)| \(but (\d+) are away\))?/g;
  let total = 0;
  let parts = 0;
  for (const m of text.matchAll(re)) {
    total += Number(m[1]) * Number(m[2]) - Number(m[3] ?? m[4] ?? 0);
    parts++;
  }
  return { total, parts };
}

describe('word problems', () => {
  it('are deterministic for a seed and differ between seeds', () => {
    for (const seed of [0, 1, 7, 123456, HELD_OUT_SEED_BASE + 3]) expect(makeProblem(seed)).toEqual(makeProblem(seed));
    const texts = new Set(Array.from({ length: 200 }, (_, i) => makeProblem(i).text));
    expect(texts.size).toBe(200);
  });

  it('have gold answers that the text alone confirms, 2 to 6 parts, varied wording', () => {
    const counts = new Set<number>();
    const openings = new Set<string>();
    let withMinus = 0;
    for (const seed of [...Array.from({ length: 300 }, (_, i) => i * 7919), ...Array.from({ length: 200 }, (_, i) => HELD_OUT_SEED_BASE + i)]) {
      const p = makeProblem(seed);
      const ind = answerFromText(p.text);
      expect(ind.parts, p.text).toBe(p.parts.length);
      expect(ind.total, p.text).toBe(p.answer);
      expect(p.parts.length).toBeGreaterThanOrEqual(2);
      expect(p.parts.length).toBeLessThanOrEqual(6);
      expect(new Set(p.parts.map((x) => x.item)).size).toBe(p.parts.length);
      counts.add(p.parts.length);
      openings.add(p.text.split(' ').slice(0, 2).join(' '));
      if (p.parts.some((x) => x.minus > 0)) withMinus++;
    }
    expect([...counts].sort()).toEqual([2, 3, 4, 5, 6]);
    expect(openings.size).toBeGreaterThan(10);
    expect(withMinus).toBeGreaterThan(50);
  });

  it('held-out problems come from seeds the training data never uses', () => {
    const held = heldOutProblems(5);
    expect(held.map((p) => p.seed)).toEqual([0, 1, 2, 3, 4].map((i) => HELD_OUT_SEED_BASE + i));
  });
});

describe('collaboration simulator', () => {
  const names = ['Alice', 'Bob', 'Carol', 'Dave'];
  // About what a BPE gives: a token per word, digit or punctuation run; "\n\n" joins the one before it.
  const words = (s: string) => (s.match(/ ?[A-Za-z]+|\d|[^\sA-Za-z\d]+\n*|\s+/g) ?? []).map((_, i) => i + 1);
  const tokens = { header: (w: number, k: number) => [1000 + w, k], selfCheck: [7, 7, 7], encode: words, eos: -1 };
  for (const layout of ['combined', 'interleaved'] as SimLayout[]) {
    for (const W of [1, 2, 3, 4]) {
      it(`${layout}, ${W} workers: every part once, one right \\boxed answer`, () => {
        for (let seed = 0; seed < 40; seed++) {
          const p = makeProblem(seed);
          const res = new Sim(p, { workers: W, layout, names, selfCheckInterval: 1000, maxTokens: 100000 }, tokens).run();
          const parts = res.steps.filter((s) => s.kind === 'part').map((s) => s.part).sort((a, b) => a - b);
          expect(parts).toEqual(p.parts.map((_, i) => i));
          const combines = res.steps.filter((s) => s.kind === 'combine');
          expect(combines.length).toBe(1);
          expect(combines[0].text).toContain(`\\boxed{${p.answer}}`);
          expect(res.duplicatedParts).toBe(0);
        }
      });
    }
  }

  it('more workers finish in fewer engine steps', () => {
    const steps = (W: number) => {
      let s = 0;
      for (let seed = 0; seed < 40; seed++) s += new Sim(makeProblem(seed), { workers: W, layout: 'combined', names, selfCheckInterval: 1000, maxTokens: 100000 }, tokens).run().answerStep!;
      return s;
    };
    const [s1, s2, s4] = [steps(1), steps(2), steps(4)];
    // The convention's own limit (a perfect model): the final combination grows with W.
    expect(s2 / s1).toBeLessThan(0.9);
    expect(s4 / s1).toBeLessThan(0.9);
  });
});
