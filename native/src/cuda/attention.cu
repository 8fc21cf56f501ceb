// The Hogwild attention kernels (method in attention.h) and their launcher.
//
// attn_chunk_kernel: one CTA per (q-tile, chunk of tiles, KV head). Warp group g (4 warps) owns
// query rows [32g, 32g + 32) of the q-tile as two 16-row m-tiles; warp k of a group takes keys
// [16k, 16k + 16) of each 64-key tile, so a K/V tile in shared memory (cp.async; 3 stages for one
// group, two CTAs per SM on sm_90; 4 for two groups) is read once from memory for every row. Each
// warp keeps an online softmax (base 2) per row; at the end the 4 warps of a group merge and write
// one (m, l, o) partial per row and chunk. The chunk kernels' 32-byte stack frame (and LDL/STL in
// the SASS) is sincosf's slow path for |angle| > 105615, never taken at positions below that.
// attn_merge_kernel: one warp per (token, head) merges the chunks' partials by log-sum-exp,
// writes the output, and adds the last token's per-segment shares. With one chunk and no shares
// the chunk kernel writes the output itself and the merge kernel is not launched.
// attn_short_kernel (attention_short.cuh, HW_ATTN_SHORT, sm_90): short decode problems in one
// launch, one thread-block cluster per KV head merging its CTAs through distributed shared memory.
// attn_wg_kernel (attention_wgmma.cuh; the default on compute capability 9.0 with sm_90a code,
// HW_ATTN_WG=0: off): the chunk kernel's work on the warpgroup MMA, one warpgroup per 64-row
// q-tile, the same plan, partials and merge kernel.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>

#include "../error.h"
#include "attention.h"
#include "attention_work.h"
#include "cuda_check.h"
#include "attention_device.cuh"
#include "attention_short.cuh"
#include "attention_wgmma.cuh"
#include "launch.cuh"

