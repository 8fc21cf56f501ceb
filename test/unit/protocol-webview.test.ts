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
    expect(chunkBounds(text, 10)).toEqual([0, 13, text.length]);
  });

  it('cuts hard on a line that never breaks', () => {
    expect(chunkBounds('x'.repeat(95), 10)).toEqual([0, 40, 80, 95]);
  });

  it('never moves a cut as the text grows (only the last item changes)', () => {
    let text = '';
    let prev: number[] = [0, 0];
    for (let i = 0; i < 3000; i++) {
      text += i % 37 === 0 ? '\n' : String.fromCharCode(97 + (i % 26));
      const cuts = chunkBounds(text, 50);
      // Every cut but the end is kept by the next call.
      expect(cuts.slice(0, prev.length - 1)).toEqual(prev.slice(0, -1));
      for (let j = 1; j < cuts.length; j++) expect(cuts[j]! - cuts[j - 1]!).toBeLessThanOrEqual(200);
      prev = cuts;
    }
    expect(prev.length).toBeGreaterThan(20);
  });
});
