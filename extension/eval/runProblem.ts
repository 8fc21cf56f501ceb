/**
 * One evaluation run: a problem through the real engine with W workers in one layout,
 * greedy. Records when (in sequential forward steps, i.e. engine steps) the first \boxed{}
 * answer appeared in any worker's step and whether it is right; without one, the finisher's
 * answer at the end of the budget counts. Parts claimed by more than one step are duplicates.
 */
import { DEFAULT_PROMPTS, buildNativeRunConfig, completeWorkerNames, extractAnswer } from '../collab';
import type { NativeEvent, NativeModel, NativeRunConfig } from '../engine/native';
import type { Layout, RunConfig } from '../../protocol/messages';
import type { HwTokenizer } from '../model/tokenizer';

export interface EvalProblem {
  id: string;
  problem: string;
  answer: string;
  /** The sub-results' names (lower case items), when known: for the duplication count. */
  parts?: string[];
  /** Each part's own calculation ("7*8"), when known: a step that writes "7*8=" computes that part (more reliable than its name). */
  partExprs?: string[];
}

export interface EvalRun {
  id: string;
  workers: number;
  layout: Layout;
  answer: string | null;
  correct: boolean;
  /** Engine step at which the answer was there (a step's \boxed{}, or the finisher's at the end). */
  answerStep: number;
  /** answerStep when correct, else null. */
  firstCorrectStep: number | null;
  fromFinisher: boolean;
  engineSteps: number;
  tokens: number;
  /** Part name -> how many steps computed it. */
  claims: Record<string, number>;
  duplicated: boolean;
  ms: number;
  /** Every worker's text (steps joined), for reading a run. */
  texts: string[];
}

const HEADER = /^\*\*[^*\n]+ \[\d+\]:\*\* /;

/** The part a step's text works on: its first word, when that names a part. */
export function claimedPart(stepText: string, parts: readonly string[], selfCheck = DEFAULT_PROMPTS.selfCheck): string | null {
  let t = stepText.replace(HEADER, '');
  if (selfCheck && t.startsWith(selfCheck)) t = t.slice(selfCheck.length);
  t = t.replace(/^(yes|no)\.\s*/i, '');
  const m = /^([A-Za-z]+)/.exec(t);
  if (!m) return null;
  const w = m[1].toLowerCase();
  return parts.includes(w) ? w : null;
}

/**
 * The part whose calculation ("7*8=") a step writes, named by parts[i] when given. Two parts
 * can share a calculation ("5 boxes of 4 stamps and 5 bags of 4 pens"): then the step's own
 * claim word decides among them, else the first such part.
 */
export function computedPart(stepText: string, exprs: readonly string[], names?: readonly string[]): string | null {
  const matching = exprs.map((e, i) => (stepText.includes(`${e}=`) ? i : -1)).filter((i) => i >= 0);
  if (!matching.length) return null;
  const claimed = names && matching.length > 1 ? claimedPart(stepText, matching.map((i) => names[i])) : null;
  const i = matching.find((j) => names?.[j] === claimed) ?? matching[0];
  return names?.[i] ?? exprs[i];
}

export function sameAnswer(a: string | null, gold: string): boolean {
  if (a === null) return false;
  const norm = (s: string) => s.replace(/[\s,]/g, '').replace(/\.$/, '');
  return norm(a) === norm(gold);
}

/** tap: sees the engine's run config and gets every event batch too (e.g. EngineViewRecorder, to rebuild the views). */
export async function runProblem(model: NativeModel, tok: HwTokenizer, p: EvalProblem, workers: number, layout: Layout, maxTokens: number, tap?: (native: NativeRunConfig) => (events: NativeEvent[]) => void): Promise<EvalRun> {
  const cfg: RunConfig = {
    problem: p.problem,
    workers,
    workerNames: completeWorkerNames([], workers),
    layout,
    sampling: { temperature: 0, topP: 1, topK: 0, seed: 0 },
    maxTokens,
    selfCheckInterval: 1000,
    maxContext: 0,
    prompts: { ...DEFAULT_PROMPTS },
  };
  const native = buildNativeRunConfig(cfg, tok, model.config, { finisherMaxTokens: 16 });
  const tapped = tap?.(native);
  const steps = new Map<string, number[]>(); // "w/k" -> ids of that step
  const order: string[] = [];
  let lastStats = 0;
  let answer: string | null = null;
  let answerStep = -1;
  let finisherIds: number[] = [];
  let tokens = 0;
  const errors: string[] = [];
  const t0 = Date.now();
  // An exception must not leave this callback: the addon would drop it (and the rest of the batch).
  const onEvents = (events: NativeEvent[]) => {
    try {
      readEvents(events);
    } catch (e) {
      errors.push(`reading the events: ${(e as Error).message}`);
    }
  };
  const readEvents = (events: NativeEvent[]) => {
    tapped?.(events);
    for (const e of events) {
      if (e.type === 'stats') {
        lastStats = e.step;
        tokens = e.tokens;
      } else if (e.type === 'tokens') {
        const key = `${e.worker}/${e.step}`;
        let ids = steps.get(key);
        if (!ids) {
          steps.set(key, (ids = []));
          order.push(key);
        }
        ids.push(...e.ids);
        if (answer === null) {
          const a = extractAnswer(tok.decode(ids, { skipSpecial: true }));
          if (a !== null) {
            answer = a;
            answerStep = lastStats + 1;
          }
        }
      } else if (e.type === 'finisher-tokens') {
        finisherIds = Array.from(e.ids);
      } else if (e.type === 'error') {
        errors.push(e.message);
      }
    }
  };
  const run = model.startRun(native, onEvents);
  await run.done();
  // The run's blocks go back to the model's cache now, not when the garbage collector finds the
  // run: an evaluation of hundreds of runs would otherwise hold gigabytes of K/V.
  run.release();
  if (errors.length) throw new Error(`problem ${p.id}: the run failed: ${errors.join('; ')}`);
  let fromFinisher = false;
  if (answer === null) {
    answer = extractAnswer(DEFAULT_PROMPTS.finisher + tok.decode(finisherIds, { skipSpecial: true }));
    answerStep = lastStats + finisherIds.length + 1;
    fromFinisher = true;
  }
  const claims: Record<string, number> = {};
  const texts: string[] = Array.from({ length: workers }, () => '');
  for (const key of order) {
    const w = Number(key.split('/')[0]);
    const text = tok.decode(steps.get(key)!, { skipSpecial: true });
    texts[w] += text;
    const part = p.partExprs ? computedPart(text, p.partExprs, p.parts) : p.parts ? claimedPart(text, p.parts) : null;
    if (part) claims[part] = (claims[part] ?? 0) + 1;
  }
  const correct = sameAnswer(answer, p.answer);
  return {
    id: p.id,
    workers,
    layout,
    answer,
    correct,
    answerStep,
    firstCorrectStep: correct ? answerStep : null,
    fromFinisher,
    engineSteps: lastStats,
    tokens,
    claims,
    duplicated: Object.values(claims).some((n) => n > 1),
    ms: Date.now() - t0,
    texts,
  };
}
