// CPU kernels: matmul over weights in their stored dtype, and the small fp32 vector ops.
//
// The binary targets x86-64-v3 (AVX2, FMA, F16C); that is the fallback path for every
// kernel. matmul additionally has an AVX-512F path, compiled with a target pragma and
// chosen at run time when the CPU supports it (override: HW_CPU_ISA=avx2|avx512).
//
// matmul is built for decode, which is memory-bound: each thread owns a contiguous range
// of output rows (parallel.h: static split, then the leftovers shared) and streams it once, with a software prefetch a few KiB
// ahead; every weight vector it loads is widened to fp32 (bf16: zero-extend + shift;
// f16: F16C) and applied to all n inputs before the next load, 3 (AVX2) or 4 (AVX-512)
// rows x up to 4 inputs per micro-kernel. For prefill (n > 8) the same micro-kernel runs
// over cache tiles (rows x k x inputs) so that x stays in cache. fp32 accumulation
// everywhere; the weights are never converted or copied as a whole.
#include "kernels.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "../error.h"
#include "cpu_features.h"
#include "parallel.h"
#include "simd_exp.h"

namespace hw::cpu {

// Not (yet) in kernels.h: lets tests and benchmarks pick and name the matmul path.
const char* matmul_isa();
bool set_matmul_isa(const char* name);

namespace {

// ---------------------------------------------------------------------------------------
// Scalar helpers (local copies; tensor.cpp owns the public ones).

inline float bf16_bits_f32(uint16_t v) {
  uint32_t u = uint32_t(v) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline float f16_bits_f32(uint16_t v) {
  return _cvtsh_ss(v);
}

inline size_t elem_bytes(DType t) {
  return t == DType::F32 ? 4 : 2;
}

template <DType DT>
constexpr size_t esize() {
  return DT == DType::F32 ? 4 : 2;
}

template <DType DT>
inline float load1(const uint8_t* row, int64_t k) {
  if constexpr (DT == DType::BF16) {
    uint16_t v;
    std::memcpy(&v, row + 2 * k, 2);
    return bf16_bits_f32(v);
  } else if constexpr (DT == DType::F16) {
    uint16_t v;
    std::memcpy(&v, row + 2 * k, 2);
    return f16_bits_f32(v);
  } else {
    float v;
    std::memcpy(&v, row + 4 * k, 4);
    return v;
  }
}

// One micro-kernel call: y[j*ldy + r] (=|+=) sum_{k<len} W[r][k] * x[j][k] for r < R,
// j < N. W rows are `wstride` bytes apart, x rows `xstride` floats apart.
using MicroFn = void (*)(const uint8_t* w, size_t wstride, int64_t len, const float* x, int64_t xstride, float* y,
                         int64_t ldy, bool accumulate);

constexpr int kMaxR = 4;
constexpr int kMaxN = 4;

struct MatmulIsa {
  const char* name;
  int rmax;                     // rows per micro-kernel call
  int nmax;                     // inputs per micro-kernel call
  MicroFn fn[3][kMaxR][kMaxN];  // [dtype][rows-1][inputs-1]
};

inline int dtype_index(DType t) {
  return t == DType::F32 ? 0 : t == DType::F16 ? 1 : 2;
}

// Software prefetch distance along a thread's weight stream. The rows of a thread are
// contiguous, so each row's prefetch front covers the rows after it and the stream is
// fetched about once. Measured on the 2-core Sapphire Rapids VM (decode step, n=1):
// none 50-57% of the best read bandwidth, 4 KiB ~75%, 8-16 KiB 80-92%; into L2 (T1)
// was as good as or better than into L1.
constexpr int kPrefetchBytes = 8192;
// Weights per work chunk of a parallel matmul: ~10-20 us of streaming per chunk, so handing
// out chunks costs nothing measurable and a descheduled thread holds up little work.
constexpr int64_t kChunkBytes = 256 * 1024;
inline void prefetch_weights(const uint8_t* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T1);
}

// Enough independent accumulators to hide FMA latency (4 cycles x 2 ports).
constexpr int unroll_for(int acc) {
  return acc >= 8 ? 1 : acc >= 4 ? 2 : 4;
}

// ---------------------------------------------------------------------------------------
// AVX2 + FMA + F16C (the baseline of the build).
namespace avx2 {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <DType DT>
inline __m256 load8(const uint8_t* row, int64_t k) {
  if constexpr (DT == DType::BF16) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  } else if constexpr (DT == DType::F16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k)));
  } else {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + k);
  }
}

