/**
 * The `hogwild.*` settings: read, validated and turned into a RunConfig. Pure (no vscode
 * import) so that unit tests cover it: the extension passes a getter over
 * `workspace.getConfiguration('hogwild')`. An invalid value is reported with the setting's
 * name, what is wrong and what it is; it is never silently replaced by a default.
 */
import * as path from 'node:path';
import * as L from '../protocol/limits';
import { DEVICES, KV_DTYPES, LAYOUTS, type Device, type KvDtype, type Layout, type PromptTexts, type RunConfig } from '../protocol/messages';
import { completeWorkerNames } from './collab/prompts';

/** Reads one setting by its key below `hogwild.` (e.g. "sampling.temperature"). */
export type SettingsGetter = (key: string) => unknown;

export interface SettingError {
  key: string; // full key, e.g. "hogwild.workers"
  message: string;
}

export interface HogwildSettings {
  modelFolder: string; // '' = the built-in model
  device: Device;
  threads: number; // 0 = automatic
  kvDtype: KvDtype; // K/V cache element type; 'auto' = the checkpoint's
  workers: number;
  layout: Layout;
  temperature: number;
  topP: number;
  topK: number;
  seed: number;
  maxTokens: number;
  selfCheckInterval: number;
  maxContext: number;
  kvBudgetMB: number;
  workerNames: string[];
  prompts: PromptTexts;
  saveTraces: boolean;
}

/** Every setting the extension reads, with the schema facts validation needs. */
export const SETTING_KEYS = [
  'modelFolder',
  'device',
  'threads',
  'kvDtype',
  'workers',
  'layout',
  'sampling.temperature',
  'sampling.topP',
  'sampling.topK',
  'sampling.seed',
  'maxTokens',
  'selfCheckInterval',
  'maxContext',
  'kvBudgetMB',
  'workerNames',
  'prompts.system',
  'prompts.selfCheck',
  'prompts.finisher',
  'prompts.headerOthers',
  'prompts.headerOwn',
  'prompts.answerPattern',
  'saveTraces',
] as const;

/** The self-check interval that stands for "off" (setting 0). */
export const SELF_CHECK_OFF = L.SELF_CHECK_OFF;

function describe(v: unknown): string {
  if (v === undefined) return 'not set';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? v.slice(0, 57) + '...' : v);
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 60 ? s.slice(0, 57) + '...' : s;
  } catch {
    return String(v);
  }
}

class Reader {
  readonly errors: SettingError[] = [];
  constructor(private readonly get: SettingsGetter) {}

  private err(key: string, what: string, v: unknown): void {
    this.errors.push({ key: `hogwild.${key}`, message: `hogwild.${key} ${what} (it is ${describe(v)}).` });
  }

  int(key: string, min: number, max: number, fallback: number): number {
    const v = this.get(key);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.err(key, `must be a whole number from ${min} to ${max}`, v);
      return fallback;
    }
    return v;
  }

  num(key: string, min: number, max: number, fallback: number, opts: { minExclusive?: boolean } = {}): number {
    const v = this.get(key);
    const low = opts.minExclusive ? `greater than ${min}` : `at least ${min}`;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (opts.minExclusive && v === min)) {
      this.err(key, `must be a number ${low} and at most ${max}`, v);
      return fallback;
    }
    return v;
  }

  oneOf<T extends string>(key: string, values: readonly T[], fallback: T): T {
    const v = this.get(key);
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
      this.err(key, `must be one of ${values.map((x) => `"${x}"`).join(', ')}`, v);
      return fallback;
    }
    return v as T;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.get(key);
    if (typeof v !== 'boolean') {
      this.err(key, 'must be true or false', v);
      return fallback;
    }
    return v;
  }

  text(key: string, opts: { nonEmpty?: boolean; max?: number } = {}): string {
    const v = this.get(key);
    const max = opts.max ?? L.MAX_PROMPT_CHARS;
    if (typeof v !== 'string') {
      this.err(key, 'must be a string', v);
      return '';
    }
    if (opts.nonEmpty && v.trim() === '') {
      this.err(key, 'must not be empty', v);
      return v;
    }
    if (v.length > max) {
      this.err(key, `must be at most ${max} characters long`, `${v.length} characters`);
      return v;
    }
    return v;
  }

  names(key: string): string[] {
    const v = this.get(key);
    if (!Array.isArray(v)) {
      this.err(key, 'must be a list of names', v);
      return [];
    }
    const out: string[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < v.length; i++) {
      const n = v[i];
      if (typeof n !== 'string' || n.trim() === '' || n.length > L.MAX_NAME_CHARS || /[\n\r\t[\]]/.test(n)) {
        this.err(key, `entry ${i + 1} must be a name of 1 to ${L.MAX_NAME_CHARS} characters without line breaks or brackets`, n);
        continue;
      }
      const t = n.trim();
      if (seen.has(t.toLowerCase())) {
        this.err(key, `lists the name "${t}" twice; worker names must be unique`, v);
        continue;
      }
      seen.add(t.toLowerCase());
      out.push(t);
    }
    if (out.length > L.MAX_NAMES) this.err(key, `must have at most ${L.MAX_NAMES} names`, `${out.length} names`);
    return out;
  }
}

/**
 * Settings that point at files or run user patterns: in an untrusted workspace (Restricted
 * Mode) their workspace values are ignored (package.json lists them as restrictedConfigurations,
 * and the getter below applies the same rule itself).
 */
