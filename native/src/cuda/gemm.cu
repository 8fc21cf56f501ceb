#include "gemm.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdlib>
#include <string>

#include "../error.h"
#include "cublas_loader.h"
#include "cuda_check.h"
#include "dtype.cuh"
#include "gemm_split.h"
#include "kernels.h"
#include "launch.cuh"

namespace hw::cuda {

namespace {

bool g_force_cublas = false;

template <typename T16>
__device__ __forceinline__ void mma16816(float* c, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                         uint32_t b1) {
  if constexpr (std::is_same_v<T16, __nv_bfloat16>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  }
}

constexpr int kWarps = kGemmWarps;  // warps per block; they split K and are summed in shared memory
constexpr int kMaxSplits = 8;

int g_force_tiles = 0;  // tests: 1 or 2 tiles per block whatever N (0: decode_tiles or HW_GEMM_TILES)
int g_force_split = 0;  // tests: splits of K asked for (1: none; 0: HW_GEMM_SPLIT, else the cost model)

// 16-byte loads as volatile asm: the MMAs are volatile asm too, so the compiler keeps the source
// order (every load of an unrolled step issued before its first MMA). With plain __ldg it sank
// each load next to its MMA (seen in the SASS: 3 loads in flight, then load/MMA pairs), which
// left a warp about one 16-byte load in flight and the decode GEMM latency-bound.
__device__ __forceinline__ uint4 ldg16(const uint4* p) {
  uint4 r;
  asm volatile("ld.global.nc.v4.u32 {%0,%1,%2,%3}, [%4];\n" : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
  return r;
}
// Weights are read once per step: keep them out of L1 (the activations, read by every warp, stay).
// (The L2::256B prefetch hint helped only with 8 pieces in flight, which lose to 4: gemm_split.h.)
__device__ __forceinline__ uint4 ldg16_stream(const uint4* p) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "l"(p));
  return r;
}

// The SwiGLU epilogue of a gate/up GEMM (out null: none). The weight rows are interleaved in 8s
// (rows 16j..16j+7 = gate rows 8j..8j+7, rows 16j+8..16j+15 = the same up rows; gemm.h), so a
// two-tile block holds gate column 8j + c in tile 0 and up column 8j + c in tile 1 and writes
// out[m][8j + c] = silu(gate) * up itself: no fp32 gate/up output, no swiglu launch.
struct SwigluArgs {
  void* out;  // [M, N / 2] in the weights' 16-bit type: the down_proj's input
};

// The qkv GEMM's epilogue (gemm.h's gemm_qkv; p.q_out null: none): what qkv_post does for a model
// without q/k norms, from the GEMM's final sums. K's weight rows are stored in RoPE pairs (row 2i
// of a head = its row i, row 2i + 1 = its row i + half), so the pair that a rotation mixes sits in
// adjacent output columns of one tile.
struct QkvArgs {
  QkvPost p;  // p.qkv unused; p.k_paired set
  KvLayout kv;
};

// Output columns n, n + 1 (n even, one 8-column tile) of token m: biases added; q copied out
// unrotated; K's pair (i, i + half) rotated at the token's block-local index and written to its
// page slot; V written. The same arithmetic as qkv_post_kernel.
__device__ __forceinline__ void qkv_pair(const QkvArgs& a, int m, int n, float y0, float y1) {
  const QkvPost& p = a.p;
  const int HD = p.head_dim, QD = p.heads * HD, KD = p.kv_heads * HD;
  if (p.bias) y0 += p.bias[n], y1 += p.bias[n + 1];
  if (n < QD) {
    float* q = p.q_out + size_t(m) * QD + n;
    q[0] = y0, q[1] = y1;
    return;
  }
  const bool is_k = n < QD + KD;
  const int col = n - QD - (is_k ? 0 : KD), kh = col / HD, c = col % HD;
  char* page = static_cast<char*>(a.kv.pages[p.slot_page[m]]);
  const size_t esz = a.kv.kv == DType::F32 ? 4 : 2;
  void* dst = page + esz * kv_offset(p.layer, is_k ? 0 : 1, kh, p.slot_index[m], a.kv.kv_heads, a.kv.page_tokens, HD);
  if (is_k) {
    const int i = c / 2, half = HD / 2;
    float sn, cs;
    sincosf(float(p.local[m]) * p.inv_freq[i], &sn, &cs);  // fp32 angle, as transformers and the CPU
    store_f(dst, a.kv.kv, i, y0 * cs - y1 * sn);
    store_f(dst, a.kv.kv, i + half, y1 * cs + y0 * sn);
  } else {
    store_f(dst, a.kv.kv, c, y0);
    store_f(dst, a.kv.kv, c + 1, y1);
  }
}

// What a decode kernel does with its final sums: store (or add) them to y, the SwiGLU, the qkv post.
constexpr int kEpiStore = 0, kEpiSwiglu = 1, kEpiQkv = 2;

template <typename T16>
__device__ __forceinline__ T16 to_t16(float v);
template <>
__device__ __forceinline__ __nv_bfloat16 to_t16<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
template <>
__device__ __forceinline__ __half to_t16<__half>(float v) {
  return __float2half_rn(v);
}

// The one-tile variant for M <= 8 is held to 64 registers (4 resident blocks per SM, not 3): with
// 3, the 448 blocks of a 7B o_proj / down_proj ran as one full wave plus a nearly empty one
// (H200, ncu, 2026-12-02 14:30 UTC: o + down 49.0 us a layer, was 58.8; down 3.5 TB/s).
// The two-tile variant for M <= 8 is held to 80 (3 blocks per SM, as before the split-K fixup and
// a since removed norm epilogue added their registers); the variants for M > 8 to 128 (2).
template <int TILES, bool HI>
constexpr int kMinBlocks = !HI ? (TILES == 1 ? 4 : 3) : 2;

// Block: TILES x 8 output columns (weight rows) over the pieces [split_range) of K of split
// blockIdx.y. Lane (g = lane/4, q = lane%4) loads 8 consecutive k of weight row g of each tile
// (16 bytes) and the same 8 k of x rows g and g + 8 (row g + 8 only when HI: with M <= 8 the
// MMA's upper 8 rows are zeros, half the activation loads and registers), kGemmUnroll pieces in
// flight per lane. Rows g >= M get zeros instead of loads (they reach no output).
// The MMA sums over its 16 k slots in any order, so A and B only need the same k-to-slot
// mapping: slots (2q, 2q+1 | 2q+8, 2q+9) take k (0,1 | 2,3) of the piece in the first MMA and
// (4,5 | 6,7) in the second. Requires K % 8 == 0 (16-byte pieces).
// Split-K (gridDim.y > 1): each block stores its partial tile in `partials`; the last block of a
// column tile to arrive (counted in `counters`, which it sets back to 0) adds the partials in
// split order and writes y, so the result does not depend on which block came last.
// EPI kEpiSwiglu (two tiles, weight rows interleaved as SwigluArgs says) and kEpiQkv (K rows in
// RoPE pairs, QkvArgs): Y is not written; the block's final sums (after the split fixup) go
// through shared memory, so that one thread holds both values it combines (gate and up: tile 0
// and tile 1; a RoPE pair: columns 2c and 2c + 1).
template <typename T16, int TILES, bool HI, int EPI = kEpiStore>
__global__ void __launch_bounds__(kWarps * 32, (kMinBlocks<TILES, HI>))
    gemm_decode_kernel(const T16* __restrict__ W, const T16* __restrict__ X, float* __restrict__ Y, int M, int N, int K,
                       int accumulate, int split_len, float* __restrict__ partials, int* __restrict__ counters,
                       SwigluArgs sw, QkvArgs qa) {
  static_assert(EPI != kEpiSwiglu || TILES == 2, "the SwiGLU epilogue pairs tile 0 (gate) with tile 1 (up)");
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
  const int n0 = blockIdx.x * 8 * TILES;
  float acc[TILES][4];
#pragma unroll
  for (int t = 0; t < TILES; t++) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.0f;
  const uint4* wrow[TILES];
  bool wok[TILES];
#pragma unroll
  for (int t = 0; t < TILES; t++) {
    const int n = n0 + t * 8 + g;
    wok[t] = n < N;
    wrow[t] = reinterpret_cast<const uint4*>(W + size_t(wok[t] ? n : 0) * K);
  }
  pdl_begin();
  const uint4* x0 = reinterpret_cast<const uint4*>(X + size_t(g) * K);
  const uint4* x1 = reinterpret_cast<const uint4*>(X + size_t(g + 8) * K);
  const bool lo_row = g < M, hi_row = g + 8 < M;
  const PieceRange range = split_range(K / 8, split_len, blockIdx.y);
  const uint4 zero = make_uint4(0, 0, 0, 0);

  constexpr int U = kGemmUnroll;
  for (int step = 0; warp_piece(range.begin, warp, U, step, 0, 0) < range.end; step++) {
    uint4 a_lo[U], a_hi[U], b[U][TILES];
    // Past the range's end a lane reads the range's first piece (valid memory) and zeroes its
    // activations after the load; weight rows past N (wok false) read row 0 and feed outputs
    // that are not stored.
#pragma unroll
    for (int u = 0; u < U; u++) {
      const int piece = warp_piece(range.begin, warp, U, step, u, q);
      const int pc = piece < range.end ? piece : range.begin;
      a_lo[u] = lo_row ? ldg16(x0 + pc) : zero;
      a_hi[u] = HI && hi_row ? ldg16(x1 + pc) : zero;
#pragma unroll
      for (int t = 0; t < TILES; t++) b[u][t] = ldg16_stream(wrow[t] + pc);
    }
#pragma unroll
    for (int u = 0; u < U; u++) {
      if (warp_piece(range.begin, warp, U, step, u, q) >= range.end) a_lo[u] = zero, a_hi[u] = zero;
    }
#pragma unroll
    for (int u = 0; u < U; u++) {
#pragma unroll
      for (int t = 0; t < TILES; t++) {
        mma16816<T16>(acc[t], a_lo[u].x, a_hi[u].x, a_lo[u].y, a_hi[u].y, b[u][t].x, b[u][t].y);
        mma16816<T16>(acc[t], a_lo[u].z, a_hi[u].z, a_lo[u].w, a_hi[u].w, b[u][t].z, b[u][t].w);
      }
    }
  }

  // Sum the warps' partial products; C fragment: c0,c1 row g, c2,c3 row g + 8, columns 2q, 2q+1.
  // Thread e (< TILES * 128) then holds element e of the block's tile.
  constexpr int kTile = TILES * 4 * 32;
  static_assert(kTile <= kWarps * 32, "one tile element per thread");
  __shared__ float red[kWarps][kTile];
  __shared__ int last_block;
#pragma unroll
  for (int t = 0; t < TILES; t++)
#pragma unroll
    for (int i = 0; i < 4; i++) red[warp][(t * 4 + i) * 32 + lane] = acc[t][i];
  __syncthreads();
  const int e = threadIdx.x;
  float sum = 0.0f;
  if (e < kTile) {
#pragma unroll
    for (int w = 0; w < kWarps; w++) sum += red[w][e];
  }
  if (gridDim.y > 1) {
    // Partials of split s for tile x at [(s * tiles + x) * kTile]; L2 only (other SMs read them).
    if (e < kTile) __stcg(partials + (size_t(blockIdx.y) * gridDim.x + blockIdx.x) * kTile + e, sum);
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last_block = atomicAdd(counters + blockIdx.x, 1) == int(gridDim.y) - 1;
    __syncthreads();
    if (!last_block) return;
    __threadfence();
    if (e < kTile) {
      sum = 0.0f;
      for (int s = 0; s < int(gridDim.y); s++)
        sum += __ldcg(partials + (size_t(s) * gridDim.x + blockIdx.x) * kTile + e);
    }
    if (threadIdx.x == 0) counters[blockIdx.x] = 0;  // every split has arrived: ready for the next launch
  }
  if (e < kTile) {
    const int t = e / 128, i = (e / 32) % 4, ln = e % 32;
    const int m = (ln >> 2) + (i >= 2 ? 8 : 0), n = n0 + t * 8 + (ln & 3) * 2 + (i & 1);
    if (EPI == kEpiStore && m < M && n < N) {
      float* y = Y + size_t(m) * N + n;
      *y = accumulate ? *y + sum : sum;
    }
  }
  if constexpr (EPI == kEpiQkv) {
    // Thread e < kTile / 2 takes the pair of elements e0 (column 2c) and e0 + 32 (column 2c + 1).
    __shared__ float fin[kTile];
    if (e < kTile) fin[e] = sum;
    __syncthreads();
    if (e < kTile / 2) {
      const int t = e / 64, ih = (e / 32) % 2, ln = e % 32, e0 = t * 128 + ih * 64 + ln;
      const int m = (ln >> 2) + 8 * ih, n = n0 + t * 8 + (ln & 3) * 2;
      if (m < M && n < N) qkv_pair(qa, m, n, fin[e0], fin[e0 + 32]);
    }
    return;
  }
  if constexpr (EPI == kEpiSwiglu) {
    // kTile == blockDim.x: every thread holds one final sum (rows past M hold zeros).
    __shared__ float fin[kTile];
    fin[e] = sum;
    __syncthreads();
    if (e < 128) {
      const int i = (e / 32) % 4, ln = e % 32;
      const int m = (ln >> 2) + (i >= 2 ? 8 : 0), j = blockIdx.x * 8 + (ln & 3) * 2 + (i & 1);
      const float gate = fin[e], up = fin[e + 128];
      if (m < M && j < N / 2)
        static_cast<T16*>(sw.out)[size_t(m) * (N / 2) + j] = to_t16<T16>(gate / (1.0f + expf(-gate)) * up);
    }
    return;
  }
}

int env_int(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : 0;
}

// Resident blocks per SM of one kernel variant (its registers decide), asked once.
template <typename Kernel>
int blocks_per_sm(Kernel k) {
  int n = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, k, kWarps * 32, 0) != cudaSuccess) {
    cudaGetLastError();
    n = 2;
  }
  return n > 0 ? n : 1;
}