template <DType DT, int R, int N>
void micro(const uint8_t* w, size_t wstride, int64_t len, const float* x, int64_t xstride, float* y, int64_t ldy,
           bool accumulate) {
  constexpr int U = unroll_for(R * N);
  constexpr size_t ES = esize<DT>();
  // Main step: whole cache lines of every row (one prefetch per line), >= U vectors.
  constexpr int kStep = std::max<int>(8 * U, int(64 / ES));
  __m256 acc[U][R][N];
  for (int u = 0; u < U; ++u)
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < N; ++j) acc[u][r][j] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + kStep <= len; k += kStep) {
    for (int r = 0; r < R; ++r)
      for (int b = 0; b < kStep * int(ES); b += 64) prefetch_weights(w + r * wstride + k * ES + b);
    for (int v = 0; v < kStep / 8; ++v) {
      const int u = v % U;
      __m256 wv[R];
      for (int r = 0; r < R; ++r) wv[r] = load8<DT>(w + r * wstride, k + 8 * v);
      for (int j = 0; j < N; ++j) {
        __m256 xv = _mm256_loadu_ps(x + j * xstride + k + 8 * v);
        for (int r = 0; r < R; ++r) acc[u][r][j] = _mm256_fmadd_ps(wv[r], xv, acc[u][r][j]);
      }
    }
  }
  for (; k + 8 <= len; k += 8) {
    __m256 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = load8<DT>(w + r * wstride, k);
    for (int j = 0; j < N; ++j) {
      __m256 xv = _mm256_loadu_ps(x + j * xstride + k);
      for (int r = 0; r < R; ++r) acc[0][r][j] = _mm256_fmadd_ps(wv[r], xv, acc[0][r][j]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < N; ++j) {
      __m256 s = acc[0][r][j];
      for (int u = 1; u < U; ++u) s = _mm256_add_ps(s, acc[u][r][j]);
      float t = hsum(s);
      for (int64_t kk = k; kk < len; ++kk) t += load1<DT>(w + r * wstride, kk) * x[j * xstride + kk];
      float* dst = y + j * ldy + r;
      *dst = accumulate ? *dst + t : t;
    }
  }
}

}  // namespace avx2

// ---------------------------------------------------------------------------------------
// AVX-512F (+BW/VL for masked 16-bit tail loads), compiled for that target only and
// entered only after a CPUID check.
#if defined(__x86_64__) && defined(__GNUC__)
#define HW_HAVE_AVX512_PATH 1
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq")
// GCC 12 false positives: the intrinsics' `_mm512_undefined_*` self-initialisation.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
namespace avx512 {

template <DType DT>
inline __m512 load16(const uint8_t* row, int64_t k) {
  if constexpr (DT == DType::BF16) {
    __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * k));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else if constexpr (DT == DType::F16) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * k)));
  } else {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + k);
  }
}

// Masked: never touches memory past the row's end (weights may end a mapping).
template <DType DT>
inline __m512 load16_masked(const uint8_t* row, int64_t k, __mmask16 m) {
  if constexpr (DT == DType::BF16) {
    __m256i h = _mm256_maskz_loadu_epi16(m, row + 2 * k);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else if constexpr (DT == DType::F16) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * k));
  } else {
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(row) + k);
  }
}

