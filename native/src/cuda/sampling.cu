#include "sampling.h"

#include <algorithm>
#include <cfloat>
#include <cstdint>
#include <string>

#include "cuda_check.h"
#include "error.h"
#include "launch.cuh"
#include "sampling_select.h"

namespace hw::cuda {

namespace {

constexpr int kThreads = 1024;

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

// The general path (any params): one block of kThreads walks the whole row, a few passes for
// each cut. `out` is the row's slot.
__device__ void sample_row_general(const float* logits, int vocab, const RowSampling& p, int* out) {
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
  if (threadIdx.x == 0 && ired[0] == 0x7fffffff)
    ired[0] = 0;  // no logit above -FLT_MAX (all -inf / NaN): id 0, as the CPU
  __syncthreads();
  const float m = fred[0];
  if (p.temperature <= 0.0f) {
    if (threadIdx.x == 0) *out = ired[0];
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
      const double w = exp((double(key_value(c)) - m) * inv_t);
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
    *out = pick;
  }
}

// ---- The fast path (greedy, or 1 <= top_k <= kFastTopK): candidates, geometry, thresholds and
// the draw are in sampling_select.h (shared with the GPU-free test test_sampling_select).

using u64 = SampleWord;

__device__ u64 block_max(u64 v, u64* scratch) {
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < int(blockDim.x >> 5) ? scratch[lane] : 0ull;
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Grid (rows, slices): block (i, s) writes the best k candidates of slice s of row params[i].row,
// best first, to ws[(i * slices + s) * kFastTopK ...], empty slots (0) after the slice's last id.
// Threshold trick: with every thread's own best, the k-th best of those leaves at least k
// candidates at or above it, all held by k threads, so at most kSliceBuf to rank.
__global__ void __launch_bounds__(kCandThreads)
    candidates_kernel(const float* logits, int vocab, int slices, const RowSampling* params, u64* ws) {
  pdl_begin();
  const RowSampling p = params[blockIdx.x];
  const int k = fast_k(p.temperature, p.top_k, vocab);
  if (k == 0) return;
  // Rows start anywhere when vocab % 4 != 0: float4 loads from the 16-byte boundary below.
  const float* row = logits + size_t(p.row) * vocab;
  const int off = row_misalignment(reinterpret_cast<uintptr_t>(row));
  const float* base = row - off;
  u64 x[kCandItems];
  u64 best = 0;
#pragma unroll
  for (int j = 0; j < kCandVec; j++) {
    const int q = cand_vec(blockIdx.y, threadIdx.x, j);
    const int i0 = vec_first_id(q, off);
    float v[4];
    if (vec_whole(i0, vocab)) {
      const float4 f = *reinterpret_cast<const float4*>(base + 4 * q);
      v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
    } else {
#pragma unroll
      for (int c = 0; c < 4; c++) v[c] = id_in_row(i0 + c, vocab) ? row[i0 + c] : 0.0f;
    }
#pragma unroll
    for (int c = 0; c < 4; c++) {
      x[4 * j + c] = lane_word(v[c], i0 + c, vocab);
      best = max(best, x[4 * j + c]);
    }
  }
  u64* dst = ws + (size_t(blockIdx.x) * slices + blockIdx.y) * kFastTopK;
  __shared__ u64 tops[kCandThreads];
  if (k == 1) {
    best = block_max(best, tops);
    if (threadIdx.x == 0) dst[0] = best;
    return;
  }
  __shared__ u64 buf[kSliceBuf];
  __shared__ u64 tau_s;
  __shared__ int count_s;
  tops[threadIdx.x] = best;
  if (threadIdx.x == 0) tau_s = 0, count_s = 0;
  __syncthreads();
  // Fewer than k threads with a candidate: the threshold stays 0 (all of them).
  if (is_kth_best(tops, kCandThreads, best, k)) tau_s = best;
  __syncthreads();
  const u64 tau = tau_s;
#pragma unroll
  for (int i = 0; i < kCandItems; i++)
    if (passes(x[i], tau)) buf[atomicAdd(&count_s, 1)] = x[i];
  __syncthreads();
  const int m = count_s;
  for (int c = threadIdx.x; c < m; c += kCandThreads) {
    const u64 y = buf[c];
    const int r = rank_in(buf, m, y);
    if (r < k) dst[r] = y;
  }
  for (int r = m + threadIdx.x; r < k; r += kCandThreads) dst[r] = 0;
}

// A fast row's merge and draw, by the finisher's block: the exact top-k of the slices' lists,
// top-p over it best first, and the inverse-CDF draw best first (the CPU sampler's order).
// Returns false (the same in every thread) when more candidates than kMergeCap lie above the
// threshold (at most k * k, rarely more than 2k): the caller takes the general path instead.
__device__ bool finish_fast(const u64* cand, int slices, int k, const RowSampling& p, int* out) {
  __shared__ u64 buf[kMergeCap];
  __shared__ u64 top[kFastTopK];
  __shared__ double w[kFastTopK];
  __shared__ u64 tau_s;
  __shared__ int count_s;
  // The threshold (merge_threshold): the k-th best slice head and the best k-th entry.
  if (threadIdx.x == 0) tau_s = 0, count_s = 0;
  u64 kth = 0;
  for (int s = threadIdx.x; s < slices; s += blockDim.x) {
    buf[s] = cand[list_slot(s, 0)];
    kth = max(kth, cand[list_slot(s, k - 1)]);
  }
  kth = block_max(kth, top);  // syncs: the heads are in buf
  for (int s = threadIdx.x; s < slices; s += blockDim.x)
    if (is_kth_best(buf, slices, buf[s], k)) tau_s = buf[s];
  __syncthreads();
  const u64 tau = merge_threshold(tau_s, kth);
  for (int e = threadIdx.x; e < slices * k; e += blockDim.x) {
    const u64 y = cand[merge_slot(e, k)];
    if (passes(y, tau)) {
      const int at = atomicAdd(&count_s, 1);
      if (at < kMergeCap) buf[at] = y;
    }
  }
  __syncthreads();
  const int m = count_s;
  if (merge_overflows(m)) return false;
  for (int c = threadIdx.x; c < m; c += blockDim.x) {
    const u64 y = buf[c];
    const int r = rank_in(buf, m, y);
    if (r < k) top[r] = y;
  }
  __syncthreads();
  const int n = min(m, k);
  if (p.temperature <= 0.0f) {
    if (threadIdx.x == 0) *out = n > 0 ? packed_id(top[0]) : 0;
    return true;
  }
  const double mx = packed_value(top[0]), inv_t = 1.0 / double(p.temperature);
  for (int r = threadIdx.x; r < n; r += blockDim.x) w[r] = draw_weight(packed_value(top[r]), mx, inv_t);
  __syncthreads();
  if (threadIdx.x == 0) {
    // The CPU sampler's loops, serial in its order (the same sums).
    const int r = draw_rank(top, w, n, p.top_p, p.u);
    *out = r >= 0 ? packed_id(top[r]) : 0;
  }
  return true;
}

// One block per row: fast rows merge the candidates kernel's lists (when `fast`); the others,
// and fast rows whose merge overflows, walk the whole row.
__global__ void __launch_bounds__(kThreads, 1)
    finish_kernel(const float* logits, int vocab, int slices, const RowSampling* params, const u64* ws, int* out,
                  bool fast) {
  pdl_begin();
  const RowSampling p = params[blockIdx.x];
  const int k = fast ? fast_k(p.temperature, p.top_k, vocab) : 0;
  if (k > 0 && finish_fast(ws + size_t(blockIdx.x) * slices * kFastTopK, slices, k, p, out + blockIdx.x)) return;
  sample_row_general(logits, vocab, p, out + blockIdx.x);
}

int g_force_slow = 0;

}  // namespace

size_t sample_workspace_entries(int n, int vocab) {
  return size_t(std::max(n, 0)) * size_t(slices_for(vocab)) * kFastTopK;
}

void sampling_force_slow(bool on) {
  g_force_slow = on;
}

void sample_rows(const float* logits, int n, int vocab, const RowSampling* params, int* out, const SampleWorkspace& ws,
                 cudaStream_t s) {
  if (n == 0) return;
  if (vocab <= 0) throw EngineError("sample_rows: vocab " + std::to_string(vocab) + " (must be positive)");
  const int slices = slices_for(vocab);
  static const bool env_fast = switch_on("HW_SAMPLE_FAST");
  // Past kMergeCap slices (2M logits) the finisher cannot merge them: the general path then.
  const bool fast = env_fast && !g_force_slow && slices <= kMergeCap;
  if (fast) {
    const size_t need = sample_workspace_entries(n, vocab);
    if (ws.cand == nullptr || ws.capacity < need)
      throw EngineError("sample_rows: the workspace holds " + std::to_string(ws.cand ? ws.capacity : 0) +
                        " candidates; " + std::to_string(n) + " rows of vocab " + std::to_string(vocab) + " need " +
                        std::to_string(need) + " (sample_workspace_entries)");
    launch_kernel(candidates_kernel, dim3(n, slices), kCandThreads, 0, s, logits, vocab, slices, params, ws.cand);
    check_launch("sample_rows: candidates_kernel");
  }
  launch_kernel(finish_kernel, n, kThreads, 0, s, logits, vocab, slices, params, ws.cand, out, fast);
  check_launch(fast ? "sample_rows: finish_kernel" : "sample_rows: finish_kernel (general path only)");
}

}  // namespace hw::cuda
