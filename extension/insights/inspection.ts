/**
 * What the token inspector shows, as data: from the trace (a replay, or a live run until the
 * engine answers) or from the engine's answer, with what each lacks in words. The webview's
 * inspector (webview/insights/inspector.ts) renders it; kept apart so it is checked without a DOM.
 */
import type { CacheState, TokenRef } from './cacheState';
import { sourceOf } from './attentionSeries';
import type { InspectResult } from '../../protocol/messages';

export interface InspectorRow {
  worker: number;
  position: number | null;
  rotation: number | null;
  attention: number | null; // null: not recorded
}

export interface InspectorData {
  source: 'engine' | 'trace';
  block: number;
  index: number;
  token: number | null;
  text: string;
  author: number;
  step: number;
  rows: InspectorRow[];
  attentionStep: number | null; // the step the engine recorded the attention at (null: unknown)
  missing: string[]; // what the answer lacks, in words
}

/** What the trace alone says about a token. */
export function inspectFromTrace(cache: CacheState, ref: TokenRef): InspectorData {
  const b = cache.blocks.get(ref.block);
  const known = !!b && ref.index < b.ids.length;
  const seen = cache.seenAt(ref);
  const missing: string[] = ['per-token attention (the trace keeps each block\'s share, shown instead)'];
  const a = cache.attention;
  const latest = a.latestStep;
  if (latest === 0) missing[0] = 'attention (not recorded in this trace)';
  const rows = seen.map((s) => {
    let share: number | null = null;
    if (latest > 0 && s.position !== null && b) {
      const src = sourceOf(b.kind, b.owner);
      // The block's share (a source may hold several blocks: notes, headers).
      share = src >= 0 ? a.value(latest, s.worker, src) : null;
      if (share !== null && Number.isNaN(share)) share = null;
    }
    return { worker: s.worker, position: s.position, rotation: s.rotation, attention: share };
  });
  if (!known) missing.push('the token itself (its text is not in the trace)');
  return {
    source: 'trace',
    block: ref.block,
    index: ref.index,
    token: known ? b!.ids.at(ref.index) : null,
    text: known ? b!.pieces[ref.index]! : '',
    author: known ? b!.authors.at(ref.index) : (b?.owner ?? -1),
    step: known ? b!.steps.at(ref.index) : 0,
    rows,
    attentionStep: null,
    missing,
  };
}

export function inspectFromEngine(r: InspectResult): InspectorData {
  const att = new Map((r.attention ?? []).map((a) => [a.worker, a.share]));
  return {
    source: 'engine',
    block: r.block,
    index: r.index,
    token: r.token,
    text: r.text,
    author: r.author,
    step: r.step,
    rows: r.seenAt.map((s) => {
      const v = att.get(s.worker);
      return { worker: s.worker, position: s.position, rotation: s.rotation, attention: v === undefined || v < 0 ? null : v };
    }),
    attentionStep: r.attention ? (r.attentionStep ?? null) : null,
    missing: engineMissing(r),
  };
}

// A GPU records the attention on every key only when asked (an inspect asks for the next step).
function engineMissing(r: InspectResult): string[] {
  if (!r.attention)
    return [r.attentionPending ? 'attention (recorded at the next step: let the run go on, or step it, and inspect again)' : 'attention (the run does not record attention shares)'];
  if (r.attentionPending && r.attentionStep !== undefined) return [`attention at the last step (shown: step ${r.attentionStep}'s; the next step records it)`];
  return [];
}