template <DType DT, int R, int N>
void micro(const uint8_t* w, size_t wstride, int64_t len, const float* x, int64_t xstride, float* y, int64_t ldy,
           bool accumulate) {
  constexpr int U = unroll_for(R * N);
  constexpr size_t ES = esize<DT>();
  constexpr int kStep = 16 * U > int(64 / ES) ? 16 * U : int(64 / ES);
  __m512 acc[U][R][N];
  for (int u = 0; u < U; ++u)
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < N; ++j) acc[u][r][j] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + kStep <= len; k += kStep) {
    for (int r = 0; r < R; ++r)
      for (int b = 0; b < kStep * int(ES); b += 64) prefetch_weights(w + r * wstride + k * ES + b);
    for (int v = 0; v < kStep / 16; ++v) {
      const int u = v % U;
      __m512 wv[R];
      for (int r = 0; r < R; ++r) wv[r] = load16<DT>(w + r * wstride, k + 16 * v);
      for (int j = 0; j < N; ++j) {
        __m512 xv = _mm512_loadu_ps(x + j * xstride + k + 16 * v);
        for (int r = 0; r < R; ++r) acc[u][r][j] = _mm512_fmadd_ps(wv[r], xv, acc[u][r][j]);
      }
    }
  }
  for (; k < len; k += 16) {
    const __mmask16 m = len - k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (len - k)) - 1);
    __m512 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = load16_masked<DT>(w + r * wstride, k, m);
    for (int j = 0; j < N; ++j) {
      __m512 xv = _mm512_maskz_loadu_ps(m, x + j * xstride + k);
      for (int r = 0; r < R; ++r) acc[0][r][j] = _mm512_fmadd_ps(wv[r], xv, acc[0][r][j]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < N; ++j) {
      __m512 s = acc[0][r][j];
      for (int u = 1; u < U; ++u) s = _mm512_add_ps(s, acc[u][r][j]);
      float t = _mm512_reduce_add_ps(s);
      float* dst = y + j * ldy + r;
      *dst = accumulate ? *dst + t : t;
    }
  }
}

}  // namespace avx512
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif
#endif

// ---------------------------------------------------------------------------------------
// Dispatch tables.

#define HW_ROW(NS, DT, R) \
  { NS::micro<DT, R, 1>, NS::micro<DT, R, 2>, NS::micro<DT, R, 3>, NS::micro<DT, R, 4> }
#define HW_DT3(NS, DT)                                          \
  {                                                             \
    HW_ROW(NS, DT, 1), HW_ROW(NS, DT, 2), HW_ROW(NS, DT, 3), {} \
  }
#define HW_DT4(NS, DT) \
  { HW_ROW(NS, DT, 1), HW_ROW(NS, DT, 2), HW_ROW(NS, DT, 3), HW_ROW(NS, DT, 4) }

// AVX2 has 16 vector registers: 3 rows x 4 inputs = 12 accumulators + 3 weights + 1 input
// (no spills). Against 2 rows, measured on the decode step: n=1 equal, n=4 -11%, n=8
// -18%, prefill n=64 -26% time.
const MatmulIsa kAvx2 = {"avx2", 3, 4, {HW_DT3(avx2, DType::F32), HW_DT3(avx2, DType::F16), HW_DT3(avx2, DType::BF16)}};
#ifdef HW_HAVE_AVX512_PATH
// 32 registers: 4 rows x 4 inputs = 16 accumulators (6 rows spill and measured slower).
const MatmulIsa kAvx512 = {
    "avx512", 4, 4, {HW_DT4(avx512, DType::F32), HW_DT4(avx512, DType::F16), HW_DT4(avx512, DType::BF16)}};
#endif
#undef HW_ROW
#undef HW_DT3
#undef HW_DT4

const MatmulIsa* isa_by_name(const char* name) {
  if (!name) return nullptr;
  std::string s(name);
  if (s == "avx2") return &kAvx2;
#ifdef HW_HAVE_AVX512_PATH
  if (s == "avx512" && has_avx512()) return &kAvx512;
#endif
  return nullptr;
}