namespace hw {
namespace cuda {
namespace {

using namespace attn_dev;

__host__ __device__ constexpr size_t cmax(size_t a, size_t b) {
  return a > b ? a : b;
}

// STAGES K/V tiles in shared memory. A tile row is stored unpadded, its 16-byte chunks permuted
// (chunk ^ (key & 7)) so that the 8 rows an ldmatrix reads fall in 8 different bank groups:
// without padding, 3 stages (96 KB) and the rest of a 1-group CTA fit twice in an sm_90 SM's
// 228 KB, so two CTAs (8 warps, 6 tiles in flight) share each SM.
template <int HD, int STAGES>
struct Smem {
  static constexpr int kStride = HD + 8;  // bf16 elements per q_s row: +16 B breaks ldmatrix bank conflicts
  static constexpr int kTileElems = kAttnTileKeys * HD;
  // The K/V stages; after the loop the same bytes hold the warps' partials for the merge.
  __host__ __device__ static constexpr size_t big(int groups) {
    return cmax(size_t(STAGES) * 2 * kTileElems * 2,
                size_t(groups) * 3 * kMT * (HD / 8) * 4 * 32 * 4 + size_t(groups) * 3 * kMT * 2 * 32 * 2 * 4);
  }
  __host__ __device__ static constexpr size_t bytes(int groups) {
    return big(groups) + size_t(groups) * 32 * kStride * 2 /* q */ + size_t(groups) * 32 * 4 /* limits */ +
           size_t(groups) * 32 * 4 /* rotation distances */ + size_t(groups) * 4 * 32 * 8 /* piece masses */ +
           size_t(groups) * 32 * 16 /* row info */ + size_t(kAttnMaxChunkTiles) * sizeof(TileEntry);
  }
  // The small tail (small_tail below): all 4 warps of a group park o (and one (m, l) per row), in the
  // K/V stages and the q rows after them (both free after the loop). Fits every 1-group CTA and the
  // 4-stage 2-group ones; not the 3-stage 2-group ones (their CTAs keep the old tail).
  __host__ __device__ static constexpr size_t small_tail_bytes(int groups) {
    return size_t(groups) * 4 * kMT * (HD / 8) * 4 * 32 * 4 + size_t(groups) * 4 * 32 * 8;
  }
  __host__ __device__ static constexpr bool small_tail_fits(int groups) {
    return small_tail_bytes(groups) <= big(groups) + size_t(groups) * 32 * kStride * 2;
  }
};

// The chunk kernel's tail by default (HW_ATTN_SMALL_TAIL=0: the old one): merges the 4 warps of
// each group into one (m, l, o) per row and writes it (the partial, or the output itself with one
// chunk). All 4 warps park (m, l, o) in shared memory; then warp kw finishes rows (m-tile kw / 2,
// half kw % 2) of its group in a rolled loop over the n-tiles: one small body (the old tail's warp 0
// runs ~1,200 unrolled instructions alone, fetched cold at every CTA: 20% of a 1k decode CTA on the
// H200). The same sums in the same order as the old tail (warps 0, 1, 2, 3; the same exp2f
// factors), so the same bytes out. `m`, `l`: the warp's per-row running max and sum (l already
// summed over the 4 lanes of a row); `merge_s`: the K/V stages and the q rows, free now
// (Smem::small_tail_fits).
template <int HD, int GROUPS, int STAGES>
__device__ __forceinline__ void small_tail(const ChunkArgs& a, float* merge_s, const float (&o)[kMT][HD / 8][4],
                                           const float (&m)[kMT][2], const float (&l)[kMT][2], const bool (&mt_on)[kMT],
                                           int row0, int cta_rows, int chunk, int kvh) {
  static_assert(Smem<HD, STAGES>::small_tail_fits(GROUPS), "HW_ATTN_SMALL_TAIL's parked partials do not fit");
  constexpr int kNT = HD / 8;
  constexpr int kWarp = kMT * kNT * 2 * 32;  // float2s a warp parks
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int gi = warp >> 2, kw = warp & 3;
  const int g = lane >> 2, c = lane & 3;
  float2* so = reinterpret_cast<float2*>(merge_s);  // [group warp][mt][nt][h][lane]: o[mt][nt][2h, 2h + 1]
  float2* sml = so + GROUPS * 4 * kWarp;            // [group warp][row of the group]: (m, l)
  {
    float2* dst = so + (gi * 4 + kw) * kWarp + lane;
#pragma unroll
    for (int mt = 0; mt < kMT; mt++) {
      if (!mt_on[mt]) continue;  // its rows are past cta_rows: nobody reads them
#pragma unroll
      for (int nt = 0; nt < kNT; nt++)
#pragma unroll
        for (int h = 0; h < 2; h++)
          dst[((mt * kNT + nt) * 2 + h) * 32] = make_float2(o[mt][nt][2 * h], o[mt][nt][2 * h + 1]);
#pragma unroll
      for (int h = 0; h < 2; h++)
        if (c == 0) sml[(gi * 4 + kw) * 32 + mt * 16 + h * 8 + g] = make_float2(m[mt][h], l[mt][h]);
    }
  }
  __syncthreads();
  const int mt = kw >> 1, h = kw & 1;
  const int r = mt * 16 + h * 8 + g;  // row within the group
  if (gi * 32 + r >= cta_rows) return;
  float2 ml[4];
#pragma unroll
  for (int w = 0; w < 4; w++) ml[w] = sml[(gi * 4 + w) * 32 + r];
  float mx = ml[0].x;
#pragma unroll
  for (int w = 1; w < 4; w++) mx = fmaxf(mx, ml[w].x);
  const float ref = mx == -INFINITY ? 0.f : mx;
  float f[4];
  f[0] = exp2f(ml[0].x - ref);
  float lsum = ml[0].y * f[0];
#pragma unroll
  for (int w = 1; w < 4; w++) {
    f[w] = exp2f(ml[w].x - ref);
    lsum += ml[w].y * f[w];
  }
  const float2* src = so + ((gi * 4 * kMT + mt) * kNT * 2 + h) * 32 + lane;  // warp 0's n-tile 0
  // Where the row goes: the partial ([chunk][kv head][row]) or, with one chunk, the output row
  // normalised as the merge kernel would (1 / l, zeros for l = 0).
  const bool part = a.direct_out == nullptr;
  const size_t prow = (size_t(chunk) * a.kv_heads + kvh) * a.rows_padded + row0 + gi * 32 + r;
  size_t dst = prow * HD + 2 * c;
  float inv = 1.f;
  if (part) {
    if (c == 0) a.part_ml[prow] = make_float2(mx, lsum);
  } else {
    const int qrow = row0 + gi * 32 + r;
    dst = (size_t(qrow / a.group) * a.heads + kvh * a.group + qrow % a.group) * HD + 2 * c;
    inv = lsum > 0.f ? 1.f / lsum : 0.f;
  }
  constexpr int kStep = 2;  // n-tiles an iteration: their 8 loads in flight together
#pragma unroll 1
  for (int nt0 = 0; nt0 < kNT; nt0 += kStep) {
    float2 x[kStep][4];
#pragma unroll
    for (int j = 0; j < kStep; j++)
#pragma unroll
      for (int w = 0; w < 4; w++) x[j][w] = src[w * kWarp + (nt0 + j) * 64];
#pragma unroll
    for (int j = 0; j < kStep; j++) {
      float v0 = x[j][0].x * f[0], v1 = x[j][0].y * f[0];
#pragma unroll
      for (int w = 1; w < 4; w++) {
        v0 += x[j][w].x * f[w];
        v1 += x[j][w].y * f[w];
      }
      const size_t at = dst + (nt0 + j) * 8;
      if (part)
        *reinterpret_cast<float2*>(a.part_o + at) = make_float2(v0, v1);
      else if (a.out_bf16)
        *reinterpret_cast<__nv_bfloat162*>(static_cast<__nv_bfloat16*>(a.direct_out) + at) =
            __floats2bfloat162_rn(v0 * inv, v1 * inv);
      else
        *reinterpret_cast<float2*>(static_cast<float*>(a.direct_out) + at) = make_float2(v0 * inv, v1 * inv);
    }
  }
}

// ROT_TOKEN (HW_ATTN_ROT_TOKEN=1, 1-group kernels only): the query rotation per (token, pair);
// SMALL_TAIL (the default where Smem::small_tail_fits; HW_ATTN_SMALL_TAIL=0 turns it off): the 4
// warps' merge as one rolled loop run by all of them, and no o rescale at the first tile. Template
// parameters, so that the kernels without them keep their code as it was.
template <int HD, int GROUPS, int STAGES, bool ROT_TOKEN = false, bool SMALL_TAIL = false>
__global__ void __launch_bounds__(128 * GROUPS, 1) attn_chunk_kernel(ChunkArgs a) {
  constexpr int kRows = 32 * GROUPS;
  constexpr int kStride = Smem<HD, STAGES>::kStride;
  constexpr int kNT = HD / 8;  // 8-wide n-tiles of the output
  extern __shared__ __align__(16) unsigned char smem[];
  __nv_bfloat16* kv_s = reinterpret_cast<__nv_bfloat16*>(smem);
  float* merge_s = reinterpret_cast<float*>(smem);  // aliases the K/V stages after the loop
  constexpr size_t big = Smem<HD, STAGES>::big(GROUPS);
  __nv_bfloat16* q_s = reinterpret_cast<__nv_bfloat16*>(smem + big);
  int* lim_s = reinterpret_cast<int*>(q_s + kRows * kStride);
  int* dlt_s = lim_s + kRows;  // per CTA row: p - offset for the current block
  float2* pm_s = reinterpret_cast<float2*>(dlt_s + kRows);
  int4* row_s = reinterpret_cast<int4*>(pm_s + GROUPS * 4 * 32);  // per CTA row: token, head, batch row, position
  TileEntry* tab = reinterpret_cast<TileEntry*>(row_s + kRows);

  const PlanPtrs& pl = a.plan;
  // q-tiles fastest: the CTAs that read the same K/V tiles (one per q-tile) start side by side,
  // so all but the first find them in L2 (W >= 16 decode, prefill).
  const int qt = blockIdx.x, chunk = blockIdx.y, kvh = blockIdx.z;
  const int n_tokens = pl.base[pl.l.hdr + kHdrTokens];
  const int n_rows = pl.base[pl.l.hdr + kHdrRows];
  const int n_blocks = pl.base[pl.l.hdr + kHdrBlocks];
  const int rows_q = n_tokens * a.group;
  const int row0 = qt * kRows;  // first query row of this CTA
  const int cta_rows = min(kRows, rows_q - row0);

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int gi = warp >> 2, kw = warp & 3;
  const int g = lane >> 2, c = lane & 3;
  bool mt_on[kMT];
#pragma unroll
  for (int mt = 0; mt < kMT; mt++) mt_on[mt] = gi * 32 + mt * 16 < cta_rows;

  float o[kMT][kNT][4];
  float m[kMT][2], l[kMT][2], lp[kMT][2];
  int lim[kMT][2];
#pragma unroll
  for (int mt = 0; mt < kMT; mt++) {
#pragma unroll
    for (int nt = 0; nt < kNT; nt++) o[mt][nt][0] = o[mt][nt][1] = o[mt][nt][2] = o[mt][nt][3] = 0.f;
#pragma unroll
    for (int h = 0; h < 2; h++) m[mt][h] = -INFINITY, l[mt][h] = 0.f, lp[mt][h] = 0.f, lim[mt][h] = 0;
  }

  // Flushes the mass each row put on the current piece (for the shares): merge the group's 4 warps.
  auto flush_piece = [&](int piece) {
#pragma unroll
    for (int mt = 0; mt < kMT; mt++)
#pragma unroll
      for (int h = 0; h < 2; h++) {
        float s = lp[mt][h];
        s += __shfl_xor_sync(0xffffffffu, s, 1);
        s += __shfl_xor_sync(0xffffffffu, s, 2);
        if (c == 0) pm_s[(gi * 4 + kw) * 32 + mt * 16 + h * 8 + g] = make_float2(m[mt][h], s);
        lp[mt][h] = 0.f;
      }
    __syncthreads();
    if (int(threadIdx.x) < cta_rows) {
      const int i = threadIdx.x, gg = i / 32, r = i % 32;
      float mx = -INFINITY;
      for (int w = 0; w < 4; w++) mx = fmaxf(mx, pm_s[(gg * 4 + w) * 32 + r].x);
      float d = 0.f;
      if (mx != -INFINITY)
        for (int w = 0; w < 4; w++) {
          const float2 v = pm_s[(gg * 4 + w) * 32 + r];
          if (v.y > 0.f) d += v.y * exp2f(v.x - mx);
        }
      a.piece_ml[(size_t(piece) * a.kv_heads + kvh) * a.rows_padded + row0 + i] = make_float2(mx, d);
    }
    __syncthreads();
  };

  // Rotates the CTA's query rows for block u (by p - offset) into q_s, with their key limits.
  // Rows past cta_rows stay as zeroed at the start (limit 0: every key masked).
  auto rotate_queries = [&](int u) {
    view_lookups(pl, u, n_rows, cta_rows, row_s, lim_s, dlt_s);
    auto store = [&](int i, int pr, float x0, float x1) {
      q_s[i * kStride + pr] = __float2bfloat16_rn(x0);
      q_s[i * kStride + pr + HD / 2] = __float2bfloat16_rn(x1);
    };
    // HW_ATTN_ROT_TOKEN=1: one sincosf per (token, pair), the same angle and products.
    if constexpr (ROT_TOKEN)
      rotate_by_token<HD>(a, row0, cta_rows, blockDim.x, row_s, lim_s, dlt_s, store);
    else
      rotate_by_row<HD>(a, cta_rows, blockDim.x, row_s, lim_s, dlt_s, store);
    __syncthreads();
#pragma unroll
    for (int mt = 0; mt < kMT; mt++)
#pragma unroll
      for (int h = 0; h < 2; h++) lim[mt][h] = lim_s[gi * 32 + mt * 16 + h * 8 + g];
  };

  // The chunk's tiles, resolved once: visibility for this q-tile and the K address in each page.
  const int tile0 = pl.base[pl.l.chunk_tile + chunk];
  const int n_tiles = pl.base[pl.l.chunk_tile + chunk + 1] - tile0;
  {
    load_cta_tables<HD>(a, qt, kvh, n_blocks, tile0, n_tiles, kRows, row0, cta_rows, tab, row_s, lim_s);
    // 16 bytes a thread over all threads: one thread per row zeroing HD elements one by one kept
    // warp 0 (which holds every padding row of a decode q-tile) ~HD iterations behind the others.
    for (int idx = threadIdx.x; idx < (kRows - cta_rows) * (HD / 8); idx += blockDim.x)
      *reinterpret_cast<uint4*>(q_s + (cta_rows + idx / (HD / 8)) * kStride + (idx % (HD / 8)) * 8) =
          make_uint4(0u, 0u, 0u, 0u);
    __syncthreads();
  }
  auto visible_from = [&](int k) {
    while (k < n_tiles && tab[k].n == 0) k++;
    return k;
  };
  // Everything above read only the plan and the page table, which no kernel of a step writes (they
  // are copied in before its first kernel): with PDL that part overlaps the previous kernel's tail.
  // The queries and this layer's new K/V come from the previous kernels: wait for them here.
  pdl_begin();
  int prod = visible_from(0), cons = prod;
#pragma unroll
  for (int s = 0; s < STAGES - 1; s++) {
    if (prod < n_tiles) {
      load_tile<HD, STAGES, 128 * GROUPS>(a, tab[prod], kv_s + (2 * s) * Smem<HD, STAGES>::kTileElems,
                                          kv_s + (2 * s + 1) * Smem<HD, STAGES>::kTileElems);
      prod = visible_from(prod + 1);
    }
    cp_async_commit();
  }

  int cur_piece = -1;
  for (int k = 0; cons < n_tiles; k++) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();
    {
      const int s = (k + STAGES - 1) % STAGES;
      if (prod < n_tiles) {
        load_tile<HD, STAGES, 128 * GROUPS>(a, tab[prod], kv_s + (2 * s) * Smem<HD, STAGES>::kTileElems,
                                            kv_s + (2 * s + 1) * Smem<HD, STAGES>::kTileElems);
        prod = visible_from(prod + 1);
      }
      cp_async_commit();
    }
    const TileEntry& cur = tab[cons];
    if (cur.piece != cur_piece) {
      if (a.shares && cur_piece >= 0) flush_piece(cur_piece);
      cur_piece = cur.piece;
      rotate_queries(cur.block);
    }
    const int stage = k % STAGES;
    const __nv_bfloat16* ks = kv_s + (2 * stage) * Smem<HD, STAGES>::kTileElems;
    const __nv_bfloat16* vs = kv_s + (2 * stage + 1) * Smem<HD, STAGES>::kTileElems;
    const int key0 = cur.key0 + kw * 16;  // block-local index of this warp's first key

    // S = Q K^T for this warp's 16 keys.
    float sc[kMT][2][4];
#pragma unroll
    for (int mt = 0; mt < kMT; mt++)
#pragma unroll
      for (int nt = 0; nt < 2; nt++) sc[mt][nt][0] = sc[mt][nt][1] = sc[mt][nt][2] = sc[mt][nt][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++) {
      unsigned kb[4];
      ldmatrix_x4(kb, ks + kv_swz<HD>(kw * 16 + (lane >> 4) * 8 + (lane & 7), kk * 2 + ((lane >> 3) & 1)));
#pragma unroll
      for (int mt = 0; mt < kMT; mt++) {
        if (!mt_on[mt]) continue;
        unsigned qa[4];
        ldmatrix_x4(qa, q_s + (gi * 32 + mt * 16 + (lane & 15)) * kStride + kk * 16 + (lane >> 4) * 8);
        mma_bf16(sc[mt][0], qa, kb[0], kb[1]);
        mma_bf16(sc[mt][1], qa, kb[2], kb[3]);
      }
    }

    // Online softmax (base 2), causal / visibility mask per row.
    unsigned pa[kMT][4];
#pragma unroll
    for (int mt = 0; mt < kMT; mt++) {
      if (!mt_on[mt]) continue;
#pragma unroll
      for (int h = 0; h < 2; h++) {
        float mx = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < 2; nt++)
#pragma unroll
          for (int e = 0; e < 2; e++) {
            const int j = key0 + nt * 8 + 2 * c + e;
            float& v = sc[mt][nt][h * 2 + e];
            v = j < lim[mt][h] ? v * a.scale_log2 : -INFINITY;
            mx = fmaxf(mx, v);
          }
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(m[mt][h], mx);
        const float ref = m_new == -INFINITY ? 0.f : m_new;
        const float alpha = exp2f(m[mt][h] - ref);
        m[mt][h] = m_new;
        float sum = 0.f;
#pragma unroll
        for (int nt = 0; nt < 2; nt++)
#pragma unroll
          for (int e = 0; e < 2; e++) {
            float& v = sc[mt][nt][h * 2 + e];
            v = exp2f(v - ref);
            sum += v;
          }
        l[mt][h] = l[mt][h] * alpha + sum;
        lp[mt][h] = lp[mt][h] * alpha + sum;
        // The running max rarely moves after the first tiles. SMALL_TAIL: nor is o rescaled at the
        // first tile, where it is still 0 (alpha is 0 there: m was -inf).
        if ((!SMALL_TAIL || k > 0) && alpha != 1.f) {
#pragma unroll
          for (int nt = 0; nt < kNT; nt++) o[mt][nt][h * 2] *= alpha, o[mt][nt][h * 2 + 1] *= alpha;
        }
      }
      // The S accumulator layout of two 8-key n-tiles is the A layout of one 16-key k-step.
      pa[mt][0] = pack_bf16(sc[mt][0][0], sc[mt][0][1]);
      pa[mt][1] = pack_bf16(sc[mt][0][2], sc[mt][0][3]);
      pa[mt][2] = pack_bf16(sc[mt][1][0], sc[mt][1][1]);
      pa[mt][3] = pack_bf16(sc[mt][1][2], sc[mt][1][3]);
    }

