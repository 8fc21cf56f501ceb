/**
 * Finding text in a run: every lane (each worker's steps), the shared history and the notes.
 * Case-insensitive, plain text (no regular expressions: a user's text is not a pattern).
 */
import type { RunModel } from '../runModel';

export type FindMatch =
  | { where: 'lane'; worker: number; segment: number; start: number; end: number }
  | { where: 'history'; entry: number; start: number; end: number }
  | { where: 'note'; note: number; start: number; end: number };

export const MAX_MATCHES = 10_000;

/** Every start of `needle` in `text` (case-insensitive), at most `limit`. */
export function findAll(text: string, needle: string, limit = MAX_MATCHES): number[] {
  const out: number[] = [];
  if (!needle) return out;
  const hay = text.toLowerCase();
  const n = needle.toLowerCase();
  for (let at = hay.indexOf(n); at >= 0 && out.length < limit; at = hay.indexOf(n, at + Math.max(1, n.length))) out.push(at);
  return out;
}

export function findInRun(model: RunModel, needle: string): FindMatch[] {
  const out: FindMatch[] = [];
  if (!needle) return out;
  const workers = [...model.workers.values()].sort((a, b) => a.info.worker - b.info.worker);
  for (const w of workers) {
    w.segments.forEach((s, segment) => {
      for (const start of findAll(s.text, needle, MAX_MATCHES - out.length)) out.push({ where: 'lane', worker: w.info.worker, segment, start, end: start + needle.length });
    });
  }
  model.history.forEach((e, entry) => {
    for (const start of findAll(e.text, needle, MAX_MATCHES - out.length)) out.push({ where: 'history', entry, start, end: start + needle.length });
  });
  model.notes.forEach((n, note) => {
    for (const start of findAll(n.text, needle, MAX_MATCHES - out.length)) out.push({ where: 'note', note, start, end: start + needle.length });
  });
  return out;
}
