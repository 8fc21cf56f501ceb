// The decode GEMM with its weights streamed by the Hopper bulk-copy engine (sm_90; switch
// HW_GEMM_BULK=1 or 2, off by default until it is measured). Included by gemm.cu inside its
// anonymous namespace: it shares that file's MMA, loads, epilogue arguments and split-K arithmetic.
//
// Why: the default kernel holds its bytes in flight in registers. A warp issues one step's 16-byte
// loads, waits for all of them, multiplies, then issues the next step's, so each warp's bytes in
// flight fall to zero once a step, and registers cap the step (8 chunks measured slower than 4).
// Here one lane per weight row issues a 1-D bulk copy (cp.async.bulk, one instruction for 512
// or 1024 bytes) of its row's next K segment into a ring of shared-memory stages; an mbarrier per stage
// counts the bytes landed (expect_tx / complete_tx), and the warps read a landed stage from shared
// memory with the default kernel's MMA arithmetic and release it on a second mbarrier. So the ring
// keeps a CTA's next stages in flight all the time, at one instruction per segment.
//
// Sizes (bench/gemm-bulk-notes.md): a CTA owns 32 weight rows (4 tiles of 8) and a K range (the
// default kernel's split-K). Segments of 512 bytes (the default): a stage is 256 k of each row,
// 16 KB, four stages a CTA (72 KB with padding), three CTAs an SM: up to 192 KB in flight per SM,
// against the ~33 KB per SM that Little's law asks for at 4.4 TB/s and ~1 us of latency (132 SMs);
// the surplus covers latency tails and the CTAs' own start and end. Segments of 1 KB
// (HW_GEMM_BULK_SEG=1024: half the copies, longer DRAM runs): 32 KB stages, three a CTA (102 KB),
// two CTAs an SM, the same 192 KB.
#pragma once
#include "gemm_bulk_schedule.h"  // already included by gemm.cu at namespace scope

constexpr int kBulkTiles = 4;                // 8-row MMA tiles per CTA
constexpr int kBulkRows = 8 * kBulkTiles;    // weight rows per CTA: one copying lane each
constexpr int kBulkTile = kBulkTiles * 128;  // fp32 outputs of a CTA (16 rows x 32 columns)
static_assert(kBulkRows == 32, "lane r of warp 0 copies row r");
static_assert(kBulkTile == 2 * kWarps * 32, "two outputs per thread in the epilogue");

// The ring for GROUPS 4-piece groups per warp and stage (1: 512-byte segments, 2: 1 KB).
template <int GROUPS>
struct BulkRing {
  static constexpr int pieces = 4 * kWarps * GROUPS;  // 16-byte pieces of a row per stage
  static constexpr int row_bytes = pieces * 16;       // one bulk copy per row and stage
  static constexpr int stride = row_bytes + 64;       // a quarter warp's rows g, g + 1 in other banks
  static constexpr int stage_bytes = kBulkRows * stride;
  static constexpr int stages = GROUPS == 1 ? 4 : 3;
  static constexpr int smem = stages * stage_bytes;  // dynamic shared memory: 73,728 / 104,448 bytes
  static_assert((kWarps + 1) * kBulkTile * 4 <= smem, "the epilogue's sums fit in the drained ring");
  static_assert(stride % 128 == 64, "rows g and g + 1 of a quarter warp in different banks");
};

// mbarrier and bulk-copy PTX (sm_90 only; empty elsewhere, where the kernel is never launched).
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
#endif
}
// Arrives (the producer's one arrival) and adds `bytes` to the transaction count the phase waits for.
__device__ __forceinline__ void mbar_arrive_expect(uint32_t bar, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
#endif
}
// Release semantics (the default): this warp's reads of the stage are done before the arrival counts.
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
#endif
}
// Waits until the phase of parity `parity` has completed (acquire: the landed bytes are visible).
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
#endif
}
// `bytes` (a multiple of 16) from global `src` to shared `dst` (both 16-byte aligned), counted on `bar`.
__device__ __forceinline__ void bulk_copy(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
               "l"(src), "r"(bytes), "r"(bar)
               : "memory");
#endif
}

