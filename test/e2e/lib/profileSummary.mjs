// Where a CPU profile's time went: self time per category and the functions with the most
// self time. A webview's script shows up by its bundle's URL; the browser's own style,
// layout and paint work is "(program)" (a CPU profile does not split it further).

/** Returns printable lines for a Chrome DevTools .cpuprofile object. */
export function summarizeProfile(profile, top = 15) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = profile.timeDeltas ?? [];
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    self.set(id, (self.get(id) ?? 0) + (dt[i + 1] ?? dt[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const where = (n) => {
    const f = n.callFrame;
    const url = f.url ? f.url.replace(/^.*\//, '') : '';
    return { name: f.functionName || (url ? '(anonymous)' : n.callFrame.functionName || '(root)'), url, line: f.lineNumber + 1 };
  };
  const category = (n) => {
    const { name, url } = where(n);
    if (name.startsWith('(')) return name; // (program), (idle), (garbage collector)
    if (/panel\.js/.test(url)) return 'run panel script';
    if (/sidebar\.js/.test(url)) return 'sidebar script';
    if (/webview|index\.html|host\.js|service-worker/.test(url)) return 'webview host script';
    return 'workbench script';
  };
  const cats = new Map();
  const fns = new Map();
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const c = category(n);
    cats.set(c, (cats.get(c) ?? 0) + us);
    const { name, url, line } = where(n);
    const k = `${name} ${url}${url ? `:${line}` : ''}`;
    fns.set(k, (fns.get(k) ?? 0) + us);
  }
  const ms = (us) => `${(us / 1000).toFixed(0).padStart(6)} ms`;
  const lines = [`profile: ${(total / 1e6).toFixed(1)} s sampled`];
  for (const [c, us] of [...cats].sort((a, b) => b[1] - a[1])) lines.push(`  ${ms(us)}  ${c}`);
  lines.push('  top self time:');
  for (const [k, us] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${ms(us)}  ${k}`);
  return lines;
}

// The renderer's own work, by kind and by document, from a devtools.timeline trace (what a
// CPU profile lumps together as "(program)"): style, layout, paint, script, per frame URL.
const KINDS = {
  UpdateLayoutTree: 'style',
  RecalculateStyles: 'style',
  Layout: 'layout',
  PrePaint: 'paint',
  Paint: 'paint',
  Layerize: 'paint',
  UpdateLayer: 'paint',
  CompositeLayers: 'paint',
  Commit: 'paint',
  HitTest: 'hit test',
  ParseHTML: 'parse',
  ParseAuthorStyleSheet: 'parse',
  EvaluateScript: 'script',
  FunctionCall: 'script',
  TimerFire: 'script',
  FireAnimationFrame: 'script',
  EventDispatch: 'script',
  RunMicrotasks: 'script',
  MajorGC: 'gc',
  MinorGC: 'gc',
};

/** Lines for trace events (Tracing.dataCollected chunks concatenated). */
export function summarizeTrace(events) {
  // The renderer main thread: where the page's own top frame runs.
  const mains = new Set(events.filter((e) => e.name === 'thread_name' && e.args?.name === 'CrRendererMain').map((e) => `${e.pid}:${e.tid}`));
  const urlOf = new Map();
  for (const e of events) {
    const frames = e.args?.data?.frames ?? (e.args?.data?.frame && e.args?.data?.url ? [e.args.data] : []);
    for (const f of frames) if (f.frame && f.url) urlOf.set(f.frame, f.url);
  }
  const doc = (e) => {
    const d = e.args?.beginData ?? e.args?.data ?? {};
    const url = urlOf.get(d.frame) ?? d.url ?? '';
    if (!url) return '?';
    // A webview is two documents (index.html, then fake.html inside it): named by the file and the id.
    const m = /\/([^/?#]+)(?:\?[^#]*?\bid=([0-9a-f]{6}))?/.exec(url.replace(/^[a-z-]+:\/\/[^/]*/, ''));
    return /webview/.test(url) ? `webview ${m?.[1] ?? ''} ${m?.[2] ?? ''}`.trim() : 'workbench';
  };
  const totals = new Map();
  const byDoc = new Map();
  let t0 = Infinity;
  let t1 = -Infinity;
  for (const e of events) {
    if (e.ph !== 'X' || !mains.has(`${e.pid}:${e.tid}`)) continue;
    const kind = KINDS[e.name];
    if (!kind) continue;
    t0 = Math.min(t0, e.ts);
    t1 = Math.max(t1, e.ts + (e.dur ?? 0));
    totals.set(e.name, (totals.get(e.name) ?? 0) + (e.dur ?? 0));
    if (kind === 'style' || kind === 'layout') {
      const k = `${kind} (${doc(e)})`;
      byDoc.set(k, (byDoc.get(k) ?? 0) + (e.dur ?? 0));
    }
  }
  const ms = (us) => `${(us / 1000).toFixed(0).padStart(6)} ms`;
  const lines = [`trace: ${((t1 - t0) / 1e6).toFixed(1)} s of the renderer's main threads (nested events overlap)`];
  for (const [k, us] of [...totals].sort((a, b) => b[1] - a[1]).slice(0, 14)) lines.push(`  ${ms(us)}  ${k}`);
  for (const [k, us] of [...byDoc].sort((a, b) => b[1] - a[1])) lines.push(`  ${ms(us)}  ${k}`);
  return lines;
}
