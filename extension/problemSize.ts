/**
 * Solve Selection with nothing selected sends the whole file: its size in tokens decides
 * whether to ask first (more than about 4k tokens) or to refuse at once (over the context).
 */
import { loadTokenizer, type HwTokenizer } from './model/tokenizer';

/** Whole files above this many tokens need a confirmation. */
export const CONFIRM_TOKENS = 4000;

const tokenizers = new Map<string, Promise<HwTokenizer | null>>();

/** Tokens of `text` under the model folder's tokenizer; null when the folder has none. */
export async function countTokens(modelDir: string, text: string): Promise<number | null> {
  let tok = tokenizers.get(modelDir);
  if (!tok) {
    tok = loadTokenizer(modelDir).catch(() => null);
    tokenizers.set(modelDir, tok);
  }
  const t = await tok;
  return t ? t.encode(text).length : null;
}

/** "the problem is 24,252 tokens; the context is 2,048 (hogwild.maxContext, or the model's 40,960)", or null if it fits. */
export function overContext(tokens: number, maxContextSetting: number, modelContext: number): string | null {
  const limit = maxContextSetting > 0 ? Math.min(maxContextSetting, modelContext) : modelContext;
  if (tokens < limit) return null;
  const n = (x: number) => x.toLocaleString('en-US');
  const source = maxContextSetting > 0 && maxContextSetting < modelContext ? `hogwild.maxContext, or the model's ${n(modelContext)}` : "the model's";
  return `the problem is ${n(tokens)} tokens; the context is ${n(limit)} (${source})`;
}

/** The question asked before sending a large whole file. */
export function confirmText(tokens: number, fileName: string): string {
  return `Nothing is selected: solve the whole of ${fileName}, ${tokens.toLocaleString('en-US')} tokens? Its prefill takes a while on the CPU.`;
}