constexpr SwigluArgs kNoSwiglu{nullptr};
const QkvArgs kNoQkv{};

// One launch of a decode kernel variant: picks the split of K from its occupancy.
template <typename T16, int TILES, bool HI, int EPI>
void launch_variant(const T16* w, const T16* x, int M, float* y, int N, int K, bool accumulate, int sms,
                    const GemmWorkspace* ws, int force_split, cudaStream_t s, const SwigluArgs& sw, const QkvArgs& qa) {
  auto kernel = gemm_decode_kernel<T16, TILES, HI, EPI>;
  static const int per_sm = blocks_per_sm(kernel);
  const int tiles = (N + 8 * TILES - 1) / (8 * TILES);
  const int kTile = TILES * 128;
  const GemmSplit sp = ws && ws->partials && ws->counters
                           ? choose_split(tiles, K / 8, kGemmUnroll, per_sm * sms, force_split, kMaxSplits,
                                          ws->partial_floats, ws->counter_count, kTile)
                           : make_split(K / 8, 1, kGemmUnroll);
  float* partials = sp.splits > 1 ? ws->partials : nullptr;
  int* counters = sp.splits > 1 ? ws->counters : nullptr;
  launch_kernel(kernel, dim3(tiles, sp.splits), kWarps * 32, 0, s, w, x, y, M, N, K, int(accumulate), sp.len, partials,
                counters, sw, qa);
}

