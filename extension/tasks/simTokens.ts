/**
 * The simulator's token ids from a real tokenizer, exactly as the engine gets them
 * (buildNativeRunConfig): each header spelled from its parts with one id per digit, the
 * self-check question and each step's text encoded alone, end of turn = <|im_end|>.
 */
import { DEFAULT_PROMPTS, renderSystemPrompt } from '../collab/prompts';
import { digitIds, headerIds } from '../collab/runConfig';
import type { HwTokenizer } from '../model/tokenizer';
import type { SimTokens } from './collabSim';
import type { ViewTexts } from './trainViews';

/** Encodes with a cache: the same texts (prompts, headers, step texts) come back again and again. */
export function memoEncoder(tok: HwTokenizer): (text: string) => number[] {
  const memo = new Map<string, number[]>();
  return (text) => {
    let ids = memo.get(text);
    if (!ids) memo.set(text, (ids = tok.encode(text)));
    return ids;
  };
}

/** The end of a worker's turn: <|im_end|> when the tokenizer has it, else its first end id. */
export function endOfTurn(tok: HwTokenizer): number {
  return tok.eosIds().find((id) => tok.decode([id]) === '<|im_end|>') ?? tok.eosIds()[0];
}

export function simTokensFor(tok: HwTokenizer, names: readonly string[], encode = memoEncoder(tok), digits = digitIds(tok)): SimTokens {
  const headers = names.map(() => new Map<number, number[]>());
  return {
    header: (w, k) => {
      let h = headers[w].get(k);
      if (!h) headers[w].set(k, (h = headerIds(tok, names[w], k, digits)));
      return h;
    },
    selfCheck: encode(DEFAULT_PROMPTS.selfCheck),
    encode,
    decode: (ids) => tok.decode(ids, { skipSpecial: true }),
    eos: endOfTurn(tok),
  };
}

/** The fixed pieces of a training view for one problem, as make-train-data builds them (the engine's are buildNativeRunConfig's). */
export function trainViewTexts(tok: HwTokenizer, names: readonly string[], problem: string, encode = memoEncoder(tok)): ViewTexts {
  const system = renderSystemPrompt(DEFAULT_PROMPTS.system, names);
  return {
    prompt: tok.applyChatTemplate([{ role: 'system', content: system }, { role: 'user', content: problem }]),
    headerOthers: encode(DEFAULT_PROMPTS.headerOthers),
    headerOwn: encode(DEFAULT_PROMPTS.headerOwn),
    finisher: encode(DEFAULT_PROMPTS.finisher),
    encode,
    eos: endOfTurn(tok),
  };
}
