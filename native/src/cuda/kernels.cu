#include "kernels.h"

#include "cuda_check.h"
#include "launch.cuh"
#include "dtype.cuh"

namespace hw::cuda {

namespace {

__global__ void embed_kernel(const void* table, DType dt, const int* ids, int H, float* x) {
  pdl_begin();
  const int t = blockIdx.x;
  const size_t row = size_t(ids[t]) * H;
  for (int i = threadIdx.x; i < H; i += blockDim.x) x[size_t(t) * H + i] = load_f(table, dt, row + i);
}

// grid (rows, slices): every block sums the squares of its whole row (H floats from L2, a few
// loads per thread in flight at once) and writes only its slice of 256 outputs. Decode has 1-16
// rows: one block per row left 4 blocks on 132 SMs, each walking H serially (10 us at H = 3584).
__global__ void rmsnorm_kernel(const float* x, const int* rows, int H, const float* w, float eps, void* out,
                               DType act) {
  pdl_begin();
  const int i = blockIdx.x;
  const float* xr = x + size_t(rows ? rows[i] : i) * H;
  float ss = 0.0f;
  if ((H & 3) == 0) {  // rows start 16-byte aligned (cudaMalloc base, H a multiple of 4)
    const float4* x4 = reinterpret_cast<const float4*>(xr);
#pragma unroll 4
    for (int j = threadIdx.x; j < H / 4; j += blockDim.x) {
      const float4 v = x4[j];
      ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
  } else {
#pragma unroll 4
    for (int j = threadIdx.x; j < H; j += blockDim.x) ss += xr[j] * xr[j];
  }
  const float inv = rsqrtf(block_sum(ss) / float(H) + eps);
  const int j = blockIdx.y * blockDim.x + threadIdx.x;
  if (j < H) store_f(out, act, size_t(i) * H + j, xr[j] * inv * w[j]);
}

// grid (tokens, head groups): one warp per head (the query heads, then the kv heads; the warp
// of kv head h also writes value head h), kQkvWarps heads per block. One block per token with
// every warp walking 4 heads in turn was 11 us per layer at 7B W = 4 (4 blocks on 132 SMs).
constexpr int kQkvWarps = 4;
__global__ void qkv_post_kernel(QkvPost p, KvLayout kv) {
  pdl_begin();
  const int t = blockIdx.x, lane = threadIdx.x & 31;
  const int h = blockIdx.y * kQkvWarps + (threadIdx.x >> 5);
  if (h >= p.heads + p.kv_heads) return;  // no block-wide synchronisation below
  const int HD = p.head_dim, QD = p.heads * HD, KD = p.kv_heads * HD, half = HD / 2;
  float* row = p.qkv + size_t(t) * (QD + 2 * KD);
  const bool is_k = h >= p.heads;
  const int kh = h - p.heads;
  const int at = is_k ? QD + kh * HD : h * HD;  // this head's offset in the row (and the bias)
  float* v = row + at;
  float* vs = row + QD + KD + kh * HD;  // value head (kv heads only)
  if (p.bias) {
    for (int d = lane; d < HD; d += 32) v[d] += p.bias[at + d];
    if (is_k)
      for (int d = lane; d < HD; d += 32) vs[d] += p.bias[QD + KD + kh * HD + d];
  }
  const float* nw8 = is_k ? p.k_norm : p.q_norm;
  if (nw8) {
    float ss = 0.0f;
    for (int d = lane; d < HD; d += 32) ss += v[d] * v[d];
    const float inv = rsqrtf(warp_sum(ss) / float(HD) + p.eps);
    for (int d = lane; d < HD; d += 32) v[d] = v[d] * inv * nw8[d];
  }
  __syncwarp();  // RoPE below pairs element i with i + half, written by another lane
  if (!is_k) {
    float* qo = p.q_out + size_t(t) * QD + size_t(h) * HD;
    for (int d = lane; d < HD; d += 32) qo[d] = v[d];
    return;
  }
  char* page = static_cast<char*>(kv.pages[p.slot_page[t]]);
  const size_t esz = kv.kv == DType::F32 ? 4 : 2;
  void* kdst = page + esz * kv_offset(p.layer, 0, kh, p.slot_index[t], kv.kv_heads, kv.page_tokens, HD);
  void* vdst = page + esz * kv_offset(p.layer, 1, kh, p.slot_index[t], kv.kv_heads, kv.page_tokens, HD);
  const float pos = float(p.local[t]);
  for (int i = lane; i < half; i += 32) {
    float sn, cs;
    sincosf(pos * p.inv_freq[i], &sn, &cs);  // fp32 angle, as transformers and the CPU
    const float a = v[p.k_paired ? 2 * i : i], b = v[p.k_paired ? 2 * i + 1 : i + half];
    store_f(kdst, kv.kv, i, a * cs - b * sn);
    store_f(kdst, kv.kv, i + half, b * cs + a * sn);
  }
  for (int d = lane; d < HD; d += 32) store_f(vdst, kv.kv, d, vs[d]);
}

__global__ void swiglu_kernel(const float* gu, int I, void* out, DType act, int interleaved8) {
  pdl_begin();
  const int t = blockIdx.y;
  const float* g = gu + size_t(t) * 2 * I;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < I; i += gridDim.x * blockDim.x) {
    const int gi = interleaved8 ? (i >> 3) * 16 + (i & 7) : i, ui = interleaved8 ? gi + 8 : I + i;
    const float x = g[gi];
    store_f(out, act, size_t(t) * I + i, x / (1.0f + expf(-x)) * g[ui]);
  }
}

__global__ void convert_kernel(const float* x, size_t n, void* out, DType act) {
  pdl_begin();
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    store_f(out, act, i, x[i]);
}

// One block per (move, layer, kv head).
__global__ void move_kernel(const int4* moves, int delta, const float* inv_freq, KvLayout kv) {
  pdl_begin();
  const int m = blockIdx.x, l = blockIdx.y, h = blockIdx.z, HD = kv.head_dim, half = HD / 2;
  const int4 mv = moves[m];
  const size_t esz = kv.kv == DType::F32 ? 4 : 2;
  const char* sp = static_cast<const char*>(kv.pages[mv.x]);
  char* dp = static_cast<char*>(kv.pages[mv.z]);
  const void* ks = sp + esz * kv_offset(l, 0, h, mv.y, kv.kv_heads, kv.page_tokens, HD);
  const void* vs = sp + esz * kv_offset(l, 1, h, mv.y, kv.kv_heads, kv.page_tokens, HD);
  void* kd = dp + esz * kv_offset(l, 0, h, mv.w, kv.kv_heads, kv.page_tokens, HD);
  void* vd = dp + esz * kv_offset(l, 1, h, mv.w, kv.kv_heads, kv.page_tokens, HD);
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const float a = load_f(ks, kv.kv, i), b = load_f(ks, kv.kv, i + half);
    if (delta == 0) {
      store_f(kd, kv.kv, i, a);
      store_f(kd, kv.kv, i + half, b);
    } else {
      float sn, cs;
      sincosf(float(delta) * inv_freq[i], &sn, &cs);
      store_f(kd, kv.kv, i, a * cs - b * sn);
      store_f(kd, kv.kv, i + half, b * cs + a * sn);
    }
  }
  for (int d = threadIdx.x; d < HD; d += blockDim.x) store_f(vd, kv.kv, d, load_f(vs, kv.kv, d));
}

__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

__global__ void fill_kernel(void* data, DType dt, size_t n, uint64_t seed, float scale, float shift) {
  pdl_begin();
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const uint64_t r = mix64(seed * 0x9E3779B97F4A7C15ull + i);
    const float u = float(r >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    store_f(data, dt, i, shift + scale * (2.0f * u - 1.0f));
  }
}

int grid_for(size_t n, int threads) {
  const size_t b = (n + threads - 1) / threads;
  return int(b < 65535 * 16 ? (b == 0 ? 1 : b) : 65535 * 16);
}

}  // namespace

