/**
 * A grid of values in [0, 1] drawn as shaded cells: WebGL2 (one texture, one quad), or a
 * Canvas 2D fallback (one ImageData) when WebGL2 is missing or its context is lost. Never an
 * element per cell. Both map a pixel to its cell and a value to its colour with the same
 * arithmetic (shadeOf, cellOf), so that both draw the same picture. Values below 0 (or NaN)
 * are "not recorded": a diagonal stripe, never the colour of zero.
 */
import { setData, setStyle } from '../dom';
import { cachedHeight, cachedWidth } from '../layoutCache';

export interface Grid {
  cols: number;
  rows: number;
  values: Float32Array; // row-major, rows * cols
}

export interface GridColors {
  lo: readonly [number, number, number]; // value 0
  hi: readonly [number, number, number]; // value 1
  missA: readonly [number, number, number]; // "not recorded" stripes
  missB: readonly [number, number, number];
  /** Quantise shades to this many steps (high-contrast themes); 0 = continuous. */
  steps: number;
}

export type GridBackend = 'webgl2' | 'canvas2d';

/** The cell under pixel (px, py) of a width x height canvas. */
export function cellOf(px: number, py: number, width: number, height: number, cols: number, rows: number): [number, number] {
  return [Math.min(cols - 1, Math.floor(((px + 0.5) * cols) / width)), Math.min(rows - 1, Math.floor(((py + 0.5) * rows) / height))];
}

function quantise(v: number, steps: number): number {
  return steps > 1 ? Math.round(v * (steps - 1)) / (steps - 1) : v;
}

/** The colour of value v at pixel (px, py). */
export function shadeOf(v: number, px: number, py: number, c: GridColors): [number, number, number] {
  if (!(v >= 0)) return ((px + py) >> 2) & 1 ? [...c.missB] : [...c.missA];
  const t = quantise(Math.min(1, v), c.steps);
  return [0, 1, 2].map((i) => Math.round(c.lo[i]! + (c.hi[i]! - c.lo[i]!) * t)) as [number, number, number];
}

interface Backend {
  readonly kind: GridBackend;
  draw(grid: Grid, colors: GridColors, width: number, height: number): void;
  dispose(): void;
}

class Canvas2DBackend implements Backend {
  readonly kind = 'canvas2d';
  private readonly ctx: CanvasRenderingContext2D;
  constructor(canvas: HTMLCanvasElement) {
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('no 2D canvas context');
    this.ctx = ctx;
  }
  draw(grid: Grid, colors: GridColors, width: number, height: number): void {
    if (width === 0 || height === 0) return;
    const img = this.ctx.createImageData(width, height);
    const d = img.data;
    // Each row of pixels maps onto one grid row; compute the column of each x once.
    const colAt = new Int32Array(width);
    for (let x = 0; x < width; x++) colAt[x] = cellOf(x, 0, width, height, grid.cols, grid.rows)[0];
    // One colour per cell, computed once; only "not recorded" cells vary per pixel.
    const n = grid.cols * grid.rows;
    const rgb = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) {
      const v = grid.values[i]!;
      if (v >= 0) rgb.set(shadeOf(v, 0, 0, colors), i * 3);
    }
    for (let y = 0; y < height; y++) {
      const row = cellOf(0, y, width, height, grid.cols, grid.rows)[1];
      for (let x = 0; x < width; x++) {
        const cell = row * grid.cols + colAt[x]!;
        const i = (y * width + x) * 4;
        if (grid.values[cell]! >= 0) {
          d[i] = rgb[cell * 3]!;
          d[i + 1] = rgb[cell * 3 + 1]!;
          d[i + 2] = rgb[cell * 3 + 2]!;
        } else {
          const [r, g, b] = shadeOf(NaN, x, y, colors);
          d[i] = r;
          d[i + 1] = g;
          d[i + 2] = b;
        }
        d[i + 3] = 255;
      }
    }
    this.ctx.putImageData(img, 0, 0);
  }
  dispose(): void {}
}

const VERT = `#version 300 es
in vec2 a_pos;
void main() { gl_Position = vec4(a_pos, 0.0, 1.0); }`;

