/**
 * Author colours. Two palettes, one for dark and one for light themes, each chosen so that
 * every pair of worker colours (and the grey of shared blocks) stays apart (CIE76 delta E
 * >= 12) for normal vision and under protanopia, deuteranopia and tritanopia (checked by
 * test/webview/palette.test.ts with a simulation), and every worker colour keeps a 3:1
 * contrast against the theme's background. Workers past 8 reuse a colour with a stripe.
 */
export type ThemeKind = 'dark' | 'light' | 'high-contrast' | 'high-contrast-light';

export const WORKER_COLORS: Record<'dark' | 'light', readonly string[]> = {
  dark: ['#E69F00', '#3D8FD9', '#EE3377', '#88CCEE', '#F0E442', '#A95AA1', '#F5793A', '#E1BE6A'],
  light: ['#8C6D00', '#006CD1', '#EE3377', '#117733', '#6A3D9A', '#AA4499', '#882255', '#332288'],
};

/** Shared blocks (prompt, headers, notes, finisher) are grey, told apart by a band pattern. */
export const SHARED_GREY: Record<'dark' | 'light', string> = { dark: '#808080', light: '#A0A0A0' };

/** The background each palette is checked against (VS Code's default editor backgrounds). */
export const REFERENCE_BACKGROUND: Record<'dark' | 'light', string> = { dark: '#1E1E1E', light: '#FFFFFF' };

export function paletteOf(theme: ThemeKind): 'dark' | 'light' {
  return theme === 'light' || theme === 'high-contrast-light' ? 'light' : 'dark';
}

export function workerColor(theme: ThemeKind, worker: number): string {
  const p = WORKER_COLORS[paletteOf(theme)];
  return p[((worker % p.length) + p.length) % p.length]!;
}

/** Workers 8..15 share the colours of 0..7: they are drawn with a stripe to tell them apart. */
export function workerStriped(worker: number): boolean {
  return worker >= WORKER_COLORS.dark.length;
}

/** The theme VS Code gives the webview (body classes vscode-light / -dark / -high-contrast[-light]). */
export function themeKind(body: HTMLElement = document.body): ThemeKind {
  const c = body.classList;
  if (c.contains('vscode-high-contrast-light')) return 'high-contrast-light';
  if (c.contains('vscode-high-contrast')) return 'high-contrast';
  if (c.contains('vscode-light')) return 'light';
  return 'dark';
}

export function isHighContrast(theme: ThemeKind): boolean {
  return theme === 'high-contrast' || theme === 'high-contrast-light';
}

/** #rrggbb or rgb()/rgba() -> [r, g, b] (0..255); alpha is dropped (canvases draw solid). */
export function parseColor(css: string, fallback: [number, number, number]): [number, number, number] {
  const s = css.trim();
  let m = /^#([0-9a-f]{6})([0-9a-f]{2})?$/i.exec(s);
  if (m) return [parseInt(m[1]!.slice(0, 2), 16), parseInt(m[1]!.slice(2, 4), 16), parseInt(m[1]!.slice(4, 6), 16)];
  m = /^#([0-9a-f]{3})$/i.exec(s);
  if (m) return [...m[1]!].map((c) => parseInt(c + c, 16)) as [number, number, number];
  m = /^rgba?\(\s*(\d+)[ ,]+(\d+)[ ,]+(\d+)/i.exec(s);
  if (m) return [Number(m[1]), Number(m[2]), Number(m[3])];
  return fallback;
}

export function toHex([r, g, b]: readonly number[]): string {
  return '#' + [r, g, b].map((x) => Math.round(x!).toString(16).padStart(2, '0')).join('');
}

/** The theme colours the canvases need, read from VS Code's --vscode-* variables. */
export interface ThemeColors {
  kind: ThemeKind;
  background: [number, number, number];
  foreground: [number, number, number];
  border: [number, number, number];
  focus: [number, number, number];
  /** Heatmap: the "not recorded" stripe's second colour. */
  missing: [number, number, number];
}

export function readTheme(el: HTMLElement = document.body): ThemeColors {
  const cs = getComputedStyle(el);
  const v = (name: string) => cs.getPropertyValue(name);
  const kind = themeKind(el);
  const dark = paletteOf(kind) === 'dark';
  const background = parseColor(v('--vscode-editor-background'), dark ? [30, 30, 30] : [255, 255, 255]);
  const foreground = parseColor(v('--vscode-editor-foreground') || v('--vscode-foreground'), dark ? [212, 212, 212] : [51, 51, 51]);
  const hcBorder = v('--vscode-contrastBorder');
  const border = isHighContrast(kind) && hcBorder ? parseColor(hcBorder, foreground) : parseColor(v('--vscode-widget-border') || v('--vscode-panel-border'), dark ? [80, 80, 80] : [200, 200, 200]);
  const focus = parseColor(v('--vscode-focusBorder'), dark ? [0, 127, 212] : [0, 95, 184]);
  const missing = parseColor(v('--vscode-editorWarning-foreground'), dark ? [204, 167, 0] : [191, 136, 3]);
  return { kind, background, foreground, border, focus, missing };
}

let themeCache: ThemeColors | null = null;
let themeWatch: MutationObserver | null = null;

/**
 * readTheme() of the body, kept until VS Code changes the theme (it rewrites the body's class
 * and the root's style variables). Reading computed styles while drawing forces a style
 * recalculation of the whole document whenever the DOM changed since the last one.
 */
export function cachedTheme(): ThemeColors {
  if (!themeWatch) {
    themeWatch = new MutationObserver(() => (themeCache = null));
    themeWatch.observe(document.documentElement, { attributes: true, attributeFilter: ['style', 'class'] });
    themeWatch.observe(document.body, { attributes: true, attributeFilter: ['class', 'style'] });
  }
  themeCache ??= readTheme();
  return themeCache;
}
