// The short-context decode kernel of the Hogwild attention (HW_ATTN_SHORT=1; sm_90 clusters).
//
// Why: at ~1k keys a decode step's attention reads ~0.3-2 MB per layer, a fraction of a
// microsecond of bandwidth, yet the chunk + merge kernels cost 12-23 us a layer (H200 profile,
// 2026-12-03): each CTA walks a chain of dependent steps (plan loads, the K/V tile, the query's
// rotation, one 64-key tile, its partials to global memory), then the merge kernel's launch and its
// own chain of loads. This kernel keeps the chain short:
// - one cluster of C CTAs per KV head (grid C x kv_heads); CTA rank c takes chunk c of a short plan
//   (at most kAttnShortMaxTiles tiles) and loads all its tiles at once, no stage ring;
// - before the PDL wait (griddepcontrol.wait), i.e. while the previous kernel (the qkv GEMM) still
//   runs, it reads the plan, computes the RoPE table (cos, sin) of every (piece, token) and issues
//   the copies of every tile that holds no key of this forward (tile_fresh = 0): the prompt's K/V
//   is in flight before the wait returns. After the wait only q and the few tiles this step writes
//   into are loaded, both from L2;
// - the query rotation per piece is then a table lookup and two FMAs per pair;
// - the 4 warps of a group merge through shared memory into one (m, l, o) per row and CTA, and the
//   C CTAs merge through distributed shared memory (each CTA finishes 1/C of the rows' elements and
//   writes the output): no partials in global memory, no merge kernel.
// The per-warp tile arithmetic (16 keys per warp, mma.sync bf16, base-2 online softmax) is that of
// attn_chunk_kernel. Shares are not computed here: run() takes the chunk + merge kernels over the
// same short plan when they are asked for.
#pragma once
#include <string>

#include "attention_device.cuh"
#include "launch.cuh"

namespace hw {
namespace cuda {
namespace attn_dev {

struct ShortArgs {
  ChunkArgs c;  // plan, shapes, q, pages, RoPE frequencies, scale; c.direct_out: the output
  int tiles;    // the plan's short_tiles: K/V slots per CTA
  int tokens;   // the plan's query tokens (sizes the RoPE table; the shape fixes it)
  int early;    // 1: settled tiles (tile_fresh = 0) are loaded before the PDL wait; 0: all after it;
                // 2: all before it (a deliberate hazard, for test_attention_pdl only)
};

// Thread-block cluster primitives (sm_90 PTX): this CTA's rank, the cluster's size, a barrier of
// all its threads (release / acquire: shared-memory writes before it are visible to every CTA of the
// cluster after it) and loads from another CTA's shared memory.
__device__ __forceinline__ int cluster_rank() {
  unsigned r = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
#endif
  return int(r);
}
__device__ __forceinline__ int cluster_ranks() {
  unsigned r = 1;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mov.u32 %0, %%cluster_nctarank;\n" : "=r"(r));
#endif
  return int(r);
}
__device__ __forceinline__ void cluster_barrier() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.arrive.release;\n" ::: "memory");
  asm volatile("barrier.cluster.wait.acquire;\n" ::: "memory");
#endif
}
// The shared::cluster address of `p` (this CTA's shared memory) in CTA `rank` of the cluster.
__device__ __forceinline__ unsigned cluster_addr(const void* p, int rank) {
  unsigned r = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(r) : "r"(smem_addr(p)), "r"(rank));
#endif
  return r;
}
__device__ __forceinline__ float2 cluster_load2(unsigned addr) {
  float2 v = make_float2(0.f, 0.f);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("ld.shared::cluster.v2.f32 {%0, %1}, [%2];\n" : "=f"(v.x), "=f"(v.y) : "r"(addr));
#endif
  return v;
}
__device__ __forceinline__ float4 cluster_load4(unsigned addr) {
  float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [%4];\n"
               : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
               : "r"(addr));
#endif
  return v;
}

// One warp's online-softmax state over its rows (two 16-row m-tiles of its group).
template <int HD>
struct WarpSoftmax {
  static constexpr int kNT = HD / 8;
  float o[kMT][kNT][4];
  float m[kMT][2], l[kMT][2];
};

