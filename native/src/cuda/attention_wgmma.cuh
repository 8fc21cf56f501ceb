// The Hogwild attention chunk kernel on Hopper's warpgroup MMA (HW_ATTN_WG; sm_90a only).
//
// Same plan, grid, pieces and outputs as attn_chunk_kernel (attention.cu), but one warpgroup (4
// warps, 128 threads) takes all 64 query rows of a q-tile and all 64 keys of a tile at once:
//   S[64 x 64]  = Q[64 x HD] K^T   wgmma m64n64k16, Q and K from shared memory (HD / 16 steps)
//   O[64 x HD] += P[64 x 64] V     wgmma m64n{HD}k16, P from registers, V from shared memory (4 steps)
// Warp w owns rows 16w .. 16w + 15 (a thread: rows 16w + lane / 4 and that + 8), so each row's
// online softmax lives in one quad of lanes and no warps merge at the end. The cost of a tile is
// then the same for 1 and 64 rows (W x group), where the mma.sync kernel's grows with the rows:
// that growth is what made W = 8 cost 1.4-1.8x W = 1 at 16k (bench/attention-cuda-notes.md).
//
// Shared memory uses the wgmma "128-byte swizzle" canonical layout for K, V and Q: a matrix of
// rows x HD bf16 is stored as HD / 64 column halves of rows x 128 bytes, the 16-byte chunk c of row
// r at ((c ^ (r & 7)) << 4) (the hardware applies the same XOR on address bits [4:6] ^ [7:9], so
// every half starts 1024-byte aligned). K and Q are "K-major" operands (HD contiguous); V is the
// "MN-major" B operand of P V (its N = HD contiguous), read with the transpose bit.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "attention_device.cuh"
#include "attention_work.h"
#include "launch.cuh"

