/**
 * The few schema builders every message is made of, on top of valibot, and the one place that
 * turns a failed parse into a short "path: what is wrong" line.
 *
 * Why valibot (not zod): its functions are separate exports, so the webview bundles carry only
 * the few builders they use (a few kB, where zod's method-chaining classes come whole), it has
 * no dependencies, and its `strictObject` rejects unknown keys by own-property checks (a
 * JSON `"__proto__"` key is an unknown key, never a prototype).
 *
 * What the builders add to valibot, so that hostile input stays harmless:
 *  - objects must be plain (prototype Object.prototype or null) before a single key is read,
 *    so class instances, Dates and arrays are refused;
 *  - arrays are checked for their length before any entry is visited;
 *  - every string, number and array has a bound; numbers must be finite;
 *  - error messages quote at most 40 characters of the offending value.
 */
import * as v from 'valibot';

export type Result<T> = { ok: true; value: T } | { ok: false; error: string };

export function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  if (typeof x === 'string') return x.length > 40 ? `a string of ${x.length} characters` : JSON.stringify(x);
  if (typeof x === 'number') return String(x);
  if (ArrayBuffer.isView(x)) return `a ${x.constructor.name}`;
  return typeof x;
}

export function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  const proto: unknown = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

const notPlain = v.custom<never>(() => false, (i) => `expected an object, got ${describe(i.input)}`);

/** Runs `schema` only on plain objects; keeps its type and entries (variant reads them). */
function plainOnly<S extends v.GenericSchema>(schema: S): S {
  return {
    ...schema,
    '~run'(dataset: v.UnknownDataset, config: v.Config<v.BaseIssue<unknown>>) {
      if (!isPlainObject(dataset.value)) return notPlain['~run'](dataset, config);
      return schema['~run'](dataset, config);
    },
  } as S;
}

/** A plain object with exactly these keys (optional ones may be missing). */
export function obj<E extends v.ObjectEntries>(entries: E) {
  return plainOnly(
    v.strictObject(entries, (i) => {
      const key = i.path?.[i.path.length - 1]?.key;
      if (i.expected === 'never') return `unexpected field ${JSON.stringify(String(i.input).slice(0, 40))}`;
      // A missing key: say what its schema expects, as for a wrong value.
      const entry = typeof key === 'string' && Object.prototype.hasOwnProperty.call(entries, key) ? entries[key] : undefined;
      const r = entry ? v.safeParse(entry, undefined) : undefined;
      return r && !r.success ? r.issues[0].message : `missing field ${String(key)}`;
    }),
  );
}

/** A discriminated union on `type`; `what` names it in errors ("message", "event", ...). */
export function union<const O extends v.VariantOptions<'type'>>(what: string, options: O) {
  return plainOnly(
    v.variant('type', options, (i) => {
      const key = i.path?.[0]?.key;
      // A nested variant (e.g. replies on `ok`) names its own key.
      return key === undefined || key === 'type' ? `unknown ${what} ${describe(i.input)}` : `expected ${String(i.expected).replace(/[()]/g, '').split(/\s*\|\s*/).join(' or ')}, got ${describe(i.input)}`;
    }),
  );
}

export function str(max: number, opts: { nonEmpty?: boolean; pattern?: RegExp } = {}) {
  return v.pipe(
    v.string((i) => `expected a string, got ${describe(i.input)}`),
    v.check((s: string) => s.length <= max, (i) => `longer than ${max} characters (${(i.input as string).length})`),
    v.check((s: string) => !opts.nonEmpty || s.trim().length > 0, 'must not be empty'),
    v.check((s: string) => !opts.pattern || opts.pattern.test(s), (i) => `has an invalid format (${describe(i.input)})`),
  );
}

export function num(min: number, max: number) {
  return v.pipe(
    v.number((i) => `expected a finite number, got ${describe(i.input)}`),
    v.check((n: number) => Number.isFinite(n), (i) => `expected a finite number, got ${describe(i.input)}`),
    v.check((n: number) => n >= min && n <= max, (i) => `must be between ${min} and ${max} (got ${String(i.input)})`),
  );
}

export function int(min: number, max: number) {
  return v.pipe(num(min, max), v.check((n: number) => Number.isInteger(n), (i) => `expected an integer, got ${String(i.input)}`));
}

export function bool() {
  return v.boolean((i) => `expected true or false, got ${describe(i.input)}`);
}

export function oneOf<const T extends readonly string[]>(values: T) {
  return v.picklist(values, (i) => `expected one of ${values.join(', ')}, got ${describe(i.input)}`);
}

export function literal<const T extends string>(value: T) {
  return v.literal(value);
}

/** An array of at most `max` entries; the length is checked before any entry. */
export function arr<S extends v.GenericSchema>(item: S, max: number) {
  return v.pipe(
    v.custom<unknown[]>(
      (x) => Array.isArray(x) && x.length <= max,
      (i) => (Array.isArray(i.input) ? `more than ${max} entries (${i.input.length})` : `expected an array, got ${describe(i.input)}`),
    ),
    v.array(item),
  );
}

const int32 = int(-2147483648, 2147483647);

/**
 * Token ids: an Int32Array (IPC keeps typed arrays) or a JSON array of int32 (traces); always
 * comes out as an Int32Array that owns its memory.
 */
export function ids(max: number) {
  const asArray = arr(int32, max);
  return v.pipe(
    v.custom<Int32Array | number[]>((x) => x instanceof Int32Array || Array.isArray(x), (i) => `expected token ids, got ${describe(i.input)}`),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const x = dataset.value;
      if (x instanceof Int32Array) {
        if (x.length > max) {
          addIssue({ message: `more than ${max} ids (${x.length})` });
          return NEVER;
        }
        // Node's IPC hands out views into pooled buffers shared between messages: keep a copy
        // of just these ids, not the whole pool.
        return x.byteOffset === 0 && x.buffer.byteLength === x.byteLength ? x : x.slice();
      }
      const r = v.safeParse(asArray, x, { abortEarly: true });
      if (!r.success) {
        addIssue({ message: `${formatPath(r.issues[0].path)}: ${r.issues[0].message}`.replace(/^: /, '') });
        return NEVER;
      }
      return Int32Array.from(r.output);
    }),
  );
}

function formatPath(path: readonly { key: unknown }[] | undefined): string {
  let out = '';
  for (const p of path ?? []) out += typeof p.key === 'number' ? `[${p.key}]` : `${out ? '.' : ''}${String(p.key)}`;
  return out;
}

/** Parses `input` with `schema`: the output is a fresh value, never the input; never throws. */
export function parse<S extends v.GenericSchema>(schema: S, input: unknown, root: string): Result<v.InferOutput<S>> {
  try {
    const r = v.safeParse(schema, input, { abortEarly: true });
    if (r.success) return { ok: true, value: r.output };
    const issue = r.issues[0];
    const path = formatPath(issue.path);
    return { ok: false, error: `${path ? (path.startsWith('[') ? root + path : `${root}.${path}`) : root}: ${issue.message}` };
  } catch (e) {
    // A getter that throws, a proxy, a stack overflow on absurd nesting: refused, not a crash.
    return { ok: false, error: `${root}: invalid (${e instanceof Error ? e.message.slice(0, 200) : 'unreadable'})` };
  }
}
