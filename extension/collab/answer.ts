/**
 * Reading the final answer out of text. The pattern is a regular expression whose group 1
 * is the answer (default \boxed{...}). Regular expressions cannot match nested braces, so
 * when group 1 starts right after a "{" the answer is re-read up to the brace that closes
 * that one: \boxed{\frac{1}{2}} gives \frac{1}{2}, not \frac{1.
 */
import { DEFAULT_ANSWER_PATTERN } from './prompts';

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

/** The last answer in `text`, trimmed; null when there is none. */
export function extractAnswer(text: string, pattern: string = DEFAULT_ANSWER_PATTERN): string | null {
  const re = compileAnswerPattern(pattern);
  let last: string | null = null;
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
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
