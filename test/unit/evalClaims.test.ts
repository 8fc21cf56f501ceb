/**
 * The evaluation's duplication count: which part a step computes. Held-out problem 0 has two
 * parts with the same calculation (stamps 5*4 and pens 5*4), so the calculation alone cannot
 * tell them apart; a W = 1 run that does each once must not count as a duplicate.
 */
import { describe, expect, it } from 'vitest';
import { claimedPart, computedPart } from '../../extension/eval/runProblem';
import { heldOutProblems } from '../../extension/tasks/wordProblems';

describe('computedPart', () => {
  const p = heldOutProblems(1)[0];
  const names = p.parts.map((x) => x.item);
  const exprs = p.parts.map((x) => `${x.groups}*${x.size}`);
  const shared = exprs.filter((e, i) => exprs.indexOf(e) !== i);

  it('the fixture really has two parts with one calculation', () => {
    expect(shared.length).toBeGreaterThan(0);
  });

  it('names each part by its own claim word, even when another part shares its calculation', () => {
    for (const [i, part] of p.parts.entries()) {
      const text = `**Alice [${i + 1}]:** ${part.item}: ${exprs[i]}=${part.groups * part.size}.\n\n`;
      expect(computedPart(text, exprs, names)).toBe(part.item);
    }
  });

  it('goes by the calculation when the claim word names another part', () => {
    const a = p.parts.findIndex((_, i) => !shared.includes(exprs[i]));
    const b = p.parts.findIndex((_, i) => i !== a && exprs[i] !== exprs[a]);
    const text = `**Bob [2]:** ${names[b]}: ${exprs[a]}=${p.parts[a].groups * p.parts[a].size}.\n\n`;
    expect(claimedPart(text, names)).toBe(names[b]);
    expect(computedPart(text, exprs, names)).toBe(names[a]);
  });

  it('finds no part in a step without a calculation', () => {
    expect(computedPart('**Alice [3]:** \\boxed{92}.\n\n', exprs, names)).toBeNull();
  });
});
