// Split-K and tiles per block for the decode GEMM: which pieces of K each block and warp reads,
// how many splits and tiles a launch uses. Host and device share this arithmetic, so a GPU-free
// test (test_gemm_split) checks that every piece of every row is read exactly once.
//
// Why split: a decode GEMM with few output columns (o_proj / down_proj at N = 3584 give 448
// one-tile blocks) fills the GPU's block slots (about 3 per SM) one and a bit times; the
// second, nearly empty wave streams at a fraction of the bandwidth. Splitting K gives more,
// shorter blocks whose waves come out nearly whole. The partial sums of a column tile are
// added in split order by the tile's last block to finish (bit-identical from run to run).
// Measured on the H200 (2026-12-02 14:30 UTC): the cost model's choice (3 splits for the 0.5B
// down_proj, none for the 7B GEMMs once o/down fit one wave) 1.13 ms a 0.5B W=4 step against
// 1.16 without splits; 2 or 4 splits everywhere were slower (0.5B 1.34 / 1.53, 7B 5.19 / 5.37
// against 5.01 ms).
#pragma once
#include <cstddef>

#if defined(__CUDACC__)
#define HW_GEMM_HD __host__ __device__
#else
#define HW_GEMM_HD
#endif

namespace hw::cuda {

constexpr int kGemmWarps = 8;  // warps per block; they split a block's K range among them
// 16-byte pieces of K each lane of the decode kernel has in flight per step. 8 measured slower
// on the H200 (2026-12-02 07:12 UTC: 7B W=4 5.78 vs 5.70 ms a step, 0.5B W=4 1.61 vs 1.51 ms).
constexpr int kGemmUnroll = 4;

// Output tiles (8 columns each) per block of a decode launch for W with `rows` output rows over
// K = `cols`, on `sms` SMs (the SwiGLU epilogue takes two whatever this says: gate and up). Two tiles halve the x
// reloads; one tile when two would leave SMs idle (fewer than 2 blocks per SM), or when K is at
// most one block step (8 warps x 4 pieces x 4 lanes x 8 k = 1,024): such a block is one round
// trip whatever its tiles, so twice the blocks is twice the bytes in flight. Measured on an
// H200 (2026-12-05 04:46 UTC, 3 rounds): the Qwen2.5-0.5B lm_head (K = 896) on one tile took a
// W = 1 / W = 4 step to 0.982x / 0.985x; at 7B (K = 3,584) one tile everywhere was 1.03x slower.
inline int decode_tiles(int rows, int cols, int sms) {
  const bool one_step = cols <= kGemmWarps * kGemmUnroll * 4 * 8;
  return (rows + 15) / 16 >= 2 * sms && !one_step ? 2 : 1;
}

// 16-byte pieces (8 k each) [begin, end) of split s when each split holds `len` pieces.
struct PieceRange {
  int begin, end;
};
HW_GEMM_HD inline PieceRange split_range(int pieces, int len, int s) {
  const int b = s * len;
  const int e = b + len < pieces ? b + len : pieces;
  return {b, e};
}

// The piece that lane q of warp `warp` reads at step `step`, unrolled slot u (UNROLL slots of
// 4 lanes per step); at or past the range's end the lane reads nothing.
HW_GEMM_HD inline int warp_piece(int begin, int warp, int unroll, int step, int u, int q) {
  return begin + ((step * kGemmWarps + warp) * unroll + u) * 4 + q;
}

struct GemmSplit {
  int splits = 1;  // blocks along K per column tile
  int len = 0;     // pieces per split (the last may hold fewer)
};

// Pieces per split for a wanted split count: rounded up to whole warp steps (4 x unroll
// pieces), so the real count can come out lower than asked.
inline GemmSplit make_split(int pieces, int want, int unroll) {
  const int step = 4 * unroll;
  GemmSplit g;
  if (want < 1) want = 1;
  int len = (pieces + want - 1) / want;
  len = (len + step - 1) / step * step;
  if (len < step) len = step;
  g.len = len;
  g.splits = (pieces + len - 1) / len;
  if (g.splits < 1) g.splits = 1;
  return g;
}

// Estimated time of a launch in units of one block step: waves of blocks over the slots,
// each block its own steps (every warp in parallel) plus about one step of fixed cost (start,
// the warps' reduction, the store).
inline long split_cost(int n_tiles, const GemmSplit& g, int unroll, int slots) {
  const long blocks = long(n_tiles) * g.splits;
  const long waves = (blocks + slots - 1) / slots;
  const long steps = (g.len + kGemmWarps * 4 * unroll - 1) / (kGemmWarps * 4 * unroll);
  return waves * (steps + 1);
}

// The split for a launch of n_tiles column tiles over `pieces` pieces of K with `slots`
// resident blocks on the device. force > 0 asks for that many splits (tests, benchmarks);
// otherwise the cheapest of 1..max_splits by split_cost (ties: fewer splits). Splits that
// need more partials (tile_floats per tile and split) or counters than the workspace holds
// are not taken.
inline GemmSplit choose_split(int n_tiles, int pieces, int unroll, int slots, int force, int max_splits,
                              size_t ws_floats, int ws_counters, int tile_floats) {
  auto fits = [&](const GemmSplit& g) {
    return g.splits == 1 ||
           (n_tiles <= ws_counters && size_t(n_tiles) * size_t(g.splits) * size_t(tile_floats) <= ws_floats);
  };
  GemmSplit best = make_split(pieces, 1, unroll);
  if (slots < 1) slots = 1;
  if (force > 0) {
    const GemmSplit g = make_split(pieces, force, unroll);
    return fits(g) ? g : best;
  }
  long best_cost = split_cost(n_tiles, best, unroll, slots);
  for (int s = 2; s <= max_splits; s++) {
    const GemmSplit g = make_split(pieces, s, unroll);
    if (g.splits != s || !fits(g)) continue;
    const long c = split_cost(n_tiles, g, unroll, slots);
    if (c < best_cost) best = g, best_cost = c;
  }
  return best;
}

}  // namespace hw::cuda