// Block: weight rows n0 .. n0 + 31 (tiles t = 0..3 of 8) over the pieces [split_range) of K of
// split blockIdx.y, 8 warps. Stage s of the ring holds pieces [b + P s, b + P s + P) of every row
// (b: the range's begin, P = 32 GROUPS); warp w multiplies groups w GROUPS + u (u < GROUPS) of 4
// pieces of each stage, lane (g, q) piece 4 (w GROUPS + u) + q of row g of every tile (the default
// kernel's k-to-slot mapping, B from shared memory instead of registers) with the same pieces of x
// rows g (and g + 8 when HI) from global
// memory (L1: every CTA reads them). Warp 0 is also the producer: at stage s it refills the slot
// of stage s - 1 (once every warp has released it) with stage s - 1 + R::stages.
// FILL_EARLY (HW_GEMM_BULK=1): the first stages are asked for before the PDL wait (weights are
// written by no kernel of a step), so they stream while the previous kernel finishes; the
// activations, y and the split-K scratch are touched only after it.
// Epilogue as the default kernel's (split-K partials summed in split order by the tile's last CTA;
// store/accumulate, SwiGLU (tiles 0/1 and 2/3 are gate/up pairs) or qkv), over 4 tiles; the fused
// output norm and the folded input norm are not here (those calls take the default kernel).
template <typename T16, bool HI, int EPI, int GROUPS>
__global__ void __launch_bounds__(kWarps * 32, 2)
    gemm_bulk_kernel(const T16* __restrict__ W, const T16* __restrict__ X, float* __restrict__ Y, int M, int N, int K,
                     int accumulate, int split_len, float* __restrict__ partials, int* __restrict__ counters,
                     SwigluArgs sw, QkvArgs qa, int fill_early) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  using R = BulkRing<GROUPS>;
  extern __shared__ __align__(128) unsigned char ring[];
  __shared__ __align__(8) uint64_t full[R::stages], empty[R::stages];
  __shared__ int last_block;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
  const int n0 = blockIdx.x * kBulkRows;
  const PieceRange range = split_range(K / 8, split_len, blockIdx.y);
  const int stages = bulk_stage_count(range, R::pieces);
  const uint32_t ring_s = smem_addr(ring), full_s = smem_addr(full), empty_s = smem_addr(empty);
  // Lane r of warp 0 copies row n0 + r; rows past N copy the last row (their outputs are not stored).
  const T16* copy_row = W + size_t(min(n0 + lane, N - 1)) * K;

  // Warp 0: stage st into its slot (the last stage of the range may be short).
  auto issue = [&](int st) {
    const int slot = st % R::stages, first = bulk_stage_first(range, R::pieces, st);
    const uint32_t bytes = uint32_t(min(R::pieces, range.end - first)) * 16u;
    if (lane == 0) mbar_arrive_expect(full_s + 8 * slot, bytes * kBulkRows);
    __syncwarp();
    bulk_copy(ring_s + slot * R::stage_bytes + lane * R::stride, copy_row + size_t(first) * 8, bytes,
              full_s + 8 * slot);
  };
  auto start = [&]() {
    if (threadIdx.x == 0) {
      for (int s = 0; s < R::stages; s++) mbar_init(full_s + 8 * s, 1), mbar_init(empty_s + 8 * s, kWarps);
      // The initialised barriers visible to the bulk copies' (async) proxy.
      asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    if (warp == 0)
      for (int st = 0; st < min(stages, R::stages); st++) issue(st);
  };
  if (fill_early) {
    start();
    pdl_begin();
  } else {
    pdl_begin();
    start();
  }

  const uint4* x0 = reinterpret_cast<const uint4*>(X + size_t(g) * K);
  const uint4* x1 = reinterpret_cast<const uint4*>(X + size_t(g + 8) * K);
  const bool lo_row = g < M, hi_row = HI && g + 8 < M;
  const uint4 zero = make_uint4(0, 0, 0, 0);
  float acc[kBulkTiles][4];
#pragma unroll
  for (int t = 0; t < kBulkTiles; t++) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.0f;

  for (int st = 0; st < stages; st++) {
    if (const int r = bulk_refill(st, R::stages, stages); warp == 0 && r >= 0) {
      mbar_wait(empty_s + 8 * (r % R::stages), bulk_empty_parity(r, R::stages));
      issue(r);
    }
    const int slot = st % R::stages, first = bulk_stage_first(range, R::pieces, st);
    uint4 a_lo[GROUPS], a_hi[GROUPS];
    bool ok[GROUPS];
#pragma unroll
    for (int u = 0; u < GROUPS; u++) {
      const int piece = bulk_piece(first, warp, GROUPS, u, q);
      ok[u] = piece < range.end;  // past the end: zeros in A and B (the slot may hold stale bytes)
      a_lo[u] = ok[u] && lo_row ? ldg16(x0 + piece) : zero;  // issued before the wait: latencies overlap
      a_hi[u] = ok[u] && hi_row ? ldg16(x1 + piece) : zero;
    }
    mbar_wait(full_s + 8 * slot, bulk_full_parity(st, R::stages));
#pragma unroll
    for (int u = 0; u < GROUPS; u++) {
      if (bulk_piece(first, warp, GROUPS, u, 0) >= range.end) break;  // warp-uniform: nothing left in this stage
      const unsigned char* b_at = ring + slot * R::stage_bytes + g * R::stride + ((warp * GROUPS + u) * 4 + q) * 16;
#pragma unroll
      for (int t = 0; t < kBulkTiles; t++) {
        const uint4 b = ok[u] ? *reinterpret_cast<const uint4*>(b_at + t * 8 * R::stride) : zero;
        mma16816<T16>(acc[t], a_lo[u].x, a_hi[u].x, a_lo[u].y, a_hi[u].y, b.x, b.y);
        mma16816<T16>(acc[t], a_lo[u].z, a_hi[u].z, a_lo[u].w, a_hi[u].w, b.z, b.w);
      }
    }
    __syncwarp();
    if (lane == 0) mbar_arrive(empty_s + 8 * slot);
  }

  // Every stage issued has landed and been read by every warp: the ring holds the warps' sums
  // (red[warp][e], e = (t * 4 + i) * 32 + lane for C fragment element i of tile t) and the finals.
  float* red = reinterpret_cast<float*>(ring);
  float* fin = red + kWarps * kBulkTile;
  __syncthreads();
#pragma unroll
  for (int t = 0; t < kBulkTiles; t++)
#pragma unroll
    for (int i = 0; i < 4; i++) red[warp * kBulkTile + (t * 4 + i) * 32 + lane] = acc[t][i];
  __syncthreads();
  float sum[2];
#pragma unroll
  for (int h = 0; h < 2; h++) {
    const int e = threadIdx.x + h * kWarps * 32;
    float s = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; w++) s += red[w * kBulkTile + e];
    sum[h] = s;
  }
  if (gridDim.y > 1) {
    // Partials of split s for CTA column x at [(s * gridDim.x + x) * kBulkTile]; L2 only.
    float* part = partials + (size_t(blockIdx.y) * gridDim.x + blockIdx.x) * kBulkTile;
#pragma unroll
    for (int h = 0; h < 2; h++) __stcg(part + threadIdx.x + h * kWarps * 32, sum[h]);
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last_block = atomicAdd(counters + blockIdx.x, 1) == int(gridDim.y) - 1;
    __syncthreads();
    if (!last_block) return;
    __threadfence();
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const int e = threadIdx.x + h * kWarps * 32;
      float s = 0.0f;
      for (int sp = 0; sp < int(gridDim.y); sp++)
        s += __ldcg(partials + (size_t(sp) * gridDim.x + blockIdx.x) * kBulkTile + e);
      sum[h] = s;
    }
    if (threadIdx.x == 0) counters[blockIdx.x] = 0;  // every split has arrived: ready for the next launch
  }
  if constexpr (EPI == kEpiStore) {
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const int e = threadIdx.x + h * kWarps * 32;
      const int t = e / 128, i = (e / 32) % 4, ln = e % 32;
      const int m = (ln >> 2) + (i >= 2 ? 8 : 0), n = n0 + t * 8 + (ln & 3) * 2 + (i & 1);
      if (m < M && n < N) {
        float* y = Y + size_t(m) * N + n;
        *y = accumulate ? *y + sum[h] : sum[h];
      }
    }
    return;
  }
  fin[threadIdx.x] = sum[0];
  fin[threadIdx.x + kWarps * 32] = sum[1];
  __syncthreads();
  const int e = threadIdx.x;  // kBulkTile / 2 pairs: one per thread
  if constexpr (EPI == kEpiQkv) {
    // The pair of elements e0 (column 2c) and e0 + 32 (column 2c + 1) of one row.
    const int t = e / 64, ih = (e / 32) % 2, ln = e % 32, e0 = t * 128 + ih * 64 + ln;
    const int m = (ln >> 2) + 8 * ih, n = n0 + t * 8 + (ln & 3) * 2;
    if (m < M && n < N) qkv_pair(qa, m, n, fin[e0], fin[e0 + 32]);
  }
  if constexpr (EPI == kEpiSwiglu) {
    // Tiles 2p (gate) and 2p + 1 (up) hold gate/up columns 8j .. 8j + 7 of group j = n0 / 16 + p.
    const int p = e / 128, ep = e % 128, i = (ep / 32) % 4, ln = ep % 32;
    const int m = (ln >> 2) + (i >= 2 ? 8 : 0), j = (n0 / 16 + p) * 8 + (ln & 3) * 2 + (i & 1);
    const float gate = fin[p * 256 + ep], up = fin[p * 256 + 128 + ep];
    if (m < M && j < N / 2)
      static_cast<T16*>(sw.out)[size_t(m) * (N / 2) + j] = to_t16<T16>(gate / (1.0f + expf(-gate)) * up);
  }
