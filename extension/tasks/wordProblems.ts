/**
 * The built-in model's task family: multi-part arithmetic word problems with gold answers.
 * Every problem has 2..6 independent parts (each "a groups of b things", some "minus c
 * spoiled ones") whose results are added at the end, so that the work splits naturally
 * between workers. Deterministic for a seed. Seeds below HELD_OUT_SEED_BASE are training
 * seeds; the held-out set (npm run eval's default) uses seeds from HELD_OUT_SEED_BASE up.
 */

/** Seeds >= this are held out: the training data never uses them. */
export const HELD_OUT_SEED_BASE = 1_000_000_000;

export interface ProblemPart {
  /** The item, lower case plural ("plums"): it names the part in the workers' steps. */
  item: string;
  /** "Plums": how a worker claims the part at the start of a step (one token in the model's vocabulary). */
  label: string;
  groups: number; // a
  size: number; // b
  /** Subtracted after the product (0: none). */
  minus: number;
  value: number; // a*b - minus
}

export interface WordProblem {
  id: string;
  seed: number;
  text: string;
  parts: ProblemPart[];
  answer: number;
}

/** mulberry32: a small seeded generator; the same seed gives the same problem everywhere. */
export function rng32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Theme {
  owners: string[];
  containers: string[];
  items: string[];
  spoiled: string; // "of which {c} are bruised"
  question: string; // "How many fruits does {owner} have in total?"
  intro: string[]; // "{owner} buys", ...
}

// Items are distinct words with distinct first letters inside a theme, so that a claim is clear.
export const THEMES: readonly Theme[] = [
  {
    owners: ['Mia', 'Tom', 'Ana', 'Leo', 'Zoe', 'Max'],
    containers: ['boxes', 'bags', 'crates', 'baskets', 'trays', 'sacks'],
    items: ['apples', 'pears', 'lemons', 'oranges', 'figs', 'kiwis', 'mangos', 'cherries'],
    spoiled: 'of which {c} are bruised',
    question: 'How many fruits does {owner} have in total?',
    intro: ['{owner} buys', '{owner} has', 'At the market {owner} gets'],
  },
  {
    owners: ['Sam', 'Eva', 'Ben', 'Ida', 'Raj', 'Uma'],
    containers: ['packs', 'cases', 'tins', 'jars', 'cartons', 'bundles'],
    items: ['pens', 'books', 'cards', 'dice', 'tapes', 'markers', 'stamps', 'nails'],
    spoiled: 'minus {c} that are broken',
    question: 'How many things does {owner} have altogether?',
    intro: ['{owner} orders', 'The shop of {owner} stocks', '{owner} collects'],
  },
  {
    owners: ['the farm', 'the zoo', 'the park', 'the school', 'the club', 'the camp'],
    containers: ['rows', 'pens', 'groups', 'teams', 'lines', 'rooms'],
    items: ['cows', 'goats', 'hens', 'ducks', 'sheep', 'rabbits', 'ponies', 'turtles'],
    spoiled: 'but {c} are away',
    question: 'How many animals are at {owner} in all?',
    intro: ['There are, at {owner},', '{owner} counts', '{owner} keeps'],
  },
];

function pick<T>(rand: () => number, list: readonly T[]): T {
  return list[Math.floor(rand() * list.length)];
}

/** An integer in lo..hi (both included), drawn uniformly. */
export function int(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

function shuffle<T>(rand: () => number, list: readonly T[]): T[] {
  const a = list.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

const capitalize = (s: string) => s[0].toUpperCase() + s.slice(1);

function listText(items: string[]): string {
  return items.length === 1 ? items[0] : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** The problem of a seed: 2..6 parts, wording and numbers drawn from the seed alone. */
export function makeProblem(seed: number, partsOverride?: number): WordProblem {
  const rand = rng32(seed ^ 0x9e3779b9);
  const theme = pick(rand, THEMES);
  const count = partsOverride ?? int(rand, 2, 6);
  const items = shuffle(rand, theme.items).slice(0, count);
  const parts: ProblemPart[] = items.map((item) => {
    const groups = int(rand, 2, 12);
    const size = int(rand, 2, 12);
    const minus = rand() < 0.25 ? int(rand, 1, Math.min(9, groups * size - 1)) : 0;
    return { item, label: capitalize(item), groups, size, minus, value: groups * size - minus };
  });
  const owner = pick(rand, theme.owners);
  const phrases = parts.map((p) => {
    const base = `${p.groups} ${pick(rand, theme.containers)} of ${p.size} ${p.item}`;
    return p.minus > 0 ? `${base} (${theme.spoiled.replace('{c}', String(p.minus))})` : base;
  });
  const text = `${capitalize(pick(rand, theme.intro).replace('{owner}', owner))} ${listText(phrases)}. ${theme.question.replace('{owner}', owner)}`;
  const answer = parts.reduce((s, p) => s + p.value, 0);
  return { id: `p${seed}`, seed, text, parts, answer };
}

/** The held-out problems: seeds HELD_OUT_SEED_BASE, +1, ... */
export function heldOutProblems(count: number): WordProblem[] {
  return Array.from({ length: count }, (_, i) => makeProblem(HELD_OUT_SEED_BASE + i));
}