    // O += P V over the same 16 keys.
#pragma unroll
    for (int dp = 0; dp < HD / 16; dp++) {
      unsigned vb[4];
      ldmatrix_x4_trans(vb, vs + kv_swz<HD>(kw * 16 + (lane & 15), dp * 2 + (lane >> 4)));
#pragma unroll
      for (int mt = 0; mt < kMT; mt++) {
        if (!mt_on[mt]) continue;
        mma_bf16(o[mt][2 * dp], pa[mt], vb[0], vb[1]);
        mma_bf16(o[mt][2 * dp + 1], pa[mt], vb[2], vb[3]);
      }
    }
    cons = visible_from(cons + 1);
  }
  cp_async_wait<0>();
  __syncthreads();
  if (a.shares && cur_piece >= 0) flush_piece(cur_piece);

    // Merge the 4 warps of each group: warps 1..3 park (m, l, o) in shared memory, warp 0 combines.
#pragma unroll
  for (int mt = 0; mt < kMT; mt++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      l[mt][h] += __shfl_xor_sync(0xffffffffu, l[mt][h], 1);
      l[mt][h] += __shfl_xor_sync(0xffffffffu, l[mt][h], 2);
    }
  if constexpr (SMALL_TAIL) {
    small_tail<HD, GROUPS, STAGES>(a, merge_s, o, m, l, mt_on, row0, cta_rows, chunk, kvh);
    return;
  }
  float* mo = merge_s;
  float* mml = merge_s + GROUPS * 3 * kMT * kNT * 4 * 32;
  if (kw > 0) {
    const int w3 = gi * 3 + (kw - 1);
#pragma unroll
    for (int mt = 0; mt < kMT; mt++) {
#pragma unroll
      for (int nt = 0; nt < kNT; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) mo[(((w3 * kMT + mt) * kNT + nt) * 4 + e) * 32 + lane] = o[mt][nt][e];
#pragma unroll
      for (int h = 0; h < 2; h++) {
        mml[(((w3 * kMT + mt) * 2 + h) * 2 + 0) * 32 + lane] = m[mt][h];
        mml[(((w3 * kMT + mt) * 2 + h) * 2 + 1) * 32 + lane] = l[mt][h];
      }
    }
  }
  __syncthreads();
  if (kw != 0) return;
  const size_t part_base = (size_t(chunk) * a.kv_heads + kvh) * a.rows_padded + row0 + gi * 32;
#pragma unroll
  for (int mt = 0; mt < kMT; mt++) {
    if (gi * 32 + mt * 16 >= cta_rows) continue;
#pragma unroll
    for (int h = 0; h < 2; h++) {
      float mx = m[mt][h];
#pragma unroll
      for (int w = 0; w < 3; w++) mx = fmaxf(mx, mml[((((gi * 3 + w) * kMT + mt) * 2 + h) * 2) * 32 + lane]);
      const float ref = mx == -INFINITY ? 0.f : mx;
      float f[4];
      f[0] = exp2f(m[mt][h] - ref);
      float lsum = l[mt][h] * f[0];
#pragma unroll
      for (int w = 0; w < 3; w++) {
        const int b = (((gi * 3 + w) * kMT + mt) * 2 + h) * 2;
        f[w + 1] = exp2f(mml[b * 32 + lane] - ref);
        lsum += mml[(b + 1) * 32 + lane] * f[w + 1];
      }
      const int r = mt * 16 + h * 8 + g;  // row within the group
      if (gi * 32 + r >= cta_rows) continue;
      if (a.direct_out) {  // the only chunk: normalise as the merge kernel would (1 / l, zeros for l = 0)
        const int qrow = row0 + gi * 32 + r;
        const int t = qrow / a.group, head = kvh * a.group + qrow % a.group;
        const float inv = lsum > 0.f ? 1.f / lsum : 0.f;
        const size_t ob = (size_t(t) * a.heads + head) * HD + 2 * c;
#pragma unroll
        for (int nt = 0; nt < kNT; nt++) {
          float v0 = o[mt][nt][h * 2] * f[0], v1 = o[mt][nt][h * 2 + 1] * f[0];
#pragma unroll
          for (int w = 0; w < 3; w++) {
            const int b = ((((gi * 3 + w) * kMT + mt) * kNT + nt) * 4 + h * 2) * 32 + lane;
            v0 += mo[b] * f[w + 1];
            v1 += mo[b + 32] * f[w + 1];
          }
          if (a.out_bf16)
            *reinterpret_cast<__nv_bfloat162*>(static_cast<__nv_bfloat16*>(a.direct_out) + ob + nt * 8) =
                __floats2bfloat162_rn(v0 * inv, v1 * inv);
          else
            *reinterpret_cast<float2*>(static_cast<float*>(a.direct_out) + ob + nt * 8) =
                make_float2(v0 * inv, v1 * inv);
        }
        continue;
      }
      float* dst = a.part_o + (part_base + r) * HD;
#pragma unroll
      for (int nt = 0; nt < kNT; nt++) {
        float v0 = o[mt][nt][h * 2] * f[0], v1 = o[mt][nt][h * 2 + 1] * f[0];
#pragma unroll
        for (int w = 0; w < 3; w++) {
          const int b = ((((gi * 3 + w) * kMT + mt) * kNT + nt) * 4 + h * 2) * 32 + lane;
          v0 += mo[b] * f[w + 1];
          v1 += mo[b + 32] * f[w + 1];
        }
        *reinterpret_cast<float2*>(dst + nt * 8 + 2 * c) = make_float2(v0, v1);
      }
      if (c == 0) a.part_ml[part_base + r] = make_float2(mx, lsum);
    }
  }
}

struct MergeArgs {
  PlanPtrs plan;
  int heads, kv_heads, group, rows_padded, chunks;
  const float* part_o;
  const float2* part_ml;
  const float2* piece_ml;
  void* out;
  int out_bf16;
  float* shares;  // nullptr: none
  int one_pass;   // HW_ATTN_MERGE1=1: up to 32 chunks, the maxima read with the first batch
};

template <int HD>
__global__ void __launch_bounds__(128) attn_merge_kernel(MergeArgs a) {
  constexpr int kPer = HD / 32;  // output elements per lane
  const PlanPtrs& pl = a.plan;
  const int n_tokens = pl.base[pl.l.hdr + kHdrTokens];  // the plan: written by no kernel of the step
  pdl_begin();
  const int item = blockIdx.x * 4 + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (item >= n_tokens * a.heads) return;
  const int t = item / a.heads, head = item % a.heads;
  const int kvh = head / a.group, qrow = t * a.group + head % a.group;
  const size_t stride = size_t(a.kv_heads) * a.rows_padded;
  const size_t base = size_t(kvh) * a.rows_padded + qrow;

  constexpr int kBatch = 16;
  using Vec = typename std::conditional<kPer == 4, float4, float2>::type;
  // One pass (HW_ATTN_MERGE1, chunks <= 32): lane c reads chunk c's (m, l) together with the first
  // batch's outputs, so the maximum costs no round trip of its own; the same sums in the same order
  // as the two passes (the same bytes out). The first batch is loaded inside the loop, into the
  // same v[] as every other batch: a separate first[] array stayed live across the loop and spilled
  // (184 bytes of stack at HD = 128 on sm_90).
  const bool one_pass = a.one_pass && a.chunks <= 32;
  float2 own = make_float2(-INFINITY, 0.f);
  float mx = -INFINITY;
  if (!one_pass) {
    for (int ch = lane; ch < a.chunks; ch += 32) mx = fmaxf(mx, a.part_ml[base + ch * stride].x);
#pragma unroll
    for (int s = 16; s > 0; s >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, s));
  }
  float ref = mx == -INFINITY ? 0.f : mx;
  float acc[kPer];
#pragma unroll
  for (int e = 0; e < kPer; e++) acc[e] = 0.f;
  float total = 0.f;
  // Batches of 16 chunks whose loads are all issued before any is used (one round trip a batch).
  for (int c0 = 0; c0 < a.chunks; c0 += kBatch) {
    float2 ml[kBatch];
    Vec v[kBatch];
    if (one_pass && c0 == 0 && lane < a.chunks) own = a.part_ml[base + lane * stride];
#pragma unroll
    for (int i = 0; i < kBatch; i++) {
      const int ch = c0 + i;
      if (ch < a.chunks) {
        if (!one_pass) ml[i] = a.part_ml[base + ch * stride];
        v[i] = *reinterpret_cast<const Vec*>(a.part_o + (base + ch * stride) * HD + lane * kPer);
      } else if (!one_pass) {
        ml[i] = make_float2(0.f, 0.f);
      }
    }
    if (one_pass) {  // (m, l) from the lanes that read them (the maximum once, with the first batch)
      if (c0 == 0) {
        mx = own.x;
#pragma unroll
        for (int s = 16; s > 0; s >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, s));
        ref = mx == -INFINITY ? 0.f : mx;
      }
#pragma unroll
      for (int i = 0; i < kBatch; i++) {
        const int ch = c0 + i;
        ml[i].x = __shfl_sync(0xffffffffu, own.x, ch & 31);
        ml[i].y = __shfl_sync(0xffffffffu, own.y, ch & 31);
        if (ch >= a.chunks) ml[i] = make_float2(0.f, 0.f);
      }
    }
#pragma unroll
    for (int i = 0; i < kBatch; i++) {
      if (c0 + i >= a.chunks) break;
      const float f = ml[i].y > 0.f ? exp2f(ml[i].x - ref) : 0.f;
      total += ml[i].y * f;
      const float* x = reinterpret_cast<const float*>(&v[i]);
#pragma unroll
      for (int e = 0; e < kPer; e++) acc[e] += x[e] * f;
    }
  }
  const float inv = total > 0.f ? 1.f / total : 0.f;  // no visible key: zeros, as on the CPU
  const size_t o = (size_t(t) * a.heads + head) * HD + lane * kPer;
  if (a.out_bf16) {
    __nv_bfloat16* out = static_cast<__nv_bfloat16*>(a.out);
#pragma unroll
    for (int e = 0; e < kPer; e++) out[o + e] = __float2bfloat16_rn(acc[e] * inv);
  } else {
    float* out = static_cast<float*>(a.out);
#pragma unroll
    for (int e = 0; e < kPer; e++) out[o + e] = acc[e] * inv;
  }

  if (!a.shares || total <= 0.f) return;
  const int r = pl.base[pl.l.tok_row + t];
  if (pl.base[pl.l.row_last + r] != t) return;
  const int n_rows = pl.base[pl.l.hdr + kHdrRows];
  const int n_pieces = pl.base[pl.l.hdr + kHdrPieces];
  const float w = inv / float(a.heads);
  for (int p = lane; p < n_pieces; p += 32) {
    const int u = pl.base[pl.l.piece_blk + p];
    if (pl.base[pl.l.view_len + u * n_rows + r] <= 0) continue;
    const float2 pm = a.piece_ml[base + size_t(p) * stride];
    if (pm.y > 0.f) atomicAdd(a.shares + pl.base[pl.l.view_seg + u * n_rows + r], pm.y * exp2f(pm.x - ref) * w);
  }
}

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    fail("cuda attention", std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

// The chunk kernel of `stages` for the switches: the rotation per (token, pair) exists for 1 group,
// the small tail where its parked partials fit (Smem::small_tail_fits); elsewhere the old tail runs
// in its place.
template <int HD, int GROUPS, int STAGES>
void (*chunk_kernel(bool rot_token, bool small_tail))(ChunkArgs) {
  constexpr bool kTail = Smem<HD, STAGES>::small_tail_fits(GROUPS);
  if constexpr (GROUPS == 1) {
    static_assert(kTail, "every 1-group CTA has room for the small tail");
    if (rot_token)
      return small_tail ? attn_chunk_kernel<HD, 1, STAGES, true, true> : attn_chunk_kernel<HD, 1, STAGES, true, false>;
  }
  if constexpr (kTail)
    if (small_tail) return attn_chunk_kernel<HD, GROUPS, STAGES, false, true>;
  return attn_chunk_kernel<HD, GROUPS, STAGES, false, false>;
}

// Raises the shared-memory limit of the kernel and its variants; returns CTAs per SM.
template <int HD, int GROUPS, int STAGES>
int prepare_chunk_kernel() {
  const size_t bytes = Smem<HD, STAGES>::bytes(GROUPS);
  for (int v = 0; v < 4; v++)
    check_cuda(cudaFuncSetAttribute(chunk_kernel<HD, GROUPS, STAGES>(v & 1, v & 2),
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)),
               "cudaFuncSetAttribute(attn_chunk_kernel)");
  int n = 0;
  check_cuda(
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, attn_chunk_kernel<HD, GROUPS, STAGES>, 128 * GROUPS, bytes),
      "cudaOccupancyMaxActiveBlocksPerMultiprocessor(attn_chunk_kernel)");
  return n > 0 ? n : 1;
}

