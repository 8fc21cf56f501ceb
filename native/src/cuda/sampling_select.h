// The fast sampling path's selection arithmetic (sampling.cu), shared by the kernels and the
// GPU-free test test_sampling_select, which emulates the kernels thread by thread on the host
// with these functions: the order key and packed candidates, the slice geometry, the slice and
// merge thresholds, the ranks, and the best-first draw over the ranked top-k. The kernels keep
// the shared memory, atomics and barriers; everything here is plain arithmetic.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define HW_SAMPLE_HD __host__ __device__ __forceinline__
#else
#define HW_SAMPLE_HD inline
#endif
#if defined(__CUDA_ARCH__)  // the device pass only (the host compiler would warn about the pragma)
#define HW_SAMPLE_UNROLL16 _Pragma("unroll 16")
#else
#define HW_SAMPLE_UNROLL16
#endif

namespace hw::cuda {

// The largest top_k the fast path takes.
constexpr int kFastTopK = 64;

constexpr int kCandThreads = 128;                    // threads of a slice block
constexpr int kCandVec = 4;                          // float4 loads per thread
constexpr int kCandItems = 4 * kCandVec;             // logits per thread
constexpr int kSliceVecs = kCandThreads * kCandVec;  // float4 per slice (2048 logits)
constexpr int kSliceBuf = kCandItems * kFastTopK;    // a slice's candidates above its threshold, at most
constexpr int kMergeCap = 1024;                      // the finisher's merge buffer (and most slices)

using SampleWord = unsigned long long;

HW_SAMPLE_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}
HW_SAMPLE_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

// Float -> unsigned key with the same order (larger float, larger key). Negatives negate (not
// complement) their bits, so that -0 takes +0's key and the two tie (broken by the lower id, as
// the CPU sampler's float comparison does); no float gets the key 0.
HW_SAMPLE_HD uint32_t order_key(float f) {
  const uint32_t u = float_bits(f);
  return (u & 0x80000000u) ? 0u - u : (u | 0x80000000u);
}
// The float of a key (NaN keys aside: their value is never used).
HW_SAMPLE_HD float key_value(uint32_t k) {
  return bits_float((k & 0x80000000u) ? (k & 0x7fffffffu) : 0u - k);
}

// A candidate is a 64-bit word: the value's order key above, the id's complement below, so that
// a larger word is a better candidate (higher value, then lower id) and no two ids tie. 0 marks
// an empty slot (no id has the complement 0 here); NaN logits get the key 0 and rank last.
HW_SAMPLE_HD SampleWord pack(float v, int id) {
  const uint32_t b = float_bits(v);
  const uint32_t key = (b & 0x7fffffffu) > 0x7f800000u ? 0u : order_key(v);  // NaN: 0 (checked on the bits)
  return (SampleWord(key) << 32) | SampleWord(~uint32_t(id));
}
HW_SAMPLE_HD int packed_id(SampleWord x) {
  return int(~uint32_t(x));
}
HW_SAMPLE_HD uint32_t packed_key(SampleWord x) {
  return uint32_t(x >> 32);
}
HW_SAMPLE_HD float packed_value(SampleWord x) {
  return key_value(packed_key(x));
}

// How many candidates a row keeps on the fast path (1 for greedy), or 0 for the general path.
HW_SAMPLE_HD int fast_k(float temperature, int top_k, int vocab) {
  if (temperature <= 0.0f) return 1;
  if (top_k >= 1 && top_k <= kFastTopK) return top_k < vocab ? top_k : vocab;
  return 0;
}

// ---- Slice geometry. Rows start anywhere when vocab % 4 != 0: the candidates kernel reads
// float4s from the 16-byte boundary at or below the row's start, `off` floats before it.
HW_SAMPLE_HD int row_misalignment(uintptr_t row_address) {
  return int((row_address >> 2) & 3);
}
// Slices of kSliceVecs float4s a row of `vocab` logits needs at any misalignment.
HW_SAMPLE_HD int slices_for(int vocab) {
  const long long vecs = (static_cast<long long>(vocab) + 6) / 4;  // float4s a row spans, from its 16-byte boundary
  return int((vecs + kSliceVecs - 1) / kSliceVecs);
}
// The float4 (from the boundary) that thread `t` of slice `s` loads at its step j < kCandVec.
HW_SAMPLE_HD int cand_vec(int s, int t, int j) {
  return s * kSliceVecs + j * kCandThreads + t;
}
// The id of a float4's first lane.
HW_SAMPLE_HD int vec_first_id(int vec, int off) {
  return 4 * vec - off;
}
// Whether all four lanes of the float4 starting at id `first` lie in the row (one 16-byte load).
HW_SAMPLE_HD bool vec_whole(int first, int vocab) {
  return first >= 0 && first + 3 < vocab;
}
HW_SAMPLE_HD bool id_in_row(int id, int vocab) {
  return id >= 0 && id < vocab;
}
// A lane's candidate word (0 outside the row).
HW_SAMPLE_HD SampleWord lane_word(float v, int id, int vocab) {
  return id_in_row(id, vocab) ? pack(v, id) : 0ull;
}

