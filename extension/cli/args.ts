/**
 * What the project's command-line tools share: a strict flag parser (unknown flags, missing
 * values and bad numbers are errors), the "hogwild: <message>" error convention with exit
 * code 1, and the repository root (both dist/cli/*.js and extension/cli/*.ts sit two
 * folders below it).
 */
import * as path from 'node:path';

/** An error for the user: printed as one line "hogwild: <message>", exit code 1. */
export class CliError extends Error {}

export type FlagType = 'string' | 'number' | 'int' | 'boolean';

export interface FlagSpec {
  type: FlagType;
  /** Short help text. */
  help: string;
  /** Value placeholder in help (e.g. DIR). */
  arg?: string;
  min?: number;
  max?: number;
}

export type Flags = Record<string, string | number | boolean | undefined>;

export interface Parsed {
  flags: Flags;
  positional: string[];
}

export function parseArgs(argv: string[], spec: Record<string, FlagSpec>, opts: { maxPositional?: number } = {}): Parsed {
  const flags: Flags = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('--') || a === '-') {
      if (a.startsWith('-') && a.length > 1 && !/^-\d/.test(a)) {
        throw new CliError(`unknown option ${a} (options are written --name)`);
      }
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    let name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
    // --no-NAME turns a boolean flag off.
    if (!spec[name] && name.startsWith('no-') && spec[name.slice(3)]?.type === 'boolean' && eq < 0) {
      name = name.slice(3);
      if (name in flags) throw new CliError(`--${name} given twice`);
      flags[name] = false;
      continue;
    }
    const s = spec[name];
    if (!s) throw new CliError(`unknown option --${name}${suggest(name, Object.keys(spec))}`);
    if (name in flags) throw new CliError(`--${name} given twice`);
    if (s.type === 'boolean') {
      if (eq >= 0) {
        const v = a.slice(eq + 1);
        if (v !== 'true' && v !== 'false') throw new CliError(`--${name} takes no value (or =true / =false), got "${v}"`);
        flags[name] = v === 'true';
      } else {
        flags[name] = true;
      }
      continue;
    }
    let raw: string;
    if (eq >= 0) raw = a.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw new CliError(`--${name} needs a value${s.arg ? ` (${s.arg})` : ''}`);
      raw = argv[++i];
    }
    flags[name] = convert(name, raw, s);
  }
  if (opts.maxPositional !== undefined && positional.length > opts.maxPositional) {
    throw new CliError(
      opts.maxPositional === 0
        ? `unexpected argument "${positional[0]}"`
        : `too many arguments: ${positional.map((p) => JSON.stringify(p)).join(' ')} (quote the problem text as one argument)`,
    );
  }
  return { flags, positional };
}

function convert(name: string, raw: string, s: FlagSpec): string | number {
  if (s.type === 'string') {
    if (raw === '') throw new CliError(`--${name} needs a value${s.arg ? ` (${s.arg})` : ''}`);
    return raw;
  }
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v)) throw new CliError(`--${name} takes a number, got "${raw}"`);
  if (s.type === 'int' && !Number.isInteger(v)) throw new CliError(`--${name} takes a whole number, got "${raw}"`);
  if (s.min !== undefined && v < s.min) throw new CliError(`--${name} must be at least ${s.min}, got ${raw}`);
  if (s.max !== undefined && v > s.max) throw new CliError(`--${name} must be at most ${s.max}, got ${raw}`);
  return v;
}

function suggest(name: string, known: string[]): string {
  const close = known.filter((k) => k.startsWith(name.slice(0, 3)) || name.startsWith(k.slice(0, 3)));
  return close.length > 0 ? ` (did you mean ${close.map((k) => `--${k}`).join(' or ')}?)` : '';
}

/** "a, b,c" -> [parse("a"), parse("b"), parse("c")]; empty entries dropped; an Error thrown by
 * parse becomes the CLI's error for the flag (what: "--workers"). */
export function parseList<T>(raw: unknown, what: string, parse: (s: string) => T): T[] {
  return String(raw)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      try {
        return parse(s);
      } catch (err) {
        throw new CliError(`${what}: ${(err as Error).message}`);
      }
    });
}

/** "1,2, 3" -> [1, 2, 3]; every entry a whole number >= 0. */
export function parseIdList(raw: string, what: string): number[] {
  const parts = raw.split(',').map((p) => p.trim());
  if (parts.length === 1 && parts[0] === '') throw new CliError(`${what} is empty`);
  return parts.map((p) => {
    if (!/^\d+$/.test(p)) throw new CliError(`${what}: "${p}" is not a token id (ids are whole numbers >= 0, separated by commas)`);
    const v = Number(p);
    if (v > 0x7fffffff) throw new CliError(`${what}: ${p} is too large for a token id`);
    return v;
  });
}

export function helpText(usage: string, spec: Record<string, FlagSpec>): string {
  const rows = Object.entries(spec).map(([k, s]) => [`--${k}${s.type === 'boolean' ? '' : ` ${s.arg ?? 'VALUE'}`}`, s.help]);
  const w = Math.max(...rows.map((r) => r[0].length));
  return `${usage}\n\nOptions:\n${rows.map(([a, b]) => `  ${a.padEnd(w)}  ${b}`).join('\n')}\n`;
}

/** The repository (or installed extension) root. */
export function repoRoot(): string {
  return path.resolve(__dirname, '..', '..');
}

/** Runs a CLI main: user errors print "hogwild: <message>" and exit 1; bugs print the stack. */
export function runCli(main: () => Promise<void>): void {
  main().then(
    () => {
      if (process.exitCode === undefined) process.exitCode = 0;
    },
    (err: unknown) => {
      const msg = err instanceof Error ? err.message : String(err);
      process.stderr.write(`hogwild: ${msg.split('\n')[0]}\n`);
      if (!(err instanceof CliError) && process.env.HOGWILD_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
      process.exitCode = 1;
    },
  );
}
