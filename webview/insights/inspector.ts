/**
 * The token inspector: one token's block, index, author and step; where each worker sees it
 * (or "not in view"); the query rotation each worker applies to its block; and the attention
 * it received from each worker at the last step. A live run asks the engine (the answer
 * replaces the local one); a replay answers from the trace and says what it lacks.
 */
import type { CacheState, TokenRef } from '../../extension/insights/cacheState';
import { sourceOf } from '../../extension/insights/attentionSeries';
import type { InspectResult } from '../../protocol/messages';
import { h, setText } from '../dom';

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

export class Inspector {
  readonly root: HTMLElement;
  private readonly body: HTMLElement;
  private readonly status: HTMLElement;
  current: TokenRef | null = null;
  data: InspectorData | null = null;

  constructor(
    /** Replaced when a new run starts. */
    public cache: CacheState,
    private readonly nameOf: (worker: number) => string,
  ) {
    this.body = h('div', { class: 'inspector-body' }, h('p', { class: 'inspector-empty' }, 'Click a token (in a lane, the history, a note, the prompt or the cache map) to inspect it. Keyboard: focus a lane, move with ← →, open with Enter.'));
    this.status = h('div', { class: 'sr-only', 'aria-live': 'polite' });
    this.root = h('div', { class: 'inspector', role: 'region', 'aria-label': 'Token inspector' }, this.body, this.status);
  }

  /** Shows what the trace says now; `pending` says an engine answer is on its way. */
  showLocal(ref: TokenRef, pending: boolean): void {
    this.current = ref;
    this.render(inspectFromTrace(this.cache, ref), pending);
  }

  showEngine(r: InspectResult): void {
    if (this.current && (r.block !== this.current.block || r.index !== this.current.index)) return; // a stale answer
    this.current = { block: r.block, index: r.index };
    this.render(inspectFromEngine(r), false);
  }

  showError(message: string): void {
    this.root.dataset.state = 'error';
    const p = this.body.querySelector('.inspector-source');
    if (p) setText(p, `The engine could not answer (${message}); showing what the trace holds.`);
  }

  private render(d: InspectorData, pending: boolean): void {
    this.data = d;
    this.root.dataset.source = d.source;
    this.root.dataset.state = pending ? 'pending' : 'done';
    this.root.dataset.block = String(d.block);
    this.root.dataset.index = String(d.index);
    const b = this.cache.blocks.get(d.block);
    const author = d.author >= 0 ? this.nameOf(d.author) : b?.kind === 'note' ? 'the user (note)' : 'shared (prompt or header)';
    const field = (k: string, v: string, cls: string) => [h('dt', {}, k), h('dd', { class: cls }, v)];
    const rows = d.rows.map((r) =>
      h(
        'tr',
        { 'data-worker': String(r.worker) },
        h('th', { scope: 'row' }, this.nameOf(r.worker)),
        h('td', { class: 'pos' }, r.position === null ? 'not in view' : String(r.position)),
        h('td', { class: 'rot' }, r.rotation === null ? '—' : String(r.rotation)),
        h('td', { class: 'att' }, r.attention === null ? 'not recorded' : `${(r.attention * 100).toFixed(2)}%`),
      ),
    );
    const attHead = d.source === 'trace' ? 'Block share (last step)' : d.attentionStep !== null ? `Attention (step ${d.attentionStep})` : 'Attention (last step)';
    this.body.replaceChildren(
      h('div', { class: 'inspector-token' }, h('code', { class: 'tok-text' }, JSON.stringify(d.text)), d.token !== null ? h('span', { class: 'tok-id' }, ` id ${d.token}`) : ''),
      h(
        'dl',
        { class: 'inspector-fields' },
        ...field('Block', `${d.block} (${b?.label ?? 'unknown'}, ${b?.kind ?? '?'})`, 'f-block'),
        ...field('Index in block', String(d.index), 'f-index'),
        ...field('Author', author, 'f-author'),
        ...field('Step', d.author >= 0 ? String(d.step) : '—', 'f-step'),
      ),
      h(
        'table',
        { class: 'inspector-table' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Worker'), h('th', { scope: 'col' }, 'Position in view'), h('th', { scope: 'col' }, 'Query rotation'), h('th', { scope: 'col' }, attHead))),
        h('tbody', {}, ...rows),
      ),
      h(
        'p',
        { class: 'inspector-source' },
        d.source === 'engine' ? `Answered by the engine (live run).${d.missing.length ? ` Not in this answer: ${d.missing.join('; ')}.` : ''}` : pending ? 'From the run so far; asking the engine…' : `From the trace (replay).${d.missing.length ? ` Not in the trace: ${d.missing.join('; ')}.` : ''}`,
      ),
    );
    setText(this.status, `Token ${JSON.stringify(d.text)} in block ${d.block} at index ${d.index}, author ${author}. ${d.rows.map((r) => `${this.nameOf(r.worker)}: ${r.position === null ? 'not in view' : `position ${r.position}, rotation ${r.rotation}`}`).join('; ')}.`);
  }
}