export const RESTRICTED_SETTINGS = ['modelFolder', 'prompts.answerPattern', 'saveTraces'] as const;

/** The part of vscode.WorkspaceConfiguration the getter needs. */
export interface ConfigurationLike {
  get(key: string): unknown;
  inspect(key: string): { defaultValue?: unknown; globalValue?: unknown } | undefined;
}

/** A getter over the `hogwild` configuration that honours Workspace Trust. */
export function settingsGetter(cfg: ConfigurationLike, trusted: boolean): SettingsGetter {
  return (key) => {
    if (trusted || !(RESTRICTED_SETTINGS as readonly string[]).includes(key)) return cfg.get(key);
    const i = cfg.inspect(key);
    return i?.globalValue !== undefined ? i.globalValue : i?.defaultValue;
  };
}

/** Reads and validates every setting; `errors` is empty when all are valid. */
export function readSettings(get: SettingsGetter): { settings: HogwildSettings; errors: SettingError[] } {
  const r = new Reader(get);
  let modelFolder = r.text('modelFolder', { max: L.MAX_PATH_CHARS });
  if (modelFolder.trim() !== '') {
    modelFolder = modelFolder.trim();
    if (!path.isAbsolute(modelFolder) && !modelFolder.startsWith('~/')) {
      r.errors.push({
        key: 'hogwild.modelFolder',
        message: `hogwild.modelFolder must be an absolute path to a model folder, or empty for the built-in model (it is ${describe(modelFolder)}).`,
      });
    }
  } else {
    modelFolder = '';
  }
  const settings: HogwildSettings = {
    modelFolder,
    device: r.oneOf('device', DEVICES, 'auto'),
    threads: r.int('threads', 0, L.MAX_THREADS, 0),
    kvDtype: r.oneOf('kvDtype', KV_DTYPES, 'auto'),
    workers: r.int('workers', 1, L.MAX_WORKERS, 2),
    layout: r.oneOf('layout', LAYOUTS, 'combined'),
    temperature: r.num('sampling.temperature', 0, L.MAX_TEMPERATURE, 0.6),
    topP: r.num('sampling.topP', 0, 1, 0.95, { minExclusive: true }),
    topK: r.int('sampling.topK', 0, L.MAX_TOP_K, 20),
    seed: r.int('sampling.seed', 0, L.MAX_SEED, 0),
    maxTokens: r.int('maxTokens', 1, L.MAX_TOKENS, 2048),
    selfCheckInterval: r.int('selfCheckInterval', 0, L.MAX_SELF_CHECK_INTERVAL, 1000),
    maxContext: r.int('maxContext', 0, L.MAX_CONTEXT, 0),
    kvBudgetMB: r.int('kvBudgetMB', 0, 1 << 30, 0),
    workerNames: r.names('workerNames'),
    prompts: {
      system: r.text('prompts.system', { nonEmpty: true }),
      selfCheck: r.text('prompts.selfCheck'),
      finisher: r.text('prompts.finisher', { nonEmpty: true }),
      headerOthers: r.text('prompts.headerOthers'),
      headerOwn: r.text('prompts.headerOwn'),
      answerPattern: r.text('prompts.answerPattern', { nonEmpty: true, max: L.MAX_ANSWER_PATTERN_CHARS }),
    },
    saveTraces: r.bool('saveTraces', true),
  };
  if (settings.maxContext !== 0 && settings.maxContext < L.MIN_CONTEXT) {
    r.errors.push({ key: 'hogwild.maxContext', message: `hogwild.maxContext must be 0 (the model's own) or at least ${L.MIN_CONTEXT} tokens (it is ${settings.maxContext}).` });
  }
  const pat = settings.prompts.answerPattern;
  if (pat.trim() !== '') {
    try {
      const re = new RegExp(pat);
      // Group 1 is the answer: the pattern must have at least one capturing group.
      const groups = new RegExp(`${re.source}|`).exec('')!.length - 1;
      if (groups < 1) {
        r.errors.push({ key: 'hogwild.prompts.answerPattern', message: `hogwild.prompts.answerPattern must have a capturing group (…) around the answer (it is ${describe(pat)}).` });
      }
    } catch (e) {
      r.errors.push({ key: 'hogwild.prompts.answerPattern', message: `hogwild.prompts.answerPattern is not a valid regular expression: ${(e as Error).message}.` });
    }
  }
  return { settings, errors: r.errors };
}

/** The run configuration for a problem under the (validated) settings. */
export function toRunConfig(s: HogwildSettings, problem: string): RunConfig {
  return {
    problem,
    workers: s.workers,
    workerNames: completeWorkerNames(s.workerNames, s.workers),
    layout: s.layout,
    sampling: { temperature: s.temperature, topP: s.topP, topK: s.topK, seed: s.seed },
    maxTokens: s.maxTokens,
    // 0 turns the self-check off: an interval no run reaches.
    selfCheckInterval: s.selfCheckInterval === 0 ? SELF_CHECK_OFF : s.selfCheckInterval,
    maxContext: s.maxContext,
    ...(s.kvBudgetMB > 0 ? { kvBudgetMB: s.kvBudgetMB } : {}),
    prompts: { ...s.prompts },
  };
}

/** Expands a leading "~/" against `home`. */
export function expandHome(p: string, home: string): string {
  return p.startsWith('~/') ? path.join(home, p.slice(2)) : p;
}