// The variant for M rows: the upper 8 rows of the MMA only when there are more than 8.
template <typename T16, int TILES, int EPI = kEpiStore>
void launch_rows(const T16* w, const T16* x, int M, float* y, int N, int K, bool accumulate, int sms,
                 const GemmWorkspace* ws, int force_split, cudaStream_t s, const SwigluArgs& sw = kNoSwiglu,
                 const QkvArgs& qa = kNoQkv) {
  if (M > 8)
    launch_variant<T16, TILES, true, EPI>(w, x, M, y, N, K, accumulate, sms, ws, force_split, s, sw, qa);
  else
    launch_variant<T16, TILES, false, EPI>(w, x, M, y, N, K, accumulate, sms, ws, force_split, s, sw, qa);
}

template <typename T16>
void launch_decode(const DeviceMatrix& W, const void* x, int M, float* y, bool accumulate, const GemmWorkspace* ws,
                   cudaStream_t s, const SwigluArgs& sw = kNoSwiglu, const QkvArgs& qa = kNoQkv) {
  static int sms = [] {
    int dev = 0, n = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev);
    return n > 0 ? n : 100;
  }();
  // HW_GEMM_TILES / HW_GEMM_SPLIT (1|2, splits of K: 1 = none): benchmark switches, read once.
  static const int env_tiles = env_int("HW_GEMM_TILES"), env_split = env_int("HW_GEMM_SPLIT");
  const T16* w = static_cast<const T16*>(W.data);
  const T16* xx = static_cast<const T16*>(x);
  int tiles = decode_tiles(W.rows, W.cols, sms);  // gemm_split.h says why
  if (const int f = g_force_tiles ? g_force_tiles : env_tiles) tiles = f == 2 ? 2 : 1;
  // Per role (benchmark switches, read once): HW_GEMM_SPLIT_QKV (the qkv epilogue), _GU (gate/up
  // with the SwiGLU epilogue), _RES (residual GEMMs: o_proj, down_proj) ask for that many splits
  // of K for those launches only; HW_GEMM_SPLIT for every launch they leave unset. A test's
  // gemm_force_split overrides both.
  static const int env_split_qkv = env_int("HW_GEMM_SPLIT_QKV"), env_split_gu = env_int("HW_GEMM_SPLIT_GU"),
                   env_split_res = env_int("HW_GEMM_SPLIT_RES");
  const int role_split = sw.out ? env_split_gu : qa.p.q_out ? env_split_qkv : accumulate ? env_split_res : 0;
  const int split = g_force_split ? g_force_split : role_split ? role_split : env_split;
  if (sw.out) {  // two tiles whatever the switches say: tile 0 holds the gate rows, tile 1 the up rows
    launch_rows<T16, 2, kEpiSwiglu>(w, xx, M, nullptr, W.rows, W.cols, false, sms, ws, split, s, sw);
    check_launch("gemm_decode (tensor-core GEMM, M <= 16, SwiGLU epilogue)");
    return;
  }
  if (qa.p.q_out) {  // the pairs are inside a tile: one or two tiles per block
    if (tiles == 2)
      launch_rows<T16, 2, kEpiQkv>(w, xx, M, nullptr, W.rows, W.cols, false, sms, ws, split, s, kNoSwiglu, qa);
    else
      launch_rows<T16, 1, kEpiQkv>(w, xx, M, nullptr, W.rows, W.cols, false, sms, ws, split, s, kNoSwiglu, qa);
    check_launch("gemm_decode (tensor-core GEMM, M <= 16, qkv epilogue: bias, RoPE, KV write)");
    return;
  }
  if (tiles == 2)
    launch_rows<T16, 2>(w, xx, M, y, W.rows, W.cols, accumulate, sms, ws, split, s);
  else
    launch_rows<T16, 1>(w, xx, M, y, W.rows, W.cols, accumulate, sms, ws, split, s);
  check_launch("gemm_decode (tensor-core GEMM, M <= 16)");
}

