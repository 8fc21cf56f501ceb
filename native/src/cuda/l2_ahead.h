// L2 ahead (HW_L2_AHEAD, off by default): a latency-bound kernel of the decode step asks the L2
// to fetch weight bytes that the GEMM after it reads first, so that HBM, idle while that kernel
// runs, streams them then and the GEMM finds them in L2.
//
// Why it can win where HW_GEMM_EARLY lost (H200, 2026-12-03 01:06 UTC: 0.5B 1.146 vs 1.003 ms a
// step, 7B 5.335 vs 4.871): there the GEMM's own blocks asked for their first pieces before their
// PDL wait, i.e. while the kernel before them still ran, which is mostly another bandwidth-bound
// GEMM (nothing idle to fill; the extra requests only queued behind its loads), with one 16-byte
// prefetch.global.L2 per lane and piece (four lanes per 64 bytes: several hundred thousand L2
// requests a GEMM issued by the LSUs). Here the asks are issued by the attention and rmsnorm
// kernels after their own wait (the GEMM before them has finished, so HBM is idle), each one
// instruction for kilobytes (cp.async.bulk.prefetch.L2, sm_90: the TMA unit generates the line
// requests), spread over all CTAs, and sized to what the window and the L2 (50 MB) hold.
//
// What is asked: the bytes that the GEMM's first wave of blocks reads in its first steps
// (gemm.cu's decode kernel: block b reads rows [b R, (b + 1) R) of W, all its warps walking K
// together, step s covering bytes [s S, (s + 1) S) of every row, S = 2 KB with 4 chunks in
// flight), so they are used within microseconds of the GEMM's start, before the rest of the
// first wave's stream can evict them. A whole matrix (7B o_proj, 25.7 MB, one wave) is taken
// when it fits the budget.
#pragma once
#include <cstddef>
#include <cstdint>

namespace hw::cuda {

// `count` spans of `span` bytes, the i-th at base + i * stride (base 16-byte aligned, span and
// stride multiples of 16; span <= stride). count 0 (or base null): nothing to ask.
struct L2Ahead {
  const void* base = nullptr;
  uint32_t span = 0;
  uint32_t stride = 0;
  int count = 0;
};

// What the GEMM's first wave reads first, within `budget` bytes: whole steps of `step_bytes`
// per row (at least one; whole rows when the budget holds them) of the first rows it reads,
// rows_per_block rows a block and `slots` blocks resident at once (a lower bound is safe: what
// is asked is then surely read in the first wave). row_bytes and step_bytes multiples of 16.
// Whole rows are contiguous: asked a group of up to rows_per_block rows at a time (fewer, larger
// asks: each one instruction, whatever its size).
inline L2Ahead first_wave_slices(const void* base, int rows, uint32_t row_bytes, int rows_per_block, long slots,
                                 uint32_t step_bytes, size_t budget) {
  L2Ahead a;
  if (!base || rows <= 0 || row_bytes == 0 || step_bytes == 0 || rows_per_block <= 0 || slots <= 0) return a;
  long wave_rows = long(rows_per_block) * slots;
  if (wave_rows > rows) wave_rows = rows;
  const size_t steps = budget / (size_t(wave_rows) * step_bytes);  // per row
  uint32_t span;
  long count;
  if (steps == 0) {  // not one step of every first-wave row: one step of the first rows
    span = step_bytes < row_bytes ? step_bytes : row_bytes;
    count = long(budget / span);
    if (count > wave_rows) count = wave_rows;
  } else {
    span = steps * step_bytes < row_bytes ? uint32_t(steps * step_bytes) : row_bytes;
    count = wave_rows;
  }
  if (count <= 0) return a;
  uint32_t stride = row_bytes;
  if (span == row_bytes) {
    int group = rows_per_block;
    while (count % group != 0) group--;
    span = stride = uint32_t(group) * row_bytes;
    count /= group;
  }
  a.base = base;
  a.span = span;
  a.stride = stride;
  a.count = int(count);
  return a;
}

// Which kernels ask (HW_L2_AHEAD, a sum of these bits, read once; 0 = none, the default):
// 1 the attention (its chunk kernel, after its wait) for the o_proj; 2 the rmsnorm after the
// o_proj for the gate/up GEMM; 4 the rmsnorms before the qkv GEMMs (the previous layer's down_proj's
// follow-up, and layer 0's) and the final norm for the lm_head.
constexpr int kL2AheadAttention = 1, kL2AheadMlpNorm = 2, kL2AheadInputNorm = 4;
int l2_ahead_mask();
// Bytes the attention may ask (HW_L2_AHEAD_MB, default 32: the whole 7B o_proj), and each rmsnorm
// (HW_L2_AHEAD_NORM_MB, default 12: about what HBM moves in a 3 us norm), read once.
size_t l2_ahead_attention_budget();
size_t l2_ahead_norm_budget();

}  // namespace hw::cuda
