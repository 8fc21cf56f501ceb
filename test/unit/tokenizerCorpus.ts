/**
 * Text for tokenizer tests (fastBpe.test.ts, tokenizerCache.test.ts): strings that stress the
 * pre-tokenizer and the merges, and the repository's own sources and docs. Seeded: the same
 * corpus every run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

/** A seeded generator (the corpus is the same every run). */
export function rng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

/** Strings that stress the pre-tokenizer and the merges: scripts, digits, spaces, emoji. */
export function hardStrings(): string[] {
  const fixed = [
    '',
    ' ',
    '   leading and trailing   ',
    'Hello, world! How are you?',
    "it's don't we'll they've I'm you'd IT'S DON'T",
    '12345678901234567890 3.14159 -42 1e-7 0x1F',
    'a\n\nb\r\n\r\nc\t\td\u00a0e\u2003f\u3000g',
    'naïve café Ünïcödé façade \u0065\u0301 e\u0301',
    '日本語のテキスト、中文文本，한국어 텍스트',
    'emoji 😀👍🏽👨‍👩‍👧‍👦 🇫🇷 ❤️ and ZWJ',
    'Ελληνικά Русский עברית العربية हिन्दी',
    '```ts\nconst x = { a: 1, b: [2, 3] };\n```',
    '$$\\int_0^1 x^2 \\, dx = \\frac{1}{3}$$',
    'a'.repeat(1000),
    'ab'.repeat(700) + ' ' + 'xyz'.repeat(300),
    'supercalifragilisticexpialidocious antidisestablishmentarianism',
    '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nok<|im_end|>',
    'text<|endoftext|>more<|im_start|><|im_start|> spaced <|im_end|> ',
    'lone surrogate \ud800 end',
    '\u0000\u0001\u001f control \u007f\u0085\u2028\u2029',
  ];
  const pieces = ['the', ' ', '  ', '\n', '\n\n', 'ing', 'é', '😀', '日本', '123', "'s", '.', ',', '!?', 'Qu', 'ZZ', '\t', 'ß', 'İ', 'ﬁ'];
  const r = rng(7);
  const random: string[] = [];
  for (let i = 0; i < 60; i++) {
    let s = '';
    const n = 1 + r(40);
    for (let k = 0; k < n; k++) s += r(3) === 0 ? String.fromCodePoint(32 + r(0x3000)) : pieces[r(pieces.length)];
    random.push(s);
  }
  return [...fixed, ...random];
}

/** The repository's own text: sources and docs (a few hundred KB of real prose and code). */
export function repositoryCorpus(): string[] {
  const files: string[] = [path.join(ROOT, 'README.md')];
  for (const dir of ['extension/model', 'extension/cli', 'extension/collab', 'protocol', 'native/src/hogwild']) {
    for (const f of fs.readdirSync(path.join(ROOT, dir))) {
      const p = path.join(ROOT, dir, f);
      if (fs.statSync(p).isFile() && /\.(ts|md|cpp|h)$/.test(f)) files.push(p);
    }
  }
  return files.map((f) => fs.readFileSync(f, 'utf8'));
}