// `rot_token`, `small_tail`: the variants of chunk_kernel().
template <int HD, int GROUPS>
void launch_chunk(int stages, dim3 grid, cudaStream_t stream, const ChunkArgs& ca, bool rot_token, bool small_tail) {
  if (stages == 4)
    launch_kernel(chunk_kernel<HD, GROUPS, 4>(rot_token, small_tail), grid, 128 * GROUPS, Smem<HD, 4>::bytes(GROUPS),
                  stream, ca);
  else
    launch_kernel(chunk_kernel<HD, GROUPS, 3>(rot_token, small_tail), grid, 128 * GROUPS, Smem<HD, 3>::bytes(GROUPS),
                  stream, ca);
}

template <int HD, int GROUPS>
int prepare_chunk(int stages) {
  return stages == 4 ? prepare_chunk_kernel<HD, GROUPS, 4>() : prepare_chunk_kernel<HD, GROUPS, 3>();
}

// The warpgroup-MMA kernel (attention_wgmma.cuh) with 2 stages (two CTAs per SM) or 3 (one).
template <int HD>
void (*wg_kernel(int stages, bool rot_token))(ChunkArgs) {
  if (rot_token) return stages == 3 ? attn_wg_kernel<HD, 3, true> : attn_wg_kernel<HD, 2, true>;
  return stages == 3 ? attn_wg_kernel<HD, 3, false> : attn_wg_kernel<HD, 2, false>;
}
template <int HD>
size_t wg_smem(int stages) {
  return stages == 3 ? WgSmem<HD, 3>::bytes() : WgSmem<HD, 2>::bytes();
}

