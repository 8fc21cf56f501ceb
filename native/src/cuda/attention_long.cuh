// The long-context kernel of the Hogwild attention (HW_ATTN_LONG=1; sm_90 bulk copies + mbarriers).
//
// Why: at 16k keys the chunk kernel reads at ~1.5 TB/s (H200, 2026-12-02) and each extra 16-row
// m-tile adds ~20 us: its warps issue the K/V copies themselves and meet at a __syncthreads every
// 64-key tile, so a tile's loads, the slowest warp's compute and the barrier sit on one critical
// path. Here the roles are split:
// - K/V tiles go into a ring of STAGES slots by cp.async.bulk (one 16-byte-aligned copy per key
//   row and K / V, HD * 2 bytes straight from the page; one warp issues a whole tile, 4 copies a lane
//   at hd 128), their completion counted in bytes on the slot's "full" mbarrier, so no thread waits
//   for its own copies and no CTA barrier separates two tiles;
// - SETS x GROUPS x 4 warps (8 in both configurations: a 9th, producer-only warp would leave 3
//   warps on one scheduler and cap every thread at 168 registers, which spills): warp group gi of
//   set s owns query rows [32 gi, 32 gi + 32) of the q-tile and takes the visible tiles k with
//   k % SETS == s (two sets: two tiles computed side by side, as two CTAs per SM did, in one CTA
//   with one tile table and 4 slots); warp kw takes keys [16 kw, 16 kw + 16) of the tile; the
//   per-warp math is attn_chunk_kernel's (mma.sync bf16, base-2 online softmax, the query rotated
//   per piece by p - offset, here into the set's own q_s, before the wait for the tile's bytes);
// - a warp releases a slot on its "empty" mbarrier; the set's first warp waits for the release of
//   tile k's slot and refills it with tile k + STAGES (STAGES % SETS == 0: a slot serves one set),
//   the other warps go straight on: a set meets only at its own piece changes (a named barrier).
// Bulk copies land unpermuted, so the slots' rows are padded by 16 bytes (the XOR swizzle of the
// chunk kernel needs 16-byte copies): 8 consecutive rows still fall in 8 bank groups for ldmatrix.
// The V rows past a partial tile's end are zeroed (P is 0 there, and 0 * stale must not be NaN).
// At the end every warp's (m, l, o) is merged in shared memory into one partial per row, written
// for attn_merge_kernel, or straight to the output when the plan has one chunk. Shares are not
// computed: run() takes the chunk + merge kernels when they are asked for.
#pragma once
#include <string>

#include "attention_device.cuh"
#include "launch.cuh"

namespace hw {
namespace cuda {
namespace attn_dev {

// mbarrier and bulk-copy primitives (sm_90 PTX; empty on older targets, never launched there).
__device__ __forceinline__ void mbar_init(void* bar, int count) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(count) : "memory");
#endif
}
__device__ __forceinline__ void mbar_init_fence() {  // the inits visible to the async proxy (bulk copies)
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}
// Orders this thread's generic-proxy shared-memory accesses before its later bulk copies (async proxy).
__device__ __forceinline__ void fence_proxy_async() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void mbar_arrive(void* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_addr(bar)) : "memory");
#endif
}
__device__ __forceinline__ void mbar_arrive_expect_tx(void* bar, int bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(bytes) : "memory");
#endif
}
__device__ __forceinline__ void mbar_wait(void* bar, int parity) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  unsigned done = 0;
  do {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(smem_addr(bar)), "r"(parity)
        : "memory");
  } while (!done);
#endif
}
// `bytes` (a multiple of 16) from global `src` to shared `dst`, counted on `bar` when they land.
__device__ __forceinline__ void bulk_copy(void* dst, const void* src, int bytes, void* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(smem_addr(dst)),
      "l"(__cvta_generic_to_global(src)), "r"(bytes), "r"(smem_addr(bar))
      : "memory");