const MatmulIsa* default_isa() {
  if (const MatmulIsa* forced = isa_by_name(std::getenv("HW_CPU_ISA"))) return forced;
#ifdef HW_HAVE_AVX512_PATH
  if (has_avx512()) return &kAvx512;
#endif
  return &kAvx2;
}

std::atomic<const MatmulIsa*>& current_isa() {
  static std::atomic<const MatmulIsa*> isa{default_isa()};
  return isa;
}

// Rows [r0, r1) of y for all n inputs. Decode (n <= 8): one pass over the rows, each
// weight row read from memory exactly once. Prefill: tiles of rows x k x inputs.
void matmul_rows(const MatmulIsa& isa, MicroFn const (*fns)[kMaxN], const uint8_t* w, size_t es, int64_t in,
                 int64_t out, const float* x, int n, float* y, int64_t r0, int64_t r1) {
  const int R = isa.rmax, N = isa.nmax;
  const size_t wstride = size_t(in) * es;
  int64_t tile_rows, kb, nb;
  if (n <= 2 * N) {
    tile_rows = r1 - r0;
    kb = in;
    nb = n;
  } else {
    kb = std::min<int64_t>(in, 512);                                           // k block
    nb = std::max<int64_t>(N, (96 * 1024 / (kb * 4)) / N * N);                 // x block <= 96 KiB
    tile_rows = std::max<int64_t>(R, (24 * 1024 / int64_t(kb * es)) / R * R);  // W tile <= 24 KiB
  }
  for (int64_t t0 = r0; t0 < r1; t0 += tile_rows) {
    const int64_t t1 = std::min(r1, t0 + tile_rows);
    for (int64_t k0 = 0; k0 < in; k0 += kb) {
      const int64_t len = std::min(kb, in - k0);
      for (int64_t j0 = 0; j0 < n; j0 += nb) {
        const int64_t j1 = std::min<int64_t>(n, j0 + nb);
        for (int64_t r = t0; r < t1; r += R) {
          const int nr = int(std::min<int64_t>(R, t1 - r));
          const uint8_t* wr = w + size_t(r) * wstride + size_t(k0) * es;
          for (int64_t j = j0; j < j1; j += N) {
            const int nx = int(std::min<int64_t>(N, j1 - j));
            fns[nr - 1][nx - 1](wr, wstride, len, x + j * in + k0, in, y + j * out + r, out, k0 > 0);
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
inline float silu1(float g) {
  return g / (1.0f + std::exp(-g));
}

}  // namespace

const char* matmul_isa() {
  return current_isa().load()->name;
}

bool set_matmul_isa(const char* name) {
  const MatmulIsa* isa = isa_by_name(name);
  if (!isa) return false;
  current_isa() = isa;
  return true;
}

void matmul(const Tensor& W, const float* x, int n, float* y) {
  if (W.shape.size() != 2 || W.data == nullptr) throw EngineError("matmul: " + W.name + ": expected a 2-D weight");
  if (n <= 0) return;
  const int64_t out = W.shape[0], in = W.shape[1];
  if (out <= 0 || in <= 0) {
    for (int64_t i = 0; i < int64_t(n) * out; ++i) y[i] = 0.0f;
    return;
  }
  const MatmulIsa& isa = *current_isa().load(std::memory_order_relaxed);
  MicroFn const(*fns)[kMaxN] = isa.fn[dtype_index(W.dtype)];
  const uint8_t* w = static_cast<const uint8_t*>(W.data);
  const size_t es = elem_bytes(W.dtype);

  const int64_t work = out * in * std::min(n, 8);
  if (work < (int64_t(1) << 16) || par::threads() == 1) {
    matmul_rows(isa, fns, w, es, in, out, x, n, y, 0, out);
    return;
  }
  // Contiguous, R-aligned row ranges, one per thread, each streamed front to back in chunks of
  // about kChunkBytes of weights; a thread that finishes early takes the others' last chunks.
  const int64_t R = isa.rmax;
  const int64_t groups = (out + R - 1) / R;
  const int64_t grain = std::max<int64_t>(1, kChunkBytes / (R * in * int64_t(es)));
  par::parallel_for(groups, grain, [&](int64_t g0, int64_t g1) {
    const int64_t r0 = std::min(out, g0 * R), r1 = std::min(out, g1 * R);
    if (r0 < r1) matmul_rows(isa, fns, w, es, in, out, x, n, y, r0, r1);
  });
}

void rmsnorm(const float* x, const float* w, int dim, float eps, float* y) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int i = 0;
  for (; i + 32 <= dim; i += 32) {
    __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
    __m256 v2 = _mm256_loadu_ps(x + i + 16), v3 = _mm256_loadu_ps(x + i + 24);
    a0 = _mm256_fmadd_ps(v0, v0, a0);
    a1 = _mm256_fmadd_ps(v1, v1, a1);
    a2 = _mm256_fmadd_ps(v2, v2, a2);
    a3 = _mm256_fmadd_ps(v3, v3, a3);
  }
  for (; i + 8 <= dim; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    a0 = _mm256_fmadd_ps(v, v, a0);
  }
  float ss = avx2::hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < dim; ++i) ss += x[i] * x[i];
  const float scale = 1.0f / std::sqrt(ss / float(dim) + eps);
  const __m256 sv = _mm256_set1_ps(scale);
  i = 0;
  for (; i + 8 <= dim; i += 8)
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(w + i), _mm256_mul_ps(_mm256_loadu_ps(x + i), sv)));
  for (; i < dim; ++i) y[i] = w[i] * (x[i] * scale);
}

void swiglu(const float* gate, const float* up, int n, float* y) {
  auto run = [&](int64_t b, int64_t e) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    int64_t i = b;
    for (; i + 8 <= e; i += 8) {
      __m256 g = _mm256_loadu_ps(gate + i);
      __m256 ex = exp256(_mm256_xor_ps(g, sign));
      __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, ex));
      _mm256_storeu_ps(y + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
    }
    for (; i < e; ++i) y[i] = silu1(gate[i]) * up[i];
  };
  if (n < (1 << 15) || par::threads() == 1) {
    run(0, n);
    return;
  }
  par::parallel_for((int64_t(n) + 7) / 8, 1024,
                    [&](int64_t c0, int64_t c1) { run(std::min<int64_t>(n, c0 * 8), std::min<int64_t>(n, c1 * 8)); });
}

