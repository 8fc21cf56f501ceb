// Loads and stores of the three element types (fp32, bf16, fp16) as fp32.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "../tensor.h"

namespace hw::cuda {

__device__ __forceinline__ float load_f(const void* p, DType dt, size_t i) {
  switch (dt) {
    case DType::BF16:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    case DType::F16:
      return __half2float(static_cast<const __half*>(p)[i]);
    default:
      return static_cast<const float*>(p)[i];
  }
}

__device__ __forceinline__ void store_f(void* p, DType dt, size_t i, float v) {
  switch (dt) {
    case DType::BF16:
      static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v);
      break;
    case DType::F16:
      static_cast<__half*>(p)[i] = __float2half_rn(v);
      break;
    default:
      static_cast<float*>(p)[i] = v;
      break;
  }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over a block of up to 1024 threads (blockDim a multiple of 32); every thread gets it.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float part[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) part[warp] = v;
  __syncthreads();
  float t = lane < nw ? part[lane] : 0.0f;
  return warp_sum(t);
}

// Element offset of (layer, K=0/V=1, head, index) inside one page.
__device__ __forceinline__ size_t kv_offset(int layer, int which, int head, int index, int kv_heads, int page_tokens,
                                            int head_dim) {
  return ((size_t(layer) * 2 + which) * kv_heads + head) * size_t(page_tokens) * head_dim + size_t(index) * head_dim;
}

}  // namespace hw::cuda
