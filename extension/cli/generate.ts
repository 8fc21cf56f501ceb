/**
 * npm run generate -- --prompt "..." [options]
 *
 * One plain generation (no Hogwild), streamed to the terminal, with tokens/s for the prompt
 * (prefill) and the generated tokens (decode) on stderr. For prompt debugging it also takes
 * token ids as they are (--prompt-ids, no chat template) and prints JSON (--json).
 */
import { CliError, helpText, parseArgs, parseIdList, repoRoot, runCli, type FlagSpec } from './args';
import { loadForCli, MODEL_FLAGS, out } from './model';
import { ProgressBar } from './progress';

const SPEC: Record<string, FlagSpec> = {
  prompt: { type: 'string', arg: 'TEXT', help: 'the user message (rendered through the chat template)' },
  system: { type: 'string', arg: 'TEXT', help: 'an optional system message (with --prompt)' },
  'prompt-ids': { type: 'string', arg: 'IDS', help: 'token ids fed as they are, e.g. 1,2,3 (no template)' },
  ...MODEL_FLAGS,
  'max-tokens': { type: 'int', arg: 'N', min: 1, help: 'tokens to generate (default 128)' },
  temperature: { type: 'number', arg: 'T', min: 0, help: 'sampling temperature, 0 = greedy (default 0.6)' },
  'top-k': { type: 'int', arg: 'K', min: 0, help: 'keep the K most likely tokens, 0 = off (default 20)' },
  'top-p': { type: 'number', arg: 'P', min: 0, max: 1, help: 'nucleus sampling, 1 = off (default 0.95)' },
  seed: { type: 'int', arg: 'S', min: 0, max: 0xffffffff, help: 'random seed (default 0)' },
  'ignore-eos': { type: 'boolean', help: 'do not stop at end-of-sequence tokens' },
  json: { type: 'boolean', help: 'print {ids, text, promptIds, tokensPerSecond, ...} as JSON instead of streaming' },
  help: { type: 'boolean', help: 'show this help' },
};

const USAGE = 'Usage: npm run generate -- (--prompt "text" | --prompt-ids 1,2,3) [options]';

runCli(async () => {
  const { flags } = parseArgs(process.argv.slice(2), SPEC, { maxPositional: 0 });
  if (flags.help) {
    out(helpText(USAGE, SPEC));
    return;
  }
  const hasPrompt = flags.prompt !== undefined;
  const hasIds = flags['prompt-ids'] !== undefined;
  if (hasPrompt === hasIds) throw new CliError(`give exactly one of --prompt or --prompt-ids (${USAGE.replace('Usage: ', '')})`);
  if (flags.system !== undefined && !hasPrompt) throw new CliError('--system goes with --prompt (--prompt-ids are fed as they are)');
  const topP = (flags['top-p'] as number | undefined) ?? 0.95;
  if (topP <= 0) throw new CliError(`--top-p must be above 0, got ${topP}`);
  const json = flags.json === true;
  const log = (line: string) => process.stderr.write(`hogwild: ${line}\n`);

  const root = repoRoot();
  const idList = hasIds ? parseIdList(String(flags['prompt-ids']), '--prompt-ids') : null;
  const { model, tok } = await loadForCli(root, flags, log);
  try {
    const vocab = model.config.vocab;
    let promptIds: number[];
    if (idList) {
      const bad = idList.find((id) => id >= vocab);
      if (bad !== undefined) throw new CliError(`--prompt-ids: id ${bad} is outside the vocabulary (0..${vocab - 1})`);
      promptIds = idList;
    } else {
      if (!tok) throw new CliError('this model folder has no tokenizer (tokenizer.json): use --prompt-ids');
      const messages = [];
      if (flags.system !== undefined) messages.push({ role: 'system', content: String(flags.system) });
      messages.push({ role: 'user', content: String(flags.prompt) });
      try {
        promptIds = tok.applyChatTemplate(messages);
      } catch (err) {
        throw new CliError((err as Error).message);
      }
    }
    const limit = (flags['max-context'] as number | undefined) || model.config.maxContext;
    if (promptIds.length >= limit) {
      const n = (x: number) => x.toLocaleString('en-US');
      const source = limit < model.config.maxContext ? `--max-context, or the model's ${n(model.config.maxContext)}` : "the model's";
      throw new CliError(`the prompt is ${n(promptIds.length)} tokens; the context is ${n(limit)} (${source})`);
    }
    const stopIds = flags['ignore-eos'] ? [] : [...new Set([...(tok?.eosIds() ?? []), ...model.config.eosIds])];
    const maxTokens = (flags['max-tokens'] as number | undefined) ?? 128;

    const decoder = tok?.streamDecoder();
    let first = true;
    const onTokens = (ids: Int32Array) => {
      if (json) return;
      if (decoder) {
        const shown = Array.from(ids).filter((id) => !stopIds.includes(id));
        out(decoder.push(shown));
      } else {
        out((first ? '' : ' ') + Array.from(ids).join(' '));
        first = false;
      }
    };
    const bar = new ProgressBar(process.stderr);
    let res;
    try {
      res = await model.generate(
        {
          promptIds: Int32Array.from(promptIds),
          maxTokens,
          sampling: {
            temperature: (flags.temperature as number | undefined) ?? 0.6,
            topK: (flags['top-k'] as number | undefined) ?? 20,
            topP,
          },
          seed: (flags.seed as number | undefined) ?? 0,
          stopIds: Int32Array.from(stopIds),
        },
        onTokens,
        (done, total, tokensPerSecond) => {
          if (!json) bar.update({ done, total, tokensPerSecond });
        },
      );
      bar.end();
    } catch (err) {
      bar.end();
      throw new CliError((err as Error).message);
    }
    const ids = Array.from(res.ids);
    const stopped = ids.length > 0 && stopIds.includes(ids[ids.length - 1]) ? 'eos' : 'max-tokens';
    const shown = stopped === 'eos' ? ids.slice(0, -1) : ids;
    const prefillTps = res.promptMs > 0 ? (promptIds.length * 1000) / res.promptMs : 0;
    const decodeTps = res.decodeMs > 0 && ids.length > 1 ? ((ids.length - 1) * 1000) / res.decodeMs : 0;
    if (json) {
      const result = {
        promptIds,
        ids,
        text: tok ? tok.decode(shown) : null,
        stopped,
        tokensPerSecond: round(decodeTps),
        prefillTokensPerSecond: round(prefillTps),
        promptMs: round(res.promptMs),
        decodeMs: round(res.decodeMs),
        device: model.device,
      };
      out(JSON.stringify(result) + '\n');
    } else {
      if (decoder) out(decoder.flush());
      out('\n');
    }
    log(
      `prefill ${promptIds.length} tokens in ${res.promptMs.toFixed(0)} ms (${prefillTps.toFixed(1)} tok/s), ` +
        `decode ${Math.max(0, ids.length - 1)} tokens in ${res.decodeMs.toFixed(0)} ms (${decodeTps.toFixed(1)} tok/s)` +
        (stopped === 'eos' ? ', stopped at end of sequence' : ''),
    );
  } finally {
    model.close();
  }
});

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
