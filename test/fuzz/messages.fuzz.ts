/**
 * Fuzzing of the message schemas (protocol/): random values and mutations of valid messages
 * (test/fuzz/corpus/*.json) go through every validator for a bounded time. Invariants:
 *  - a validator never throws, and its error is one short line naming a path;
 *  - an accepted message comes back as a fresh value that the same validator accepts again
 *    unchanged (the output is canonical), that survives JSON (typed arrays aside) and that
 *    carries no key the schema does not declare (checked by re-validation: strict objects);
 *  - nothing is written onto Object.prototype.
 * Run: node scripts/fuzz.mjs --only messages [--seconds N]. Prints executions and findings;
 * exits 1 with the failing input written to native/build-fuzz/artifacts/ on a finding.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as V from '../../protocol/validate';
import type { Result } from '../../protocol/schema-kit';
import { fromTypedJson, toTypedJson } from '../unit/typedJson';

type Validator = (v: unknown) => Result<unknown>;
const VALIDATORS: Record<string, Validator> = {
  fromWebview: V.validateFromWebview,
  engineMessage: V.validateEngineMessage,
  engineRequest: V.validateEngineRequest,
  runConfig: V.validateRunConfig,
  engineEvents: V.validateEngineEvents,
  inspectResult: V.validateInspectResult,
};

const root = process.env.HOGWILD_ROOT ?? path.resolve(__dirname, '..', '..');
const seconds = Number(process.env.HOGWILD_FUZZ_SECONDS ?? 60);
const corpusDir = path.join(root, 'test', 'fuzz', 'corpus');
const artifacts = path.join(root, 'native', 'build-fuzz', 'artifacts');

// A small deterministic generator (xorshift), seeded from the environment for reproduction.
let seed = Number(process.env.HOGWILD_FUZZ_SEED ?? Date.now()) >>> 0 || 1;
const rand = () => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
};
const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;

const KEYS = ['type', 'id', 'inReplyTo', 'runId', 'control', 'worker', 'target', 'text', 'events', 'ids', 'config', 'ok', 'result', 'error', 'block', 'index', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'length'];
const STRINGS = ['', 'all', 'r', 'run-1', '../x', 'pause', 'inject', 'tokens', 'reply', 'control', 'x'.repeat(70), 'a'.repeat(5000), '\u0000', '\ud800', 'NaN'];
const NUMBERS = [0, -1, 1, 0.5, 1e9, -1e9, 2 ** 31, 2 ** 53, NaN, Infinity, -Infinity, -0, 1024, 1025, 16, 17, 4000, 4001];

function randomValue(depth: number): unknown {
  const r = rand();
  if (depth <= 0 || r < 0.35) return pick<unknown>([null, undefined, true, false, pick(NUMBERS), pick(STRINGS), Math.floor(rand() * 100)]);
  if (r < 0.5) return Array.from({ length: Math.floor(rand() * 4) }, () => randomValue(depth - 1));
  if (r < 0.55) return new Int32Array(Math.floor(rand() * 5)).map(() => Math.floor(rand() * 1000) - 500);
  if (r < 0.57) return new Date(0);
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(rand() * 5); i > 0; i--) set(o, pick(KEYS), randomValue(depth - 1));
  return o;
}

/** An own key, as JSON.parse makes it ("__proto__" too: never the prototype). */
function set(o: Record<string, unknown>, k: string, value: unknown): void {
  Object.defineProperty(o, k, { value, enumerable: true, configurable: true, writable: true });
}

/** Changes one thing somewhere in a copy of `v`. */
function mutate(v: unknown, depth = 0): unknown {
  if (Array.isArray(v)) {
    const a = v.slice();
    const r = rand();
    if (a.length > 0 && r < 0.6) {
      const i = Math.floor(rand() * a.length);
      a[i] = mutate(a[i], depth + 1);
    } else if (r < 0.8) a.push(randomValue(2));
    else a.splice(Math.floor(rand() * (a.length + 1)), 1);
    return a;
  }
  if (v instanceof Int32Array) return rand() < 0.5 ? Array.from(v) : v.slice(0, Math.floor(rand() * (v.length + 1)));
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = { ...(v as Record<string, unknown>) };
    const keys = Object.keys(o);
    const r = rand();
    if (keys.length > 0 && r < 0.7) {
      const k = pick(keys);
      if (rand() < 0.85 && depth < 8) set(o, k, mutate(o[k], depth + 1));
      else delete o[k];
    } else if (r < 0.9) set(o, pick(KEYS), randomValue(2));
    else return randomValue(3);
    return o;
  }
  if (typeof v === 'number') return rand() < 0.5 ? pick(NUMBERS) : v + (rand() < 0.5 ? 1 : -1);
  if (typeof v === 'string') return rand() < 0.5 ? pick(STRINGS) : v + pick(['x', '\n', ' ', '"']);
  return randomValue(2);
}

