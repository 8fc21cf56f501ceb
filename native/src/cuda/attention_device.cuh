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
