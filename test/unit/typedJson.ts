/**
 * Typed arrays in JSON, for what the tests keep on disk (recorded native event streams, the
 * message fuzzer's corpus): an Int32Array is written {"i32": [...]}, a Float32Array
 * {"f32": [...]}, and read back as the typed array. The one encoding of both.
 */

/** `f32Decimals` rounds Float32Array values (smaller recordings); exact when left out. */
export function toTypedJson(v: unknown, f32Decimals?: number): unknown {
  if (v instanceof Int32Array) return { i32: Array.from(v) };
  if (v instanceof Float32Array) {
    const k = f32Decimals === undefined ? 0 : 10 ** f32Decimals;
    return { f32: Array.from(v, (x) => (k ? Math.round(x * k) / k : x)) };
  }
  if (Array.isArray(v)) return v.map((x) => toTypedJson(x, f32Decimals));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([key, x]) => [key, toTypedJson(x, f32Decimals)]));
  return v;
}

export function fromTypedJson(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(fromTypedJson);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (Array.isArray(o.i32)) return Int32Array.from(o.i32 as number[]);
    if (Array.isArray(o.f32)) return Float32Array.from(o.f32 as number[]);
    return Object.fromEntries(Object.entries(o).map(([key, x]) => [key, fromTypedJson(x)]));
  }
  return v;
}
