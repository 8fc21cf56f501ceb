// The decode GEMM's split-K arithmetic (gemm_split.h), checked without a GPU.
//
// For random shapes and split counts (K not a multiple of the split among them), walks the
// kernel's loops exactly as gemm_decode_kernel does (blocks along K, warps, steps, unrolled
// slots, lanes) and checks that every 16-byte piece of K is read by exactly one lane of one
// block, then sums a random row product through those partials in split order against a
// double reference. Then the split choice: it never asks for more splits than asked or than
// the workspace holds, and the cost model never picks a split it rates dearer than none. Last,
// the tiles per block of the benchmark shapes' launches and the edges of that rule.
// The kernel itself (the fixup by the last block, bit-identical repeats) is checked on the
// GPU by test_cuda_ops.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "../../src/cuda/gemm_split.h"
#include "../testing.h"

using namespace hw::cuda;

namespace {

// Reads of each piece by the emulated launch; also the dot product of a and b (K values each)
// summed per split, then the splits added in order (what the last block does).
double emulate(int pieces, const GemmSplit& sp, int unroll, std::vector<int>& reads, const std::vector<double>& a,
               const std::vector<double>& b) {
  reads.assign(size_t(pieces), 0);
  std::vector<double> partial(size_t(sp.splits), 0.0);
  for (int s = 0; s < sp.splits; s++) {
    const PieceRange r = split_range(pieces, sp.len, s);
    for (int warp = 0; warp < kGemmWarps; warp++)
      for (int step = 0; warp_piece(r.begin, warp, unroll, step, 0, 0) < r.end; step++)
        for (int u = 0; u < unroll; u++)
          for (int q = 0; q < 4; q++) {
            const int p = warp_piece(r.begin, warp, unroll, step, u, q);
            if (p >= r.end) continue;
            reads[size_t(p)]++;
            for (int k = p * 8; k < p * 8 + 8; k++) partial[size_t(s)] += a[size_t(k)] * b[size_t(k)];
          }
  }
  double sum = 0;
  for (double v : partial) sum += v;
  return sum;
}

}  // namespace

