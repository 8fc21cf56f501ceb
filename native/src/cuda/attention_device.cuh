// Device helpers of the Hogwild attention kernels (attention.cu): the plan pointers and kernel
// arguments, cp.async / ldmatrix / mma.sync wrappers, and the copy of one K/V tile into shared memory.
// Included by attention.cu only (one translation unit); attention_short.cuh uses them too.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "attention_work.h"

namespace hw {
namespace cuda {
namespace attn_dev {

constexpr int kMT = 2;  // 16-row m-tiles per warp group

template <int HD>
__device__ __forceinline__ int kv_swz(int key, int chunk) {
  return attn_kv_swz(key, chunk, HD);
}

struct PlanPtrs {
  const int* base;
  AttnPlanLayout l;
};

struct ChunkArgs {
  PlanPtrs plan;
  int layer, heads, kv_heads, group, page_tokens, rows_padded;
  int pt_shift;  // log2(page_tokens) when it is a power of two (shifts, not divisions, per key), else -1
  size_t page_elems;
  const void* q;
  int q_bf16;
  const __nv_bfloat16* const* pages;
  const float* inv_freq;
  float scale_log2;
  int shares;
  float* part_o;     // [chunk][kv_head][rows_padded][HD]
  float2* part_ml;   // [chunk][kv_head][rows_padded]
  float2* piece_ml;  // [piece][kv_head][rows_padded]
  // One chunk and no shares: the CTA writes the finished rows here ([T][heads][HD]) and no merge
  // kernel runs (null: partials for the merge kernel).
  void* direct_out;
  int out_bf16;
};

// Query elements pr and pr + HD / 2 (a RoPE pair) of (token, head), as fp32 whatever q's type.
template <int HD>
__device__ __forceinline__ float2 load_q_pair(const ChunkArgs& a, int token, int head, int pr) {
  const size_t qi = (size_t(token) * a.heads + head) * HD + pr;
  if (a.q_bf16) {
    const __nv_bfloat16* q = static_cast<const __nv_bfloat16*>(a.q);
    return make_float2(__bfloat162float(q[qi]), __bfloat162float(q[qi + HD / 2]));
  }
  const float* q = static_cast<const float*>(a.q);
  return make_float2(q[qi], q[qi + HD / 2]);
}

__device__ __forceinline__ unsigned smem_addr(const void* p) {
  return unsigned(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::);
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
// D += A (16x16 bf16, row) * B (16x8 bf16, col), fp32 accumulators.
__device__ __forceinline__ void mma_bf16(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ unsigned pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<unsigned*>(&v);
}

// The CTA's shared tables, read once from the plan: its chunk's tile entries (plan tiles tile0 ..
// tile0 + n_tiles - 1, into tab) and, for its k_rows query rows, (token, head, batch row,
// position) (row_s); rows past cta_rows get limit 0 (no key). Strided over the block's threads; the
// caller synchronises.
template <int HD>
__device__ __forceinline__ void load_cta_tables(const ChunkArgs& a, int qt, int kvh, int n_blocks, int tile0,
                                                int n_tiles, int k_rows, int row0, int cta_rows, TileEntry* tab,
                                                int4* row_s, int* lim_s) {
  const PlanPtrs& pl = a.plan;
  const size_t head_off = (size_t(a.layer) * 2 * a.kv_heads + kvh) * a.page_tokens * HD;
  for (int i = threadIdx.x; i < n_tiles; i += blockDim.x)
    tab[i] = attn_tile_entry(pl.base, pl.l, tile0 + i, qt, n_blocks, a.page_tokens, head_off,
                             reinterpret_cast<const uint16_t* const*>(a.pages));
  for (int i = threadIdx.x; i < k_rows; i += blockDim.x) {
    const int qrow = row0 + i;
    if (i < cta_rows) {
      const int t = qrow / a.group;
      row_s[i] = make_int4(t, kvh * a.group + qrow % a.group, pl.base[pl.l.tok_row + t], pl.base[pl.l.tok_pos + t]);
    } else {  // padding rows: zero queries (the caller's) that see no key, for good
      lim_s[i] = 0;
    }
  }
}

// The view lookups of block u for the CTA's rows, one thread a row: each row's key limit and its
// rotation distance p - offset; then a barrier.
__device__ __forceinline__ void view_lookups(const PlanPtrs& pl, int u, int n_rows, int cta_rows, const int4* row_s,
                                             int* lim_s, int* dlt_s) {
  if (int(threadIdx.x) < cta_rows) {
    const int4 ri = row_s[threadIdx.x];
    int delta;
    lim_s[threadIdx.x] = attn_row_limit(pl.base, pl.l, u, n_rows, ri.z, ri.w, &delta);
    dlt_s[threadIdx.x] = delta;
  }
  __syncthreads();
}

// The query rotation by (p - offset) of the CTA's rows, one item a (row, pair); store(i, pr, x0, x1)
// writes row i's rotated pair (x0 at pr, x1 at pr + HD / 2) in the kernel's own layout. A row that
// sees no key of the block gets zeros.
template <int HD, typename Store>
__device__ __forceinline__ void rotate_by_row(const ChunkArgs& a, int cta_rows, int threads, const int4* row_s,
                                              const int* lim_s, const int* dlt_s, Store store) {
  constexpr int kHalf = HD / 2;
#pragma unroll 4
  for (int idx = threadIdx.x; idx < cta_rows * kHalf; idx += threads) {
    const int i = idx / kHalf, pr = idx % kHalf;
    const int4 ri = row_s[i];  // token, head, batch row, position
    const float2 y = load_q_pair<HD>(a, ri.x, ri.y, pr);
    float x0 = 0.f, x1 = 0.f;
    if (lim_s[i] > 0) {
      float sn, cs;
      sincosf(__fmul_rn(float(dlt_s[i]), a.inv_freq[pr]), &sn, &cs);  // fp32 angle, as on the CPU
      x0 = y.x * cs - y.y * sn;
      x1 = y.y * cs + y.x * sn;
    }
    store(i, pr, x0, x1);
  }
}

// The same rotation with one sincosf per (token, pair), applied to the token's rows (they share the
// limit and the distance: attn_token_rows), the rows' q loads issued kG at a time before any is used.
// With fewer (token, pair) items than threads (W = 1 decode: one token, HD / 2 items) each token's
// rows are split over `splits` threads a pair, so that the whole block works.
template <int HD, typename Store>
__device__ __forceinline__ void rotate_by_token(const ChunkArgs& a, int row0, int cta_rows, int threads,
                                                const int4* row_s, const int* lim_s, const int* dlt_s, Store store) {
  constexpr int kHalf = HD / 2;
  constexpr int kG = 8;  // rows whose loads are in flight together
  const int n_tok = attn_cta_tokens(row0, cta_rows, a.group);
  const int splits = attn_rot_splits(n_tok, kHalf, a.group, threads);
  const int n_items = n_tok * kHalf * splits;
  for (int idx = threadIdx.x; idx < n_items; idx += threads) {
    const int pr = idx % kHalf, sp = (idx / kHalf) % splits;
    int i0, i1, r0, r1;
    attn_token_rows(row0, cta_rows, a.group, idx / (kHalf * splits), &i0, &i1);
    attn_split_rows(i0, i1, splits, sp, &r0, &r1);  // this thread's share of the rows
    if (r0 >= r1) continue;
    const bool on = lim_s[i0] > 0;
    float sn = 0.f, cs = 0.f;
    if (on) sincosf(__fmul_rn(float(dlt_s[i0]), a.inv_freq[pr]), &sn, &cs);  // fp32 angle, as on the CPU
    for (int b = r0; b < r1; b += kG) {
      float y0[kG], y1[kG];
#pragma unroll
      for (int j = 0; j < kG; j++) {
        y0[j] = y1[j] = 0.f;
        if (b + j < r1) {
          const int4 ri = row_s[b + j];
          const float2 y = load_q_pair<HD>(a, ri.x, ri.y, pr);
          y0[j] = y.x, y1[j] = y.y;
        }
      }
#pragma unroll
      for (int j = 0; j < kG; j++)
        if (b + j < r1) store(b + j, pr, on ? y0[j] * cs - y1[j] * sn : 0.f, on ? y1[j] * cs + y0[j] * sn : 0.f);
    }
  }
}

// Issues the cp.async copies of one tile's K and V (64 keys; rows past n are zero-filled).
template <int HD, int STAGES, int THREADS>
__device__ __forceinline__ void load_tile(const ChunkArgs& a, const TileEntry& e, __nv_bfloat16* ks,
                                          __nv_bfloat16* vs) {
  constexpr int kParts = HD / 8;  // 16-byte pieces per key row
  constexpr int kIters = kAttnTileKeys * kParts / THREADS;
  static_assert(kIters * THREADS == kAttnTileKeys * kParts, "threads must divide the tile");
  const size_t v_off = size_t(a.kv_heads) * a.page_tokens * HD;
  const int part = threadIdx.x % kParts;
  const int n = e.n, sh = a.pt_shift;
#pragma unroll
  for (int i = 0; i < kIters; i++) {
    const int key = (i * THREADS + threadIdx.x) / kParts;
    // Rows past n are zero-filled (the source is then never read; key 0's address stands in).
    const int kk = key < n ? key : 0;
    const uint16_t* src;
    if (sh >= 0) {  // the usual case: page_tokens a power of two
      src = attn_key_src_pow2(e, kk, sh, HD);
    } else {
      src = attn_key_src(e, kk, a.page_tokens, HD);
    }
    src += part * 8;
    const int bytes = key < n ? 16 : 0;
    const int at = kv_swz<HD>(key, part);
    cp_async16(ks + at, src, bytes);  // K
    cp_async16(vs + at, src + v_off, bytes);
  }
}

}  // namespace attn_dev
}  // namespace cuda
}  // namespace hw
