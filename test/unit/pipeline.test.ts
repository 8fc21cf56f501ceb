// One native event stream, two consumers: the engine process (LiveRun, what VS Code shows) and
// npm run solve (CliRun, what the terminal shows) must make the same protocol events of it:
// the same names (forks included), block labels and kinds, answer and raw results. The streams
// were recorded from real runs (test/fixtures/native-events/record.ts).
import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EngineEvent, EngineMessage, EventOf, RunConfig } from '../../protocol/messages';
import { validateEngineMessage } from '../../protocol/validate';
import type { NativeEvent } from '../../extension/engine/native';
import { LiveRun } from '../../extension/engine/liveRun';
import { CliRun } from '../../extension/cli/runRecord';
import { RunModel } from '../../extension/runModel';
import { extractAnswer } from '../../extension/collab';
import { findQwen3TokenizerDir } from '../../extension/model/defaultModel';
import { loadTokenizer, type HwTokenizer } from '../../extension/model/tokenizer';
import { fromTypedJson } from './typedJson';

const root = path.resolve(__dirname, '..', '..');

function recorded(name: string): { config: RunConfig; batches: NativeEvent[][] } {
  const j = JSON.parse(fs.readFileSync(path.join(root, 'test', 'fixtures', 'native-events', `${name}.json`), 'utf8'));
  return { config: j.config, batches: fromTypedJson(j.batches) as NativeEvent[][] };
}

/** The engine process's side: every IPC message LiveRun sends, validated as the client does. */
function throughHost(config: RunConfig, tok: HwTokenizer, batches: NativeEvent[][]): EngineEvent[][] {
  const sent: EngineMessage[] = [];
  const live = new LiveRun('run-1', config, tok, (m) => sent.push(m), () => undefined);
  live.start();
  for (const b of batches) live.onNative(b);
  live.end();
  return sent.map((m) => {
    const v = validateEngineMessage(m);
    if (!v.ok) throw new Error(v.error);
    if (v.value.type !== 'events') throw new Error(`unexpected ${v.value.type}`);
    return v.value.events;
  });
}

/** The command line's side. */
function throughCli(config: RunConfig, tok: HwTokenizer, batches: NativeEvent[][]): { batches: EngineEvent[][]; cli: CliRun } {
  const out: EngineEvent[][] = [];
  const cli = new CliRun(config, tok, (events) => events.length > 0 && out.push(events));
  cli.start();
  for (const b of batches) cli.onNative(b);
  cli.end();
  return { batches: out, cli };
}

describe('one event pipeline for the engine process and npm run solve', () => {
  let tok: HwTokenizer;
  beforeAll(async () => {
    tok = (await loadTokenizer(findQwen3TokenizerDir(root)!))!;
  }, 60_000);

  it('a Hogwild run with a fork and a note: same events, names, labels, kinds and answer', () => {
    const { config, batches } = recorded('combined-fork-note');
    const host = throughHost(config, tok, batches);
    const { batches: cliBatches, cli } = throughCli(config, tok, batches);
    expect(cliBatches).toEqual(host);

    const events = host.flat();
    // One end-of-run signal: the final run-state is the very last event, and only there.
    const finals = events.filter((e) => e.type === 'run-state' && ['finished', 'stopped', 'failed'].includes(e.state));
    expect(finals).toHaveLength(1);
    expect(events[events.length - 1]).toEqual({ type: 'run-state', state: 'finished' });

    // Names: the fork of Alice is "Alice′" (U+2032) in both, as the RunModel of the panel shows it.
    const model = new RunModel('run-1', 't', config);
    model.apply(events, 0);
    expect([...model.workers.values()].map((w) => w.info.name)).toEqual(['Alice', 'Bob', 'Alice\u2032']);
    expect([0, 1, 2].map((w) => cli.record.name(w))).toEqual(['Alice', 'Bob', 'Alice\u2032']);
    expect([0, 1, 2].map((w) => cli.record.forkedFrom(w))).toEqual([-1, -1, 0]);

    // Labels and kinds of the blocks, from the native kinds and owners.
    const nativeBlocks = batches.flat().filter((e): e is Extract<NativeEvent, { type: 'block' }> => e.type === 'block');
    const labels = new Map(events.filter((e): e is EventOf<'block'> => e.type === 'block').map((e) => [e.info.block, e.info]));
    for (const nb of nativeBlocks) {
      const info = labels.get(nb.block)!;
      expect(info.kind).toBe(nb.kind);
      expect(info.owner).toBe(nb.owner);
      expect(cli.record.blocks.get(nb.block)).toMatchObject({ kind: nb.kind, owner: nb.owner, label: info.label });
    }
    const byKind = (k: string) => [...labels.values()].filter((b) => b.kind === k).map((b) => b.label);
    expect(byKind('prompt')).toEqual(['prompt']);
    expect(byKind('worker').sort()).toEqual(['Alice (current step)', 'Alice\u2032 (current step)', 'Bob (current step)']);
    expect(byKind('note')).toEqual(['note to all']);

    // The note as the workers read it, and the answer read with the run's pattern.
    const note = events.find((e): e is EventOf<'note'> => e.type === 'note')!;
    expect(note).toMatchObject({ target: 'all', text: '\n\n> **Note from the user:** check the sum\n\n' });
    const fin = batches.flat().find((e): e is Extract<NativeEvent, { type: 'finisher-tokens' }> => e.type === 'finisher-tokens')!;
    const finisherText = config.prompts.finisher + tok.decode(fin.ids, { skipSpecial: true });
    const answers = events.filter((e): e is EventOf<'answer'> => e.type === 'answer');
    expect(answers[answers.length - 1]).toEqual({ type: 'answer', text: finisherText, answer: extractAnswer(finisherText, config.prompts.answerPattern) });
    expect(cli.record.model.answer).toEqual({ text: finisherText, answer: answers[answers.length - 1]!.answer });
    expect(model.answer).toEqual({ text: finisherText, answer: answers[answers.length - 1]!.answer });

    // Each worker's text is the decoding of every id written into its block.
    for (const [w, ids] of cli.record.fed) expect(cli.record.texts.get(w)).toBe(tok.decode(ids));
  });

  it('a raw run: the raw result names the real kind and owner of every view segment', () => {
    const { config, batches } = recorded('raw-contiguous');
    const host = throughHost(config, tok, batches);
    const { batches: cliBatches, cli } = throughCli(config, tok, batches);
    expect(cliBatches).toEqual(host);
    const raw = host.flat().find((e): e is EventOf<'raw-result'> => e.type === 'raw-result')!.result;
    // Contiguous layout: [prompt, the other worker's block, the own block].
    expect(raw.views.map((v) => v.map((s) => [s.kind, s.owner]))).toEqual([
      [['prompt', -1], ['worker', 1], ['worker', 0]],
      [['prompt', -1], ['worker', 0], ['worker', 1]],
    ]);
    const nativeRaw = batches.flat().find((e): e is Extract<NativeEvent, { type: 'raw-result' }> => e.type === 'raw-result')!;
    expect(raw.workers.map((w) => w.ids)).toEqual(nativeRaw.workers.map((w) => Array.from(w.ids)));
    expect(raw.workers[0]!.topLogits).toHaveLength(2);
    expect(cli.record.raw).toEqual(raw);
  });
});