#endif
}
// Barrier `id` (1..15; 0 is __syncthreads) of `threads` threads (a multiple of 32).
__device__ __forceinline__ void named_barrier(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// Shared-memory layout of attn_long_kernel (bytes), the same on host and device.
template <int HD, int GROUPS, int SETS, int STAGES>
struct LongSmem {
  static constexpr int kStride = HD + 8;  // bf16 per K/V/q row: +16 bytes, conflict-free ldmatrix
  static constexpr int kTileElems = kAttnTileKeys * kStride;
  static constexpr int kRows = 32 * GROUPS;
  static constexpr int kPark = 4 * SETS - 1;  // warps of a group that park their partials for the merge
  static constexpr size_t kSlots = size_t(STAGES) * 2 * kTileElems * 2;
  static constexpr size_t kMergeO = size_t(GROUPS) * kPark * kMT * (HD / 8) * 4 * 32 * 4;
  static constexpr size_t kMergeML = size_t(GROUPS) * kPark * kMT * 2 * 2 * 32 * 4;
  static constexpr size_t kBig = kSlots > kMergeO + kMergeML ? kSlots : kMergeO + kMergeML;
  static constexpr size_t kQ = kBig;                                                     // [SETS][kRows][kStride] bf16
  static constexpr size_t kLim = kQ + size_t(SETS) * kRows * kStride * 2;                // [SETS][kRows] int
  static constexpr size_t kDlt = kLim + size_t(SETS) * kRows * 4;                        // [SETS][kRows] int
  static constexpr size_t kRowInfo = kDlt + size_t(SETS) * kRows * 4;                    // [kRows] int4
  static constexpr size_t kTab = kRowInfo + size_t(kRows) * 16;                          // [kAttnMaxChunkTiles]
  static constexpr size_t kBar = kTab + size_t(kAttnMaxChunkTiles) * sizeof(TileEntry);  // full, empty: u64
  static constexpr size_t kBytes = kBar + size_t(2 * STAGES) * 8;
  static_assert(kTileElems * 2 % 16 == 0 && kBar % 8 == 0, "bulk copies and mbarriers need aligned slots");
  // Each slot is read by one set only, so a set can never wait on a slot's parity two phases ahead
  // (another set's use of the slot still landing would look like its own completed one).
  static_assert(STAGES % SETS == 0, "slots must map to sets one to one");
};

template <int HD, int GROUPS, int SETS, int STAGES>
__global__ void __launch_bounds__(128 * GROUPS * SETS, 1) attn_long_kernel(ChunkArgs a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  using L = LongSmem<HD, GROUPS, SETS, STAGES>;
  constexpr int kRows = L::kRows, kStride = L::kStride, kNT = HD / 8, kPark = L::kPark;
  constexpr int kWarps = 4 * GROUPS * SETS, kSetThreads = 128 * GROUPS;
  extern __shared__ __align__(16) unsigned char smem[];
  __nv_bfloat16* slots = reinterpret_cast<__nv_bfloat16*>(smem);
  float* merge_s = reinterpret_cast<float*>(smem);  // aliases the slots after the loop
  int4* row_s = reinterpret_cast<int4*>(smem + L::kRowInfo);
  TileEntry* tab = reinterpret_cast<TileEntry*>(smem + L::kTab);
  unsigned long long* full = reinterpret_cast<unsigned long long*>(smem + L::kBar);
  unsigned long long* empty = full + STAGES;

  const PlanPtrs& pl = a.plan;
  const int qt = blockIdx.x, chunk = blockIdx.y, kvh = blockIdx.z;
  const int n_tokens = pl.base[pl.l.hdr + kHdrTokens];
  const int n_rows = pl.base[pl.l.hdr + kHdrRows];
  const int n_blocks = pl.base[pl.l.hdr + kHdrBlocks];
  const int rows_q = n_tokens * a.group;
  const int row0 = qt * kRows;
  const int cta_rows = min(kRows, rows_q - row0);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

  // The chunk's tiles and the CTA's rows, resolved once by every thread (as attn_chunk_kernel);
  // each set's padding rows get zero queries that see no key.
  const int tile0 = pl.base[pl.l.chunk_tile + chunk];
  const int n_tiles = pl.base[pl.l.chunk_tile + chunk + 1] - tile0;
  {
    const size_t head_off = (size_t(a.layer) * 2 * a.kv_heads + kvh) * a.page_tokens * HD;
    for (int i = threadIdx.x; i < n_tiles; i += blockDim.x)
      tab[i] = attn_tile_entry(pl.base, pl.l, tile0 + i, qt, n_blocks, a.page_tokens, head_off,
                               reinterpret_cast<const uint16_t* const*>(a.pages));
    for (int i = threadIdx.x; i < kRows; i += blockDim.x) {
      const int qrow = row0 + i;
      if (i < cta_rows) {
        const int t = qrow / a.group;
        row_s[i] = make_int4(t, kvh * a.group + qrow % a.group, pl.base[pl.l.tok_row + t], pl.base[pl.l.tok_pos + t]);
      }
    }
    for (int i = threadIdx.x; i < SETS * kRows; i += blockDim.x)
      if (i % kRows >= cta_rows) {
        reinterpret_cast<int*>(smem + L::kLim)[i] = 0;
        __nv_bfloat16* q = reinterpret_cast<__nv_bfloat16*>(smem + L::kQ) + size_t(i) * kStride;
        for (int e = 0; e < HD; e++) q[e] = __float2bfloat16_rn(0.f);
      }
    if (threadIdx.x == 0) {
      for (int s = 0; s < STAGES; s++) mbar_init(&full[s], 1), mbar_init(&empty[s], 4 * GROUPS);
      mbar_init_fence();
    }
    __syncthreads();
  }
  auto visible_from = [&](int k) {
    while (k < n_tiles && tab[k].n == 0) k++;
    return k;
  };
  // The plan and page table are written by no kernel of the step; q and this layer's K/V are.
  pdl_begin();

  // Issues tile t's copies into slot s (one warp, all lanes): rows past n get a zero V (generic
  // stores, published by the arrive), K left stale (masked); then one bulk copy per key row of K and V.
  const size_t v_off = size_t(a.kv_heads) * a.page_tokens * HD;
  auto issue = [&](int t, int s) {
    const TileEntry& e = tab[t];
    __nv_bfloat16* ks = slots + size_t(2 * s) * L::kTileElems;
    __nv_bfloat16* vs = ks + L::kTileElems;
    for (int key = e.n + lane; key < kAttnTileKeys; key += 32) {
      uint4* v = reinterpret_cast<uint4*>(vs + attn_long_kv_index(key, 0, HD));
#pragma unroll
      for (int p = 0; p < HD / 8; p++) v[p] = make_uint4(0, 0, 0, 0);
    }
    // The zeros (and the zeros of a slot's earlier partial tiles) before the copies land on them.
    fence_proxy_async();
    __syncwarp();
    if (lane == 0) mbar_arrive_expect_tx(&full[s], e.n * HD * 2 * 2);
    __syncwarp();
    for (int key = lane; key < e.n; key += 32) {
      const uint16_t* src =
          a.pt_shift >= 0 ? attn_key_src_pow2(e, key, a.pt_shift, HD) : attn_key_src(e, key, a.page_tokens, HD);
      bulk_copy(ks + attn_long_kv_index(key, 0, HD), src, HD * 2, &full[s]);
      bulk_copy(vs + attn_long_kv_index(key, 0, HD), src + v_off, HD * 2, &full[s]);
    }
  };
  if (warp == 0) {  // the first STAGES visible tiles, slot k for tile k
    int t = visible_from(0);
    for (int k = 0; k < STAGES && t < n_tiles; k++, t = visible_from(t + 1)) issue(t, k);
  }

  // Consumer warp: set `set`, warp group gi (rows), key slice kw.
  const int set = warp / (4 * GROUPS), wg = warp % (4 * GROUPS), gi = wg >> 2, kw = wg & 3;
  const int tid_s = threadIdx.x - set * kSetThreads;  // thread index within the set
  __nv_bfloat16* q_s = reinterpret_cast<__nv_bfloat16*>(smem + L::kQ) + size_t(set) * kRows * kStride;
  int* lim_s = reinterpret_cast<int*>(smem + L::kLim) + set * kRows;
  int* dlt_s = reinterpret_cast<int*>(smem + L::kDlt) + set * kRows;
  const int g = lane >> 2, c = lane & 3;
  bool mt_on[kMT];
#pragma unroll
  for (int mt = 0; mt < kMT; mt++) mt_on[mt] = gi * 32 + mt * 16 < cta_rows;

  float o[kMT][kNT][4];
  float m[kMT][2], l[kMT][2];
  int lim[kMT][2];
#pragma unroll
  for (int mt = 0; mt < kMT; mt++) {
#pragma unroll
    for (int nt = 0; nt < kNT; nt++) o[mt][nt][0] = o[mt][nt][1] = o[mt][nt][2] = o[mt][nt][3] = 0.f;
#pragma unroll
    for (int h = 0; h < 2; h++) m[mt][h] = -INFINITY, l[mt][h] = 0.f, lim[mt][h] = 0;
  }

  // The set's query rows rotated for block u (by p - offset) into its q_s, with their key limits.
  auto rotate_queries = [&](int u) {
    constexpr int kHalf = HD / 2;
    if (tid_s < cta_rows) {
      const int4 ri = row_s[tid_s];
      int delta;
      lim_s[tid_s] = attn_row_limit(pl.base, pl.l, u, n_rows, ri.z, ri.w, &delta);
      dlt_s[tid_s] = delta;
    }
    named_barrier(2 + set, kSetThreads);
#pragma unroll 4
    for (int idx = tid_s; idx < cta_rows * kHalf; idx += kSetThreads) {
      const int i = idx / kHalf, pr = idx % kHalf;
      const int4 ri = row_s[i];
      const size_t qi = (size_t(ri.x) * a.heads + ri.y) * HD + pr;
      float y0, y1;
      if (a.q_bf16) {
        const __nv_bfloat16* q = static_cast<const __nv_bfloat16*>(a.q);
        y0 = __bfloat162float(q[qi]), y1 = __bfloat162float(q[qi + kHalf]);
      } else {
        const float* q = static_cast<const float*>(a.q);
        y0 = q[qi], y1 = q[qi + kHalf];
      }
      float x0 = 0.f, x1 = 0.f;
      if (lim_s[i] > 0) {
        float sn, cs;
        sincosf(__fmul_rn(float(dlt_s[i]), a.inv_freq[pr]), &sn, &cs);  // fp32 angle, as on the CPU
        x0 = y0 * cs - y1 * sn;
        x1 = y1 * cs + y0 * sn;
      }
      q_s[i * kStride + pr] = __float2bfloat16_rn(x0);
      q_s[i * kStride + pr + kHalf] = __float2bfloat16_rn(x1);
    }
    named_barrier(2 + set, kSetThreads);
#pragma unroll
    for (int mt = 0; mt < kMT; mt++)
#pragma unroll
      for (int h = 0; h < 2; h++) lim[mt][h] = lim_s[gi * 32 + mt * 16 + h * 8 + g];
  };

  // The set's tiles: visible tiles number k = set, set + SETS, ... (the order of the copies).
  int t = visible_from(0);
  for (int i = 0; i < set; i++) t = visible_from(t + 1);
  int ahead = t;  // visible tile k + STAGES: the one that refills tile k's slot
  for (int i = 0; i < STAGES; i++) ahead = visible_from(ahead + 1);
  int cur_piece = -1;
  for (int k = set; t < n_tiles; k += SETS) {
    const AttnLongStep st = attn_long_step(k, SETS, STAGES);
    const int s = st.slot;
    const TileEntry& cur = tab[t];
    if (cur.piece != cur_piece) {  // before the wait: the rotation overlaps the tile's copies
      cur_piece = cur.piece;
      rotate_queries(cur.block);
    }
    mbar_wait(&full[s], st.parity);
    const __nv_bfloat16* ks = slots + size_t(2 * s) * L::kTileElems;
    const __nv_bfloat16* vs = ks + L::kTileElems;
    const int key0 = cur.key0 + kw * 16;

    float sc[kMT][2][4];
#pragma unroll
    for (int mt = 0; mt < kMT; mt++)
#pragma unroll
      for (int nt = 0; nt < 2; nt++) sc[mt][nt][0] = sc[mt][nt][1] = sc[mt][nt][2] = sc[mt][nt][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++) {
      unsigned kb[4];
      ldmatrix_x4(kb, ks + attn_long_kv_index(kw * 16 + (lane >> 4) * 8 + (lane & 7), kk * 2 + ((lane >> 3) & 1), HD));
#pragma unroll
      for (int mt = 0; mt < kMT; mt++) {
        if (!mt_on[mt]) continue;
        unsigned qa[4];
        ldmatrix_x4(qa, q_s + (gi * 32 + mt * 16 + (lane & 15)) * kStride + kk * 16 + (lane >> 4) * 8);
        mma_bf16(sc[mt][0], qa, kb[0], kb[1]);
        mma_bf16(sc[mt][1], qa, kb[2], kb[3]);
      }
    }

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
        if (alpha != 1.f) {
#pragma unroll
          for (int nt = 0; nt < kNT; nt++) o[mt][nt][h * 2] *= alpha, o[mt][nt][h * 2 + 1] *= alpha;
        }
      }
      pa[mt][0] = pack_bf16(sc[mt][0][0], sc[mt][0][1]);
      pa[mt][1] = pack_bf16(sc[mt][0][2], sc[mt][0][3]);
      pa[mt][2] = pack_bf16(sc[mt][1][0], sc[mt][1][1]);
      pa[mt][3] = pack_bf16(sc[mt][1][2], sc[mt][1][3]);
    }

#pragma unroll
    for (int dp = 0; dp < HD / 16; dp++) {
      unsigned vb[4];
      ldmatrix_x4_trans(vb, vs + attn_long_kv_index(kw * 16 + (lane & 15), dp * 2 + (lane >> 4), HD));
#pragma unroll
      for (int mt = 0; mt < kMT; mt++) {
        if (!mt_on[mt]) continue;
        mma_bf16(o[mt][2 * dp], pa[mt], vb[0], vb[1]);
        mma_bf16(o[mt][2 * dp + 1], pa[mt], vb[2], vb[3]);
      }
    }
    __syncwarp();  // every lane's reads of the slot done before the warp releases it
    if (lane == 0) mbar_arrive(&empty[s]);
    for (int i = 0; i < SETS; i++) t = visible_from(t + 1);
    // The set's first warp refills the slot with visible tile k + STAGES (this set's again) once
    // every warp of the set has released it; the others go on to their next tile.
    if (wg == 0 && ahead < n_tiles) {
      mbar_wait(&empty[s], st.parity);
      issue(ahead, s);
    }
    for (int i = 0; i < SETS; i++) ahead = visible_from(ahead + 1);
  }
  // Every issued copy was waited for by its set: once all warps are here the slots are free.
  named_barrier(1, kWarps * 32);

  // Merge the 4 x SETS warps of each group: all but (set 0, kw 0) park (m, l, o), that one combines.
