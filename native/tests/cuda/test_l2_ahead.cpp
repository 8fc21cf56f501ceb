// L2 ahead's spans (l2_ahead.h's first_wave_slices), checked without a GPU against the decode
// GEMM's own read order.
//
// The decode kernel's read order is emulated from warp_piece (gemm_split.h), as the kernel walks
// it: block b reads rows [b R, (b + 1) R), its warps walking K in steps. For shapes from tiny to
// the 7B matrices, with several budgets and slot counts: every asked byte lies in the matrix and
// is read by a block of the first wave (blockIdx < slots) within the steps the asked part of its
// row covers; the spans are 16-byte aligned, a row's first bytes or whole rows (at most a block's),
// at most the budget, and as large as the budget allows (one more step per row, or one more row,
// would not fit).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "../../src/cuda/gemm_split.h"
#include "../../src/cuda/l2_ahead.h"
#include "../testing.h"

using namespace hw::cuda;

namespace {

// The step in which the kernel's block reads piece p of each of its rows (K / 8 pieces, no split).
std::vector<int> step_of_piece(int pieces, int unroll) {
  std::vector<int> step_of(size_t(pieces), -1);
  for (int warp = 0; warp < kGemmWarps; warp++)
    for (int step = 0; warp_piece(0, warp, unroll, step, 0, 0) < pieces; step++)
      for (int u = 0; u < unroll; u++)
        for (int q = 0; q < 4; q++) {
          const int p = warp_piece(0, warp, unroll, step, u, q);
          if (p < pieces) step_of[size_t(p)] = step;
        }
  return step_of;
}

}  // namespace

