// Author colours under colour-vision deficiencies: every pair of worker colours (and the grey
// of shared blocks) must stay apart when simulated for protanopia, deuteranopia and
// tritanopia (Machado, Oliveira and Fernandes 2009, severity 1, applied in linear RGB), and
// keep a 3:1 contrast against the theme's background (WCAG 1.4.11, graphical objects).
import { describe, expect, test } from 'vitest';
import { REFERENCE_BACKGROUND, SHARED_GREY, WORKER_COLORS } from '../../webview/insights/palette';

type Rgb = [number, number, number];
const hexToRgb = (h: string): Rgb => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)) as Rgb;
const toLin = (c: number) => ((c /= 255) <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
const toSrgb = (c: number) => 255 * (c <= 0.0031308 ? 12.92 * c : 1.055 * c ** (1 / 2.4) - 0.055);

const MACHADO: Record<string, number[][]> = {
  protanopia: [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
  deuteranopia: [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.01182, 0.04294, 0.968881]],
  tritanopia: [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.3039]],
};

function simulate(c: Rgb, kind: string): Rgb {
  if (kind === 'normal') return c;
  const l = c.map(toLin);
  return MACHADO[kind]!.map((row) => toSrgb(Math.min(1, Math.max(0, row[0]! * l[0]! + row[1]! * l[1]! + row[2]! * l[2]!)))) as Rgb;
}

function lab(c: Rgb): Rgb {
  const [r, g, b] = c.map(toLin) as Rgb;
  const x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
  const y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  const z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
  const f = (t: number) => (t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116);
  return [116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))];
}

const deltaE = (a: Rgb, b: Rgb) => Math.hypot(...lab(a).map((v, i) => v - lab(b)[i]!));
const luminance = (c: Rgb) => {
  const [r, g, b] = c.map(toLin) as Rgb;
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const contrast = (a: Rgb, b: Rgb) => (Math.max(luminance(a), luminance(b)) + 0.05) / (Math.min(luminance(a), luminance(b)) + 0.05);

describe.each(['dark', 'light'] as const)('%s palette', (theme) => {
  const colors = [...WORKER_COLORS[theme], SHARED_GREY[theme]].map(hexToRgb);

  test.each(['normal', 'protanopia', 'deuteranopia', 'tritanopia'])('every pair stays apart for %s vision', (kind) => {
    const sim = colors.map((c) => simulate(c, kind));
    let worst = Infinity;
    for (let i = 0; i < sim.length; i++) for (let j = i + 1; j < sim.length; j++) worst = Math.min(worst, deltaE(sim[i]!, sim[j]!));
    expect(worst).toBeGreaterThanOrEqual(12);
  });

  test('the simulation is a real one: red and green collapse for deuteranopia', () => {
    // A check of the check: a pair every deuteranope confuses must come out close.
    const red: Rgb = [204, 51, 17];
    const green: Rgb = [102, 136, 0];
    expect(deltaE(red, green)).toBeGreaterThan(30);
    expect(deltaE(simulate(red, 'deuteranopia'), simulate(green, 'deuteranopia'))).toBeLessThan(12);
  });

  test('every worker colour keeps 3:1 against the background', () => {
    const bg = hexToRgb(REFERENCE_BACKGROUND[theme]);
    for (const c of WORKER_COLORS[theme]) expect(contrast(hexToRgb(c), bg), c).toBeGreaterThanOrEqual(3);
  });
});
