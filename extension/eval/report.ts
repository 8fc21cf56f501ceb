/**
 * The evaluation's summary: accuracy against sequential forward steps for each (layout, W)
 * (the Hogwild! paper's Figure 3), the steps at which W = N reaches W = 1's accuracy, the
 * duplication rate; as JSON, a Markdown table and an SVG plot.
 */
import type { EvalRun } from './runProblem';

export interface GroupSummary {
  layout: string;
  workers: number;
  runs: number;
  accuracy: number;
  /** Median engine step of the correct answers. */
  medianCorrectStep: number | null;
  /** Fewest steps at which the accuracy reaches the reference (W = 1 of the layout; combined for the control). */
  stepsToReference: number | null;
  reference: { accuracy: number; steps: number | null } | null;
  /** stepsToReference / the reference's own steps. */
  ratio: number | null;
  duplicationRate: number;
  answeredByFinisher: number;
  /** [steps, accuracy] points of the step curve. */
  curve: [number, number][];
}

export function accuracyAt(runs: readonly EvalRun[], steps: number): number {
  return runs.length ? runs.filter((r) => r.firstCorrectStep !== null && r.firstCorrectStep <= steps).length / runs.length : 0;
}

export function curveOf(runs: readonly EvalRun[]): [number, number][] {
  const xs = [...new Set(runs.map((r) => r.firstCorrectStep).filter((s): s is number => s !== null))].sort((a, b) => a - b);
  return [[0, 0], ...xs.map((x) => [x, accuracyAt(runs, x)] as [number, number])];
}

/** Fewest steps at which the accuracy is at least `target` (within float noise), or null. */
export function stepsToReach(runs: readonly EvalRun[], target: number): number | null {
  for (const [x, y] of curveOf(runs)) if (y >= target - 1e-9 && x > 0) return x;
  return null;
}

const median = (xs: number[]) => {
  if (!xs.length) return null;
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
};

export function summarize(runs: readonly EvalRun[]): GroupSummary[] {
  const groups = new Map<string, EvalRun[]>();
  for (const r of runs) {
    const k = `${r.layout}/${r.workers}`;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(r);
  }
  const byKey = (layout: string, w: number) => groups.get(`${layout}/${w}`) ?? null;
  const out: GroupSummary[] = [];
  for (const [k, rs] of groups) {
    const [layout, ws] = k.split('/');
    const workers = Number(ws);
    const acc = accuracyAt(rs, Infinity);
    const refRuns = byKey(layout === 'isolated' ? 'combined' : layout, 1) ?? byKey('combined', 1);
    let reference: GroupSummary['reference'] = null;
    let stepsToReference: number | null = null;
    let ratio: number | null = null;
    if (refRuns) {
      const refAcc = accuracyAt(refRuns, Infinity);
      const refSteps = stepsToReach(refRuns, refAcc);
      reference = { accuracy: refAcc, steps: refSteps };
      stepsToReference = stepsToReach(rs, refAcc);
      ratio = stepsToReference !== null && refSteps ? stepsToReference / refSteps : null;
    }
    out.push({
      layout,
      workers,
      runs: rs.length,
      accuracy: acc,
      medianCorrectStep: median(rs.filter((r) => r.firstCorrectStep !== null).map((r) => r.firstCorrectStep!)),
      stepsToReference,
      reference,
      ratio,
      duplicationRate: rs.filter((r) => r.duplicated).length / rs.length,
      answeredByFinisher: rs.filter((r) => r.fromFinisher).length,
      curve: curveOf(rs),
    });
  }
  const rank = (l: string) => ['combined', 'interleaved', 'contiguous', 'isolated'].indexOf(l);
  return out.sort((a, b) => rank(a.layout) - rank(b.layout) || a.workers - b.workers);
}

/** 0.1234 -> "12.3%": how the report, the oracle and the report panel write rates. */
export const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function layoutName(layout: string): string {
  return layout === 'isolated' ? 'no sharing (control)' : layout;
}

export function markdownTable(groups: readonly GroupSummary[]): string {
  const rows = [
    '| layout | W | runs | accuracy | median steps to a right answer | steps to reach W=1 accuracy | x W=1 steps | runs with a duplicated part | answered by the finisher |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const g of groups) {
    const reach = g.reference ? (g.stepsToReference !== null ? String(g.stepsToReference) : `not reached (${pct(g.reference.accuracy)})`) : '-';
    rows.push(
      `| ${layoutName(g.layout)} | ${g.workers} | ${g.runs} | ${pct(g.accuracy)} | ${g.medianCorrectStep ?? '-'} | ${reach} | ${g.ratio !== null ? g.ratio.toFixed(2) : '-'} | ${pct(g.duplicationRate)} | ${g.answeredByFinisher} |`,
    );
  }
  return rows.join('\n') + '\n';
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];
const DASH: Record<string, string> = { combined: '', interleaved: '6 4', contiguous: '2 2', isolated: '1 4' };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** Accuracy (y) against sequential forward steps (x): one step line per (layout, W). */
export function svgPlot(groups: readonly GroupSummary[], title: string): string {
  const W = 720;
  const H = 420;
  const m = { l: 56, r: 200, t: 36, b: 48 };
  const maxX = Math.max(10, ...groups.flatMap((g) => g.curve.map(([x]) => x)));
  const sx = (x: number) => m.l + (x / maxX) * (W - m.l - m.r);
  const sy = (y: number) => H - m.b - y * (H - m.t - m.b);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.l}" y="22" font-size="14">${esc(title)}</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const y = i / 5;
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${sy(y)}" y2="${sy(y)}" stroke="#ddd"/>`, `<text x="${m.l - 8}" y="${sy(y) + 4}" text-anchor="end">${Math.round(y * 100)}%</text>`);
  }
  const step = Math.max(1, Math.ceil(maxX / 8 / 10) * 10);
  for (let x = 0; x <= maxX; x += step) parts.push(`<text x="${sx(x)}" y="${H - m.b + 18}" text-anchor="middle">${x}</text>`);
  parts.push(
    `<line x1="${m.l}" x2="${W - m.r}" y1="${sy(0)}" y2="${sy(0)}" stroke="#333"/>`,
    `<line x1="${m.l}" x2="${m.l}" y1="${sy(0)}" y2="${sy(1)}" stroke="#333"/>`,
    `<text x="${(m.l + W - m.r) / 2}" y="${H - 10}" text-anchor="middle">sequential forward steps</text>`,
    `<text transform="translate(16 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">accuracy</text>`,
  );
  groups.forEach((g, i) => {
    let d = '';
    let prevY = 0;
    for (const [x, y] of g.curve) {
      d += d ? ` L${sx(x).toFixed(1)},${sy(prevY).toFixed(1)} L${sx(x).toFixed(1)},${sy(y).toFixed(1)}` : `M${sx(x).toFixed(1)},${sy(y).toFixed(1)}`;
      prevY = y;
    }
    d += ` L${sx(maxX).toFixed(1)},${sy(prevY).toFixed(1)}`;
    const color = COLORS[(g.workers - 1) % COLORS.length];
    parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2" stroke-dasharray="${DASH[g.layout] ?? ''}"/>`);
    const ly = m.t + 10 + i * 20;
    parts.push(
      `<line x1="${W - m.r + 12}" x2="${W - m.r + 42}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2" stroke-dasharray="${DASH[g.layout] ?? ''}"/>`,
      `<text x="${W - m.r + 48}" y="${ly + 4}">${esc(`${layoutName(g.layout)}, W=${g.workers}`)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