// One warp's 16 keys (tile rows key_in_tile .. +16) of a K/V tile in shared memory against the
// rotated queries of its group (q_rows: the group's first row in q_s): S = Q K^T, masked by each
// row's limit, online softmax in base 2, O += P V. As in attn_chunk_kernel's loop.
template <int HD>
__device__ __forceinline__ void warp_tile(WarpSoftmax<HD>& st, const __nv_bfloat16* q_rows, const __nv_bfloat16* ks,
                                          const __nv_bfloat16* vs, int key_in_tile, int key0, const int (&lim)[kMT][2],
                                          const bool (&mt_on)[kMT], float scale_log2) {
  constexpr int kStride = HD + 8, kNT = HD / 8;
  const int lane = threadIdx.x & 31, c = lane & 3;
  float sc[kMT][2][4];
#pragma unroll
  for (int mt = 0; mt < kMT; mt++)
#pragma unroll
    for (int nt = 0; nt < 2; nt++) sc[mt][nt][0] = sc[mt][nt][1] = sc[mt][nt][2] = sc[mt][nt][3] = 0.f;
#pragma unroll
  for (int kk = 0; kk < HD / 16; kk++) {
    unsigned kb[4];
    ldmatrix_x4(kb, ks + kv_swz<HD>(key_in_tile + (lane >> 4) * 8 + (lane & 7), kk * 2 + ((lane >> 3) & 1)));
#pragma unroll
    for (int mt = 0; mt < kMT; mt++) {
      if (!mt_on[mt]) continue;
      unsigned qa[4];
      ldmatrix_x4(qa, q_rows + (mt * 16 + (lane & 15)) * kStride + kk * 16 + (lane >> 4) * 8);
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
          v = j < lim[mt][h] ? v * scale_log2 : -INFINITY;
          mx = fmaxf(mx, v);
        }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(st.m[mt][h], mx);
      const float ref = m_new == -INFINITY ? 0.f : m_new;
      const float alpha = exp2f(st.m[mt][h] - ref);
      st.m[mt][h] = m_new;
      float sum = 0.f;
#pragma unroll
      for (int nt = 0; nt < 2; nt++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
          float& v = sc[mt][nt][h * 2 + e];
          v = exp2f(v - ref);
          sum += v;
        }
      st.l[mt][h] = st.l[mt][h] * alpha + sum;
      if (alpha != 1.f) {
#pragma unroll
        for (int nt = 0; nt < kNT; nt++) st.o[mt][nt][h * 2] *= alpha, st.o[mt][nt][h * 2 + 1] *= alpha;
      }
    }
    // The S accumulator layout of two 8-key n-tiles is the A layout of one 16-key k-step.
    pa[mt][0] = pack_bf16(sc[mt][0][0], sc[mt][0][1]);
    pa[mt][1] = pack_bf16(sc[mt][0][2], sc[mt][0][3]);
    pa[mt][2] = pack_bf16(sc[mt][1][0], sc[mt][1][1]);
    pa[mt][3] = pack_bf16(sc[mt][1][2], sc[mt][1][3]);
  }
#pragma unroll
  for (int dp = 0; dp < HD / 16; dp++) {
    unsigned vb[4];
    ldmatrix_x4_trans(vb, vs + kv_swz<HD>(key_in_tile + (lane & 15), dp * 2 + (lane >> 4)));
#pragma unroll
    for (int mt = 0; mt < kMT; mt++) {
      if (!mt_on[mt]) continue;
      mma_bf16(st.o[mt][2 * dp], pa[mt], vb[0], vb[1]);
      mma_bf16(st.o[mt][2 * dp + 1], pa[mt], vb[2], vb[3]);
    }
  }
}