#pragma unroll
  for (int mt = 0; mt < kMT; mt++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      l[mt][h] += __shfl_xor_sync(0xffffffffu, l[mt][h], 1);
      l[mt][h] += __shfl_xor_sync(0xffffffffu, l[mt][h], 2);
    }
  float* mo = merge_s;
  float* mml = merge_s + L::kMergeO / 4;
  const int wi = set * 4 + kw;  // the warp's index among its group's 4 x SETS
  if (wi > 0) {
    const int w3 = gi * kPark + (wi - 1);
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
  named_barrier(1, kWarps * 32);
  if (wi != 0) return;
  const size_t part_base = (size_t(chunk) * a.kv_heads + kvh) * a.rows_padded + row0 + gi * 32;
#pragma unroll
  for (int mt = 0; mt < kMT; mt++) {
    if (gi * 32 + mt * 16 >= cta_rows) continue;
#pragma unroll
    for (int h = 0; h < 2; h++) {
      float mx = m[mt][h];
#pragma unroll
      for (int w = 0; w < kPark; w++) mx = fmaxf(mx, mml[((((gi * kPark + w) * kMT + mt) * 2 + h) * 2) * 32 + lane]);
      const float ref = mx == -INFINITY ? 0.f : mx;
      float f[kPark + 1];
      f[0] = exp2f(m[mt][h] - ref);
      float lsum = l[mt][h] * f[0];
#pragma unroll
      for (int w = 0; w < kPark; w++) {
        const int b = (((gi * kPark + w) * kMT + mt) * 2 + h) * 2;
        f[w + 1] = exp2f(mml[b * 32 + lane] - ref);
        lsum += mml[(b + 1) * 32 + lane] * f[w + 1];
      }
      const int r = mt * 16 + h * 8 + g;
      if (gi * 32 + r >= cta_rows) continue;
      const float inv = lsum > 0.f ? 1.f / lsum : 0.f;  // direct output: normalised, zeros for l = 0
      const int qrow = row0 + gi * 32 + r;
      const size_t ob = (size_t(qrow / a.group) * a.heads + kvh * a.group + qrow % a.group) * HD + 2 * c;
      float* dst = a.part_o + (part_base + r) * HD;
#pragma unroll
      for (int nt = 0; nt < kNT; nt++) {
        float v0 = o[mt][nt][h * 2] * f[0], v1 = o[mt][nt][h * 2 + 1] * f[0];
#pragma unroll
        for (int w = 0; w < kPark; w++) {
          const int b = ((((gi * kPark + w) * kMT + mt) * kNT + nt) * 4 + h * 2) * 32 + lane;
          v0 += mo[b] * f[w + 1];
          v1 += mo[b + 32] * f[w + 1];
        }
        if (!a.direct_out)
          *reinterpret_cast<float2*>(dst + nt * 8 + 2 * c) = make_float2(v0, v1);
        else if (a.out_bf16)
          *reinterpret_cast<__nv_bfloat162*>(static_cast<__nv_bfloat16*>(a.direct_out) + ob + nt * 8) =
              __floats2bfloat162_rn(v0 * inv, v1 * inv);
        else
          *reinterpret_cast<float2*>(static_cast<float*>(a.direct_out) + ob + nt * 8) = make_float2(v0 * inv, v1 * inv);
      }
      if (!a.direct_out && c == 0) a.part_ml[part_base + r] = make_float2(mx, lsum);
    }
  }
#endif
}