int main() {
  std::mt19937 rng(77);
  std::uniform_real_distribution<double> ud(-1.0, 1.0);
  int cases = 0;
  // K in pieces of 8: tiny, odd, not a multiple of any split, and the Qwen o/down widths.
  const int Ks[] = {8, 24, 72, 136, 1032, 2056, 896, 4864, 3584, 18944, 8 * 301};
  for (int K : Ks) {
    const int pieces = K / 8;
    std::vector<double> a(static_cast<size_t>(K)), b(static_cast<size_t>(K));
    for (int k = 0; k < K; k++) a[size_t(k)] = ud(rng), b[size_t(k)] = ud(rng);
    double ref = 0;
    for (int k = 0; k < K; k++) ref += a[size_t(k)] * b[size_t(k)];
    for (int unroll : {4, 8})
      for (int want = 1; want <= 9; want++) {
        const GemmSplit sp = make_split(pieces, want, unroll);
        CHECK(sp.splits >= 1 && sp.splits <= want, "K %d want %d: %d splits", K, want, sp.splits);
        CHECK(sp.len % (4 * unroll) == 0, "K %d want %d: split of %d pieces is not whole warp steps", K, want, sp.len);
        CHECK(long(sp.splits) * sp.len >= pieces && long(sp.splits - 1) * sp.len < pieces,
              "K %d want %d: %d splits of %d pieces for %d pieces", K, want, sp.splits, sp.len, pieces);
        std::vector<int> reads;
        const double got = emulate(pieces, sp, unroll, reads, a, b);
        int wrong = 0;
        for (int r : reads) wrong += r != 1;
        CHECK(wrong == 0, "K %d unroll %d splits %d: %d pieces not read exactly once", K, unroll, sp.splits, wrong);
        CHECK(std::fabs(got - ref) <= 1e-9 * (1 + std::fabs(ref)), "K %d splits %d: sum %.12g vs %.12g", K, sp.splits,
              got, ref);
        cases++;
      }
  }

  // The choice, over launch shapes from 0.5B to 32B widths and slot counts of small and big GPUs.
  int choices = 0, split_taken = 0;
  for (int n_tiles : {1, 56, 112, 144, 224, 448, 576, 640, 1184, 2368, 9504})
    for (int pieces : {1, 112, 448, 608, 640, 2368, 3200})
      for (int slots : {1, 216, 264, 396, 528})
        for (int unroll : {4, 8})
          for (int tile_floats : {128, 256}) {
            const size_t ws = size_t(1) << 20;
            const int counters = 8192;
            const GemmSplit c = choose_split(n_tiles, pieces, unroll, slots, 0, 8, ws, counters, tile_floats);
            const GemmSplit one = make_split(pieces, 1, unroll);
            CHECK(c.splits >= 1 && c.splits <= 8, "%d splits", c.splits);
            CHECK(c.splits == 1 || size_t(n_tiles) * c.splits * tile_floats <= ws, "workspace overrun");
            CHECK(split_cost(n_tiles, c, unroll, slots) <= split_cost(n_tiles, one, unroll, slots),
                  "tiles %d pieces %d slots %d: chose %d splits rated dearer than none", n_tiles, pieces, slots,
                  c.splits);
            // Without room in the workspace there is no split, whatever is asked.
            const GemmSplit none = choose_split(n_tiles, pieces, unroll, slots, 4, 8, 0, counters, tile_floats);
            CHECK(none.splits == 1, "split without a workspace");
            const GemmSplit forced = choose_split(n_tiles, pieces, unroll, slots, 3, 8, ws, counters, tile_floats);
            CHECK(forced.splits == make_split(pieces, 3, unroll).splits ||
                      size_t(n_tiles) * make_split(pieces, 3, unroll).splits * tile_floats > ws,
                  "forced split not honoured");
            split_taken += c.splits > 1;
            choices++;
          }
  // Tiles per block on a 132-SM H200, for the benchmark shapes' launches that follow the rule
  // (all but gate/up, which always has two: gate and up) and for the edges of the rule.
  struct TileCase {
    const char* what;
    int rows, cols, sms, tiles;
  };
  const TileCase tile_cases[] = {
      {"Qwen2.5-0.5B lm_head (tied, K 896: one block step)", 151936, 896, 132, 1},
      {"Qwen2.5-0.5B qkv (144 tiles: under 2 a SM)", 1152, 896, 132, 1},
      {"Qwen2.5-0.5B down_proj", 896, 4864, 132, 1},
      {"Qwen2.5-7B qkv (288 two-tile blocks)", 4608, 3584, 132, 2},
      {"Qwen2.5-7B o_proj (224 two-tile blocks would idle SMs)", 3584, 3584, 132, 1},
      {"Qwen2.5-7B lm_head", 152064, 3584, 132, 2},
      {"Qwen3-8B qkv", 6144, 4096, 132, 2},
      {"K 1,024: still one step", 151936, 1024, 132, 1},
      {"K 1,032: two steps", 151936, 1032, 132, 2},
      {"exactly 2 blocks a SM", 16 * 264, 4096, 132, 2},
      {"one row of tiles short", 16 * 264 - 16, 4096, 132, 1},
  };
  for (const TileCase& t : tile_cases) {
    const int got = decode_tiles(t.rows, t.cols, t.sms);
    CHECK(got == t.tiles, "decode_tiles, %s: %d tiles, expected %d", t.what, got, t.tiles);
  }
  std::printf("  split ranges: %d cases; choices: %d, %d of them split; tile choices: %zu\n", cases, choices,
              split_taken, sizeof(tile_cases) / sizeof(tile_cases[0]));
  return test_summary("test_gemm_split");
}