// Finishes one output quad (4 consecutive elements of row `row`) from the cluster's C partials:
// the (m, l) of the row and the quad of o in every CTA's shared memory, read together.
template <int HD>
__device__ __forceinline__ void cluster_merge_quad(const ChunkArgs& a, int n_ranks, const float2* cml_s,
                                                   const float* part_s, int kvh, int row, int quad) {
  float2 ml[kAttnShortMaxCluster];
  float4 ov[kAttnShortMaxCluster];
#pragma unroll
  for (int r = 0; r < kAttnShortMaxCluster; r++)
    if (r < n_ranks) {
      ml[r] = cluster_load2(cluster_addr(cml_s + row, r));
      ov[r] = cluster_load4(cluster_addr(part_s + size_t(row) * HD + quad * 4, r));
    }
  float mx = -INFINITY;
#pragma unroll
  for (int r = 0; r < kAttnShortMaxCluster; r++)
    if (r < n_ranks) mx = fmaxf(mx, ml[r].x);
  const float ref = mx == -INFINITY ? 0.f : mx;
  float total = 0.f, acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
  for (int r = 0; r < kAttnShortMaxCluster; r++)
    if (r < n_ranks) {
      const float f = ml[r].y > 0.f ? exp2f(ml[r].x - ref) : 0.f;
      total += ml[r].y * f;
      acc[0] += ov[r].x * f, acc[1] += ov[r].y * f, acc[2] += ov[r].z * f, acc[3] += ov[r].w * f;
    }
  const float inv = total > 0.f ? 1.f / total : 0.f;  // no visible key: zeros, as on the CPU
  const int t = row / a.group, head = kvh * a.group + row % a.group;
  const size_t ob = (size_t(t) * a.heads + head) * HD + quad * 4;
  if (a.out_bf16) {
    __nv_bfloat162* out = reinterpret_cast<__nv_bfloat162*>(static_cast<__nv_bfloat16*>(a.direct_out) + ob);
    out[0] = __floats2bfloat162_rn(acc[0] * inv, acc[1] * inv);
    out[1] = __floats2bfloat162_rn(acc[2] * inv, acc[3] * inv);
  } else {
    *reinterpret_cast<float4*>(static_cast<float*>(a.direct_out) + ob) =
        make_float4(acc[0] * inv, acc[1] * inv, acc[2] * inv, acc[3] * inv);
  }
}

