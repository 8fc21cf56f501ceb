/**
 * Reading the final answer out of text. The pattern is a regular expression whose group 1
 * is the answer (default \boxed{...}). Regular expressions cannot match nested braces, so
 * when group 1 starts right after a "{" the answer is re-read up to the brace that closes
 * that one: \boxed{\frac{1}{2}} gives \frac{1}{2}, not \frac{1.
 */
import * as vm from 'node:vm';
import { DEFAULT_ANSWER_PATTERN } from './prompts';

/**
 * A user's pattern must not hang whoever reads answers (the engine process, the CLI): the text
 * it sees is bounded (the answer is at the end: the finisher prompt and its continuation), and
 * every match runs under a time limit (V8 interrupts a backtracking regular expression there).
 */
export const ANSWER_SCAN_CHARS = 20_000;
export const ANSWER_TIME_LIMIT_MS = 250;

/** Thrown when a pattern takes longer than the time limit on the text it was given. */
export class AnswerPatternTimeout extends Error {}

const sandbox = vm.createContext({ re: null as RegExp | null, text: '' });
const execScript = new vm.Script('re.exec(text)');

function execInSandbox(re: RegExp, text: string, timeoutMs: number): RegExpExecArray | null {
  sandbox.re = re;
  sandbox.text = text;
  try {
    return execScript.runInContext(sandbox, { timeout: timeoutMs }) as RegExpExecArray | null;
  } finally {
    sandbox.re = null;
    sandbox.text = '';
  }
}

const isTimeout = (e: unknown) => (e as { code?: string }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT';

/**
 * One match of `re`. The default pattern runs as it is: it cannot backtrack badly (on the
 * bounded text its worst case is a few milliseconds). A user's pattern runs in the sandbox;
 * the limit is wall-clock time, so a pause of the whole process (a garbage collection, a busy
 * 2-core machine) can exceed it without any backtracking: a timeout is retried once with
 * RETRY_FACTOR times the limit before it counts.
 */
const RETRY_FACTOR = 4;
function execBounded(re: RegExp, text: string, timeoutMs: number): RegExpExecArray | null {
  if (re.source === DEFAULT_ANSWER_PATTERN) return re.exec(text);
  const from = re.lastIndex;
  try {
    return execInSandbox(re, text, timeoutMs);
  } catch (e) {
    if (!isTimeout(e)) throw e;
  }
  re.lastIndex = from;
  try {
    return execInSandbox(re, text, timeoutMs * RETRY_FACTOR);
  } catch (e) {
    if (isTimeout(e)) {
      throw new AnswerPatternTimeout(`the answer pattern ${JSON.stringify(re.source.slice(0, 80))} took longer than ${timeoutMs} ms, and ${timeoutMs * RETRY_FACTOR} ms when tried again (catastrophic backtracking?)`, { cause: e });
    }
    throw e;
  }
}

/** Compiles an answer pattern (global, dotAll, with match indices); a clear error when it is not valid. */
export function compileAnswerPattern(pattern: string): RegExp {
  let re: RegExp;
  try {
    re = new RegExp(pattern, 'gsd');
  } catch (err) {
    throw new Error(`the answer pattern ${JSON.stringify(pattern)} is not a valid regular expression: ${(err as Error).message}`, { cause: err });
  }
  const groups = new RegExp(`${re.source}|`).exec('')!.length - 1;
  if (groups < 1) throw new Error(`the answer pattern ${JSON.stringify(pattern)} has no capturing group (…) around the answer`);
  return re;
}

/**
 * From the "{" at `open`, the index of its closing "}" (escaped \{ and \} do not count),
 * or -1 when it never closes.
 */
export function matchBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && (text[i + 1] === '{' || text[i + 1] === '}')) {
      i++;
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}') {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/**
 * The last answer in `text` (its last ANSWER_SCAN_CHARS characters), trimmed; null when there
 * is none. Throws AnswerPatternTimeout when one match takes longer than `timeoutMs`.
 */
export function extractAnswer(text: string, pattern: string = DEFAULT_ANSWER_PATTERN, timeoutMs = ANSWER_TIME_LIMIT_MS): string | null {
  const re = compileAnswerPattern(pattern);
  if (text.length > ANSWER_SCAN_CHARS) text = text.slice(text.length - ANSWER_SCAN_CHARS);
  let last: string | null = null;
  re.lastIndex = 0;
  for (let m = execBounded(re, text, timeoutMs); m !== null; m = execBounded(re, text, timeoutMs)) {
    if (m[0].length === 0) re.lastIndex++;
    const g = m[1];
    if (g === undefined) continue;
    const start = m.indices?.[1]?.[0] ?? text.indexOf(g, m.index);
    if (start > 0 && text[start - 1] === '{') {
      const close = matchBrace(text, start - 1);
      if (close >= 0) {
        last = text.slice(start, close).trim();
        // Continue after the balanced group so that a box inside it is not taken alone.
        re.lastIndex = Math.max(re.lastIndex, close + 1);
      }
      // An opening brace that never closes: the answer was cut off; not an answer.
      continue;
    }
    last = g.trim();
  }
  return last;
}
