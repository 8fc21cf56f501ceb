// The token inspector's reading of an engine answer: the step the attention was recorded at, and
// what the answer lacks (a GPU records the attention on every key only when asked).
import { describe, expect, test } from 'vitest';
import { inspectFromEngine } from '../../extension/insights/inspection';
import type { InspectResult } from '../../protocol/messages';

const base: InspectResult = {
  block: 3,
  index: 1,
  token: 42,
  text: 'x',
  author: 0,
  step: 2,
  seenAt: [
    { worker: 0, position: 10, rotation: 4 },
    { worker: 1, position: null, rotation: null },
  ],
};

describe('inspectFromEngine', () => {
  test('attention of a step: per worker, its step, nothing missing', () => {
    const d = inspectFromEngine({ ...base, attention: [{ worker: 0, share: 0.25 }], attentionStep: 7 });
    expect(d.rows.map((r) => r.attention)).toEqual([0.25, null]);
    expect(d.attentionStep).toBe(7);
    expect(d.missing).toEqual([]);
  });

  test('an older step while the next one records it: the values shown, and which step they are', () => {
    const d = inspectFromEngine({ ...base, attention: [{ worker: 0, share: 0.5 }], attentionStep: 7, attentionPending: true });
    expect(d.rows[0]!.attention).toBe(0.5);
    expect(d.missing).toEqual(["attention at the last step (shown: step 7's; the next step records it)"]);
  });

  test('none recorded yet: the next step records it', () => {
    const d = inspectFromEngine({ ...base, attentionPending: true });
    expect(d.rows.map((r) => r.attention)).toEqual([null, null]);
    expect(d.attentionStep).toBeNull();
    expect(d.missing[0]).toMatch(/recorded at the next step/);
  });

  test('a run without attention shares says so', () => {
    const d = inspectFromEngine(base);
    expect(d.missing).toEqual(['attention (the run does not record attention shares)']);
  });
});