// CTAs of attn_wg_kernel per SM, or 0 where this build or device has no warpgroup MMA (it needs
// sm_90a code and a compute capability 9.0 device) or the kernel does not fit.
template <int HD>
int prepare_wg(int device, int stages) {
  int major = 0, minor = 0;
  check_cuda(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute");
  check_cuda(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device), "cudaDeviceGetAttribute");
  if (major != 9 || minor != 0) return 0;
  int* flag = nullptr;
  int have = 0;
  check_cuda(cudaMalloc(&flag, sizeof(int)), "cudaMalloc(wgmma probe)");
  attn_wg_probe_kernel<<<1, 1>>>(flag);
  const cudaError_t e = cudaMemcpy(&have, flag, sizeof(int), cudaMemcpyDeviceToHost);
  cudaFree(flag);
  if (e != cudaSuccess) cudaGetLastError();  // no image of the probe for this device: no wgmma either
  if (e != cudaSuccess || !have) return 0;
  const size_t bytes = wg_smem<HD>(stages);
  for (bool rot : {false, true})
    if (cudaFuncSetAttribute(wg_kernel<HD>(stages, rot), cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)) !=
        cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
  int n = 0;
  check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, wg_kernel<HD>(stages, true), 128, bytes),
             "cudaOccupancyMaxActiveBlocksPerMultiprocessor(attn_wg_kernel)");
  return n;
}

}  // namespace

