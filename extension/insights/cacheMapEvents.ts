/**
 * The events the cache map needs, for the sidebar's compact map: blocks, workers (forks),
 * token ids (a history block's author runs come from them), finished steps, notes and views.
 * Texts are dropped (the compact map draws no text), and so is everything else (attention,
 * stats, block texts), so that the sidebar's share of a long run's traffic stays small.
 * Pure: the extension filters with it, the unit tests check that a CacheState fed the
 * filtered events draws the same map as one fed them all.
 */
import type { EngineEvent } from '../../protocol/messages';
import { CACHE_MAP_EVENT_TYPES } from './cacheState';

export function cacheMapEvents(events: readonly EngineEvent[]): EngineEvent[] {
  const out: EngineEvent[] = [];
  for (const e of events) {
    if (!CACHE_MAP_EVENT_TYPES.has(e.type)) continue;
    if (e.type === 'tokens' && e.ids.length === 0) continue;
    out.push(withoutTexts(e));
  }
  return out;
}

/** The event with its text emptied and its per-token texts left out (the map reads ids only). */
function withoutTexts(e: EngineEvent): EngineEvent {
  if (!('text' in e)) return e;
  const copy: Record<string, unknown> = { ...e, text: '' };
  delete copy['pieces'];
  return copy as EngineEvent;
}
