// Prefill and load progress: their one wording, the CLI's bar (terminal and plain lines), and
// the run model's summary while the prompt is prefilled (status bar, sidebar, panel read it).
import { describe, expect, it } from 'vitest';
import { formatBytes, formatSeconds, loadText, prefillText } from '../../protocol/progress';
import { ProgressBar } from '../../extension/cli/progress';
import { RunModel } from '../../extension/runModel';
import { DEFAULT_PROMPTS } from '../../extension/collab/prompts';
import type { RunConfig } from '../../protocol/messages';

function sink(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, columns: 120, write: (s: string) => writes.push(s) } };
}

describe('prefill progress', () => {
  it('says done / total with thousands separators and an ETA from the rate', () => {
    expect(prefillText({ done: 3200, total: 8192, tokensPerSecond: 100 })).toBe('prefill 3,200 / 8,192 · ETA 50 s');
    expect(prefillText({ done: 0, total: 8192, tokensPerSecond: 0 })).toBe('prefill 0 / 8,192');
    expect(formatSeconds(125)).toBe('2 min 5 s');
    expect(formatBytes(114688 * 4096)).toBe('470 MB');
  });

  it('draws one bar in place on a terminal and ends its line', () => {
    const { writes, stream } = sink(true);
    const bar = new ProgressBar(stream);
    bar.update({ done: 0, total: 1000, tokensPerSecond: 0 });
    bar.update({ done: 500, total: 1000, tokensPerSecond: 250 });
    expect(writes.every((w) => w.startsWith('\r'))).toBe(true);
    expect(writes[1]).toContain('[############............] prefill 500 / 1,000 · ETA 2 s · 250 tok/s');
    bar.update({ done: 1000, total: 1000, tokensPerSecond: 250 });
    expect(writes[writes.length - 1]).toBe('\n');
    bar.end(); // idempotent
    expect(writes.filter((w) => w === '\n')).toHaveLength(1);
  });

  it('writes plain lines when stderr is not a terminal: the first, the first with work done, every tenth, the end', () => {
    const { writes, stream } = sink(false);
    const bar = new ProgressBar(stream);
    for (let done = 0; done <= 1000; done += 20) bar.update({ done, total: 1000, tokensPerSecond: done > 0 ? 100 : 0 });
    expect(writes.every((w) => !w.includes('\r') && w.endsWith('\n'))).toBe(true);
    expect(writes[0]).toBe('hogwild: prefill 0 / 1,000\n');
    expect(writes[1]).toBe('hogwild: prefill 20 / 1,000 · ETA 10 s · 100 tok/s\n');
    expect(writes.slice(2).map((w) => w.match(/prefill ([\d,]+)/)![1])).toEqual(['100', '200', '300', '400', '500', '600', '700', '800', '900', '1,000']);
    expect(writes[writes.length - 1]).toBe('hogwild: prefill 1,000 / 1,000 · 100 tok/s\n');
  });

  it('shows a model load the same way, and a prefill after it starts afresh', () => {
    expect(loadText({ phase: 'read', done: 620e6, total: 1.2e9 })).toBe('reading the weights 620 MB / 1.20 GB (51%)');
    const { writes, stream } = sink(false);
    const bar = new ProgressBar(stream);
    for (let done = 0; done <= 1.2e9; done += 0.06e9) bar.load({ phase: 'read', done, total: 1.2e9 });
    expect(writes[0]).toBe('hogwild: reading the weights 0 KB / 1.20 GB (0%)\n');
    expect(writes[1]).toBe('hogwild: reading the weights 60 MB / 1.20 GB (5%)\n');
    expect(writes[writes.length - 1]).toBe('hogwild: reading the weights 1.20 GB / 1.20 GB (100%)\n');
    const n = writes.length;
    bar.update({ done: 0, total: 100, tokensPerSecond: 0 });
    expect(writes[n]).toBe('hogwild: prefill 0 / 100\n');
    const tty = sink(true);
    const drawn = new ProgressBar(tty.stream);
    drawn.load({ phase: 'read', done: 0.6e9, total: 1.2e9 });
    expect(tty.writes[0]).toContain('[############............] reading the weights 600 MB / 1.20 GB (50%)');
    drawn.update({ done: 1, total: 100, tokensPerSecond: 0 });
    expect(tty.writes[1]).toBe('\n'); // the load's bar ends before the prefill's starts
  });

  it('shows in the run summary while the prompt is prefilled, with the KV memory from stats', () => {
    const cfg: RunConfig = {
      problem: 'p', workers: 2, workerNames: ['A', 'B'], layout: 'combined',
      sampling: { temperature: 0, topP: 1, topK: 0, seed: 0 }, maxTokens: 10, selfCheckInterval: 1000, maxContext: 0,
      prompts: { ...DEFAULT_PROMPTS },
    };
    const m = new RunModel('r', 't', cfg);
    m.apply([{ type: 'run-state', state: 'prefill' }, { type: 'progress', phase: 'prefill', done: 3200, total: 8192, tokensPerSecond: 64 }], 0);
    expect(m.summary().prefill).toEqual({ done: 3200, total: 8192, tokensPerSecond: 64 });
    m.apply([{ type: 'progress', phase: 'prefill', done: 8192, total: 8192, tokensPerSecond: 64 }, { type: 'run-state', state: 'running' }], 1);
    expect(m.summary().prefill).toBeUndefined();
    m.apply([{ type: 'stats', step: 1, tokens: 2, tokensPerSecond: 1, msPerStep: 5, kvBytes: 123456 }], 2);
    expect(m.summary().kvBytes).toBe(123456);
  });
});
