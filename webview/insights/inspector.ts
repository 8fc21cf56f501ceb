/**
 * The token inspector: one token's block, index, author and step; where each worker sees it
 * (or "not in view"); the query rotation each worker applies to its block; and the attention
 * it received from each worker at the last step. A live run asks the engine (the answer
 * replaces the local one); a replay answers from the trace and says what it lacks.
 */
import type { CacheState, TokenRef } from '../../extension/insights/cacheState';
import { inspectFromEngine, inspectFromTrace, type InspectorData } from '../../extension/insights/inspection';
import type { InspectResult } from '../../protocol/messages';
import { h, setText } from '../dom';

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