namespace hw {
namespace cuda {
namespace attn_dev {

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define HW_WGMMA_ARCH 1
#endif

constexpr int kWgRows = 64;  // query rows of a q-tile (one warpgroup's M)

__host__ __device__ __forceinline__ int wg_swz(int row, int part, int rows) {
  return attn_wg_swz(row, part, rows);
}

template <int HD, int STAGES>
struct WgSmem {
  static constexpr int kTileElems = kAttnTileKeys * HD;  // one K or V tile
  static constexpr size_t kKv = size_t(STAGES) * 2 * kTileElems * 2;
  static constexpr size_t kQ = size_t(kWgRows) * HD * 2;
  // K/V stages, q, then the small arrays; +1024 so that the kernel can align the start to 1024 bytes.
  static constexpr size_t bytes() {
    return 1024 + kKv + kQ + kWgRows * 4 /* limits */ + kWgRows * 4 /* distances */ + kWgRows * 16 /* row info */ +
           size_t(kAttnMaxChunkTiles) * sizeof(TileEntry);
  }
};

// Shared-memory matrix descriptor (PTX ISA, "Matrix Descriptor Format"): start address, leading and
// stride byte offsets (all >> 4), 128-byte swizzle (mode 1 in bits 62-63).
__device__ __forceinline__ uint64_t wg_desc(const void* p, uint32_t lbo, uint32_t sbo) {
  const uint32_t a = smem_addr(p);
  return uint64_t((a & 0x3FFFF) >> 4) | (uint64_t((lbo & 0x3FFFF) >> 4) << 16) |
         (uint64_t((sbo & 0x3FFFF) >> 4) << 32) | (uint64_t(1) << 62);
}

__device__ __forceinline__ void wg_fence() {
#ifdef HW_WGMMA_ARCH
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wg_commit() {
#ifdef HW_WGMMA_ARCH
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wg_wait0() {
#ifdef HW_WGMMA_ARCH
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
#endif
}
// Makes this thread's shared-memory writes (st.shared, finished cp.async) visible to the async
// proxy that wgmma reads its shared-memory operands through.
__device__ __forceinline__ void fence_async_shared() {
#ifdef HW_WGMMA_ARCH
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// S (+)= Q K^T over 16 of HD: m64n64k16, both operands from shared memory, K-major.
__device__ __forceinline__ void wg_qk(float (&d)[32], uint64_t qa, uint64_t kb, int accumulate) {
#ifdef HW_WGMMA_ARCH
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
      "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
      "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),
        "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),
        "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(qa), "l"(kb), "r"(accumulate));
#endif
}

// O += P V over 16 keys: m64n{HD}k16, P from registers (the mma.sync A layout per warp), V from
// shared memory, MN-major (transpose bit set).
template <int HD>
__device__ __forceinline__ void wg_pv(float (&d)[HD / 2], const unsigned (&a)[4], uint64_t vb);

template <>
__device__ __forceinline__ void wg_pv<64>(float (&d)[32], const unsigned (&a)[4], uint64_t vb) {
#ifdef HW_WGMMA_ARCH
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
      "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
      "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, {%32,%33,%34,%35}, %36, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),
        "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),
        "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(vb), "r"(1));
#endif
}

template <>
__device__ __forceinline__ void wg_pv<128>(float (&d)[64], const unsigned (&a)[4], uint64_t vb) {
#ifdef HW_WGMMA_ARCH
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
      "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,"
      "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,"
      "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, {%64,%65,%66,%67}, %68, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),
        "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),
        "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]),
        "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]),
        "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]),
        "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]),
        "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(vb), "r"(1));
#endif
}

// Issues the cp.async copies of one tile's K and V into the swizzled halves (rows past n zero-filled,
// so that masked keys meet zero V rows, never stale bytes).
template <int HD>
__device__ __forceinline__ void load_tile_wg(const ChunkArgs& a, const TileEntry& e, __nv_bfloat16* ks,
                                             __nv_bfloat16* vs) {
  constexpr int kParts = HD / 8;
  constexpr int kIters = kAttnTileKeys * kParts / 128;
  const size_t v_off = size_t(a.kv_heads) * a.page_tokens * HD;
  const int part = threadIdx.x % kParts;
  const int n = e.n, sh = a.pt_shift;
#pragma unroll
  for (int i = 0; i < kIters; i++) {
    const int key = (i * 128 + threadIdx.x) / kParts;
    const int kk = key < n ? key : 0;
    const uint16_t* src = sh >= 0 ? attn_key_src_pow2(e, kk, sh, HD) : attn_key_src(e, kk, a.page_tokens, HD);
    src += part * 8;
    const int bytes = key < n ? 16 : 0;
    const int at = wg_swz(key, part, kAttnTileKeys);
    cp_async16(ks + at, src, bytes);
    cp_async16(vs + at, src + v_off, bytes);
  }
}

// ROT_TOKEN: the query rotation per (token, pair), as HW_ATTN_ROT_TOKEN does in attn_chunk_kernel;
// false: per (row, pair). The host takes the row loop for one-token problems (W = 1 decode), where
// it measured faster, the token loop otherwise (HW_ATTN_WG_ROT=row|token forces one).
template <int HD, int STAGES, bool ROT_TOKEN>
__global__ void __launch_bounds__(128, 1) attn_wg_kernel(ChunkArgs a) {
#ifdef HW_WGMMA_ARCH
  constexpr int kNT = HD / 8;  // 8-column accumulator slices of O
  constexpr int kTile = WgSmem<HD, STAGES>::kTileElems;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  unsigned char* smem = smem_raw + ((1024 - (smem_addr(smem_raw) & 1023)) & 1023);
  __nv_bfloat16* kv_s = reinterpret_cast<__nv_bfloat16*>(smem);
  __nv_bfloat16* q_s = reinterpret_cast<__nv_bfloat16*>(smem + WgSmem<HD, STAGES>::kKv);
  int* lim_s = reinterpret_cast<int*>(smem + WgSmem<HD, STAGES>::kKv + WgSmem<HD, STAGES>::kQ);
  int* dlt_s = lim_s + kWgRows;
  int4* row_s = reinterpret_cast<int4*>(dlt_s + kWgRows);
  TileEntry* tab = reinterpret_cast<TileEntry*>(row_s + kWgRows);

  const PlanPtrs& pl = a.plan;
  const int qt = blockIdx.x, chunk = blockIdx.y, kvh = blockIdx.z;
  const int n_tokens = pl.base[pl.l.hdr + kHdrTokens];
  const int n_rows = pl.base[pl.l.hdr + kHdrRows];
  const int n_blocks = pl.base[pl.l.hdr + kHdrBlocks];
  const int rows_q = n_tokens * a.group;
  const int row0 = qt * kWgRows;
  const int cta_rows = min(kWgRows, rows_q - row0);

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, c = lane & 3;
  const int r_lo = warp * 16 + g;  // this thread's rows: r_lo and r_lo + 8

  float o[HD / 2];
#pragma unroll
  for (int i = 0; i < HD / 2; i++) o[i] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f}, lp[2] = {0.f, 0.f};
  int lim[2] = {0, 0};

  // The mass each row put on the current piece (for the shares): one quad holds the row.
  auto flush_piece = [&](int piece) {
#pragma unroll
    for (int h = 0; h < 2; h++) {
      float s = lp[h];
      s += __shfl_xor_sync(0xffffffffu, s, 1);
      s += __shfl_xor_sync(0xffffffffu, s, 2);
      const int r = r_lo + 8 * h;
      if (c == 0 && r < cta_rows)
        a.piece_ml[(size_t(piece) * a.kv_heads + kvh) * a.rows_padded + row0 + r] = make_float2(m[h], s);
      lp[h] = 0.f;
    }
  };

  // Rotates the CTA's query rows for block u (by p - offset) into q_s (swizzled), with their limits.
  auto rotate_queries = [&](int u) {
    view_lookups(pl, u, n_rows, cta_rows, row_s, lim_s, dlt_s);
    auto store = [&](int i, int pr, float x0, float x1) {
      q_s[wg_swz(i, pr >> 3, kWgRows) + (pr & 7)] = __float2bfloat16_rn(x0);
      q_s[wg_swz(i, (pr + HD / 2) >> 3, kWgRows) + (pr & 7)] = __float2bfloat16_rn(x1);
    };
    if constexpr (ROT_TOKEN)
      rotate_by_token<HD>(a, row0, cta_rows, 128, row_s, lim_s, dlt_s, store);
    else
      rotate_by_row<HD>(a, cta_rows, 128, row_s, lim_s, dlt_s, store);
    fence_async_shared();
    __syncthreads();
    lim[0] = lim_s[r_lo];
    lim[1] = lim_s[r_lo + 8];
  };

  const int tile0 = pl.base[pl.l.chunk_tile + chunk];
  const int n_tiles = pl.base[pl.l.chunk_tile + chunk + 1] - tile0;
  {
    load_cta_tables<HD>(a, qt, kvh, n_blocks, tile0, n_tiles, kWgRows, row0, cta_rows, tab, row_s, lim_s);
    // Padding rows: zero queries that see no key (the rotation writes only the real rows).
    for (int idx = threadIdx.x; idx < (kWgRows - cta_rows) * (HD / 8); idx += 128)
      *reinterpret_cast<uint4*>(q_s + wg_swz(cta_rows + idx / (HD / 8), idx % (HD / 8), kWgRows)) =
          make_uint4(0u, 0u, 0u, 0u);
    __syncthreads();
  }
  auto visible_from = [&](int k) {
    while (k < n_tiles && tab[k].n == 0) k++;
    return k;
  };
  pdl_begin();
  int prod = visible_from(0), cons = prod;
#pragma unroll
  for (int s = 0; s < STAGES - 1; s++) {
    if (prod < n_tiles) {
      load_tile_wg<HD>(a, tab[prod], kv_s + (2 * s) * kTile, kv_s + (2 * s + 1) * kTile);
      prod = visible_from(prod + 1);
    }
    cp_async_commit();
  }

  int cur_piece = -1;
  for (int k = 0; cons < n_tiles; k++) {
    cp_async_wait<STAGES - 2>();
    fence_async_shared();
    __syncthreads();
    {
      const int s = (k + STAGES - 1) % STAGES;
      if (prod < n_tiles) {
        load_tile_wg<HD>(a, tab[prod], kv_s + (2 * s) * kTile, kv_s + (2 * s + 1) * kTile);
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
    const __nv_bfloat16* ks = kv_s + (2 * stage) * kTile;
    const __nv_bfloat16* vs = kv_s + (2 * stage + 1) * kTile;

    // S = Q K^T: HD / 16 steps of 16 columns; a step's operands start 32 bytes further in the row,
    // the next 64-column half 64 rows x 128 bytes further.
    float sc[32];
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++) {
      const int off = (kk >> 2) * kWgRows * 64 + (kk & 3) * 16;  // elements
      const int koff = (kk >> 2) * kAttnTileKeys * 64 + (kk & 3) * 16;
      wg_qk(sc, wg_desc(q_s + off, 16, 1024), wg_desc(ks + koff, 16, 1024), kk > 0);
    }
    wg_commit();
    wg_wait0();

    // Online softmax (base 2) over the tile's 64 keys: sc[4j + e] is row r_lo (e < 2) or r_lo + 8,
    // key 8j + 2c + (e & 1).
    unsigned pa[4][4];
#pragma unroll
    for (int h = 0; h < 2; h++) {
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < 8; j++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
          const int key = cur.key0 + 8 * j + 2 * c + e;
          float& v = sc[4 * j + 2 * h + e];
          v = key < lim[h] ? v * a.scale_log2 : -INFINITY;
          mx = fmaxf(mx, v);
        }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[h], mx);
      const float ref = m_new == -INFINITY ? 0.f : m_new;
      const float alpha = exp2f(m[h] - ref);
      m[h] = m_new;
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < 8; j++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
          float& v = sc[4 * j + 2 * h + e];
          v = exp2f(v - ref);
          sum += v;
        }
      l[h] = l[h] * alpha + sum;
      lp[h] = lp[h] * alpha + sum;
      if (alpha != 1.f) {
#pragma unroll
        for (int nt = 0; nt < kNT; nt++) o[4 * nt + 2 * h] *= alpha, o[4 * nt + 2 * h + 1] *= alpha;
      }
    }
    // The accumulator layout of keys 16s .. 16s + 15 is the A-register layout of k-step s.
#pragma unroll
    for (int s = 0; s < 4; s++) {
      pa[s][0] = pack_bf16(sc[8 * s + 0], sc[8 * s + 1]);
      pa[s][1] = pack_bf16(sc[8 * s + 2], sc[8 * s + 3]);
      pa[s][2] = pack_bf16(sc[8 * s + 4], sc[8 * s + 5]);
      pa[s][3] = pack_bf16(sc[8 * s + 6], sc[8 * s + 7]);
    }

    // O += P V: 4 steps of 16 keys (16 rows x 128 bytes = 2048 bytes each); the HD / 64 halves of
    // V are 64 keys x 128 bytes apart (the leading byte offset of an MN-major operand).
    wg_fence();
#pragma unroll
    for (int s = 0; s < 4; s++) wg_pv<HD>(o, pa[s], wg_desc(vs + s * 16 * 64, kAttnTileKeys * 128, 1024));
    wg_commit();
    wg_wait0();
    cons = visible_from(cons + 1);
  }
  cp_async_wait<0>();
  if (a.shares && cur_piece >= 0) flush_piece(cur_piece);

    // Each row is complete in its quad: sum l over the quad and write the partial (or the output).
#pragma unroll
  for (int h = 0; h < 2; h++) {
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 1);
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 2);
    const int r = r_lo + 8 * h;
    if (r >= cta_rows) continue;
    const int qrow = row0 + r;
    if (a.direct_out) {
      const int t = qrow / a.group, head = kvh * a.group + qrow % a.group;
      const float inv = l[h] > 0.f ? 1.f / l[h] : 0.f;
      const size_t ob = (size_t(t) * a.heads + head) * HD + 2 * c;
#pragma unroll
      for (int nt = 0; nt < kNT; nt++) {
        const float v0 = o[4 * nt + 2 * h] * inv, v1 = o[4 * nt + 2 * h + 1] * inv;
        if (a.out_bf16)
          *reinterpret_cast<__nv_bfloat162*>(static_cast<__nv_bfloat16*>(a.direct_out) + ob + nt * 8) =
              __floats2bfloat162_rn(v0, v1);
        else
          *reinterpret_cast<float2*>(static_cast<float*>(a.direct_out) + ob + nt * 8) = make_float2(v0, v1);
      }
    } else {
      const size_t prow = (size_t(chunk) * a.kv_heads + kvh) * a.rows_padded + qrow;
      float* dst = a.part_o + prow * HD + 2 * c;
#pragma unroll
      for (int nt = 0; nt < kNT; nt++)
        *reinterpret_cast<float2*>(dst + nt * 8) = make_float2(o[4 * nt + 2 * h], o[4 * nt + 2 * h + 1]);
      if (c == 0) a.part_ml[prow] = make_float2(m[h], l[h]);
    }
  }
#endif
}

// 1 where this build holds the warpgroup-MMA code (sm_90a), 0 elsewhere: the host asks once
// before it launches attn_wg_kernel.
__global__ void attn_wg_probe_kernel(int* out) {
#ifdef HW_WGMMA_ARCH
  *out = 1;
#else
  *out = 0;
#endif
}

}  // namespace attn_dev
}  // namespace cuda
}  // namespace hw
