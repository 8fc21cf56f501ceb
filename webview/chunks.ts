/**
 * Cutting a lane's text into list items for the virtual list. A step can grow to many
 * thousands of characters (a model that never ends a paragraph); one DOM node per step would
 * make every frame rewrite it all, and every append re-lays out the whole paragraph it lands
 * in, so the streaming item stays short: at most 2 x CHUNK characters.
 *
 * A cut falls at the first line break in [CHUNK, 2 x CHUNK) past the previous cut. Without
 * one, once that window is complete, it falls after the window's last sentence end
 * (". ", "? ", "! "), else after its last space, else hard at 2 x CHUNK. Each rule is decided
 * by characters that never change later (the text only grows), so the cuts never move: only
 * the last item changes while a step streams.
 */
export const CHUNK = 1000;

const SENTENCE_END = /[.?!。？！]["')\]]*\s/g;

/** Where the item that starts at `at` ends, or -1 while that is not decided yet. */
function nextCut(text: string, at: number, chunk: number): number {
  const lo = at + chunk;
  const hi = at + 2 * chunk;
  const nl = text.indexOf('\n', lo);
  if (nl >= 0 && nl < hi) return nl + 1;
  if (text.length <= hi) return -1;
  const window = text.slice(lo, hi);
  let sentence = -1;
  SENTENCE_END.lastIndex = 0;
  for (let m = SENTENCE_END.exec(window); m; m = SENTENCE_END.exec(window)) sentence = m.index + m[0].length;
  if (sentence > 0) return lo + sentence;
  const space = window.lastIndexOf(' ');
  if (space >= 0) return lo + space + 1;
  return hi;
}

export function chunkBounds(text: string, chunk = CHUNK): number[] {
  const cuts = [0];
  let at = 0;
  while (text.length - at > chunk) {
    const cut = nextCut(text, at, chunk);
    if (cut < 0) break;
    cuts.push(cut);
    at = cut;
  }
  cuts.push(text.length);
  return cuts;
}
