// The device side of L2 ahead (l2_ahead.h): one kernel's share of the asks.
#pragma once
#include "l2_ahead.h"

namespace hw::cuda {

// Span i goes to CTA i % CTAs, thread i / CTAs: every CTA of the grid (and so every SM's TMA
// unit it runs on) takes a share, each thread at most a few spans, one instruction each. The
// asks complete on their own (nothing waits for them). A no-op below sm_90 (no bulk prefetch).
__device__ __forceinline__ void l2_ahead_issue(const L2Ahead& a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const int ctas = int(gridDim.x * gridDim.y * gridDim.z);
  const int cta = int(blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z));
  const char* base = static_cast<const char*>(a.base);
  for (int i = cta + ctas * int(threadIdx.x); i < a.count; i += ctas * int(blockDim.x))
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(base + size_t(i) * a.stride), "r"(a.span));
#endif
}

}  // namespace hw::cuda