function canonical(v: unknown): string {
  return JSON.stringify(toTypedJson(v));
}

interface Finding {
  validator: string;
  input: unknown;
  problem: string;
}

function check(name: string, validate: Validator, input: unknown): Finding | null {
  let r: Result<unknown>;
  try {
    r = validate(input);
  } catch (e) {
    return { validator: name, input, problem: `threw: ${(e as Error).message}` };
  }
  if (!r.ok) {
    if (typeof r.error !== 'string' || r.error.length > 400 || r.error.includes('\n')) return { validator: name, input, problem: `bad error text: ${String(r.error).slice(0, 500)}` };
    return null;
  }
  if (r.value === input && input !== null && typeof input === 'object') return { validator: name, input, problem: 'returned the input object itself' };
  const again = validate(r.value);
  if (!again.ok) return { validator: name, input, problem: `its own output is refused: ${again.error}` };
  if (canonical(again.value) !== canonical(r.value)) return { validator: name, input, problem: 'output is not canonical (changes when validated again)' };
  // Through JSON (typed arrays as arrays): still accepted, except where Int32Array is required.
  const viaJson = validate(JSON.parse(JSON.stringify(r.value, (_k, x: unknown) => (x instanceof Int32Array ? Array.from(x) : x))));
  if (!viaJson.ok && !/ids|events/.test(viaJson.error)) return { validator: name, input, problem: `JSON copy refused: ${viaJson.error}` };
  return null;
}

function main(): void {
  const seeds: Record<string, unknown[]> = {};
  for (const name of Object.keys(VALIDATORS)) {
    const file = path.join(corpusDir, `${name}.json`);
    seeds[name] = fs.existsSync(file) ? (fromTypedJson(JSON.parse(fs.readFileSync(file, 'utf8'))) as unknown[]) : [];
    for (const s of seeds[name]!) {
      const r = VALIDATORS[name]!(s);
      if (!r.ok) throw new Error(`seed of ${name} is not valid: ${r.error}`);
    }
  }
  const deadline = Date.now() + seconds * 1000;
  let execs = 0;
  let accepted = 0;
  const findings: Finding[] = [];
  while (Date.now() < deadline && findings.length === 0) {
    for (let i = 0; i < 200; i++) {
      const name = pick(Object.keys(VALIDATORS));
      const pool = seeds[name]!;
      let input: unknown = pool.length > 0 && rand() < 0.85 ? pick(pool) : randomValue(4);
      for (let m = 1 + Math.floor(rand() * 3); m > 0; m--) input = mutate(input);
      const f = check(name, VALIDATORS[name]!, input);
      execs++;
      if (f) {
        findings.push(f);
        break;
      }
      if (VALIDATORS[name]!(input).ok) accepted++;
    }
  }
  if (({} as Record<string, unknown>).polluted !== undefined || Object.keys(Object.prototype).length > 0) findings.push({ validator: '*', input: null, problem: 'Object.prototype was changed' });
  console.log(`[fuzz] messages: ${execs} executions in ${seconds} s (${accepted} accepted), ${findings.length} findings`);
  if (findings.length > 0) {
    fs.mkdirSync(artifacts, { recursive: true });
    const file = path.join(artifacts, `messages-${Date.now()}.json`);
    fs.writeFileSync(file, JSON.stringify({ validator: findings[0]!.validator, problem: findings[0]!.problem, input: canonical(findings[0]!.input) }, null, 1));
    console.error(`[fuzz] messages: ${findings[0]!.validator}: ${findings[0]!.problem}; input in ${file}`);
    process.exitCode = 1;
  }
}

main();
