// The cache as the views see it (extension/insights): recorded traces of all three layouts,
// and a live run whose every token's place the engine itself is asked about.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CacheState } from '../../extension/insights/cacheState';
import { sourceOf } from '../../extension/insights/attentionSeries';
import { findInRun } from '../../extension/insights/find';
import { cacheMapEvents } from '../../extension/insights/cacheMapEvents';
import { runToMarkdown } from '../../extension/insights/markdown';
import { RunModel } from '../../extension/runModel';
import { parseTrace } from '../../extension/trace';
import { EngineClient } from '../../extension/engine/client';
import { DEFAULT_PROMPTS, completeWorkerNames } from '../../extension/collab';
import { QWEN3_0_6B, findQwen3TokenizerDir, writeRandomCheckpoint } from '../../extension/model/defaultModel';
import type { EngineEvent, Layout, RunConfig } from '../../protocol/messages';

const root = path.resolve(__dirname, '..', '..');
const TRACES = ['contiguous', 'interleaved', 'combined', 'combined-moves'];

function load(name: string) {
  const t = parseTrace(fs.readFileSync(path.join(root, 'test', 'fixtures', 'traces', `${name}.jsonl`), 'utf8'), name);
  const events = t.batches.flatMap((b) => b.events);
  const model = new RunModel(t.header.runId, t.header.title, t.header.config, 'replay');
  model.apply(events, 0);
  const cache = new CacheState();
  cache.apply(events);
  return { t, events, model, cache };
}