template <int HD, int GROUPS>
__global__ void __launch_bounds__(128 * GROUPS, 1) attn_short_kernel(ShortArgs sa) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr int kRows = 32 * GROUPS, kThreads = 128 * GROUPS;
  constexpr int kStride = HD + 8, kNT = HD / 8, kHalf = HD / 2, kTileElems = kAttnTileKeys * HD;
  const ChunkArgs& a = sa.c;
  const PlanPtrs& pl = a.plan;
  const int rank = cluster_rank(), n_ranks = cluster_ranks();
  const int kvh = blockIdx.y;

  extern __shared__ __align__(16) unsigned char smem[];
  const AttnShortSmem L = attn_short_smem(HD, GROUPS, sa.tiles, sa.tokens);
  __nv_bfloat16* kv_s = reinterpret_cast<__nv_bfloat16*>(smem + L.kv);
  float* wo_s = reinterpret_cast<float*>(smem + L.kv);  // after the loop: each warp's o
  float2* wml_s = reinterpret_cast<float2*>(smem + L.wml);
  __nv_bfloat16* q_s = reinterpret_cast<__nv_bfloat16*>(smem + L.q);
  int4* row_s = reinterpret_cast<int4*>(smem + L.rows);  // per row: token, head, batch row, position
  TileEntry* tab = reinterpret_cast<TileEntry*>(smem + L.tab);
  int* lim_s = reinterpret_cast<int*>(smem + L.lim);  // [piece][token]
  int* dlt_s = reinterpret_cast<int*>(smem + L.dlt);  // [piece][token]
  int* fresh_s = reinterpret_cast<int*>(smem + L.fresh);
  float2* rope_s = reinterpret_cast<float2*>(smem + L.rope);  // [piece][token][pair]: (cos, sin)
  float2* cml_s = reinterpret_cast<float2*>(smem + L.cml);
  float* part_s = reinterpret_cast<float*>(smem + L.part);  // fp32 queries, then the CTA's partial o

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, gi = warp >> 2, kw = warp & 3;
  const int g = lane >> 2, c = lane & 3;
  const int n_tokens = pl.base[pl.l.hdr + kHdrTokens];
  const int n_rows = pl.base[pl.l.hdr + kHdrRows];
  const int n_blocks = pl.base[pl.l.hdr + kHdrBlocks];
  const int cta_rows = min(kRows, n_tokens * a.group);  // one q-tile: query rows 0 .. cta_rows - 1

  // 1. Before the PDL wait: only the plan, the page table and the RoPE frequencies, which no
  //    kernel of the step writes, and the K/V of keys written before this forward. Three groups of
  //    threads walk their chains of dependent loads side by side: the rows, the (piece, token)
  //    limits and distances, the tile entries (page addresses).
  static_assert(kThreads % kHalf == 0 && kRows + kAttnShortMaxTiles * kAttnShortMaxTokens <= kThreads - 32,
                "thread roles of step 1");
  const float inv_f = a.inv_freq[threadIdx.x % kHalf];  // the one frequency of this thread's RoPE items
  const int tile0 = pl.base[pl.l.chunk_tile + rank];
  const int n_tiles = pl.base[pl.l.chunk_tile + rank + 1] - tile0;
  const int piece0 = n_tiles > 0 ? pl.base[pl.l.tile_piece + tile0] : 0;
  const int n_pieces = n_tiles > 0 ? pl.base[pl.l.tile_piece + tile0 + n_tiles - 1] - piece0 + 1 : 0;
  if (int(threadIdx.x) < kRows) {
    const int i = threadIdx.x;
    if (i < cta_rows) {
      const int t = i / a.group;
      row_s[i] = make_int4(t, kvh * a.group + i % a.group, pl.base[pl.l.tok_row + t], pl.base[pl.l.tok_pos + t]);
    } else {  // padding rows: zero queries, never rewritten
      for (int e = 0; e < HD; e++) q_s[i * kStride + e] = __float2bfloat16_rn(0.f);
    }
  } else if (int(threadIdx.x) < kRows + n_pieces * n_tokens) {
    // Per (piece, token): the keys of the piece's block the token sees and its rotation distance.
    const int j = threadIdx.x - kRows, pc = j / n_tokens, t = j % n_tokens;
    const int u = pl.base[pl.l.piece_blk + piece0 + pc];
    int delta;
    lim_s[attn_short_pt(pc, t)] =
        attn_row_limit(pl.base, pl.l, u, n_rows, pl.base[pl.l.tok_row + t], pl.base[pl.l.tok_pos + t], &delta);
    dlt_s[attn_short_pt(pc, t)] = delta;
  } else if (int(threadIdx.x) >= kThreads - 32 && int(threadIdx.x) - (kThreads - 32) < n_tiles) {
    const int i = threadIdx.x - (kThreads - 32);
    const size_t head_off = (size_t(a.layer) * 2 * a.kv_heads + kvh) * a.page_tokens * HD;
    tab[i] = attn_tile_entry(pl.base, pl.l, tile0 + i, 0, n_blocks, a.page_tokens, head_off,
                             reinterpret_cast<const uint16_t* const*>(a.pages));
    fresh_s[i] = pl.base[pl.l.tile_fresh + tile0 + i];
  }
  __syncthreads();
  for (int i = 0; i < n_tiles; i++)  // the prompt's K/V (and any other settled keys) now
    if (tab[i].n > 0 && (sa.early == 2 || (sa.early == 1 && !fresh_s[i])))
      load_tile<HD, 1, kThreads>(a, tab[i], kv_s + (2 * i) * kTileElems, kv_s + (2 * i + 1) * kTileElems);
  cp_async_commit();
  for (int i = threadIdx.x; i < n_pieces * n_tokens * kHalf; i += kThreads) {
    const int pr = i % kHalf, pt = i / kHalf, pc = pt / n_tokens, t = pt % n_tokens;  // pr: threadIdx.x % kHalf
    float sn = 0.f, cs = 1.f;
    if (lim_s[attn_short_pt(pc, t)] > 0)  // fp32 angle, as on the CPU
      sincosf(__fmul_rn(float(dlt_s[attn_short_pt(pc, t)]), inv_f), &sn, &cs);
    rope_s[attn_short_rope(pc, t, pr, n_tokens, HD)] = make_float2(cs, sn);
  }
  __syncthreads();

  // 2. After the wait: the queries and the tiles this forward writes into (both in L2).
  pdl_begin();
  for (int i = 0; i < n_tiles; i++)
    if (tab[i].n > 0 && (sa.early == 0 || (sa.early == 1 && fresh_s[i])))
      load_tile<HD, 1, kThreads>(a, tab[i], kv_s + (2 * i) * kTileElems, kv_s + (2 * i + 1) * kTileElems);
  cp_async_commit();
  // Unrotated queries in fp32; each thread keeps the (row, pair) items it rotates below.
  for (int idx = threadIdx.x; idx < cta_rows * kHalf; idx += kThreads) {
    const int i = idx / kHalf, pr = idx % kHalf;
    const int4 ri = row_s[i];
    const float2 y = load_q_pair<HD>(a, ri.x, ri.y, pr);
    const float y0 = y.x, y1 = y.y;
    part_s[i * HD + pr] = y0;
    part_s[i * HD + pr + kHalf] = y1;
  }

  // 3. The CTA's tiles, one piece (block) after another: rotate the queries, then each warp its
  //    16 keys of every tile of the piece.
  WarpSoftmax<HD> st;
