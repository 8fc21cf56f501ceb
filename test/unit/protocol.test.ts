// Validation of every message that crosses a boundary: webview messages are hostile input.
import { describe, expect, it } from 'vitest';
import {
  parseTraceLine,
  stringifyTraceLine,
  validateEngineMessage,
  validateEngineRequest,
  validateFromWebview,
  validateRunConfig,
} from '../../protocol/validate';
import { MAX_NOTE_CHARS } from '../../protocol/limits';
import type { EngineEvent, TraceLine } from '../../protocol/messages';
import { parseTrace, TraceRecorder } from '../../extension/trace';
import { Coalescer, mergeEvents } from '../../extension/coalesce';
import { RunModel, modelFromSnapshot, snapshotOf } from '../../extension/runModel';
import { testRunConfig } from './testRunConfig';

const config = testRunConfig();

function ok<T>(r: { ok: true; value: T } | { ok: false; error: string }): T {
  if (!r.ok) throw new Error(`expected ok, got: ${r.error}`);
  return r.value;
}

function bad(r: { ok: boolean; error?: string }): string {
  expect(r.ok).toBe(false);
  return (r as { error: string }).error;
}

describe('validateFromWebview: good messages', () => {
  it('accepts every message type and rebuilds it', () => {
    expect(ok(validateFromWebview({ type: 'ready' }))).toEqual({ type: 'ready' });
    expect(ok(validateFromWebview({ type: 'control', id: 1, runId: 'run-abc_1', control: { type: 'pause' } }))).toEqual({ type: 'control', id: 1, runId: 'run-abc_1', control: { type: 'pause' } });
    expect(ok(validateFromWebview({ type: 'control', id: 2, runId: 'r', control: { type: 'pause', worker: 1 } }))).toEqual({ type: 'control', id: 2, runId: 'r', control: { type: 'pause', worker: 1 } });
    expect(ok(validateFromWebview({ type: 'control', id: 3, runId: 'r', control: { type: 'inject', target: 'all', text: 'hi' } }))).toEqual({ type: 'control', id: 3, runId: 'r', control: { type: 'inject', target: 'all', text: 'hi' } });
    expect(ok(validateFromWebview({ type: 'control', id: 1, runId: 'r', control: { type: 'inject', target: 3, text: 'x' } })).type).toBe('control');
    expect(ok(validateFromWebview({ type: 'control', id: 1, runId: 'r', control: { type: 'fork', worker: 0 } })).type).toBe('control');
    expect(ok(validateFromWebview({ type: 'control', id: 1, runId: 'r', control: { type: 'set-temperature', worker: 0, temperature: 0.7 } })).type).toBe('control');
    expect(ok(validateFromWebview({ type: 'control', id: 1, runId: 'r', control: { type: 'step' } })).type).toBe('control');
    expect(ok(validateFromWebview({ type: 'inspect', id: 8, runId: 'r', block: 3, index: 10 }))).toEqual({ type: 'inspect', id: 8, runId: 'r', block: 3, index: 10 });
    expect(ok(validateFromWebview({ type: 'select-run', runId: 'r' }))).toEqual({ type: 'select-run', runId: 'r' });
    expect(ok(validateFromWebview({ type: 'command', id: 9, command: 'restart-engine' }))).toEqual({ type: 'command', id: 9, command: 'restart-engine' });
    expect(ok(validateFromWebview({ type: 'command', id: 10, command: 'save-trace', runId: 'r' }))).toEqual({ type: 'command', id: 10, command: 'save-trace', runId: 'r' });
    expect(bad(validateFromWebview({ type: 'command', command: 'open-log' }))).toMatch(/id: expected a finite number/);
    expect(ok(validateFromWebview({ type: 'command', id: 11, command: 'open-panel', runId: 'r', token: { block: 3, index: 7 } }))).toEqual({ type: 'command', id: 11, command: 'open-panel', runId: 'r', token: { block: 3, index: 7 } });
    expect(bad(validateFromWebview({ type: 'command', id: 12, command: 'open-panel', runId: 'r', token: { block: 3, index: -1 } }))).toMatch(/index/);
  });

  it('returns a fresh object, never the input', () => {
    const input = { type: 'control', id: 1, runId: 'r', control: { type: 'stop' } };
    const out = ok(validateFromWebview(input));
    expect(out).not.toBe(input);
    expect((out as { control: unknown }).control).not.toBe(input.control);
  });
});