cudaDataType cuda_type(DType t) {
  switch (t) {
    case DType::BF16:
      return CUDA_R_16BF;
    case DType::F16:
      return CUDA_R_16F;
    default:
      return CUDA_R_32F;
  }
}

// One cuBLAS handle per device thread of the engine (created on first use).
cublasHandle_t handle_for(cudaStream_t s) {
  thread_local cublasHandle_t h = nullptr;
  const Cublas& lib = cublas();
  if (!h) {
    if (lib.create(&h) != 0) throw EngineError("cuBLAS: cublasCreate failed (" + lib.path + ")");
    int v = 0;
    lib.get_version(h, &v);
    if (v < kMinCublasVersion) {
      lib.destroy(h);
      h = nullptr;
      throw EngineError("cuBLAS " + lib.path + " is version " + std::to_string(v) +
                        "; version >= " + std::to_string(kMinCublasVersion) + " (12.0) is needed");
    }
  }
  lib.set_stream(h, s);
  return h;
}

}  // namespace

void gemm_force_cublas(bool on) {
  g_force_cublas = on;
}

void gemm_force_tiles(int tiles) {
  g_force_tiles = tiles;
}

void gemm_force_split(int splits) {
  g_force_split = splits;
}

// Whether the project's decode kernel runs this GEMM (else cuBLAS): few rows, 16-bit weights,
// rows of whole 16-byte loads, and no test forcing cuBLAS.
static bool takes_decode_kernel(const DeviceMatrix& W, int M) {
  return !g_force_cublas && M <= kDecodeRows && W.dtype != DType::F32 && W.cols % 8 == 0;
}