int main() {
  int cases = 0, whole = 0;
  // The step size L2 ahead assumes is warp_piece's.
  for (int unroll : {4, 8}) {
    const std::vector<int> st = step_of_piece(2368, unroll);
    int wrong = 0;
    for (int p = 0; p < 2368; p++) wrong += st[size_t(p)] != p / decode_step_pieces(unroll);
    CHECK(wrong == 0, "unroll %d: %d pieces read outside step p / decode_step_pieces", unroll, wrong);
  }
  const uint32_t step_bytes = decode_step_pieces(4) * 16;
  const std::vector<int> st = step_of_piece(18944 / 8, 4);
  alignas(16) static const char matrix_base[16] = {};
  struct Shape {
    int rows, K;
  };
  // Rows x K: tiny, 0.5B qkv / o / gate-up, 7B qkv / o / gate-up / down, a lm_head.
  const Shape shapes[] = {{8, 8},       {37, 40},     {40, 136},     {1152, 896},   {896, 896},    {9728, 896},
                          {4608, 3584}, {3584, 3584}, {37888, 3584}, {3584, 18944}, {152064, 3584}};
  for (const Shape& sh : shapes)
    for (int rpb : {8, 16})
      for (long slots : {1L, 264L, 396L, 528L})
        for (size_t budget : {size_t(0), size_t(16), size_t(2048), size_t(1) << 20, size_t(12) << 20, size_t(32) << 20,
                              size_t(1) << 40}) {
          const uint32_t row_bytes = uint32_t(sh.K) * 2;
          const L2Ahead a = first_wave_slices(matrix_base, sh.rows, row_bytes, rpb, slots, step_bytes, budget);
          cases++;
          const long wave_rows = std::min<long>(sh.rows, rpb * slots);
          const uint32_t one_step = std::min(step_bytes, row_bytes);
          if (budget < one_step) {
            CHECK(a.count == 0, "rows %d K %d budget %zu: %d spans below one step", sh.rows, sh.K, budget, a.count);
            continue;
          }
          CHECK(a.base == matrix_base && a.count > 0, "rows %d K %d budget %zu: nothing asked", sh.rows, sh.K, budget);
          if (a.count <= 0) continue;
          // Either span i is row i's first `span` bytes (stride = the row), or the spans are whole
          // rows, at most a block's, back to back.
          const bool grouped = a.stride != row_bytes;
          CHECK(a.span % 16 == 0 && a.stride % 16 == 0 && a.span <= a.stride, "span %u stride %u", a.span, a.stride);
          CHECK(!grouped || (a.span == a.stride && a.span % row_bytes == 0 && a.span / row_bytes <= uint32_t(rpb)),
                "span %u stride %u row %u: neither a row's first bytes nor whole rows", a.span, a.stride, row_bytes);
          CHECK(size_t(a.span) * a.count <= budget, "rows %d K %d: %u x %d bytes over the budget %zu", sh.rows, sh.K,
                a.span, a.count, budget);
          const uint32_t row_part = std::min(a.span, row_bytes);  // bytes asked of each row
          const long rows_asked = grouped ? long(a.count) * (a.span / row_bytes) : a.count;
          // The rows asked are read by the first wave, and every piece asked within the steps
          // the asked part covers.
          CHECK(rows_asked <= sh.rows && (rows_asked - 1) / rpb < slots,
                "rows %d: %ld rows asked, not all read by the first wave", sh.rows, rows_asked);
          const int part_pieces = int(row_part / 16), part_steps = int((row_part + step_bytes - 1) / step_bytes);
          int late = 0;
          for (int p = 0; p < part_pieces; p++) late += st[size_t(p)] >= part_steps;
          CHECK(late == 0, "K %d: %d pieces asked are read after the %d steps", sh.K, late, part_steps);
          CHECK(row_part % step_bytes == 0 || row_part == row_bytes, "%u bytes a row: neither whole steps nor the row",
                row_part);
          // As much as the budget allows: all first-wave rows with one more step not fitting (or
          // whole rows), or one step of as many rows as fit.
          if (rows_asked == wave_rows) {
            CHECK(row_part == row_bytes || size_t(row_part + step_bytes) * rows_asked > budget,
                  "rows %d K %d budget %zu: %u bytes a row, one more step fits", sh.rows, sh.K, budget, row_part);
            whole += row_part == row_bytes;
          } else {
            CHECK(rows_asked < wave_rows && row_part == one_step && size_t(rows_asked + 1) * row_part > budget,
                  "rows %d K %d budget %zu: %ld rows of %u bytes, not as many as fit", sh.rows, sh.K, budget,
                  rows_asked, row_part);
          }
        }
  // Null base, no rows: nothing.
  CHECK(first_wave_slices(nullptr, 10, 32, 8, 4, step_bytes, 1 << 20).count == 0, "null base");
  CHECK(first_wave_slices(matrix_base, 0, 32, 8, 4, step_bytes, 1 << 20).count == 0, "no rows");
  // The 7B shapes the decode step asks for (132 SMs): o_proj whole in 32 MB, a step of the
  // gate/up's first wave (396 two-tile blocks) and of every qkv row in 12 MB.
  const L2Ahead o = first_wave_slices(matrix_base, 3584, 7168, 8, 4 * 132, step_bytes, size_t(32) << 20);
  CHECK(o.count == 448 && o.span == 8 * 7168 && o.stride == o.span, "7B o_proj: %d x %u", o.count, o.span);
  const L2Ahead gu = first_wave_slices(matrix_base, 37888, 7168, 16, 3 * 132, step_bytes, size_t(12) << 20);
  CHECK(gu.count == 6144 && gu.span == 2048, "7B gate/up: %d x %u", gu.count, gu.span);
  const L2Ahead qkv = first_wave_slices(matrix_base, 4608, 7168, 16, 3 * 132, step_bytes, size_t(12) << 20);
  CHECK(qkv.count == 4608 && qkv.span == 2048, "7B qkv: %d x %u", qkv.count, qkv.span);
  std::printf("  %d cases (%d whole first waves); 7B: o_proj %d x %u B, gate/up %d x %u B, qkv %d x %u B\n", cases,
              whole, o.count, o.span, gu.count, gu.span, qkv.count, qkv.span);
  return test_summary("test_l2_ahead");
}
