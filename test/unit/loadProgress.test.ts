// A model load reports its progress (issue 13): the engine reads the weight files with
// reports of bytes done, whose total is the files' size on disk, all before the load settles.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { addon, fixturesDir } from './engineHarness';

function safetensorsBytes(dir: string): number {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.safetensors'))
    .reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
}

describe('model load progress', () => {
  it.each(['qwen3-tiny', 'llama-tiny'])('%s: reports from 0 to the weight files\' bytes before the load resolves', async (name) => {
    const dir = path.join(fixturesDir, name);
    const events: string[] = [];
    const reports: { phase: string; done: number; total: number }[] = [];
    const model = await addon.loadModel(dir, { device: 'cpu', threads: 1 }, (phase, done, total) => {
      events.push('progress');
      reports.push({ phase, done, total });
    });
    events.push('loaded');
    const delivered = reports.length;
    await new Promise((r) => setTimeout(r, 50));
    expect(reports.length, 'no report after the load resolved').toBe(delivered);
    const bytes = safetensorsBytes(dir); // llama-tiny has two shards
    expect(reports.length).toBeGreaterThan(0);
    expect(events.indexOf('progress')).toBe(0);
    expect(events.filter((e) => e === 'progress')).toHaveLength(events.length - 1);
    expect(reports.every((r) => r.phase === 'read' && r.total === bytes)).toBe(true);
    for (let i = 1; i < reports.length; i++) expect(reports[i].done).toBeGreaterThanOrEqual(reports[i - 1].done);
    expect(reports[reports.length - 1].done).toBe(bytes);
    model.close();
  });

  it('a throwing progress callback does not end the load; a callback that is not a function is refused', async () => {
    const dir = path.join(fixturesDir, 'qwen3-tiny');
    const model = await addon.loadModel(dir, { device: 'cpu', threads: 1 }, () => {
      throw new Error('a bug in the caller');
    });
    expect(model.config.layers).toBeGreaterThan(0);
    model.close();
    expect(() => addon.loadModel(dir, { device: 'cpu', threads: 1 }, 42 as unknown as () => void)).toThrow(/onProgress must be a function/);
  });
});