// gemm_swiglu's and gemm_qkv's decode path: the decode GEMM with that epilogue. False where the
// decode kernel does not apply: the caller runs cuBLAS and the separate epilogue kernel.
static bool decode_epilogue(const DeviceMatrix& W, const void* x, int M, cudaStream_t s, const GemmWorkspace* ws,
                            const SwigluArgs& sw, const QkvArgs& qa) {
  if (!takes_decode_kernel(W, M)) return false;
  if (W.dtype == DType::BF16)
    launch_decode<__nv_bfloat16>(W, x, M, nullptr, false, ws, s, sw, qa);
  else
    launch_decode<__half>(W, x, M, nullptr, false, ws, s, sw, qa);
  return true;
}

void gemm_swiglu(const DeviceMatrix& W, const void* x, int M, float* gu, void* out, cudaStream_t s,
                 const GemmWorkspace* ws) {
  if (M <= 0) return;
  const int I = W.rows / 2;
  if (W.rows % 16 != 0) throw EngineError("gemm_swiglu: gate/up rows must be a multiple of 16 (8 of each)");
  if (decode_epilogue(W, x, M, s, ws, SwigluArgs{out}, kNoQkv)) return;
  gemm(W, x, M, gu, false, s, ws);
  swiglu(gu, M, I, out, gemm_input_type(W), s, /*interleaved8=*/true);
}

