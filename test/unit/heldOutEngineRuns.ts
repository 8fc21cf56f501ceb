// The tests that hold the cache format and the training views against the real engine run
// the same thing: held-out problems through the native engine (CPU) with the shipped model,
// the engine's views recorded from the run's events.
import * as path from 'node:path';
import type { Layout } from '../../protocol/messages';
import { heldOutProblems, type WordProblem } from '../../extension/tasks/wordProblems';
import { EngineViewRecorder } from '../../extension/tasks/engineViews';
import { completeWorkerNames } from '../../extension/collab/prompts';
import { loadNativeAddon } from '../../extension/engine/native';
import { loadTokenizer, type HwTokenizer } from '../../extension/model/tokenizer';
import { trainedModelDir } from '../../extension/model/builtinModels';
import { runProblem } from '../../extension/eval/runProblem';

const root = path.resolve(__dirname, '..', '..');

export interface HeldOutRun<L extends Layout> {
  workers: number;
  layout: L;
  /** heldOutProblems(index + 1)[index] */
  p: WordProblem;
  names: string[];
  tok: HwTokenizer;
  rec: EngineViewRecorder;
}

/** Runs each [workers, layout, held-out problem index] greedily, 120 tokens a worker, and hands `check` the recorded run. */
export async function forEachHeldOutRun<L extends Layout>(cases: readonly (readonly [number, L, number])[], check: (run: HeldOutRun<L>) => void): Promise<void> {
  const dir = trainedModelDir(root);
  const model = await loadNativeAddon(root).loadModel(dir, { device: 'cpu', threads: 2 });
  const tok = (await loadTokenizer(dir))!;
  try {
    for (const [workers, layout, index] of cases) {
      const p = heldOutProblems(index + 1)[index];
      const names = completeWorkerNames([], workers);
      let rec: EngineViewRecorder | null = null;
      await runProblem(model, tok, { id: p.id, problem: p.text, answer: String(p.answer) }, workers, layout, 120 * workers, (native) => (rec = new EngineViewRecorder(native)).onEvents);
      check({ workers, layout, p, names, tok, rec: rec! });
    }
  } finally {
    model.close();
  }
}
