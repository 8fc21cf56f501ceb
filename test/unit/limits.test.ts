// Limits are defined once (protocol/limits.ts): the manifest, the settings reader and the
// message schemas must agree, so that a value one side accepts is never refused by another.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as L from '../../protocol/limits';
import { readSettings, toRunConfig } from '../../extension/settings';
import { validateRunConfig } from '../../protocol/validate';

const root = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const props = pkg.contributes.configuration.properties as Record<string, { default: unknown; minimum?: number; maximum?: number; items?: { maxLength?: number } }>;
const getter = (overrides: Record<string, unknown>) => (k: string) => (k in overrides ? overrides[k] : props[`hogwild.${k}`]?.default);

describe('limits', () => {
  it('the manifest declares the same maxima as protocol/limits.ts', () => {
    const expected: Record<string, number> = {
      workers: L.MAX_WORKERS,
      threads: L.MAX_THREADS,
      'sampling.temperature': L.MAX_TEMPERATURE,
      'sampling.topK': L.MAX_TOP_K,
      'sampling.seed': L.MAX_SEED,
      maxTokens: L.MAX_TOKENS,
      selfCheckInterval: L.MAX_SELF_CHECK_INTERVAL,
      maxContext: L.MAX_CONTEXT,
    };
    for (const [k, max] of Object.entries(expected)) expect(props[`hogwild.${k}`]!.maximum, k).toBe(max);
    expect(props['hogwild.workerNames']!.items!.maxLength).toBe(L.MAX_NAME_CHARS);
  });

  it('settings at their extremes give run configurations the schema accepts', () => {
    const extremes: Record<string, unknown>[] = [
      { workers: L.MAX_WORKERS, 'sampling.temperature': L.MAX_TEMPERATURE, 'sampling.topK': L.MAX_TOP_K, 'sampling.seed': L.MAX_SEED, maxTokens: L.MAX_TOKENS, selfCheckInterval: L.MAX_SELF_CHECK_INTERVAL, maxContext: L.MAX_CONTEXT },
      // 0 turns the self-check off: the run configuration carries an interval no run reaches.
      { workers: 1, 'sampling.temperature': 0, 'sampling.topK': 0, 'sampling.seed': 0, maxTokens: 1, selfCheckInterval: 0, maxContext: 0 },
    ];
    for (const o of extremes) {
      const { settings, errors } = readSettings(getter(o));
      expect(errors).toEqual([]);
      const r = validateRunConfig(toRunConfig(settings, 'p'));
      expect(r.ok ? '' : r.error).toBe('');
    }
  });

  it('one past a maximum is refused by the settings and by the schema alike', () => {
    for (const [key, field, value] of [
      ['sampling.topK', 'topK', L.MAX_TOP_K + 1],
      ['workers', 'workers', L.MAX_WORKERS + 1],
      ['sampling.temperature', 'temperature', L.MAX_TEMPERATURE + 0.5],
      ['maxTokens', 'maxTokens', L.MAX_TOKENS + 1],
    ] as const) {
      expect(readSettings(getter({ [key]: value })).errors.map((e) => e.key)).toEqual([`hogwild.${key}`]);
      const ok = toRunConfig(readSettings(getter({})).settings, 'p');
      const broken = JSON.parse(JSON.stringify(ok));
      if (key.startsWith('sampling.')) broken.sampling[field] = value;
      else broken[field] = value;
      const r = validateRunConfig(broken);
      expect(r.ok ? '' : r.error).toMatch(new RegExp(`${field}: must be between`));
    }
  });
});
