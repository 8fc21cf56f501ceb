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
