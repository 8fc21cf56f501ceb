/**
 * Cutting a lane's text into list items for the virtual list. A step can grow to many
 * thousands of characters (a model that never ends a paragraph); one DOM node per step would
 * make every frame rewrite it all. Cuts fall at the first line break after CHUNK characters,
 * or hard at 4 x CHUNK on a line that never breaks. The cuts of a text never move as it
 * grows (append-only), so only the last item changes while a step streams.
 */
export const CHUNK = 1500;

export function chunkBounds(text: string, chunk = CHUNK): number[] {
  const cuts = [0];
  let at = 0;
  while (text.length - at > chunk) {
    const nl = text.indexOf('\n', at + chunk);
    const hard = at + 4 * chunk;
    let cut: number;
    if (nl >= 0 && nl < hard) cut = nl + 1;
    else if (text.length > hard) cut = hard;
    else break;
    cuts.push(cut);
    at = cut;
  }
  cuts.push(text.length);
  return cuts;
}
