#include "view_attention.h"

#include <cfloat>

#include "cuda_check.h"
#include "launch.cuh"
#include "dtype.cuh"

namespace hw::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kMaxHD = 256;
constexpr int kPer = kMaxHD / 32;  // dims per lane

// One block per (token, head); each warp walks every kWarps-th key with an online softmax,
// lanes hold dims lane, lane + 32, ... The warps merge by log-sum-exp at the end. For a row's
// last token with shares on, a second pass spreads exp(score - lse) over segments and keys.
__global__ void __launch_bounds__(kWarps * 32)
    view_attention_kernel(const float* q, int ld_q, int heads, ViewArrays v, const float* inv_freq, KvLayout kv,
                          int layer, float* out, int layers) {
  pdl_begin();
  const int t = blockIdx.x / heads, h = blockIdx.x % heads;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int HD = kv.head_dim, half = HD / 2, kvh = h / (heads / kv.kv_heads);
  const int r = v.tok_row[t], p = v.tok_pos[t];
  const float scale = rsqrtf(float(HD));
  const size_t esz = kv.kv == DType::F32 ? 4 : 2;
  const size_t k_off = kv_offset(layer, 0, kvh, 0, kv.kv_heads, kv.page_tokens, HD);
  const size_t v_off = kv_offset(layer, 1, kvh, 0, kv.kv_heads, kv.page_tokens, HD);
  const float* qt = q + size_t(t) * ld_q + size_t(h) * HD;

  __shared__ float qr[kMaxHD];
  __shared__ float wm[kWarps], wl[kWarps], wacc[kWarps][kMaxHD];
  float m = -FLT_MAX, l = 0.0f, acc[kPer];
#pragma unroll
  for (int i = 0; i < kPer; i++) acc[i] = 0.0f;

  auto key_ptr = [&](int seg, int j, size_t off) {
    const int page = v.page_ids[v.seg_pages[seg] + j / kv.page_tokens];
    return static_cast<const char*>(kv.pages[page]) + esz * (off + size_t(j % kv.page_tokens) * HD);
  };
  auto rotate_query = [&](int delta) {
    __syncthreads();
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
      float sn, cs;
      sincosf(float(delta) * inv_freq[i], &sn, &cs);
      const float a = qt[i], b = qt[i + half];
      qr[i] = a * cs - b * sn;
      qr[i + half] = b * cs + a * sn;
    }
    __syncthreads();
  };
  auto score = [&](int seg, int j) {
    const void* kp = key_ptr(seg, j, k_off);
    float d = 0.0f;
#pragma unroll
    for (int i = 0; i < kPer; i++) {
      const int dd = lane + 32 * i;
      if (dd < HD) d += qr[dd] * load_f(kp, kv.kv, dd);
    }
    return warp_sum(d) * scale;
  };

  for (int s = v.row_seg[r]; s < v.row_seg[r + 1]; s++) {
    const int visible = min(v.seg_len[s], p - v.seg_offset[s] + 1);
    if (visible <= 0) continue;
    rotate_query(p - v.seg_offset[s]);
    for (int j = warp; j < visible; j += kWarps) {
      const float sc = score(s, j);
      const float mn = fmaxf(m, sc), corr = expf(m - mn), e = expf(sc - mn);
      l = l * corr + e;
      const void* vp = key_ptr(s, j, v_off);
#pragma unroll
      for (int i = 0; i < kPer; i++) {
        const int dd = lane + 32 * i;
        if (dd < HD) acc[i] = acc[i] * corr + e * load_f(vp, kv.kv, dd);
      }
      m = mn;
    }
  }

  if (lane == 0) wm[warp] = m, wl[warp] = l;
#pragma unroll
  for (int i = 0; i < kPer; i++)
    if (lane + 32 * i < HD) wacc[warp][lane + 32 * i] = acc[i];
  __syncthreads();
  float M = -FLT_MAX;
  for (int w = 0; w < kWarps; w++) M = fmaxf(M, wm[w]);
  float L = 0.0f;
  for (int w = 0; w < kWarps; w++) L += wl[w] > 0.0f ? wl[w] * expf(wm[w] - M) : 0.0f;
  const float inv = L > 0.0f ? 1.0f / L : 0.0f;
  for (int d = threadIdx.x; d < HD; d += blockDim.x) {
    float o = 0.0f;
    for (int w = 0; w < kWarps; w++)
      if (wl[w] > 0.0f) o += wacc[w][d] * expf(wm[w] - M);
    out[size_t(t) * heads * HD + size_t(h) * HD + d] = o * inv;
  }
  if (!v.shares || t != v.row_last[r] || !(L > 0.0f)) return;

  // Shares: the last token's probabilities, averaged over heads (per layer, per segment)
  // and over heads and layers (per key, in view order).
  const float lse = M + logf(L);
  const int nseg = v.row_seg[r + 1] - v.row_seg[r];
  float* sh = v.shares + v.share_base[r] + size_t(layer) * nseg;
  float* ka = v.key_att + v.key_base[r];
  int key0 = 0;
  for (int s = v.row_seg[r]; s < v.row_seg[r + 1]; s++) {
    const int visible = min(v.seg_len[s], p - v.seg_offset[s] + 1);
    if (visible <= 0) continue;
    rotate_query(p - v.seg_offset[s]);
    float mass = 0.0f;
    for (int j = warp; j < visible; j += kWarps) {
      const float pr = expf(score(s, j) - lse);
      mass += pr;
      if (lane == 0) atomicAdd(ka + key0 + j, pr / float(heads * layers));
    }
    if (lane == 0) atomicAdd(sh + (s - v.row_seg[r]), mass / float(heads));
    key0 += visible;
  }
}

}  // namespace

void view_attention(const float* q, int ld_q, int heads, const ViewArrays& v, const float* inv_freq, const KvLayout& kv,
                    int layer, float* out, cudaStream_t s) {
  if (v.T == 0) return;
  if (kv.head_dim > kMaxHD) throw EngineError("CUDA attention: head_dim " + std::to_string(kv.head_dim) + " > 256");
  launch_kernel(view_attention_kernel, v.T * heads, kWarps * 32, 0, s, q, ld_q, heads, v, inv_freq, kv, layer, out,
                kv.layers);
  check_launch("view_attention");
}

}  // namespace hw::cuda