describe.each(TRACES)('trace %s', (name) => {
  const { t, events, model, cache } = load(name);
  const lastViews = [...events].reverse().find((e) => e.type === 'views') as Extract<EngineEvent, { type: 'views' }>;

  test('the trace holds the layout it says', () => {
    expect(cache.views.length).toBeGreaterThan(0);
    const kinds = new Set(cache.views[0]!.map((s) => cache.blocks.get(s.block)!.kind));
    if (t.header.config.layout === 'contiguous') expect(kinds.has('history')).toBe(false);
    else expect(kinds.has('history')).toBe(true);
    expect(kinds.has('header')).toBe(t.header.config.layout === 'combined');
  });

  test('each view is contiguous: offsets are the running sum of lengths, the own block last', () => {
    lastViews.views.forEach((v, w) => {
      let at = 0;
      for (const s of v) {
        expect(s.offset).toBe(at);
        at += s.length;
      }
      const own = cache.blocks.get(v[v.length - 1]!.block)!;
      expect(own.kind).toBe('worker');
      expect(own.owner).toBe(w);
    });
  });

  test('every lane step maps to its tokens, whose pieces spell the lane text', () => {
    for (const w of model.workers.values()) {
      for (const seg of w.segments) {
        const ref = cache.stepRef(w.info.worker, seg.step);
        if (!ref) {
          expect(seg.text).toBe(''); // only the decoder's final flush has no tokens
          continue;
        }
        const b = cache.blocks.get(ref.block)!;
        const text = b.pieces.slice(ref.start, ref.start + ref.count).join('');
        expect(text).toBe(seg.text);
        for (let i = ref.start; i < ref.start + ref.count; i++) {
          // A fork's first step holds its origin's copied tokens.
          if (b.steps.at(i) === seg.step && b.authors.at(i) === w.info.worker) continue;
          expect(w.info.forkedFrom).toBeDefined();
        }
      }
    }
  });

  test('a token is seen at its block offset plus its index, rotated by the view end minus the offset', () => {
    for (const b of cache.blocks.values()) {
      for (const index of [0, Math.floor(b.ids.length / 2), b.ids.length - 1]) {
        if (index < 0) continue;
        const seen = cache.seenAt({ block: b.block, index });
        lastViews.views.forEach((v, w) => {
          const seg = v.find((s) => s.block === b.block);
          const end = v[v.length - 1]!.offset + v[v.length - 1]!.length;
          const want = seg && index < seg.length ? { position: seg.offset + index, rotation: end - seg.offset } : { position: null, rotation: null };
          expect({ position: seen[w]!.position, rotation: seen[w]!.rotation }).toEqual(want);
        });
      }
    }
  });

  test('attention per source is the sum of the segment shares of that source', () => {
    let views: Extract<EngineEvent, { type: 'views' }> | null = null;
    let checked = 0;
    for (const e of events) {
      if (e.type === 'views') views = e;
      if (e.type !== 'attention' || !views) continue;
      e.shares.forEach((shares, r) => {
        const sums = new Map<number, number>();
        views!.views[r]!.forEach((s, i) => {
          const b = cache.blocks.get(s.block)!;
          const src = sourceOf(b.kind, b.owner);
          sums.set(src, (sums.get(src) ?? 0) + shares[i]!);
        });
        for (const [src, want] of sums) {
          expect(cache.attention.value(e.step, r, src)).toBeCloseTo(want, 5);
          if (e.layers) {
            let l1 = 0;
            views!.views[r]!.forEach((s, i) => {
              const b = cache.blocks.get(s.block)!;
              if (sourceOf(b.kind, b.owner) === src) l1 += e.layers![r]![1]![i]!;
            });
            expect(Math.abs(cache.attention.value(e.step, r, src, 1) - l1)).toBeLessThanOrEqual(0.5 / 255 + 1e-6);
          }
          checked++;
        }
      });
    }
    expect(checked).toBeGreaterThan(10);
    // Layers were recorded, and a step with no attention is "not recorded", never 0.
    expect(cache.attention.layers).toBe(t.header.model!.layers);
    expect(cache.attention.value(10_000, 0, 0)).toBeNaN();
  });

  test('the Markdown export holds every step of every worker, the history, the notes and the layout', () => {
    const md = runToMarkdown(model, cache);
    for (const w of model.workers.values()) for (const s of w.segments) expect(md).toContain(`#### ${w.info.name} [${s.step}]`);
    for (const w of model.workers.values()) for (const s of w.segments) if (s.text.trim()) expect(md).toContain(s.text.trim());
    for (const e of model.history) expect(md).toContain(`**${e.label}** (block ${e.block})`);
    for (const n of model.notes) expect(md).toContain(n.text.trim().replace(/\n+/g, ' '));
    if (model.answer) expect(md).toContain(model.answer.text.trim());
    cache.views.forEach((_v, w) => expect(md).toContain(`### ${model.workers.get(w)!.info.name}'s view`));
    expect(md.split('\n').filter((l) => /^\| \d+ \|/.test(l)).length).toBe(cache.views.reduce((n, v) => n + v.length, 0));
  });

  test('the sidebar\'s share of the events (no texts) gives the same map: views, blocks, authors', () => {
    const slim = cacheMapEvents(events);
    expect(slim.length).toBeLessThan(events.length);
    expect(slim.every((e) => !('text' in e) || e.text === '')).toBe(true);
    // Fed in several batches, as the sidebar gets them.
    const c = new CacheState();
    for (let i = 0; i < slim.length; i += 17) c.apply(slim.slice(i, i + 17));
    expect(c.views).toEqual(cache.views);
    for (const [id, b] of cache.blocks) {
      const got = c.blocks.get(id);
      if (b.kind === 'prompt' || b.kind === 'header') {
        // Drawn grey whatever their tokens: their texts are not sent.
        expect(got ? { kind: got.kind, owner: got.owner } : null).toEqual({ kind: b.kind, owner: b.owner });
        continue;
      }
      expect({ id, kind: got!.kind, owner: got!.owner, forkedFrom: got!.forkedFrom, authors: Array.from(got!.authors.view()) }).toEqual({ id, kind: b.kind, owner: b.owner, forkedFrom: b.forkedFrom, authors: Array.from(b.authors.view()) });
    }
  });

  test('find reaches text in lanes, history and notes', () => {
    const w = [...model.workers.values()].find((x) => x.segments.some((s) => s.text.trim().length > 4))!;
    const seg = w.segments.find((s) => s.text.trim().length > 4)!;
    const needle = seg.text.trim().slice(0, 4);
    const matches = findInRun(model, needle.toUpperCase());
    expect(matches.some((m) => m.where === 'lane' && m.worker === w.info.worker)).toBe(true);
    if (model.notes.length > 0) expect(findInRun(model, 'multiplication').some((m) => m.where === 'note')).toBe(true);
  });
});