#pragma unroll
  for (int mt = 0; mt < kMT; mt++) {
#pragma unroll
    for (int nt = 0; nt < kNT; nt++) st.o[mt][nt][0] = st.o[mt][nt][1] = st.o[mt][nt][2] = st.o[mt][nt][3] = 0.f;
#pragma unroll
    for (int h = 0; h < 2; h++) st.m[mt][h] = -INFINITY, st.l[mt][h] = 0.f;
  }
  bool mt_on[kMT];
  int lim[kMT][2];
#pragma unroll
  for (int mt = 0; mt < kMT; mt++) {
    mt_on[mt] = gi * 32 + mt * 16 < cta_rows;
    lim[mt][0] = lim[mt][1] = 0;
  }
  int cur = -1;
  for (int k = 0; k < n_tiles; k++) {
    const TileEntry& e = tab[k];
    if (e.n == 0) continue;  // no row of the CTA sees this tile (never loaded)
    const int pc = e.piece - piece0;
    if (pc != cur) {
      if (cur < 0)
        cp_async_wait<0>();  // this thread's copies landed; the barrier below publishes everyone's
      else
        __syncthreads();  // every warp is done with the previous piece's queries
      for (int idx = threadIdx.x; idx < cta_rows * kHalf; idx += kThreads) {
        const int i = idx / kHalf, pr = idx % kHalf, t = row_s[i].x;
        const float2 r = rope_s[attn_short_rope(pc, t, pr, n_tokens, HD)];
        const float y0 = part_s[i * HD + pr], y1 = part_s[i * HD + pr + kHalf];
        const bool on = lim_s[attn_short_pt(pc, t)] > 0;
        q_s[i * kStride + pr] = __float2bfloat16_rn(on ? y0 * r.x - y1 * r.y : 0.f);
        q_s[i * kStride + pr + kHalf] = __float2bfloat16_rn(on ? y1 * r.x + y0 * r.y : 0.f);
      }
      __syncthreads();
#pragma unroll
      for (int mt = 0; mt < kMT; mt++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
          const int row = gi * 32 + mt * 16 + h * 8 + g;
          lim[mt][h] = row < cta_rows ? lim_s[attn_short_pt(pc, row_s[row].x)] : 0;
        }
      cur = pc;
    }
    warp_tile<HD>(st, q_s + gi * 32 * kStride, kv_s + (2 * k) * kTileElems, kv_s + (2 * k + 1) * kTileElems, kw * 16,
                  e.key0 + kw * 16, lim, mt_on, a.scale_log2);
  }
  cp_async_wait<0>();  // (nothing left in flight when a tile was used; all tiles may have been skipped)
  __syncthreads();     // every warp is done with the K/V tiles and the fp32 queries: both are reused

  // 4. The group's 4 warps -> one partial per row (this CTA's), in part_s / cml_s.
#pragma unroll
  for (int mt = 0; mt < kMT; mt++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      st.l[mt][h] += __shfl_xor_sync(0xffffffffu, st.l[mt][h], 1);
      st.l[mt][h] += __shfl_xor_sync(0xffffffffu, st.l[mt][h], 2);
    }
  {
    float* mine = wo_s + size_t(warp) * kMT * kNT * 4 * 32;
#pragma unroll
    for (int mt = 0; mt < kMT; mt++) {
#pragma unroll
      for (int nt = 0; nt < kNT; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) mine[((mt * kNT + nt) * 4 + e) * 32 + lane] = st.o[mt][nt][e];
      if (c == 0)
#pragma unroll
        for (int h = 0; h < 2; h++) wml_s[warp * 32 + mt * 16 + h * 8 + g] = make_float2(st.m[mt][h], st.l[mt][h]);
    }
  }
  __syncthreads();
  // Warp kw of group gi combines n-tiles [kw * kNT / 4, (kw + 1) * kNT / 4) of the group's rows.