struct HogwildAttention::Impl {
  AttnDims dims;
  int device = 0, sms = 0, wave_g1 = 0, wave_g2 = 0;
  int stages1 = 3, stages2 = 4;  // K/V stages of the 1-group and 2-group kernels
  bool one_group = false;        // HW_ATTN_GROUPS=1 (benchmarks): 32-row q-tiles at every W
  int single_chunk_tiles = 0;    // HW_ATTN_SINGLE_CHUNK_TILES=N: one chunk (no merge) up to N tiles
  int min_chunk_tiles = 1;       // HW_ATTN_CHUNK_TILES=N: at least N tiles a chunk (fewer partials to merge)
  int piece_cost = -1;           // HW_ATTN_PIECE_COST=N: the planner's cost of a piece, in keys (-1: attn_piece_cost)
  int merge_one_pass = 0;        // HW_ATTN_MERGE1=1: the merge reads the maxima with its first batch
  int short_cluster = 0;         // HW_ATTN_SHORT: CTAs per cluster of the short kernel (0: off)
  int short_early = 1;           // HW_ATTN_SHORT_EARLY: 1 settled tiles before the PDL wait, 0 none (2: test only)
  bool rot_token = false;        // HW_ATTN_ROT_TOKEN=1: the chunk kernel's rotation per (token, pair)
  bool small_tail = true;        // HW_ATTN_SMALL_TAIL=0 turns off: the chunk kernel's warp merge as one rolled loop
  // The warpgroup-MMA kernel (attention_wgmma.cuh, sm_90a) for 64-row q-tiles; 1 (the default
  // where it can run): every problem, 2 (HW_ATTN_WG=2): only problems of more than 32 query rows
  // (the others take the 1-group kernel), 0: off.
  int wg_mode = 0;
  int wg_stages = 2;  // HW_ATTN_WG_STAGES=3: one CTA per SM with 3 stages
  // Its query rotation: per (token, pair), or per (row, pair) (HW_ATTN_WG_ROT=token / row; by
  // default per row for one-token problems, W = 1 decode, where the H200 A/B of 2026-12-04 had it
  // 3-7% faster, per token otherwise).
  int wg_rot = -1;  // -1: by the problem, 0: row, 1: token
  int wave_wg = 0;
  AttnPlanHost host;
  AttnCaps caps;
  AttnPlanLayout layout;
  bool planned = false;
  int32_t* staging = nullptr;  // pinned
  int* plan_dev = nullptr;
  cudaEvent_t copied = nullptr;
  bool copy_pending = false;
  float* part_o = nullptr;
  float2* part_ml = nullptr;
  float2* piece_ml = nullptr;
  size_t part_rows = 0, piece_rows = 0;  // capacities in (chunk|piece) x kv_head x row entries
  AttnShape last_shape;

  void release_plan() {
    if (copy_pending) cudaEventSynchronize(copied), copy_pending = false;
    cudaFreeHost(staging), staging = nullptr;
    cudaFree(plan_dev), plan_dev = nullptr;
  }
  ~Impl() {
    release_plan();
    cudaFree(part_o);
    cudaFree(part_ml);
    cudaFree(piece_ml);
    if (copied) cudaEventDestroy(copied);
  }
};