describe('validateFromWebview: malformed and hostile messages', () => {
  const cases: [string, unknown, RegExp][] = [
    ['null', null, /expected an object, got null/],
    ['undefined', undefined, /expected an object/],
    ['a string', 'pause', /expected an object/],
    ['a number', 42, /expected an object/],
    ['an array', [{ type: 'ready' }], /expected an object, got an array/],
    ['no type', {}, /unknown message type/],
    ['unknown type', { type: 'eval', code: 'x' }, /unexpected field|unknown message type/],
    ['type not a string', { type: 7 }, /unknown message type/],
    ['extra field', { type: 'ready', extra: 1 }, /unexpected field "extra"/],
    ['missing runId', { type: 'control', id: 1, control: { type: 'pause' } }, /runId: expected a string/],
    ['runId with a path', { type: 'control', id: 1, runId: '../../etc/passwd', control: { type: 'pause' } }, /runId: has an invalid format/],
    ['runId too long', { type: 'select-run', runId: 'a'.repeat(65) }, /runId: longer than 64/],
    ['runId empty', { type: 'select-run', runId: '' }, /runId: has an invalid format/],
    ['unknown control', { type: 'control', id: 1, runId: 'r', control: { type: 'rm -rf' } }, /unknown control/],
    ['control not an object', { type: 'control', id: 1, runId: 'r', control: 'pause' }, /control: expected an object/],
    ['empty note', { type: 'control', id: 1, runId: 'r', control: { type: 'inject', target: 'all', text: '   ' } }, /must not be empty/],
    ['huge note', { type: 'control', id: 1, runId: 'r', control: { type: 'inject', target: 'all', text: 'x'.repeat(MAX_NOTE_CHARS + 1) } }, /longer than 4000/],
    ['note target a string', { type: 'control', id: 1, runId: 'r', control: { type: 'inject', target: 'everyone', text: 'x' } }, /target: expected a finite number/],
    ['negative worker', { type: 'control', id: 1, runId: 'r', control: { type: 'fork', worker: -1 } }, /must be between 0/],
    ['fractional worker', { type: 'control', id: 1, runId: 'r', control: { type: 'fork', worker: 1.5 } }, /expected an integer/],
    ['NaN worker', { type: 'control', id: 1, runId: 'r', control: { type: 'fork', worker: NaN } }, /finite number/],
    ['Infinity temperature', { type: 'control', id: 1, runId: 'r', control: { type: 'set-temperature', worker: 0, temperature: Infinity } }, /finite number/],
    ['temperature out of range', { type: 'control', id: 1, runId: 'r', control: { type: 'set-temperature', worker: 0, temperature: 99 } }, /between 0 and 5/],
    ['worker as a string', { type: 'control', id: 1, runId: 'r', control: { type: 'fork', worker: '0' } }, /expected a finite number, got "0"/],
    ['huge worker id', { type: 'control', id: 1, runId: 'r', control: { type: 'fork', worker: 1e9 } }, /between 0 and/],
    ['pause with extra field', { type: 'control', id: 1, runId: 'r', control: { type: 'pause', all: true } }, /unexpected field "all"/],
    ['step with a worker', { type: 'control', id: 1, runId: 'r', control: { type: 'step', worker: 1 } }, /unexpected field "worker"/],
    ['unknown command', { type: 'command', id: 1, command: 'workbench.action.terminal.sendSequence' }, /expected one of/],
    ['inspect negative block', { type: 'inspect', id: 1, runId: 'r', block: -5, index: 0 }, /between 0/],
    ['inspect index a string', { type: 'inspect', id: 1, runId: 'r', block: 0, index: '1' }, /finite number/],
    ['a class instance', new (class X { type = 'ready'; })(), /expected an object/],
    ['a Date', new Date(), /expected an object/],
  ];
  for (const [name, msg, re] of cases) {
    it(`rejects ${name}`, () => {
      expect(bad(validateFromWebview(msg))).toMatch(re);
    });
  }

  it('rejects __proto__ and constructor keys and pollutes nothing', () => {
    const hostile = JSON.parse('{"type":"ready","__proto__":{"polluted":true}}');
    expect(bad(validateFromWebview(hostile))).toMatch(/unexpected field "__proto__"/);
    const hostile2 = JSON.parse('{"type":"control","id":1,"runId":"r","control":{"type":"pause","__proto__":{"polluted":true}}}');
    expect(bad(validateFromWebview(hostile2))).toMatch(/unexpected field "__proto__"/);
    expect(bad(validateFromWebview({ type: 'ready', constructor: { prototype: {} } }))).toMatch(/unexpected field "constructor"/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('an object with a getter that throws is an error, not a crash', () => {
    const evil = {
      type: 'control',
      id: 1,
      runId: 'r',
      get control(): unknown {
        throw new Error('boom');
      },
    };
    expect(bad(validateFromWebview(evil))).toMatch(/boom|invalid/);
  });

  it('a very deep object does not blow the stack', () => {
    let deep: Record<string, unknown> = { type: 'pause' };
    for (let i = 0; i < 100_000; i++) deep = { type: 'inject', target: 'all', text: deep };
    expect(validateFromWebview({ type: 'control', id: 1, runId: 'r', control: deep }).ok).toBe(false);
  });

  it('error messages are bounded even for huge strings', () => {
    const e = bad(validateFromWebview({ type: 'select-run', runId: 'x'.repeat(1_000_000) }));
    expect(e.length).toBeLessThan(200);
  });
});

describe('engine messages and requests', () => {
  it('accepts the engine messages and revives nothing it should not', () => {
    expect(ok(validateEngineMessage({ type: 'ready', pid: 123 }))).toEqual({ type: 'ready', pid: 123 });
    expect(ok(validateEngineMessage({ type: 'reply', inReplyTo: 1, ok: true, result: { any: 'thing' } }))).toEqual({ type: 'reply', inReplyTo: 1, ok: true, result: { any: 'thing' } });
    expect(ok(validateEngineMessage({ type: 'reply', inReplyTo: 1, ok: false, error: 'bad' }))).toEqual({ type: 'reply', inReplyTo: 1, ok: false, error: 'bad' });
    expect(ok(validateEngineMessage({ type: 'progress', inReplyTo: 2, message: 'loading', fraction: 0.5 })).type).toBe('progress');
    const ev = ok(validateEngineMessage({ type: 'events', runId: 'r', events: [{ type: 'tokens', worker: 0, step: 1, ids: new Int32Array([1, 2]), text: 'ab' }] }));
    expect(ev.type === 'events' && ev.events[0]!.type === 'tokens' && ev.events[0].ids instanceof Int32Array).toBe(true);
  });

  it('rejects broken engine messages', () => {
    expect(bad(validateEngineMessage({ type: 'reply', inReplyTo: 1, ok: 'yes' }))).toMatch(/true or false/);
    expect(bad(validateEngineMessage({ type: 'reply', id: 1, ok: true }))).toMatch(/unexpected field "id"|inReplyTo/);
    expect(bad(validateEngineMessage({ type: 'run-ended', runId: 'r', state: 'failed' }))).toMatch(/unknown message type/);
    expect(bad(validateEngineMessage({ type: 'events', runId: 'r', events: [{ type: 'tokens', worker: 0, step: 1, ids: [1.5], text: '' }] }))).toMatch(/integer/);
    expect(bad(validateEngineMessage({ type: 'events', runId: 'r', events: [{ type: 'nope' }] }))).toMatch(/unknown event/);
    expect(bad(validateEngineMessage({ type: 'events', runId: 'r', events: [{ type: 'run-state', state: 'exploded' }] }))).toMatch(/expected one of/);
    expect(bad(validateEngineMessage({ type: 'log', level: 'debug', text: 'x' }))).toMatch(/expected one of/);
  });

  it('validates requests in the engine process', () => {
    expect(ok(validateEngineRequest({ type: 'load', id: 1, modelDir: '', device: 'cpu', threads: 0 })).type).toBe('load');
    expect(ok(validateEngineRequest({ type: 'start', id: 2, runId: 'r', config })).type).toBe('start');
    expect(ok(validateEngineRequest({ type: 'shutdown', id: 3 })).type).toBe('shutdown');
    expect(bad(validateEngineRequest({ type: 'load', id: 1, modelDir: '', device: 'tpu', threads: 0 }))).toMatch(/device/);
    expect(ok(validateEngineRequest({ type: 'load', id: 1, modelDir: '', device: 'cpu', threads: 0, kvDtype: 'q8' })).type).toBe('load');
    expect(bad(validateEngineRequest({ type: 'load', id: 1, modelDir: '', device: 'cpu', threads: 0, kvDtype: 'q4' }))).toMatch(/kvDtype/);
    expect(bad(validateEngineRequest({ type: 'start', id: 2, runId: 'r', config: { ...config, workers: 0 } }))).toMatch(/workers: must be between 1/);
    expect(bad(validateEngineRequest({ type: 'start', id: 2, runId: 'r', config: { ...config, layout: 'tree' } }))).toMatch(/layout/);
    expect(bad(validateEngineRequest({ type: 'start', id: 2, runId: 'r', config: { ...config, sampling: { ...config.sampling, topP: 2 } } }))).toMatch(/topP/);
    expect(bad(validateEngineRequest({ id: 'x', type: 'shutdown' }))).toMatch(/id/);
  });

  it('validates run configurations, raw ones included', () => {
    expect(ok(validateRunConfig(config))).toEqual(config);
    const raw = { ...config, raw: { promptIds: [1, 2], workerIds: [[3], [4, 5]], steps: 4, stepIds: [7], topLogits: 3 } };
    expect(ok(validateRunConfig(raw))).toEqual(raw);
    expect(bad(validateRunConfig({ ...config, raw: { promptIds: [-1], workerIds: [[1]], steps: 1 } }))).toMatch(/promptIds\[0\]/);
    expect(bad(validateRunConfig({ ...config, prompts: { ...config.prompts, system: 5 } }))).toMatch(/prompts\.system/);
  });
});

describe('traces', () => {
  const events: EngineEvent[] = [
    { type: 'run-state', state: 'running' },
    { type: 'worker', info: { worker: 0, name: 'Alice', state: 'running', temperature: 0.6 } },
    { type: 'tokens', worker: 0, step: 1, ids: new Int32Array([10, 11, 12]), text: 'abc' },
    { type: 'step-finished', worker: 0, step: 1, label: 'Alice [1]', text: 'abc', historyBlock: 4 },
    { type: 'block', op: 'created', info: { block: 4, kind: 'history', owner: -1, length: 3, label: 'Alice [1]' } },
    { type: 'views', step: 3, views: [[{ block: 0, offset: 0, length: 5 }]] },
    { type: 'attention', step: 3, shares: [[0.25, 0.75]] },
    { type: 'stats', step: 3, tokens: 3, tokensPerSecond: 4.5, msPerStep: 200 },
    { type: 'note', target: 'all', block: 5, text: 'hi' },
    { type: 'answer', text: '\\boxed{4}', answer: '4' },
    { type: 'run-state', state: 'finished' },
  ];

  it('round-trips every event type through JSON Lines, typed arrays included', () => {
    const line: TraceLine = { type: 'events', t: 12, events };
    const text = stringifyTraceLine(line);
    expect(text).toContain('"ids":[10,11,12]');
    const back = ok(parseTraceLine(text));
    expect(back).toEqual(line);
    const tok = (back as { events: EngineEvent[] }).events[2] as Extract<EngineEvent, { type: 'tokens' }>;
    expect(tok.ids).toBeInstanceOf(Int32Array);
  });

  it('records and parses a whole trace; a line cut off at the end is dropped', () => {
    const rec = new TraceRecorder({ type: 'hogwild-trace', version: 1, runId: 'run-1', title: 't', startedAt: new Date().toISOString(), config, model: null });
    rec.add(events.slice(0, 3));
    rec.add(events.slice(3));
    rec.end('finished');
    const full = parseTrace(rec.text());
    expect(full.header.runId).toBe('run-1');
    expect(full.batches.flatMap((b) => b.events)).toEqual(events);
    expect(full.end?.state).toBe('finished');
    const cut = rec.text().slice(0, rec.text().length - 10);
    const partial = parseTrace(cut);
    expect(partial.batches.length).toBe(2);
    expect(partial.end).toBeNull();
  });

  it('rejects files that are not traces, with the line number', () => {
    expect(() => parseTrace('')).toThrow(/empty file/);
    expect(() => parseTrace('{"type":"events","t":0,"events":[]}\n')).toThrow(/first line must be its header/);
    expect(() => parseTrace('not json\n{}\n', 'x.jsonl')).toThrow(/x\.jsonl: line 1: not JSON/);
    const header = stringifyTraceLine({ type: 'hogwild-trace', version: 1, runId: 'r', title: 't', startedAt: 'now', config, model: null });
    expect(() => parseTrace(`${header}\n{"type":"events","t":0,"events":[{"type":"tokens","worker":-3,"step":0,"ids":[],"text":""}]}\n{"type":"end","t":1,"state":"finished"}\n`)).toThrow(/line 2: .*worker/);
    expect(() => parseTrace(header.replace('"version":1', '"version":99'))).toThrow(/newer/);
  });
});

describe('coalescing', () => {
  it('merges consecutive tokens of a worker and step, keeps the order of everything else', () => {
    const merged = mergeEvents([
      { type: 'tokens', worker: 0, step: 1, ids: new Int32Array([1]), text: 'a' },
      { type: 'tokens', worker: 1, step: 1, ids: new Int32Array([2]), text: 'b' },
      { type: 'tokens', worker: 0, step: 1, ids: new Int32Array([3]), text: 'c' },
      { type: 'stats', step: 1, tokens: 2, tokensPerSecond: 1, msPerStep: 1 },
      { type: 'stats', step: 2, tokens: 3, tokensPerSecond: 2, msPerStep: 1 },
      { type: 'step-finished', worker: 0, step: 1, label: 'A [1]', text: 'ac', historyBlock: 3 },
      { type: 'tokens', worker: 0, step: 2, ids: new Int32Array([4]), text: 'd' },
      { type: 'tokens', worker: 0, step: 2, ids: new Int32Array([5]), text: 'e' },
    ]);
    expect(merged.map((e) => e.type)).toEqual(['tokens', 'tokens', 'stats', 'step-finished', 'tokens']);
    const t0 = merged[0] as Extract<EngineEvent, { type: 'tokens' }>;
    expect(Array.from(t0.ids)).toEqual([1, 3]);
    expect(t0.text).toBe('ac');
    expect((merged[2] as Extract<EngineEvent, { type: 'stats' }>).step).toBe(2);
    expect((merged[4] as Extract<EngineEvent, { type: 'tokens' }>).text).toBe('de');
  });

  it('flushes at most once per interval', async () => {
    const flushes: EngineEvent[][] = [];
    const c = new Coalescer((e) => flushes.push(e), 50);
    const t0 = Date.now();
    while (Date.now() - t0 < 260) {
      c.push([{ type: 'tokens', worker: 0, step: 1, ids: new Int32Array([1]), text: 'x' }]);
      await new Promise((r) => setTimeout(r, 2));
    }
    c.flush();
    expect(flushes.length).toBeGreaterThanOrEqual(3);
    expect(flushes.length).toBeLessThanOrEqual(8);
    const total = flushes.flat().reduce((n, e) => n + (e.type === 'tokens' ? e.text.length : 0), 0);
    expect(total).toBeGreaterThan(20);
    c.dispose();
  });

  it('holds the next flush until the previous delivery settles, then sends everything merged', async () => {
    const flushes: EngineEvent[][] = [];
    const deliveries: (() => void)[] = [];
    const c = new Coalescer((e) => {
      flushes.push(e);
      return new Promise<void>((r) => deliveries.push(r));
    }, 5);
    const tok = (text: string): EngineEvent => ({ type: 'tokens', worker: 0, step: 1, ids: new Int32Array([text.charCodeAt(0)]), text });
    const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
    c.push([tok('a')]);
    await wait(30);
    expect(flushes.length).toBe(1);
    // The first is not yet taken: nothing more goes out, however long.
    for (const ch of 'bcdef') {
      c.push([tok(ch)]);
      await wait(10);
    }
    c.push([{ type: 'run-state', state: 'paused' }]);
    await wait(30);
    expect(flushes.length).toBe(1);
    deliveries[0]!();
    await wait(30);
    // One message with all that waited, merged, the pause last.
    expect(flushes.length).toBe(2);
    expect(flushes[1]!.map((e) => e.type)).toEqual(['tokens', 'run-state']);
    expect((flushes[1]![0] as Extract<EngineEvent, { type: 'tokens' }>).text).toBe('bcdef');
    c.dispose();
  });

  it('a delivery that never settles holds the next back only for the timeout', async () => {
    const flushes: EngineEvent[][] = [];
    const c = new Coalescer((e) => {
      flushes.push(e);
      return new Promise<void>(() => undefined);
    }, 5, 60);
    c.push([{ type: 'run-state', state: 'running' }]);
    await new Promise((r) => setTimeout(r, 20));
    c.push([{ type: 'run-state', state: 'paused' }]);
    await new Promise((r) => setTimeout(r, 20));
    expect(flushes.length).toBe(1);
    await new Promise((r) => setTimeout(r, 120));
    expect(flushes.length).toBe(2);
    c.dispose();
  });
});

describe('run model', () => {
  it('builds lanes, history, notes, answer and a summary from events', () => {
    const m = new RunModel('run-1', 'Two plus two', config);
    m.apply(
      [
        { type: 'run-state', state: 'running' },
        { type: 'tokens', worker: 0, step: 1, ids: new Int32Array([1, 2]), text: '**Alice [1]:** hello\n' },
        { type: 'tokens', worker: 1, step: 1, ids: new Int32Array([3]), text: 'hi' },
        { type: 'step-finished', worker: 0, step: 1, label: 'Alice [1]', text: 'hello', historyBlock: 7 },
        { type: 'tokens', worker: 0, step: 2, ids: new Int32Array([4]), text: 'next line' },
        { type: 'worker', info: { worker: 2, name: 'Alice′', state: 'running', temperature: 0.6, forkedFrom: 0 } },
        { type: 'note', target: 1, block: 9, text: 'look' },
        { type: 'answer', text: '\\boxed{4}', answer: '4' },
      ],
      1000,
    );
    const a = m.workers.get(0)!;
    expect(a.segments.map((s) => [s.step, s.finished])).toEqual([
      [1, true],
      [2, false],
    ]);
    expect(a.tokens).toBe(3);
    expect(a.lastLine).toBe('next line');
    expect(m.history).toEqual([{ worker: 0, step: 1, label: 'Alice [1]', text: 'hello', block: 7 }]);
    expect(m.workers.get(2)!.info.forkedFrom).toBe(0);
    expect(m.notes[0]).toEqual({ target: 1, block: 9, text: 'look' });
    const s = m.summary();
    expect(s.workers.map((w) => w.name)).toEqual(['Alice', 'Bob', 'Alice′']);
    expect(s.tokens).toBe(4);
    const back = modelFromSnapshot(JSON.parse(JSON.stringify(snapshotOf(m))));
    expect(back.workers.get(0)!.segments).toEqual(a.segments);
    expect(back.answer).toEqual({ text: '\\boxed{4}', answer: '4' });
  });
});