// The configurations run() picks: one 32-row group in two sets (9 warps, 4 slots: a slot always
// serves the same set), or two groups in one set (9 warps, 5 slots).
template <int HD, int GROUPS>
struct LongConfig {
  static constexpr int kSets = GROUPS == 1 ? 2 : 1;
  static constexpr int kStages = GROUPS == 1 ? 4 : 5;
  static constexpr int kThreads = 128 * GROUPS * kSets;
  using Smem = LongSmem<HD, GROUPS, kSets, kStages>;
  static void (*kernel())(ChunkArgs) { return attn_long_kernel<HD, GROUPS, kSets, kStages>; }
};

// Raises the kernel's shared-memory limit; returns its CTAs per SM, or 0 with `why` set.
template <int HD, int GROUPS>
int prepare_long_kernel(std::string* why) {
  using C = LongConfig<HD, GROUPS>;
  cudaFuncAttributes fa;
  if (cudaFuncGetAttributes(&fa, C::kernel()) != cudaSuccess) return *why = "cudaFuncGetAttributes failed", 0;
  if (fa.binaryVersion < 90) return *why = "no sm_90 code for this device", 0;
  if (cudaFuncSetAttribute(C::kernel(), cudaFuncAttributeMaxDynamicSharedMemorySize, int(C::Smem::kBytes)) !=
      cudaSuccess)
    return *why = std::to_string(C::Smem::kBytes) + " bytes of shared memory refused", 0;
  int n = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, C::kernel(), C::kThreads, C::Smem::kBytes) != cudaSuccess ||
      n < 1)
    return *why = "no CTA fits an SM", 0;
  return n;
}

template <int HD, int GROUPS>
void launch_long(dim3 grid, cudaStream_t stream, const ChunkArgs& ca) {
  using C = LongConfig<HD, GROUPS>;
  launch_kernel(C::kernel(), grid, C::kThreads, C::Smem::kBytes, stream, ca);
}

}  // namespace attn_dev
}  // namespace cuda
}  // namespace hw
