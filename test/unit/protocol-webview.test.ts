// Pure helpers of the webviews: how lane text is cut into virtual-list items.
import { describe, expect, it } from 'vitest';
import { chunkBounds } from '../../webview/chunks';

describe('chunkBounds', () => {
  it('keeps short text in one item', () => {
    expect(chunkBounds('')).toEqual([0, 0]);
    expect(chunkBounds('hello\nworld')).toEqual([0, 11]);
  });

  it('cuts after the first line break past the chunk size', () => {
    const text = 'a'.repeat(12) + '\n' + 'b'.repeat(3) + '\n' + 'c'.repeat(20);
    expect(chunkBounds(text, 10)).toEqual([0, 13, 33, text.length]);
  });

  it('cuts hard at twice the chunk size on a line with no break, sentence end or space', () => {
    expect(chunkBounds('x'.repeat(95), 10)).toEqual([0, 20, 40, 60, 80, 95]);
  });

  it('without a line break, cuts after the last sentence end of the window, else after its last space', () => {
    // Item windows are [10, 20) past each cut. "ccc. " ends a sentence at 15 (a space at 18 comes later).
    expect(chunkBounds('aaaa bbbb ccc. ddd eeeee ' + 'f'.repeat(20), 10)).toEqual([0, 15, 35, 45]);
    // No sentence end: after the window's last space (15).
    expect(chunkBounds('aaaa bbbb cc dd eeee ' + 'f'.repeat(20), 10)).toEqual([0, 16, 36, 41]);
    // A sentence end needs the space after it: "3.14" is none.
    expect(chunkBounds('x'.repeat(12) + '3.14' + 'x'.repeat(16), 10)).toEqual([0, 20, 32]);
  });

  it('does not cut while the window is still growing (a later space or sentence end may come)', () => {
    expect(chunkBounds('aaaa bbbb cccc dddd', 10)).toEqual([0, 19]);
    expect(chunkBounds('aaaa bbbb cccc dddd e', 10)).toEqual([0, 20, 21]);
  });

  it('never moves a cut as the text grows (only the last item changes)', () => {
    let text = '';
    let prev: number[] = [0, 0];
    for (let i = 0; i < 3000; i++) {
      // Line breaks, sentence ends and spaces, and long runs of none.
      text += i % 371 === 0 ? '\n' : i % 97 === 0 ? '. ' : i % 13 === 0 && i % 1000 < 600 ? ' ' : String.fromCharCode(97 + (i % 26));
      const cuts = chunkBounds(text, 50);
      // Every cut but the end is kept by the next call.
      expect(cuts.slice(0, prev.length - 1)).toEqual(prev.slice(0, -1));
      for (let j = 1; j < cuts.length; j++) expect(cuts[j]! - cuts[j - 1]!).toBeLessThanOrEqual(100);
      prev = cuts;
    }
    expect(prev.length).toBeGreaterThan(30);
  });
});