void gemm_qkv(const DeviceMatrix& W, const void* x, int M, const QkvPost& p, const KvLayout& kv, cudaStream_t s,
              const GemmWorkspace* ws) {
  if (M <= 0) return;
  if (!p.k_paired || p.q_norm || p.k_norm || p.head_dim % 8 != 0 || p.T != M)
    throw EngineError("gemm_qkv: needs K rows in RoPE pairs, no q/k norms, head_dim a multiple of 8 and T == M");
  if (decode_epilogue(W, x, M, s, ws, kNoSwiglu, QkvArgs{p, kv})) return;
  gemm(W, x, M, p.qkv, false, s, ws);
  qkv_post(p, kv, s);
}

void gemm(const DeviceMatrix& W, const void* x, int M, float* y, bool accumulate, cudaStream_t s,
          const GemmWorkspace* ws, const GemmNorm* norm) {
  if (M <= 0) return;
  if (takes_decode_kernel(W, M)) {
    if (W.dtype == DType::BF16)
      launch_decode<__nv_bfloat16>(W, x, M, y, accumulate, ws, s);
    else
      launch_decode<__half>(W, x, M, y, accumulate, ws, s);
    if (norm) rmsnorm(y, nullptr, M, W.rows, norm->w, norm->eps, norm->out, norm->act, s);
    return;
  }
  // Column-major view: y^T [N, M] = W^T [N, K] · x^T [K, M], W stored as col-major [K, N].
  const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  const cudaDataType t = cuda_type(W.dtype);
  note_launch("cublasGemmEx");
  const int st = cublas().gemm_ex(handle_for(s), kOpT, kOpN, W.rows, M, W.cols, &one, W.data, t, W.cols, x, t, W.cols,
                                  &beta, y, CUDA_R_32F, W.rows, kCompute32F, kGemmDefault);
  if (st != 0)
    throw EngineError("cuBLAS error " + std::to_string(st) + " in cublasGemmEx (M " + std::to_string(M) + ", N " +
                      std::to_string(W.rows) + ", K " + std::to_string(W.cols) + ")");
  check_launch("cublasGemmEx");
  if (norm) rmsnorm(y, nullptr, M, W.rows, norm->w, norm->eps, norm->out, norm->act, s);
}

}  // namespace hw::cuda