// The same arithmetic as cellOf / shadeOf, per fragment.
const FRAG = `#version 300 es
precision highp float;
precision highp int;
uniform highp sampler2D u_values;
uniform ivec2 u_grid;   // cols, rows
uniform vec2 u_size;    // canvas width, height in pixels
uniform vec3 u_lo, u_hi, u_missA, u_missB;
uniform float u_steps;
out vec4 outColor;
void main() {
  float px = floor(gl_FragCoord.x);
  float py = u_size.y - 1.0 - floor(gl_FragCoord.y);
  int col = min(u_grid.x - 1, int(floor((px + 0.5) * float(u_grid.x) / u_size.x)));
  int row = min(u_grid.y - 1, int(floor((py + 0.5) * float(u_grid.y) / u_size.y)));
  float v = texelFetch(u_values, ivec2(col, row), 0).r;
  vec3 c;
  if (!(v >= 0.0)) {
    int stripe = ((int(px) + int(py)) >> 2) & 1;
    c = stripe == 1 ? u_missB : u_missA;
  } else {
    float t = min(v, 1.0);
    if (u_steps > 1.0) t = floor(t * (u_steps - 1.0) + 0.5) / (u_steps - 1.0);
    c = floor(u_lo + (u_hi - u_lo) * t + 0.5);
  }
  outColor = vec4(c / 255.0, 1.0);
}`;

class WebGL2Backend implements Backend {
  readonly kind = 'webgl2';
  private readonly gl: WebGL2RenderingContext;
  private readonly prog: WebGLProgram;
  private readonly tex: WebGLTexture;
  private readonly u: Record<string, WebGLUniformLocation | null> = {};

  constructor(canvas: HTMLCanvasElement) {
    const gl = canvas.getContext('webgl2', { antialias: false, preserveDrawingBuffer: true, premultipliedAlpha: false });
    if (!gl) throw new Error('no WebGL2 context');
    this.gl = gl;
    const sh = (type: number, src: string) => {
      const s = gl.createShader(type)!;
      gl.shaderSource(s, src);
      gl.compileShader(s);
      if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(`shader: ${gl.getShaderInfoLog(s)}`);
      return s;
    };
    const prog = gl.createProgram()!;
    gl.attachShader(prog, sh(gl.VERTEX_SHADER, VERT));
    gl.attachShader(prog, sh(gl.FRAGMENT_SHADER, FRAG));
    gl.linkProgram(prog);
    if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) throw new Error(`program: ${gl.getProgramInfoLog(prog)}`);
    this.prog = prog;
    gl.useProgram(prog);
    for (const n of ['u_values', 'u_grid', 'u_size', 'u_lo', 'u_hi', 'u_missA', 'u_missB', 'u_steps']) this.u[n] = gl.getUniformLocation(prog, n);
    const buf = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, buf);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
    const loc = gl.getAttribLocation(prog, 'a_pos');
    gl.enableVertexAttribArray(loc);
    gl.vertexAttribPointer(loc, 2, gl.FLOAT, false, 0, 0);
    this.tex = gl.createTexture()!;
    gl.bindTexture(gl.TEXTURE_2D, this.tex);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
  }

  draw(grid: Grid, colors: GridColors, width: number, height: number): void {
    const gl = this.gl;
    if (gl.isContextLost() || width === 0 || height === 0) return;
    gl.viewport(0, 0, width, height);
    gl.useProgram(this.prog);
    // "Not recorded" as -1: a texture upload need not carry NaN through.
    const vals = new Float32Array(grid.values.length);
    for (let i = 0; i < vals.length; i++) vals[i] = grid.values[i]! >= 0 ? grid.values[i]! : -1;
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_2D, this.tex);
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.R32F, grid.cols, grid.rows, 0, gl.RED, gl.FLOAT, vals);
    gl.uniform1i(this.u.u_values!, 0);
    gl.uniform2i(this.u.u_grid!, grid.cols, grid.rows);
    gl.uniform2f(this.u.u_size!, width, height);
    gl.uniform3f(this.u.u_lo!, ...(colors.lo as [number, number, number]));
    gl.uniform3f(this.u.u_hi!, ...(colors.hi as [number, number, number]));
    gl.uniform3f(this.u.u_missA!, ...(colors.missA as [number, number, number]));
    gl.uniform3f(this.u.u_missB!, ...(colors.missB as [number, number, number]));
    gl.uniform1f(this.u.u_steps!, colors.steps);
    gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
  }

  dispose(): void {
    this.gl.getExtension('WEBGL_lose_context')?.loseContext();
  }
}