#endif
}

// Whether the bulk kernel variant runs here (sm_90 code loaded for this device, compiled from
// sm_90 PTX: a build with only compute_80 PTX would be JIT-compiled for the H200 with the empty body;
// its shared memory granted) and how many CTAs of it an SM holds; 0: it does not (the caller takes
// the default kernel; test_cuda_ops checks gemm_bulk_launches() to see that it ran).
template <typename Kernel>
int prepare_bulk(Kernel kernel, int smem) {
  cudaFuncAttributes fa;
  int n = 0;
  if (cudaFuncGetAttributes(&fa, kernel) != cudaSuccess || fa.binaryVersion < 90 || fa.ptxVersion < 90 ||
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem) != cudaSuccess ||
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, kWarps * 32, smem) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

// One launch of the bulk kernel; false when it cannot run here (nothing launched). Split-K by the
// default kernel's cost model with unroll = GROUPS: splits rounded to 4 GROUPS pieces, and its
// block step (kGemmWarps x 4 x GROUPS pieces) is one stage.
template <typename T16, int EPI, int GROUPS>
bool launch_bulk(const T16* w, const T16* x, int M, float* y, int N, int K, bool accumulate, int sms,
                 const GemmWorkspace* ws, int force_split, bool fill_early, cudaStream_t s, const SwigluArgs& sw,
                 const QkvArgs& qa) {
  using R = BulkRing<GROUPS>;
  static_assert(R::pieces == kGemmWarps * 4 * GROUPS, "split_cost's block step is one stage");
  auto lo = gemm_bulk_kernel<T16, false, EPI, GROUPS>;
  auto hi = gemm_bulk_kernel<T16, true, EPI, GROUPS>;
  static const int per_sm_lo = prepare_bulk(lo, R::smem), per_sm_hi = prepare_bulk(hi, R::smem);
  const int per_sm = M > 8 ? per_sm_hi : per_sm_lo;
  if (per_sm < 1) return false;
  const int tiles = (N + kBulkRows - 1) / kBulkRows;
  const GemmSplit sp = ws && ws->partials && ws->counters
                           ? choose_split(tiles, K / 8, GROUPS, per_sm * sms, force_split, kMaxSplits,
                                          ws->partial_floats, ws->counter_count - 1, kBulkTile)
                           : make_split(K / 8, 1, GROUPS);
  float* partials = sp.splits > 1 ? ws->partials : nullptr;
  int* counters = sp.splits > 1 ? ws->counters : nullptr;
  launch_kernel(M > 8 ? hi : lo, dim3(tiles, sp.splits), kWarps * 32, R::smem, s, w, x, y, M, N, K, int(accumulate),
                sp.len, partials, counters, sw, qa, int(fill_early));
  return true;
}

// The launch for the segment size asked for (1024: 1 KB copies, else 512 bytes).
template <typename T16, int EPI>
bool launch_bulk_seg(int seg, const T16* w, const T16* x, int M, float* y, int N, int K, bool accumulate, int sms,
                     const GemmWorkspace* ws, int force_split, bool fill_early, cudaStream_t s, const SwigluArgs& sw,
                     const QkvArgs& qa) {
  if (seg == 1024)
    return launch_bulk<T16, EPI, 2>(w, x, M, y, N, K, accumulate, sms, ws, force_split, fill_early, s, sw, qa);
  return launch_bulk<T16, EPI, 1>(w, x, M, y, N, K, accumulate, sms, ws, force_split, fill_early, s, sw, qa);
}
