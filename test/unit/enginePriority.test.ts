// The engine process's priority (extension/engine/priority.ts): below the editor's, set in the
// thread that then makes every other. Checked for real in worker threads: on Linux a priority
// is per thread and a new thread takes its creator's, which is what the engine relies on.
import { describe, expect, it } from 'vitest';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { buildSync } from 'esbuild';
import { BELOW_PARENT, applyEnginePriority, enginePriorityOf } from '../../extension/engine/priority';

describe('engine priority', () => {
  it('is below normal unless HOGWILD_ENGINE_PRIORITY=normal; anything else is refused, naming the variable', () => {
    expect(enginePriorityOf({})).toBe('below-normal');
    expect(enginePriorityOf({ HOGWILD_ENGINE_PRIORITY: 'below-normal' })).toBe('below-normal');
    expect(enginePriorityOf({ HOGWILD_ENGINE_PRIORITY: 'normal' })).toBe('normal');
    expect(() => enginePriorityOf({ HOGWILD_ENGINE_PRIORITY: 'high' })).toThrow(/HOGWILD_ENGINE_PRIORITY must be "below-normal" or "normal", not "high"/);
  });

  it('lowers by 10 from what it inherited, to 19 at most; "normal" changes nothing', () => {
    const calls: [number, number][] = [];
    const now = os.getPriority(0);
    applyEnginePriority({}, (pid, p) => calls.push([pid, p]));
    expect(calls).toEqual(now + BELOW_PARENT <= 19 ? [[0, now + BELOW_PARENT]] : now === 19 ? [] : [[0, 19]]);
    calls.length = 0;
    applyEnginePriority({ HOGWILD_ENGINE_PRIORITY: 'normal' }, (pid, p) => calls.push([pid, p]));
    expect(calls).toEqual([]);
  });

  it.runIf(process.platform === 'linux')('covers the threads made after it, and not the thread that started the process', async () => {
    const code = buildSync({ entryPoints: [path.resolve(__dirname, '../../extension/engine/priority.ts')], bundle: true, platform: 'node', format: 'cjs', write: false }).outputFiles[0]!.text;
    const before = os.getPriority(0);
    // A worker plays the engine's main thread: it applies the priority, then makes a thread.
    const script = `
      const { parentPort, Worker, workerData } = require('node:worker_threads');
      const os = require('node:os');
      const m = { exports: {} };
      new Function('module', 'exports', 'require', workerData.code)(m, m.exports, require);
      const inherited = os.getPriority(0);
      const note = m.exports.applyEnginePriority({});
      const own = os.getPriority(0);
      const child = new Worker("require('node:worker_threads').parentPort.postMessage(require('node:os').getPriority(0))", { eval: true });
      child.once('message', (made) => parentPort.postMessage({ inherited, own, made, note }));
    `;
    const got = await new Promise<{ inherited: number; own: number; made: number; note: string }>((resolve, reject) => {
      const w = new Worker(script, { eval: true, workerData: { code } });
      w.once('message', resolve);
      w.once('error', reject);
    });
    const want = Math.min(19, got.inherited + BELOW_PARENT);
    expect(got.own).toBe(want);
    expect(got.made).toBe(want);
    expect(got.note).toBe(`engine priority: ${want} (inherited ${got.inherited})`);
    // Per thread: the thread that made the worker keeps its own.
    expect(os.getPriority(0)).toBe(before);
  });
});