// ---------------------------------------------------------------- live: the engine's answer

const SMALL = { ...QWEN3_0_6B, hidden: 256, intermediate: 768, layers: 4, heads: 4, kvHeads: 2, headDim: 64 };

describe('live run: the cache state answers like the engine', () => {
  let engine: EngineClient;
  let modelDir: string;

  // A run's events as the views see them: its cache, its last step and whether it holds.
  function watch(runId: string) {
    const live = { cache: new CacheState(), steps: 0, paused: false, sub: { dispose: () => undefined } as { dispose(): void } };
    live.sub = engine.onEvents.event(({ runId: id, events }) => {
      if (id !== runId) return;
      live.cache.apply(events);
      for (const e of events) if (e.type === 'views') live.steps = e.step;
      for (const e of events) if (e.type === 'run-state') live.paused = e.state === 'paused';
    });
    return live;
  }

  beforeAll(async () => {
    modelDir = path.join(root, '.models', 'small-random');
    const tokDir = findQwen3TokenizerDir(root);
    if (!tokDir) throw new Error('no Qwen3 tokenizer');
    await writeRandomCheckpoint(modelDir, { shape: SMALL, seed: 4242, tokenizerDir: tokDir });
    engine = new EngineClient({ hostPath: path.join(root, 'dist', 'engine-host.js'), cwd: root, env: { ...process.env, HOGWILD_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'hw-ci-')) }, log: () => undefined });
    await engine.start();
    await engine.load(modelDir, 'cpu', 2);
  });
  afterAll(async () => {
    await engine?.shutdown();
  });

  test.each([
    ['combined', false],
    ['interleaved', true],
    ['contiguous', false],
  ] as [Layout, boolean][])('%s (raw steps: %s): every token, prompt included', async (layout, raw) => {
    const names = completeWorkerNames([], 3);
    const config: RunConfig = {
      problem: 'What is 12 + 30?',
      workers: 3,
      workerNames: names,
      layout,
      sampling: { temperature: 0.8, topP: 0.95, topK: 40, seed: 3 },
      maxTokens: 10_000,
      selfCheckInterval: 1 << 24,
      maxContext: 0,
      prompts: { ...DEFAULT_PROMPTS },
    };
    if (raw) config.raw = { promptIds: [], workerIds: [[], [], []], promptText: config.problem, workerTexts: names.map((n) => `**${n} [1]:** `), steps: 10_000, stepIds: Array.from({ length: 12000 }, (_, i) => i) };
    const runId = `live-${layout}`;
    const live = watch(runId);
    const { cache } = live;
    await engine.startRun(runId, config);
    await waitFor(() => live.steps >= 12);
    await engine.control(runId, { type: 'inject', target: 1, text: 'Check the sum.' });
    await waitFor(() => live.steps >= 24);
    await engine.control(runId, { type: 'pause' });
    await waitFor(() => live.paused);
    await new Promise((r) => setTimeout(r, 300)); // the last batch of the step in flight
    let checked = 0;
    try {
      for (const b of cache.blocks.values()) {
        if (b.freed || b.ids.length === 0) continue;
        const idx = new Set([0, 1, Math.floor(b.ids.length / 2), b.ids.length - 1].filter((i) => i >= 0 && i < b.ids.length));
        for (const index of idx) {
          const got = await engine.inspect(runId, b.block, index, true);
          expect(got.token, `block ${b.block} (${b.kind}) index ${index}`).toBe(b.ids.at(index));
          expect(got.author).toBe(b.authors.at(index));
          if (got.author >= 0) expect(got.step).toBe(b.steps.at(index));
          expect(got.seenAt.map((s) => [s.position, s.rotation])).toEqual(cache.seenAt({ block: b.block, index }).map((s) => [s.position, s.rotation]));
          // The CPU records the attention on every key at every step: the last step's, nothing pending.
          expect(got.attentionStep).toBe(live.steps);
          expect(got.attentionPending).toBeUndefined();
          checked++;
        }
      }
    } finally {
      live.sub.dispose();
      await engine.control(runId, { type: 'stop' }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(checked).toBeGreaterThan(15);
    if (raw) expect([...cache.blocks.values()].some((b) => b.kind === 'history' && b.ids.length > 0)).toBe(true);
    expect([...cache.blocks.values()].some((b) => b.kind === 'note' && b.ids.length > 0)).toBe(true);
    expect([...cache.blocks.values()].some((b) => b.kind === 'prompt' && b.ids.length > 0)).toBe(true);
  });

  // What a GPU does (its shared-KV kernel gives the shares per segment, the attention per key only
  // its slower generic kernel): the attention on every key recorded only for the step after an
  // inspect asks. A running run's inspect waits for that step; a paused one's says it is pending.
  test('attention on every key on request: fresh while running, pending while paused, then recorded by a step', async () => {
    const names = completeWorkerNames([], 2);
    const config: RunConfig = {
      problem: 'What is 7 + 5?',
      workers: 2,
      workerNames: names,
      layout: 'combined',
      sampling: { temperature: 0.8, topP: 0.95, topK: 40, seed: 5 },
      maxTokens: 10_000,
      selfCheckInterval: 1 << 24,
      maxContext: 0,
      keyAttention: 'on-request',
      prompts: { ...DEFAULT_PROMPTS },
    };
    const runId = 'live-on-request';
    const live = watch(runId);
    const { cache } = live;
    try {
      await engine.startRun(runId, config);
      await waitFor(() => live.steps >= 4);
      const prompt = [...cache.blocks.values()].find((b) => b.kind === 'prompt')!;
      const running = await engine.inspect(runId, prompt.block, 0, true);
      expect(running.attention?.length, 'both workers attend to the prompt').toBe(2);
      expect(running.attentionStep).toBeGreaterThan(4);
      expect(running.attentionPending).toBeUndefined();

      await engine.control(runId, { type: 'pause' });
      await waitFor(() => live.paused);
      await new Promise((r) => setTimeout(r, 300)); // the last batch of the step in flight
      // One step more, asked by nobody: what is recorded is now older than the last step.
      const step = async () => {
        const before = live.steps;
        await engine.control(runId, { type: 'step' });
        await waitFor(() => live.steps > before);
        await new Promise((r) => setTimeout(r, 300));
      };
      await step();
      const stale = await engine.inspect(runId, prompt.block, 0, true);
      expect(stale.attentionStep, 'the recorded step, kept').toBe(running.attentionStep);
      expect(stale.attentionStep).toBeLessThan(live.steps);
      expect(stale.attentionPending).toBe(true);
      expect(stale.attention).toEqual(running.attention);

      await step(); // the step the stale inspect asked for
      const stepped = await engine.inspect(runId, prompt.block, 0, true);
      expect(stepped.attentionStep, 'recorded by the step the last inspect asked for').toBe(live.steps);
      expect(stepped.attentionPending).toBeUndefined();
    } finally {
      live.sub.dispose();
      await engine.control(runId, { type: 'stop' }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300));
    }
  });
});

async function waitFor(cond: () => boolean, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