/**
 * One grid on screen. Starts on WebGL2 when it can; on a lost context (or none) it swaps in
 * a fresh canvas with the 2D backend and redraws what it showed.
 */
export class GridView {
  canvas: HTMLCanvasElement;
  private backend: Backend;
  private last: { grid: Grid; colors: GridColors } | null = null;

  constructor(
    private readonly host: HTMLElement,
    private readonly label: string,
    preferWebGL = true,
  ) {
    this.canvas = this.makeCanvas();
    this.backend = (preferWebGL && this.tryWebGL()) || new Canvas2DBackend(this.canvas);
  }

  get kind(): GridBackend {
    return this.backend.kind;
  }

  private makeCanvas(): HTMLCanvasElement {
    const c = document.createElement('canvas');
    c.className = 'grid-canvas';
    c.setAttribute('role', 'img');
    c.setAttribute('aria-label', this.label);
    c.tabIndex = 0;
    this.host.append(c);
    return c;
  }

  private tryWebGL(): Backend | null {
    try {
      const b = new WebGL2Backend(this.canvas);
      this.canvas.addEventListener('webglcontextlost', (e) => {
        e.preventDefault();
        this.fallBack();
      });
      return b;
    } catch {
      // A canvas that tried WebGL cannot give a 2D context any more: start over.
      this.replaceCanvas();
      return null;
    }
  }

  private replaceCanvas(): void {
    const old = this.canvas;
    const next = this.makeCanvas();
    next.style.cssText = old.style.cssText;
    old.replaceWith(next);
    this.canvas = next;
  }

  /** Switches to the Canvas 2D backend for good and redraws. */
  fallBack(): void {
    if (this.backend.kind === 'canvas2d') return;
    this.replaceCanvas();
    this.backend = new Canvas2DBackend(this.canvas);
    this.host.dispatchEvent(new CustomEvent('grid-backend', { bubbles: true, detail: 'canvas2d' }));
    if (this.last) this.draw(this.last.grid, this.last.colors);
  }

  /** Draws at the canvas's CSS size (one canvas pixel per CSS pixel, so cells are crisp). */
  draw(grid: Grid, colors: GridColors, cssHeight?: number): void {
    this.last = { grid, colors };
    const width = Math.max(1, Math.floor(cachedWidth(this.host) || 300));
    const height = Math.max(1, Math.floor(cssHeight ?? (cachedHeight(this.canvas) || 100)));
    if (this.canvas.width !== width) this.canvas.width = width;
    if (this.canvas.height !== height) this.canvas.height = height;
    setStyle(this.canvas, 'width', `${width}px`);
    setStyle(this.canvas, 'height', `${height}px`);
    setData(this.canvas, 'backend', this.backend.kind);
    setData(this.canvas, 'cols', String(grid.cols));
    setData(this.canvas, 'rows', String(grid.rows));
    if (grid.cols === 0 || grid.rows === 0) return;
    this.backend.draw(grid, colors, width, height);
  }

  /** The cell under a mouse event, or null. */
  cellAt(e: MouseEvent): [number, number] | null {
    const r = this.canvas.getBoundingClientRect();
    const x = Math.floor(e.clientX - r.left);
    const y = Math.floor(e.clientY - r.top);
    const g = this.last?.grid;
    if (!g || x < 0 || y < 0 || x >= this.canvas.width || y >= this.canvas.height) return null;
    return cellOf(x, y, this.canvas.width, this.canvas.height, g.cols, g.rows);
  }

  dispose(): void {
    this.backend.dispose();
    this.canvas.remove();
  }
}