#pragma unroll
  for (int mt = 0; mt < kMT; mt++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const int r = mt * 16 + h * 8 + g, row = gi * 32 + r;
      float2 ml[4];
      float mx = -INFINITY;
#pragma unroll
      for (int w = 0; w < 4; w++) {
        ml[w] = wml_s[(gi * 4 + w) * 32 + r];
        mx = fmaxf(mx, ml[w].x);
      }
      const float ref = mx == -INFINITY ? 0.f : mx;
      float f[4], lsum = 0.f;
#pragma unroll
      for (int w = 0; w < 4; w++) {
        f[w] = ml[w].y > 0.f ? exp2f(ml[w].x - ref) : 0.f;
        lsum += ml[w].y * f[w];
      }
#pragma unroll
      for (int nq = 0; nq < kNT / 4; nq++) {
        const int nt = kw * (kNT / 4) + nq;
        float v0 = 0.f, v1 = 0.f;
#pragma unroll
        for (int w = 0; w < 4; w++) {
          const float* src = wo_s + size_t(gi * 4 + w) * kMT * kNT * 4 * 32 + ((mt * kNT + nt) * 4 + h * 2) * 32 + lane;
          v0 += src[0] * f[w];
          v1 += src[32] * f[w];
        }
        *reinterpret_cast<float2*>(part_s + size_t(row) * HD + nt * 8 + 2 * c) = make_float2(v0, v1);
      }
      if (kw == 0 && c == 0) cml_s[row] = make_float2(mx, lsum);
    }

  // 5. The cluster's C partials -> the output: CTA `rank` finishes every C-th quad of the rows.
  cluster_barrier();  // every CTA's partial is complete and visible to the cluster
  constexpr int kQuads = HD / 4;
  for (int item = rank * kThreads + threadIdx.x; item < cta_rows * kQuads; item += n_ranks * kThreads)
    cluster_merge_quad<HD>(a, n_ranks, cml_s, part_s, kvh, item / kQuads, item % kQuads);
  cluster_barrier();  // no CTA leaves while another still reads its shared memory
#endif
}

// Sets the short kernel's shared-memory limit (and the non-portable cluster size above 8) and checks
// that the device runs it: sm_90 code, and a cluster of `cluster` CTAs of the largest short plan
// resident. Returns "" when it can run, else why not (the short path then stays off).
template <int HD, int GROUPS>
std::string prepare_short_kernel(int cluster) {
  void (*kernel)(ShortArgs) = attn_short_kernel<HD, GROUPS>;
  cudaFuncAttributes fa;
  if (cudaFuncGetAttributes(&fa, kernel) != cudaSuccess) return "cudaFuncGetAttributes failed";
  if (fa.binaryVersion < 90) return "no sm_90 code for this device";
  const int bytes = attn_short_smem(HD, GROUPS, kAttnShortMaxTiles, kAttnShortMaxTokens).total;
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) != cudaSuccess)
    return std::to_string(bytes) + " bytes of shared memory refused";
  if (cluster > 8 && cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) != cudaSuccess)
    return "non-portable cluster size refused";
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(cluster, 1, 1);
  cfg.blockDim = dim3(128 * GROUPS, 1, 1);
  cfg.dynamicSmemBytes = bytes;
  cudaLaunchAttribute attr;
  attr.id = cudaLaunchAttributeClusterDimension;
  attr.val.clusterDim.x = cluster, attr.val.clusterDim.y = 1, attr.val.clusterDim.z = 1;
  cfg.attrs = &attr;
  cfg.numAttrs = 1;
  int n = 0;
  if (cudaOccupancyMaxActiveClusters(&n, kernel, &cfg) != cudaSuccess || n < 1)
    return "a cluster of " + std::to_string(cluster) + " CTAs with " + std::to_string(bytes) +
           " bytes of shared memory each cannot be resident";
  return "";
}

template <int HD, int GROUPS>
void launch_short(const ShortArgs& sa, int cluster, int kv_heads, cudaStream_t stream) {
  const size_t bytes = attn_short_smem(HD, GROUPS, sa.tiles, sa.tokens).total;
  launch_cluster_kernel(attn_short_kernel<HD, GROUPS>, dim3(cluster, kv_heads, 1), dim3(128 * GROUPS, 1, 1),
                        dim3(cluster, 1, 1), bytes, stream, sa);
}

}  // namespace attn_dev
}  // namespace cuda
}  // namespace hw
