/** The CLIs' flag parser and terminal lanes (pure; no engine). */
import { describe, expect, it } from 'vitest';
import { CliError, parseArgs, parseIdList, type FlagSpec } from '../../extension/cli/args';
import { Lanes, sanitize } from '../../extension/cli/terminal';

const SPEC: Record<string, FlagSpec> = {
  model: { type: 'string', help: '' },
  steps: { type: 'int', min: 1, help: '' },
  temperature: { type: 'number', min: 0, help: '' },
  json: { type: 'boolean', help: '' },
};

describe('parseArgs', () => {
  it('reads flags in both spellings, booleans and positionals', () => {
    const r = parseArgs(['--model', 'd', '--steps=3', '--json', 'problem text', '--temperature', '0.5'], SPEC);
    expect(r.flags).toEqual({ model: 'd', steps: 3, json: true, temperature: 0.5 });
    expect(r.positional).toEqual(['problem text']);
    expect(parseArgs(['--no-json'], SPEC).flags).toEqual({ json: false });
    expect(parseArgs(['--', '--model'], SPEC).positional).toEqual(['--model']);
    expect(parseArgs(['-5'], SPEC).positional).toEqual(['-5']);
  });

  it('says what is wrong', () => {
    const err = (argv: string[], re: RegExp, max?: number) => {
      expect(() => parseArgs(argv, SPEC, { maxPositional: max })).toThrow(CliError);
      expect(() => parseArgs(argv, SPEC, { maxPositional: max })).toThrow(re);
    };
    err(['--modle', 'x'], /unknown option --modle \(did you mean --model\?\)/);
    err(['-m', 'x'], /unknown option -m/);
    err(['--steps'], /--steps needs a value/);
    err(['--steps', '1.5'], /--steps takes a whole number, got "1.5"/);
    err(['--steps', '0'], /--steps must be at least 1, got 0/);
    err(['--temperature', 'x'], /--temperature takes a number, got "x"/);
    err(['--json=yes'], /--json takes no value/);
    err(['--json', '--json'], /--json given twice/);
    err(['a', 'b'], /too many arguments/, 1);
    err(['a'], /unexpected argument "a"/, 0);
  });

  it('parses id lists', () => {
    expect(parseIdList('1, 2,3', 'ids')).toEqual([1, 2, 3]);
    expect(() => parseIdList('', 'ids')).toThrow(/ids is empty/);
    expect(() => parseIdList('1,,2', 'ids')).toThrow(/"" is not a token id/);
    expect(() => parseIdList('-1', 'ids')).toThrow(/"-1" is not a token id/);
    expect(() => parseIdList('99999999999', 'ids')).toThrow(/too large/);
  });
});

describe('terminal lanes', () => {
  it('writes whole lines per worker, never interleaved inside a line', () => {
    const out: string[] = [];
    const lanes = new Lanes(['Alice', 'Bob'], false, (s) => out.push(s), 60);
    lanes.push(0, 'Hello ');
    lanes.push(1, 'Hi there\nsecond');
    lanes.push(0, 'world\n');
    lanes.flushAll();
    expect(out).toEqual(['Alice │ Hi there\n'.replace('Alice', 'Bob  '), 'Alice │ Hello world\n', 'Bob   │ second\n']);
  });

  it('wraps long lines at a space', () => {
    const out: string[] = [];
    const lanes = new Lanes(['A'], false, (s) => out.push(s), 30);
    lanes.push(0, 'word '.repeat(12));
    lanes.flush(0);
    expect(out.length).toBeGreaterThan(1);
    for (const l of out) expect(l.length).toBeLessThanOrEqual(31);
    expect(out.map((l) => l.slice(7, -1)).join('')).toBe('word '.repeat(12));
  });

  it('neutralises control characters', () => {
    expect(sanitize('a\x1b[31mb\r\n\tc\x7f\x85')).toBe('a\u241b[31mb\u240d\n\tc\u2421\uFFFD');
  });
});
