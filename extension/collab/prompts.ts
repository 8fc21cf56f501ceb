/**
 * The collaboration protocol's words and names, as data. Every text here is a default: the
 * user can replace each one (settings "hogwild.prompts.*", "hogwild.workerNames").
 *
 * How the texts are used (see buildNativeRunConfig):
 *  - system: the system message of the chat template; "{names}" becomes "Alice, Bob and
 *    Carol", "{count}" the number of workers, "{others}" how many others there are.
 *  - the user message is the problem.
 *  - every step of a worker starts with the header "**Name [k]:** " (k = 1, 2, ...).
 *  - selfCheck: fed right after the header of the next step that starts once every
 *    `selfCheckInterval` generated tokens (all workers together), in the worker's own voice.
 *  - headerOthers / headerOwn: in the combined layout, short header blocks before the other
 *    workers' unfinished steps and before the worker's own unfinished step.
 *  - finisher: when the budget ends, appended to one linearised view; the model continues it
 *    greedily and the answer is read from finisher + continuation with answerPattern.
 */
import type { PromptTexts } from '../../protocol/messages';

export const DEFAULT_WORKER_NAMES: readonly string[] = [
  'Alice', 'Bob', 'Carol', 'Dave', 'Eve', 'Frank', 'Grace', 'Heidi',
  'Ivan', 'Judy', 'Mallory', 'Niaj', 'Olivia', 'Peggy', 'Rupert', 'Sybil',
];

export const DEFAULT_SYSTEM_PROMPT = [
  'You are one of {count} assistants ({names}) who solve the same problem together. All of you write at the same time into one shared workspace, and every assistant sees everything the others write: their finished steps, and the steps they are still in the middle of, word by word as they appear.',
  '',
  'How to work as a team:',
  '- Split the work. Take a part of the problem, or an approach, that nobody else has taken, and say in one sentence what you are doing.',
  '- Never do the same thing twice. Before you start a step, read what the others are writing right now. If someone is already doing what you meant to do, do something else: check their result, try another method, or go on to the next part.',
  '- If you notice that you overlap with someone, change course at once and say so.',
  '- Build on the others\' results and point out any mistake you see in them.',
  '- Write in short steps. Each step is one paragraph that ends with a blank line and starts with your name, like "**Name [3]:** ".',
  '- When the team has reached the answer, write it as \\boxed{answer}.',
].join('\n');

export const DEFAULT_SELF_CHECK = 'Quick check: is someone else already doing what I am about to do? (yes/no): ';

export const DEFAULT_FINISHER =
  '\n\n**Time is up.** Taking all the work above into account, mine and the others\', the final answer is \\boxed{';

export const DEFAULT_HEADER_OTHERS = '\n\n### Steps the others are writing right now (unfinished)\n\n';

export const DEFAULT_HEADER_OWN = '\n\n### My current step (unfinished)\n\n';

/** Group 1 is the answer. Nested braces inside \boxed{...} are handled (extractAnswer). */
export const DEFAULT_ANSWER_PATTERN = String.raw`\\boxed\{(.*?)\}`;

export const DEFAULT_PROMPTS: Readonly<PromptTexts> = Object.freeze({
  system: DEFAULT_SYSTEM_PROMPT,
  selfCheck: DEFAULT_SELF_CHECK,
  finisher: DEFAULT_FINISHER,
  headerOthers: DEFAULT_HEADER_OTHERS,
  headerOwn: DEFAULT_HEADER_OWN,
  answerPattern: DEFAULT_ANSWER_PATTERN,
});

/** The names of `count` workers: the given ones first, then defaults not taken yet. */
export function completeWorkerNames(given: readonly string[], count: number): string[] {
  const names = given.map((n) => n.trim()).filter((n) => n.length > 0).slice(0, count);
  const taken = new Set(names.map((n) => n.toLowerCase()));
  for (const d of DEFAULT_WORKER_NAMES) {
    if (names.length >= count) break;
    if (!taken.has(d.toLowerCase())) {
      names.push(d);
      taken.add(d.toLowerCase());
    }
  }
  for (let i = 1; names.length < count; i++) {
    const n = `Worker ${i}`;
    if (!taken.has(n.toLowerCase())) {
      names.push(n);
      taken.add(n.toLowerCase());
    }
  }
  return names;
}

/** "Alice", "Alice and Bob", "Alice, Bob and Carol". */
export function joinNames(names: readonly string[]): string {
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

/** The system prompt with its placeholders filled in. */
export function renderSystemPrompt(template: string, names: readonly string[]): string {
  return template
    .replace(/\{names\}/g, joinNames(names))
    .replace(/\{count\}/g, String(names.length))
    .replace(/\{others\}/g, String(Math.max(0, names.length - 1)));
}

/** The text that opens step k of a worker: "**Alice [3]:** ". */
export function stepHeader(name: string, step: number): string {
  return `**${name} [${step}]:** `;
}

/** The label of a finished step in the shared history: "Alice [3]". */
export function stepLabel(name: string, step: number): string {
  return `${name} [${step}]`;
}

/** A name for a fork of `origin` that no worker has yet: "Alice-2", "Alice-3", ... */
export function forkName(origin: string, taken: readonly string[]): string {
  const used = new Set(taken.map((n) => n.toLowerCase()));
  for (let k = 2; ; k++) {
    const n = `${origin}-${k}`;
    if (!used.has(n.toLowerCase())) return n;
  }
}