void embed(const void* table, DType dt, const int* ids, int T, int H, float* x, cudaStream_t s) {
  if (T == 0) return;
  launch_kernel(embed_kernel, T, 256, 0, s, table, dt, ids, H, x);
  check_launch("embed");
}

void rmsnorm(const float* x, const int* rows, int n, int H, const float* w, float eps, void* out, DType act,
             cudaStream_t s) {
  if (n == 0) return;
  launch_kernel(rmsnorm_kernel, dim3(n, (H + 255) / 256), 256, 0, s, x, rows, H, w, eps, out, act);
  check_launch("rmsnorm");
}

void qkv_post(const QkvPost& p, const KvLayout& kv, cudaStream_t s) {
  if (p.T == 0) return;
  if (p.k_paired && (p.q_norm || p.k_norm)) throw EngineError("qkv_post: K in RoPE pairs cannot take a k norm");
  const int heads = p.heads + p.kv_heads;
  launch_kernel(qkv_post_kernel, dim3(p.T, (heads + kQkvWarps - 1) / kQkvWarps), kQkvWarps * 32, 0, s, p, kv);
  check_launch("qkv_post (bias, q/k norm, RoPE, KV write)");
}

void swiglu(const float* gu, int T, int I, void* out, DType act, cudaStream_t s, bool interleaved8) {
  if (T == 0) return;
  dim3 grid((I + 255) / 256 < 64 ? (I + 255) / 256 : 64, T);
  launch_kernel(swiglu_kernel, grid, 256, 0, s, gu, I, out, act, int(interleaved8));
  check_launch("swiglu");
}

void convert(const float* x, size_t n, void* out, DType act, cudaStream_t s) {
  if (n == 0) return;
  launch_kernel(convert_kernel, grid_for(n, 256), 256, 0, s, x, n, out, act);
  check_launch("convert");
}

void move_tokens(const int4* moves, int n, int delta, const float* inv_freq, const KvLayout& kv, cudaStream_t s) {
  if (n == 0) return;
  move_kernel<<<dim3(n, kv.layers, kv.kv_heads), 64, 0, s>>>(moves, delta, inv_freq, kv);
  check_launch("move_tokens");
}

void fill_random(void* data, DType dt, size_t n, uint64_t seed, float scale, float shift, cudaStream_t s) {
  if (n == 0) return;
  fill_kernel<<<grid_for(n, 256), 256, 0, s>>>(data, dt, n, seed, scale, shift);
  check_launch("fill_random");
}

}  // namespace hw::cuda