// ---- Selection.
// The rank of y among a[0..n): how many entries are better (words are unique but for the 0s).
HW_SAMPLE_HD int rank_in(const SampleWord* a, int n, SampleWord y) {
  int r = 0;
  for (int d = 0; d < n; d++) r += a[d] > y;
  return r;
}
// Whether y (an entry of a[0..n)) is the k-th best nonzero entry. Threshold from the slice's
// per-thread maxima: the k-th best of them leaves at least k candidates at or above it, held by
// k threads, so at most kSliceBuf pass. Fewer than k nonzero entries: none is, the threshold stays
// 0 (every candidate passes). The finisher uses it on the slices' heads the same way.
HW_SAMPLE_HD bool is_kth_best(const SampleWord* a, int n, SampleWord y, int k) {
  return y != 0 && rank_in(a, n, y) == k - 1;
}
// Whether candidate x is collected against the threshold tau.
HW_SAMPLE_HD bool passes(SampleWord x, SampleWord tau) {
  return x != 0 && x >= tau;
}
// Slot r of slice s's list in a row's part of the workspace (kFastTopK slots a slice).
HW_SAMPLE_HD size_t list_slot(int s, int r) {
  return size_t(s) * kFastTopK + size_t(r);
}
// The finisher's threshold: the better of the k-th best slice head (lists are best first) and
// the best k-th entry of a slice; either way at least k candidates lie at or above it. The first
// is tight when the best ids are spread over the slices, the second when they crowd in one.
HW_SAMPLE_HD SampleWord merge_threshold(SampleWord kth_head, SampleWord best_kth) {
  return kth_head > best_kth ? kth_head : best_kth;
}
// The merge's entry e < slices * k: slice e / k, rank e % k.
HW_SAMPLE_HD size_t merge_slot(int e, int k) {
  const int s = e / k;
  return list_slot(s, e - s * k);
}
// More candidates above the threshold than the merge buffer holds: the general path instead.
HW_SAMPLE_HD bool merge_overflows(int count) {
  return count > kMergeCap;
}

// ---- The draw over the ranked top-k: the CPU sampler's loops, best first.
// A candidate's weight; mx is the best kept value, inv_t = 1 / temperature.
HW_SAMPLE_HD double draw_weight(float v, double mx, double inv_t) {
  return exp((double(v) - mx) * inv_t);
}
// The rank drawn from top[0..n) (best first; w[r] its weights) with top-p and u in [0, 1):
// NaN candidates (key 0, last) are never kept; top-p keeps the smallest best-first prefix whose
// weight reaches top_p of the kept weight (at least one); the inverse CDF walks it best first.
// Rank 0 when nothing is kept (all NaN), -1 when n == 0. Unrolled over kFastTopK with
// predicates so that the loads of w do not wait on the additions.
HW_SAMPLE_HD int draw_rank(const SampleWord* top, const double* w, int n, float top_p, float u_in) {
  if (n <= 0) return -1;
  int kept = 0;
  while (kept < n && packed_key(top[kept]) != 0) kept++;
  if (kept == 0) return 0;
  double all = 0.0;
  HW_SAMPLE_UNROLL16
  for (int r = 0; r < kFastTopK; r++)
    if (r < kept) all += w[r];
  int keep = kept;
  if (top_p < 1.0f) {
    const double target = double(top_p) * all;
    double cum = 0.0;
    keep = 0;
    HW_SAMPLE_UNROLL16
    for (int r = 0; r < kFastTopK; r++)
      if (r < kept && cum < target) cum += w[r], keep = r + 1;
    keep = keep > 1 ? keep : 1;
  }
  double total = 0.0;
  HW_SAMPLE_UNROLL16
  for (int r = 0; r < kFastTopK; r++)
    if (r < keep) total += w[r];
  double u = double(u_in) * total;
  int pick = -1;
  HW_SAMPLE_UNROLL16
  for (int r = 0; r < kFastTopK; r++) {
    if (r < keep && pick < 0) {
      if (u < w[r])
        pick = r;
      else
        u -= w[r];
    }
  }
  return pick < 0 ? keep - 1 : pick;
}

}  // namespace hw::cuda
