/**
 * Progress of a long prefill, and its one wording ("prefill 3,200 / 8,192 · ETA 12 s") for the
 * CLI, the status bar, the sidebar and the run panel; the same for a model load ("reading the
 * weights 620 MB / 1.20 GB (52%)"). No schemas here: webviews import it.
 */
export interface PrefillProgress {
  done: number;
  total: number;
  tokensPerSecond: number;
}

/** "prefill 3,200 / 8,192 · ETA 12 s": one wording for the status bar, the sidebar and the panel. */
export function prefillText(p: PrefillProgress): string {
  const eta = p.tokensPerSecond > 0 && p.done < p.total ? ` · ETA ${formatSeconds((p.total - p.done) / p.tokensPerSecond)}` : '';
  return `prefill ${p.done.toLocaleString('en-US')} / ${p.total.toLocaleString('en-US')}${eta}`;
}

/** Progress of a model load: bytes done of total in one phase ("read": the weight files). */
export interface LoadProgress {
  phase: string;
  done: number;
  total: number;
}

const LOAD_PHASES: Record<string, string> = { read: 'reading the weights', upload: 'copying the weights to the GPU' };

/** "reading the weights 620 MB / 1.20 GB (52%)": one wording for the CLI, the status bar and the sidebar. */
export function loadText(p: LoadProgress): string {
  const pct = p.total > 0 ? ` (${Math.floor((100 * Math.min(p.done, p.total)) / p.total)}%)` : '';
  return `${LOAD_PHASES[p.phase] ?? p.phase} ${formatBytes(p.done)} / ${formatBytes(p.total)}${pct}`;
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${Math.ceil(s)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s - 60 * m)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** "1.2 GB", "340 MB" */
export function formatBytes(b: number): string {
  return b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : b >= 1e6 ? `${Math.round(b / 1e6)} MB` : `${Math.round(b / 1e3)} KB`;
}
