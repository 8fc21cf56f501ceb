// A valid RunConfig for the unit tests: two named workers, the combined layout, the default
// prompts; each test overrides what it is about.
import type { RunConfig } from '../../protocol/messages';
import { DEFAULT_PROMPTS } from '../../extension/collab/prompts';

export function testRunConfig(over: Partial<RunConfig> = {}): RunConfig {
  return {
    problem: 'What is 2+2?',
    workers: 2,
    workerNames: ['Alice', 'Bob'],
    layout: 'combined',
    sampling: { temperature: 0.6, topP: 0.95, topK: 20, seed: 1 },
    maxTokens: 100,
    selfCheckInterval: 1000,
    maxContext: 0,
    prompts: { ...DEFAULT_PROMPTS },
    ...over,
  };
}
