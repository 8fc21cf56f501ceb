// The toy token ids of the tests that hold simulated runs against the cache format and the
// training views (cacheRuns, trainViews): no tokenizer, ids that only need to be distinct.
import type { SimTokens } from '../../extension/tasks/collabSim';
import type { ViewTexts } from '../../extension/tasks/trainViews';

export const NAMES = ['Alice', 'Bob', 'Carol', 'Dave'];

/** One id per word, digit or punctuation run (as the project's BPE splits digits), counting from 100 in each text. */
export const toyIds = (s: string) => (s.match(/ ?[A-Za-z]+|\d|[^\sA-Za-z\d]+\n*|\s+/g) ?? []).map((_, i) => 100 + i);

export const SIM_TOKENS: SimTokens = { header: (w, k) => [1000 + w, 2000 + k, 1999], selfCheck: [7, 8, 9], encode: toyIds, eos: 3 };

export const VIEW_TEXTS: ViewTexts = { prompt: [50, 51, 52], headerOthers: [60, 61], headerOwn: [70], finisher: [80], encode: toyIds, eos: 3 };
