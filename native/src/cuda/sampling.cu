#include "sampling.h"

#include <cfloat>
#include <cstdint>

#include "cuda_check.h"
#include "launch.cuh"

namespace hw::cuda {

namespace {

constexpr int kThreads = 1024;

// Float -> unsigned key with the same order (larger float, larger key).
__device__ __forceinline__ uint32_t order_key(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

template <typename T>
__device__ T block_reduce_sum(T v, T* scratch) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T t = lane < (blockDim.x >> 5) ? scratch[lane] : T(0);
  for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
  return t;
}

// The kept set is {key > cut} plus the first `ties` ids with key == cut (all when ties < 0).
// Radix search (4 bits a pass, from the top) for the key where the count (by_mass = false) or
// the weight (by_mass = true) of the kept candidates, taken best first, reaches `target`.
__device__ void select_cut(const float* l, int vocab, float m, float inv_t, uint32_t in_cut, int in_ties, bool by_mass,
                           double target, uint32_t* cut_out, double* above_out) {
  __shared__ double hist[16];
  __shared__ uint32_t prefix_s;
  __shared__ double above_s;
  if (threadIdx.x == 0) prefix_s = 0, above_s = 0.0;
  __syncthreads();
  for (int shift = 28; shift >= 0; shift -= 4) {
    if (threadIdx.x < 16) hist[threadIdx.x] = 0.0;
    __syncthreads();
    const uint32_t prefix = prefix_s;
    const uint32_t hi_mask = shift == 28 ? 0u : (0xffffffffu << (shift + 4));
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
      const uint32_t k = order_key(l[i]);
      if (k < in_cut) continue;  // outside the set kept by an earlier cut (ties at in_cut: approximated below)
      if ((k & hi_mask) != (prefix & hi_mask)) continue;
      const double w = by_mass ? exp((double(l[i]) - m) * inv_t) : 1.0;
      atomicAdd(&hist[(k >> shift) & 15u], w);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      double acc = above_s;
      int d = 15;
      for (; d > 0; d--) {
        if (acc + hist[d] >= target) break;
        acc += hist[d];
      }
      prefix_s = (prefix & hi_mask) | (uint32_t(d) << shift);
      above_s = acc;
    }
    __syncthreads();
  }
  *cut_out = prefix_s;
  *above_out = above_s;
  (void)in_ties;
}

__global__ void sample_kernel(const float* logits, int vocab, const RowSampling* params, int* out) {
  pdl_begin();
  const RowSampling p = params[blockIdx.x];
  const float* l = logits + size_t(p.row) * vocab;
  __shared__ float fred[32];
  __shared__ int ired[32];
  __shared__ double dred[32];
  __shared__ uint32_t cut_s;
  __shared__ int ties_s;

  // Argmax (lowest id on ties): greedy, and the maximum for the softmax.
  float best = -FLT_MAX;
  int id = 0x7fffffff;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x)
    if (l[i] > best) best = l[i], id = i;
  for (int o = 16; o > 0; o >>= 1) {
    const float b2 = __shfl_xor_sync(0xffffffffu, best, o);
    const int i2 = __shfl_xor_sync(0xffffffffu, id, o);
    if (b2 > best || (b2 == best && i2 < id)) best = b2, id = i2;
  }
  if ((threadIdx.x & 31) == 0) fred[threadIdx.x >> 5] = best, ired[threadIdx.x >> 5] = id;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < int(blockDim.x >> 5); w++)
      if (fred[w] > best || (fred[w] == best && ired[w] < id)) best = fred[w], id = ired[w];
    fred[0] = best, ired[0] = id;
  }
  __syncthreads();
  const float m = fred[0];
  if (p.temperature <= 0.0f) {
    if (threadIdx.x == 0) out[blockIdx.x] = ired[0];
    return;
  }
  const float inv_t = 1.0f / p.temperature;

  // Top-k: the k best ids (ties at the k-th value by the lowest ids).
  uint32_t cut = 0;
  int ties = -1;  // -1: every id with key == cut is kept
  if (p.top_k > 0 && p.top_k < vocab) {
    double above;
    uint32_t c;
    select_cut(l, vocab, m, inv_t, 0, -1, false, double(p.top_k), &c, &above);
    cut = c;
    ties = p.top_k - int(above);
  }
  auto kept = [&](int i, uint32_t k, int& tie_rank) {
    return k > cut || (k == cut && (ties < 0 || tie_rank++ < ties));
  };

  // Ties at the cut are taken in id order: each thread counts them over a contiguous range.
  const int chunk = (vocab + blockDim.x - 1) / blockDim.x;
  const int lo = threadIdx.x * chunk, hi = min(vocab, lo + chunk);
  auto tie_base = [&](uint32_t c) {  // ties with key == c before this thread's range
    int n = 0;
    for (int i = lo; i < hi; i++) n += order_key(l[i]) == c;
    __shared__ int scan[kThreads];
    scan[threadIdx.x] = n;
    __syncthreads();
    int before = 0;
    for (int t = 0; t < int(threadIdx.x); t++) before += scan[t];
    __syncthreads();
    return before;
  };
  int base = tie_base(cut);
  auto weight_of_kept = [&]() {
    double s = 0.0;
    int r = base;
    for (int i = lo; i < hi; i++) {
      const uint32_t k = order_key(l[i]);
      if (kept(i, k, r)) s += exp((double(l[i]) - m) * inv_t);
    }
    return block_reduce_sum(s, dred);
  };
  double all = weight_of_kept();

  // Top-p: the smallest best-first prefix of the kept set whose weight reaches p * all.
  if (p.top_p < 1.0f) {
    double above;
    uint32_t c;
    select_cut(l, vocab, m, inv_t, cut, ties, true, double(p.top_p) * all, &c, &above);
    if (threadIdx.x == 0) {
      cut_s = c;
      const double w = exp((double(__uint_as_float((c & 0x80000000u) ? (c & 0x7fffffffu) : ~c)) - m) * inv_t);
      int need = int(ceil((double(p.top_p) * all - above) / w - 1e-12));
      ties_s = need < 1 ? 1 : need;
    }
    __syncthreads();
    const uint32_t c2 = cut_s;
    // Ties at the new cut: within the earlier top-k cut's ties when both cuts coincide.
    if (c2 > cut || ties < 0)
      ties = ties_s;
    else
      ties = min(ties, ties_s);
    cut = c2;
    base = tie_base(cut);
    all = weight_of_kept();
  }

  // Inverse CDF over the kept ids in id order.
  double s = 0.0;
  {
    int r = base;
    for (int i = lo; i < hi; i++) {
      const uint32_t k = order_key(l[i]);
      if (kept(i, k, r)) s += exp((double(l[i]) - m) * inv_t);
    }
  }
  __shared__ double part[kThreads];
  part[threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    const double target = double(p.u) * all;
    double acc = 0.0;
    int t = 0;
    for (; t < int(blockDim.x) - 1; t++) {
      if (acc + part[t] > target) break;
      acc += part[t];
    }
    // Walk thread t's range.
    const int tlo = t * chunk, thi = min(vocab, tlo + chunk);
    int r = 0;
    for (int i = 0; i < tlo; i++) r += order_key(l[i]) == cut;
    int pick = -1, last = -1;
    for (int i = tlo; i < thi; i++) {
      const uint32_t k = order_key(l[i]);
      if (!kept(i, k, r)) continue;
      last = i;
      acc += exp((double(l[i]) - m) * inv_t);
      if (acc > target) {
        pick = i;
        break;
      }
    }
    if (pick < 0) pick = last >= 0 ? last : ired[0];
    out[blockIdx.x] = pick;
  }
}

}  // namespace

void sample_rows(const float* logits, int n, int vocab, const RowSampling* params, int* out, cudaStream_t s) {
  if (n == 0) return;
  launch_kernel(sample_kernel, n, kThreads, 0, s, logits, vocab, params, out);
  check_launch("sample_rows");
}

}  // namespace hw::cuda