float dot(const float* a, const float* b, int n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), a1);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), a2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), a3);
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
  float s = avx2::hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy(float a, const float* x, int n, float* y) {
  const __m256 av = _mm256_set1_ps(a);
  int i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

void embed_row(const Tensor& table, int64_t row, float* out) {
  if (table.data == nullptr || table.shape.empty()) throw EngineError("embed_row: " + table.name + ": empty table");
  const int64_t rows = table.shape[0];
  const int64_t cols = table.shape.size() < 2 ? 1 : table.shape[1];
  if (row < 0 || row >= rows)
    throw EngineError("embed_row: " + table.name + ": row " + std::to_string(row) + " out of range [0, " +
                      std::to_string(rows) + ")");
  const uint8_t* p = static_cast<const uint8_t*>(table.data) + size_t(row) * size_t(cols) * elem_bytes(table.dtype);
  int64_t i = 0;
  switch (table.dtype) {
    case DType::F32:
      std::memcpy(out, p, size_t(cols) * 4);
      return;
    case DType::F16:
      for (; i + 8 <= cols; i += 8) _mm256_storeu_ps(out + i, avx2::load8<DType::F16>(p, i));
      for (; i < cols; ++i) out[i] = load1<DType::F16>(p, i);
      return;
    case DType::BF16:
      for (; i + 8 <= cols; i += 8) _mm256_storeu_ps(out + i, avx2::load8<DType::BF16>(p, i));
      for (; i < cols; ++i) out[i] = load1<DType::BF16>(p, i);
      return;
  }
}

}  // namespace hw::cpu