HogwildAttention::HogwildAttention(const AttnDims& dims, int device) : impl_(new Impl) {
  std::unique_ptr<Impl> guard(impl_);
  check_attn_dims(dims);
  Impl& m = *impl_;
  m.dims = dims;
  if (device < 0) check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  m.device = device;
  check_cuda(cudaDeviceGetAttribute(&m.sms, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
  int smem_optin = 0;
  check_cuda(cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
             "cudaDeviceGetAttribute");
  // 1 group: 3 stages, so that two CTAs fit per SM on sm_90 (more warps and tiles in flight);
  // 2 groups (one CTA per SM either way): 4 stages where the device allows.
  const size_t need4 = dims.head_dim == 64 ? Smem<64, 4>::bytes(2) : Smem<128, 4>::bytes(2);
  const size_t need3 = dims.head_dim == 64 ? Smem<64, 3>::bytes(2) : Smem<128, 3>::bytes(2);
  if (size_t(smem_optin) < need3)
    fail("cuda attention", "the device allows " + std::to_string(smem_optin) + " bytes of shared memory per block; " +
                               std::to_string(need3) + " are needed");
  m.stages1 = 3;
  m.stages2 = size_t(smem_optin) >= need4 ? 4 : 3;
  // For benchmarks: HW_ATTN_STAGES=3 forces 3 stages everywhere, =4 four where they fit.
  if (const char* env = std::getenv("HW_ATTN_STAGES")) {
    if (std::string(env) == "3") m.stages1 = m.stages2 = 3;
    if (std::string(env) == "4") m.stages1 = m.stages2;
  }
  m.one_group = switch_set("HW_ATTN_GROUPS");
  // Short contexts: one CTA per (KV head, q-tile) over all tiles and no merge launch, in place of
  // one-tile chunks and a merge kernel. Benchmark switch (0 = never): measured much slower at 1k
  // (H200, 2026-12-02 14:30 UTC, =64: 7B W=4 6.60 vs 5.01 ms a step, 0.5B 1.93 vs 1.13): a CTA's
  // walk over ~20 tiles and their blocks' query rotations costs more than the merge launch.
  if (const char* env = std::getenv("HW_ATTN_SINGLE_CHUNK_TILES")) m.single_chunk_tiles = std::atoi(env);
  // Benchmark switch between the two: chunks of at least N tiles (a 1k context's ~20 one-tile
  // chunks per KV head become ~20 / N), each CTA with its N tiles in flight at once (3 stages: 2
  // ahead); the merge reads N times fewer partials. Unmeasured; off (1) by default.
  if (const char* env = std::getenv("HW_ATTN_CHUNK_TILES")) m.min_chunk_tiles = std::max(1, std::atoi(env));
  // Benchmark switch: the split-K planner's cost of entering a block (by default attn_piece_cost:
  // kAttnPieceCost, more for many tokens on long problems).
  if (const char* env = std::getenv("HW_ATTN_PIECE_COST")) m.piece_cost = std::max(0, std::atoi(env));
  // Benchmark switch: the merge kernel in one round trip fewer (same bytes out; unmeasured, off).
  m.merge_one_pass = switch_set("HW_ATTN_MERGE1");
  // Benchmark switch: short problems (decode at ~1k keys) through the cluster kernel of
  // attention_short.cuh. HW_ATTN_SHORT=1 (or 8): clusters of 8 CTAs; =2..16: that many. Unmeasured; off.
  // HW_ATTN_SHORT_EARLY=0 (benchmark, or a fallback should a hazard show): every tile after the wait;
  // =2 every tile before it, this forward's keys included: a deliberate hazard for test_attention_pdl.
  if (const char* env = std::getenv("HW_ATTN_SHORT_EARLY")) {
    const std::string e(env);
    m.short_early = e == "0" ? 0 : e == "2" ? 2 : 1;
  }
  if (const char* env = std::getenv("HW_ATTN_SHORT")) {
    const int v = std::atoi(env);
    const int want = v == 1 ? 8 : v;
    if (want >= 2 && want <= kAttnShortMaxCluster) {
      int major = 0;
      check_cuda(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute");
      std::string why = major < 9 ? "needs compute capability 9.0 (thread-block clusters)" : "";
      if (why.empty())
        why = dims.head_dim == 64 ? prepare_short_kernel<64, 1>(want) : prepare_short_kernel<128, 1>(want);
      if (why.empty())
        why = dims.head_dim == 64 ? prepare_short_kernel<64, 2>(want) : prepare_short_kernel<128, 2>(want);
      cudaGetLastError();  // a refused attribute above is not a launch error
      if (why.empty())
        m.short_cluster = want;
      else
        std::fprintf(stderr, "hogwild: HW_ATTN_SHORT=%s ignored: %s\n", env, why.c_str());
    }
  }
  // Benchmark switch (measured mixed; off): HW_ATTN_ROT_TOKEN=1, the 1-group chunk kernel's query
  // rotation with one sincosf per (token, pair) instead of one per (row, pair) (a 1k decode q-tile:
  // 4 tokens x 7 heads, 256 instead of 1,792) and each token's q loads together. One H200,
  // 2026-12-03, decode step against the old default (ratio of medians): 0.956-0.987 at W=4 (0.5B
  // and 7B, 1k and 4k) but 1.022 and 1.029 (slower) at 0.5B W=1; with the small tail 0.951-1.007.
  // The op alone: +0.8 to +1.3 us at W=1 (QwQ-32B, Qwen3-8B shapes), ~-0.8 us at W=4. Since then
  // (unmeasured) its loop splits a token's rows over threads where tokens x HD/2 < the block (W=1).
  m.rot_token = switch_set("HW_ATTN_ROT_TOKEN");
  // The small tail, on by default (HW_ATTN_SMALL_TAIL=0 gives back the old tail): the chunk kernel's
  // merge of its 4 warps as one rolled loop that all 4 run (the old tail's warp 0 alone runs ~1,200
  // unrolled instructions, fetched cold), and no o rescale at a CTA's first tile; same sums in the
  // same order. One H200, 2026-12-03, decode step against the old tail (ratio of medians): 0.942 to
  // 0.988 at W=4 (0.5B and 7B, 1k and 4k); below 1.0 in 15 of 18 (model, W, context) of a second
  // A/B (worst 1.007, Qwen3-8B W=8 4k). 3-stage 2-group CTAs have no room to park 4 warps: they
  // keep the old tail.
  m.small_tail = switch_on("HW_ATTN_SMALL_TAIL");
  int c1, c2;
  if (dims.head_dim == 64)
    c1 = prepare_chunk<64, 1>(m.stages1), c2 = prepare_chunk<64, 2>(m.stages2);
  else
    c1 = prepare_chunk<128, 1>(m.stages1), c2 = prepare_chunk<128, 2>(m.stages2);
  m.wave_g1 = m.sms * c1, m.wave_g2 = m.sms * c2;
  // The warpgroup-MMA kernel is the default where it can run: sm_90a code, a compute capability
  // 9.0 GPU, head_dim 128. At head_dim 64 (Qwen2.5-0.5B) the H200 decode steps of 2026-12-04 were
  // 2-7% slower with it at 1k-4k (same-call A/B) and 1.08-1.26x at 16k (against an earlier call): a
  // tile there has half the bytes for the same fixed work; HW_ATTN_WG=1 takes it there too.
  // HW_ATTN_WG=0 keeps the mma.sync kernels, and so does HW_ATTN_SHORT when HW_ATTN_WG is not set
  // (one experimental path at a time); their switches (HW_ATTN_GROUPS, _STAGES, _ROT_TOKEN,
  // _SMALL_TAIL) apply to them only.
  const char* wg_env = std::getenv("HW_ATTN_WG");
  const int wg_want = wg_env ? std::atoi(wg_env) : m.short_cluster > 0 || dims.head_dim != 128 ? 0 : 1;
  if (const char* st = std::getenv("HW_ATTN_WG_STAGES")) m.wg_stages = std::atoi(st) == 3 ? 3 : 2;
  if (const char* rot = std::getenv("HW_ATTN_WG_ROT")) m.wg_rot = std::string(rot) == "row" ? 0 : 1;
  if (wg_want == 1 || wg_want == 2) {
    const int per_sm = dims.head_dim == 64 ? prepare_wg<64>(device, m.wg_stages) : prepare_wg<128>(device, m.wg_stages);
    if (per_sm > 0) {
      m.wg_mode = wg_want, m.wave_wg = m.sms * per_sm;
      m.short_cluster = 0;
    } else if (wg_env) {
      std::fprintf(stderr, "hogwild: HW_ATTN_WG=%s ignored: needs sm_90a code and a compute capability 9.0 GPU\n",
                   wg_env);
    }
  }
  check_cuda(cudaEventCreateWithFlags(&m.copied, cudaEventDisableTiming), "cudaEventCreate");
  guard.release();
}

HogwildAttention::~HogwildAttention() {
  delete impl_;
}

bool HogwildAttention::plan(const AttnProblem& problem) {
  Impl& m = *impl_;
  // The warpgroup-MMA kernel takes the 64-row (2-group) q-tiles: all of them (wave_g1 = 0 asks the
  // planner for 64-row CTAs only) or those of problems above 32 rows.
  const int wave1 = m.wg_mode == 1 ? 0 : m.wave_g1;
  const int wave2 = m.wg_mode ? m.wave_wg : m.one_group ? 0 : m.wave_g2;
  AttnPlanHost h = build_attn_plan(m.dims, problem, wave1, wave2, m.single_chunk_tiles, m.min_chunk_tiles,
                                   m.short_cluster, m.piece_cost);
  const AttnCaps need = h.needs();
  bool changed = !m.planned || !(h.shape == m.last_shape);
  const AttnCaps& c = m.caps;
  if (!m.plan_dev || !attn_caps_cover(c, need)) {
    const AttnCaps n = attn_caps_grow(c, need);
    m.release_plan();
    m.caps = n;
    m.layout = attn_plan_layout(n);
    check_cuda(cudaMallocHost(&m.staging, size_t(m.layout.total) * sizeof(int32_t)), "cudaMallocHost(attention plan)");
    check_cuda(cudaMalloc(&m.plan_dev, size_t(m.layout.total) * sizeof(int32_t)), "cudaMalloc(attention plan)");
    changed = true;
  }
  const size_t rows_padded = size_t(h.shape.qtiles) * 32 * h.shape.groups;
  const size_t part_need = size_t(h.shape.chunks) * m.dims.kv_heads * rows_padded;
  const size_t piece_need = size_t(std::max(1, h.shape.pieces)) * m.dims.kv_heads * rows_padded;
  if (part_need > m.part_rows) {
    cudaFree(m.part_o), cudaFree(m.part_ml), m.part_o = nullptr, m.part_ml = nullptr;
    m.part_rows = part_need;
    check_cuda(cudaMalloc(&m.part_o, part_need * m.dims.head_dim * sizeof(float)), "cudaMalloc(attention workspace)");
    check_cuda(cudaMalloc(&m.part_ml, part_need * sizeof(float2)), "cudaMalloc(attention workspace)");
    changed = true;
  }
  if (piece_need > m.piece_rows) {
    cudaFree(m.piece_ml), m.piece_ml = nullptr;
    m.piece_rows = piece_need + piece_need / 2;
    check_cuda(cudaMalloc(&m.piece_ml, m.piece_rows * sizeof(float2)), "cudaMalloc(attention shares workspace)");
    changed = true;
  }
  if (m.copy_pending) check_cuda(cudaEventSynchronize(m.copied), "cudaEventSynchronize"), m.copy_pending = false;
  h.pack(m.layout, m.staging);
  m.host = std::move(h);
  m.last_shape = m.host.shape;
  m.planned = true;
  return changed;
}

void HogwildAttention::upload(cudaStream_t stream) {
  Impl& m = *impl_;
  if (!m.planned) fail("cuda attention", "upload() before plan()");
  check_cuda(
      cudaMemcpyAsync(m.plan_dev, m.staging, size_t(m.layout.total) * sizeof(int32_t), cudaMemcpyHostToDevice, stream),
      "cudaMemcpyAsync(attention plan)");
  check_cuda(cudaEventRecord(m.copied, stream), "cudaEventRecord");
  m.copy_pending = true;
}

void HogwildAttention::run(int layer, const AttnLayerArgs& args, cudaStream_t stream) {
  Impl& m = *impl_;
  if (!m.planned) fail("cuda attention", "run() before plan()");
  if (layer < 0 || layer >= m.dims.layers)
    fail("cuda attention",
         "layer " + std::to_string(layer) + " out of range (0.." + std::to_string(m.dims.layers - 1) + ")");
  const AttnShape& s = m.host.shape;
  if (args.shares && s.segments > 0)
    check_cuda(cudaMemsetAsync(args.shares, 0, size_t(s.segments) * sizeof(float), stream), "cudaMemsetAsync(shares)");
  if (s.tokens == 0) return;
  if (!args.q || !args.out || !args.pages || !args.inv_freq) fail("cuda attention", "null q, out, pages or inv_freq");
  const int HD = m.dims.head_dim, group = m.dims.heads / m.dims.kv_heads;
  const int rows_padded = s.qtiles * 32 * s.groups;
  // The whole workspace, not this plan's pieces: its size then changes only with the workspace, so
  // a CUDA graph that holds this memset stays valid as blocks grow and the pieces shift.
  if (args.shares && s.pieces > 0)
    check_cuda(cudaMemsetAsync(m.piece_ml, 0, m.piece_rows * sizeof(float2), stream),
               "cudaMemsetAsync(attention shares workspace)");

  ChunkArgs ca;
  ca.plan = PlanPtrs{m.plan_dev, m.layout};
  ca.layer = layer, ca.heads = m.dims.heads, ca.kv_heads = m.dims.kv_heads, ca.group = group;
  ca.page_tokens = m.dims.page_tokens, ca.rows_padded = rows_padded, ca.page_elems = kv_page_elems(m.dims);
  ca.pt_shift = attn_pt_shift(m.dims.page_tokens);
  ca.q = args.q, ca.q_bf16 = args.q_type == AttnDType::BF16;
  ca.pages = reinterpret_cast<const __nv_bfloat16* const*>(args.pages);
  ca.inv_freq = args.inv_freq;
  const float scale = args.scale > 0.f ? args.scale : 1.0f / std::sqrt(float(HD));
  ca.scale_log2 = scale * 1.4426950408889634f;
  ca.shares = args.shares != nullptr;
  ca.part_o = m.part_o, ca.part_ml = m.part_ml, ca.piece_ml = m.piece_ml;
  // A single chunk needs no merge unless the shares are asked for (the merge kernel adds them).
  const bool direct = s.chunks == 1 && !args.shares;
  ca.direct_out = direct ? args.out : nullptr;
  ca.out_bf16 = args.out_type == AttnDType::BF16;
  if (s.cluster > 0 && !args.shares) {  // short plan: one cluster per KV head, no merge kernel
    ShortArgs sa;
    sa.c = ca;
    sa.c.direct_out = args.out;
    sa.tiles = s.short_tiles, sa.tokens = s.tokens, sa.early = m.short_early;
    if (HD == 64 && s.groups == 1)
      launch_short<64, 1>(sa, s.cluster, m.dims.kv_heads, stream);
    else if (HD == 64)
      launch_short<64, 2>(sa, s.cluster, m.dims.kv_heads, stream);
    else if (s.groups == 1)
      launch_short<128, 1>(sa, s.cluster, m.dims.kv_heads, stream);
    else
      launch_short<128, 2>(sa, s.cluster, m.dims.kv_heads, stream);
    check_cuda(cudaGetLastError(), "launch of attn_short_kernel");
    return;
  }
  const dim3 grid(s.qtiles, s.chunks, m.dims.kv_heads);
  const bool wg = m.wg_mode && s.groups == 2;
  if (wg) {
    const bool rot_token = m.wg_rot < 0 ? s.tokens > 1 : m.wg_rot == 1;
    if (HD == 64)
      launch_kernel(wg_kernel<64>(m.wg_stages, rot_token), grid, 128, wg_smem<64>(m.wg_stages), stream, ca);
    else
      launch_kernel(wg_kernel<128>(m.wg_stages, rot_token), grid, 128, wg_smem<128>(m.wg_stages), stream, ca);
  } else if (HD == 64 && s.groups == 1)
    launch_chunk<64, 1>(m.stages1, grid, stream, ca, m.rot_token, m.small_tail);
  else if (HD == 64)
    launch_chunk<64, 2>(m.stages2, grid, stream, ca, false, m.small_tail);
  else if (s.groups == 1)
    launch_chunk<128, 1>(m.stages1, grid, stream, ca, m.rot_token, m.small_tail);
  else
    launch_chunk<128, 2>(m.stages2, grid, stream, ca, false, m.small_tail);
  check_cuda(cudaGetLastError(), wg ? "launch of attn_wg_kernel" : "launch of attn_chunk_kernel");
  if (direct) return;

  MergeArgs ma;
  ma.plan = ca.plan;
  ma.heads = m.dims.heads, ma.kv_heads = m.dims.kv_heads, ma.group = group, ma.rows_padded = rows_padded;
  ma.chunks = s.chunks;
  ma.part_o = m.part_o, ma.part_ml = m.part_ml, ma.piece_ml = m.piece_ml;
  ma.out = args.out, ma.out_bf16 = args.out_type == AttnDType::BF16;
  ma.shares = args.shares;
  ma.one_pass = m.merge_one_pass;
  const int items = s.tokens * m.dims.heads;
  if (HD == 64)
    launch_kernel(attn_merge_kernel<64>, (items + 3) / 4, 128, 0, stream, ma);
  else
    launch_kernel(attn_merge_kernel<128>, (items + 3) / 4, 128, 0, stream, ma);
  check_cuda(cudaGetLastError(), "launch of attn_merge_kernel");
}

int HogwildAttention::tokens() const {
  return impl_->host.shape.tokens;
}
int HogwildAttention::total_segments() const {
  return impl_->host.shape.segments;
}
int HogwildAttention::segment_index(int row, int segment) const {
  const std::vector<int>& b = impl_->host.seg_begin;
  if (row < 0 || row + 1 >= int(b.size()) || segment < 0 || segment >= b[row + 1] - b[row])
    fail("cuda attention", "no segment " + std::to_string(segment) + " in row " + std::to_string(row));
  return b[row] + segment;
}
std::string HogwildAttention::launch_summary() const {
  const AttnShape& s = impl_->host.shape;
  if (s.cluster > 0)  // the short kernel (the chunk + merge kernels only when shares are asked for)
    return "short:_" + std::to_string(s.cluster) + "-CTA_clusters_x" + std::to_string(impl_->dims.kv_heads) + "_of_" +
           std::to_string(128 * s.groups) + "_threads,_<=" + std::to_string(s.short_tiles) + "_tiles_a_CTA,_" +
           std::to_string(s.pieces) + "_pieces";
  if (impl_->wg_mode && s.groups == 2)
    return std::to_string(s.chunks) + "x" + std::to_string(impl_->dims.kv_heads) + "x" + std::to_string(s.qtiles) +
           "_warpgroup-MMA_CTAs_of_128_threads,_" + std::to_string(impl_->wg_stages) + "_stages,_" +
           std::to_string(s.pieces) + "_pieces,_wave_" + std::to_string(impl_->wave_wg);
  return std::to_string(s.chunks) + "x" + std::to_string(impl_->dims.kv_heads) + "x" + std::to_string(s.qtiles) +
         "_CTAs_of_" + std::to_string(128 * s.groups) + "_threads,_" +
         std::to_string(s.groups == 1 ? impl_->stages1 : impl_->stages2) + "_stages,_" + std::to_string(s.pieces) +
         "_pieces,_wave_" + std::to_string(s.groups == 1 ? impl_->wave_g1 : impl_->wave_g2);
}

size_t HogwildAttention::device_bytes() const {
  const Impl& m = *impl_;
  return size_t(m.layout.total) * sizeof(int32_t) + m.part_rows * (m.dims.head_dim * sizeof(float) + sizeof(float2)) +
         m.piece_rows * sizeof(float2);
}

}  // namespace cuda
}  // namespace hw
