/**
 * A run as Markdown: the configuration, each worker's steps, the shared history, the notes,
 * the answer and the cache layout (each worker's last view, block by block). Written next to
 * the JSON Lines trace; built from the same events, so a replay exports the same text.
 */
import type { RunModel } from '../runModel';
import { CacheState } from './cacheState';
import type { EngineEvent } from '../../protocol/messages';

/** Text inside a fenced block: a fence longer than any backtick run in it. */
function fenced(text: string): string {
  let longest = 2;
  for (const m of text.matchAll(/`+/g)) longest = Math.max(longest, m[0].length);
  const fence = '`'.repeat(longest + 1);
  return `${fence}text\n${text.replace(/\s+$/, '')}\n${fence}`;
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function runToMarkdown(model: RunModel, cache: CacheState): string {
  const name = (w: number) => model.workers.get(w)?.info.name ?? `Worker ${w}`;
  const out: string[] = [];
  out.push(`# ${model.title}`, '');
  const c = model.config;
  out.push(
    `- Run: \`${model.runId}\` (${model.source}), state **${model.state}**${model.message ? ` (${model.message})` : ''}`,
    `- Layout: ${c.layout}; workers: ${[...model.workers.values()].map((w) => w.info.name).join(', ')}`,
    `- Sampling: temperature ${c.sampling.temperature}, top-p ${c.sampling.topP}, top-k ${c.sampling.topK}, seed ${c.sampling.seed}`,
    `- Tokens generated: ${model.totalTokens}`,
    '',
  );
  out.push('## Problem', '', fenced(c.raw?.promptText ?? c.problem), '');

  out.push('## Workers', '');
  for (const w of [...model.workers.values()].sort((a, b) => a.info.worker - b.info.worker)) {
    out.push(`### ${w.info.name}${w.info.forkedFrom !== undefined ? ` (forked from ${name(w.info.forkedFrom)})` : ''}`, '');
    if (w.segments.length === 0) out.push('_(no steps)_', '');
    for (const s of w.segments) {
      out.push(`#### ${w.info.name} [${s.step}]${s.finished ? '' : ' (unfinished)'}`, '', fenced(s.text), '');
    }
  }

  out.push('## Shared history', '');
  if (model.history.length === 0) out.push('_(no finished steps)_', '');
  model.history.forEach((e, i) => out.push(`${i + 1}. **${e.label}** (block ${e.block})`, '', fenced(e.text), ''));

  out.push('## Notes', '');
  if (model.notes.length === 0) out.push('_(none)_', '');
  for (const n of model.notes) out.push(`- To ${n.target === 'all' ? 'all' : name(n.target)} (block ${n.block}): ${n.text.trim().replace(/\n+/g, ' ')}`);
  if (model.notes.length > 0) out.push('');

  out.push('## Answer', '');
  if (model.answer) out.push(`**${model.answer.answer ?? '(no answer found)'}**`, '', fenced(model.answer.text), '');
  else out.push('_(no answer)_', '');

  out.push(`## Cache layout (step ${cache.viewStep})`, '');
  cache.views.forEach((v, w) => {
    out.push(`### ${name(w)}'s view`, '', '| # | Block | Kind | Author | Offset | Length | Query rotation |', '|---|---|---|---|---|---|---|');
    v.forEach((s, i) => {
      const b = cache.blocks.get(s.block);
      const author = b ? (b.owner >= 0 ? name(b.owner) : b.kind === 'history' ? 'several' : 'shared') : '?';
      out.push(`| ${i} | ${cell(b?.label ?? String(s.block))} (${s.block}) | ${b?.kind ?? '?'} | ${cell(author)} | ${s.offset} | ${s.length} | ${cache.rotation(w, s) ?? ''} |`);
    });
    out.push('');
  });
  return out.join('\n');
}

/** The Markdown of a run, from its model and its event log (the trace's batches). */
export function markdownOfRun(model: RunModel, events: readonly EngineEvent[]): string {
  const cache = new CacheState();
  cache.apply(events);
  return runToMarkdown(model, cache);
}
