/**
 * The events the cache map needs, for the sidebar's compact map: blocks, workers (forks),
 * token ids (a history block's author runs come from them), finished steps, notes and views.
 * Texts are dropped (the compact map draws no text), and so is everything else (attention,
 * stats, block texts), so that the sidebar's share of a long run's traffic stays small.
 * Pure: the extension filters with it, the unit tests check that a CacheState fed the
 * filtered events draws the same map as one fed them all.
 */
import type { EngineEvent } from '../../protocol/messages';

export function cacheMapEvents(events: readonly EngineEvent[]): EngineEvent[] {
  const out: EngineEvent[] = [];
  for (const e of events) {
    switch (e.type) {
      case 'block':
      case 'worker':
      case 'views':
        out.push(e);
        break;
      case 'tokens':
        if (e.ids.length > 0) out.push({ type: 'tokens', worker: e.worker, step: e.step, ids: e.ids, text: '' });
        break;
      case 'step-finished':
        out.push({ ...e, text: '' });
        break;
      case 'note':
        out.push(e.ids ? { type: 'note', target: e.target, block: e.block, text: '', ids: e.ids } : { type: 'note', target: e.target, block: e.block, text: '' });
        break;
      default:
        break;
    }
  }
  return out;
}
