// Would a persistent decode step beat the present one kernel per GEMM? The question of
// bench/cuda-decode-notes.md's "Next: a persistent decode step", asked of the H200 before the
// ~1,500 lines are written. Three measurements, each against its counterpart in the same run:
//
// 1. boundary: a CUDA graph of `--launches` launches of a kernel that does nothing but the PDL
//    wait/trigger (2 blocks of 256 threads per SM), with PDL and without: us per kernel boundary.
// 2. barrier: one cooperative launch (1 or 4 blocks per SM) running `--launches` device-wide barriers
//    (an arrival counter, one thread per block spinning on it): us per barrier.
// 3. layer: the weights of decode layers streamed as the step streams them (qkv, o, gate/up, down,
//    distinct buffers per layer so that nothing stays in L2 from layer to layer) by one streaming
//    loop (16-byte loads, 8 in flight per thread, a sum that the compiler cannot drop), in six
//    ways: one launch per matrix with PDL in a CUDA graph ("launches", the present step's
//    boundaries); one cooperative launch with a barrier where a matrix ends ("persistent"); the
//    same with each block asking L2 for its slice of the next matrix before it waits
//    ("persistent_ahead"); the same with each block copying the first 48 KB of its next slice into
//    shared memory before it waits ("persistent_smem", the plan's own mechanism), and that way
//    with fewer waits: only before qkv and gate/up ("persistent_smem_2waits", what a design with
//    per-tile dependencies keeps) and none ("persistent_smem_nowait", the floor of any such
//    design). Printed per layer against the bytes at the measured copy rate.
//
// One JSON line a measurement; the sums are checked equal between the ways (exit 1 if not).
//   bench_persistent_probe [--launches 200] [--shapes 0.5b,7b] [--layers 24,8] [--reps 5]
#include <algorithm>
#include <cstdint>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "../src/cuda/launch.cuh"
#include "bench_util.h"
#include "../src/cuda/cuda_ok.h"

using namespace hw;

namespace {

constexpr int kThreads = 256;
constexpr int kInFlight = 8;  // 16-byte loads in flight per thread

__global__ void __launch_bounds__(kThreads) empty_kernel() {
  cuda::pdl_begin();
}

// Every block arrives once per barrier: counter reaches (k + 1) * gridDim.x at barrier k. Thread 0
// spins (a bounded spin: a barrier that never completes traps instead of hanging the GPU).
__device__ __forceinline__ void grid_barrier(unsigned* counter, unsigned target) {
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    atomicAdd(counter, 1u);
    unsigned spins = 0;
    while (*reinterpret_cast<volatile unsigned*>(counter) < target) {
      if (++spins > (1u << 28)) __trap();
    }
    __threadfence();
  }
  __syncthreads();
}

// mbarrier and bulk-copy PTX (sm_90; empty elsewhere), as the bulk-copy GEMM of 2026-12-03 had them.
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbar_init(uint32_t bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(bar) : "memory");
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void mbar_arrive_expect(uint32_t bar, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
#endif
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  uint32_t done = 0, tries = 0;
  do {
    if (++tries > (1u << 26)) __trap();  // bytes that never land fail the launch instead of hanging it
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
#endif
}
__device__ __forceinline__ void bulk_copy(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
               "l"(src), "r"(bytes), "r"(bar)
               : "memory");
#endif
}

__global__ void __launch_bounds__(kThreads) barrier_kernel(unsigned* counter, int n) {
  for (int k = 0; k < n; k++) grid_barrier(counter, unsigned(k + 1) * gridDim.x);
}

// Sum of the bf16 pairs of 16-byte units [begin, end) of w, kInFlight loads in flight per thread
// (threads stride by `stride` units). The weights are read once: no L1 allocation.
__device__ __forceinline__ float stream_units(const uint4* w, size_t begin, size_t end, size_t first, size_t stride) {
  float acc = 0.0f;
  for (size_t u = begin + first; u < end; u += stride * kInFlight) {
    uint4 v[kInFlight];
#pragma unroll
    for (int i = 0; i < kInFlight; i++) {
      const size_t at = u + i * stride;
      if (at < end)
        asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(v[i].x), "=r"(v[i].y), "=r"(v[i].z), "=r"(v[i].w)
                     : "l"(w + at));
      else
        v[i] = make_uint4(0, 0, 0, 0);
    }
    // The loads above and these empty statements are volatile asm, so they keep their order: every
    // load is issued before the first sum uses one (else the compiler interleaves them and keeps
    // about one 16-byte load in flight, as the decode GEMM once did).
#pragma unroll
    for (int i = 0; i < kInFlight; i++) asm volatile("" : "+r"(v[i].x), "+r"(v[i].y), "+r"(v[i].z), "+r"(v[i].w));
#pragma unroll
    for (int i = 0; i < kInFlight; i++) {
      const uint32_t words[4] = {v[i].x, v[i].y, v[i].z, v[i].w};
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const __nv_bfloat162 h = *reinterpret_cast<const __nv_bfloat162*>(&words[j]);
        acc += __bfloat162float(h.x) + __bfloat162float(h.y);
      }
    }
  }
  return acc;
}

// The block's sum into out[blockIdx.x] (+=, so the ways can be compared by total).
__device__ __forceinline__ void block_add(float acc, float* out) {
  __shared__ float part[kThreads / 32];
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0.0f;
    for (int i = 0; i < kThreads / 32; i++) s += part[i];
    out[blockIdx.x] += s;
  }
  __syncthreads();
}

// One matrix, one launch: the whole grid strides over it.
__global__ void __launch_bounds__(kThreads, 4) stream_kernel(const uint4* w, size_t units, float* out) {
  cuda::pdl_begin();
  const size_t stride = size_t(gridDim.x) * kThreads;
  block_add(stream_units(w, 0, units, size_t(blockIdx.x) * kThreads + threadIdx.x, stride), out);
}

struct Matrices {
  const uint4* const* w;  // [count] device pointers
  const size_t* units;    // [count] 16-byte units
  int count;
};

// Every matrix, one launch: block b streams its contiguous slice of matrix i, then waits for all
// blocks (a decode step's next GEMM needs the previous one's whole output). With `ahead`, it first
// asks L2 for its slice of matrix i + 1 (what the persistent step would do with its next weights).
__global__ void __launch_bounds__(kThreads, 4) persistent_kernel(Matrices m, float* out, unsigned* counter, int ahead) {
  for (int i = 0; i < m.count; i++) {
    const size_t units = m.units[i], per = (units + gridDim.x - 1) / gridDim.x;
    const size_t begin = per * blockIdx.x, end = begin + per < units ? begin + per : units;
    block_add(stream_units(m.w[i], begin, end > begin ? end : begin, threadIdx.x, kThreads), out);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (ahead && i + 1 < m.count && threadIdx.x < 32) {
      const size_t nu = m.units[i + 1], np = (nu + gridDim.x - 1) / gridDim.x;
      const size_t nb = np * blockIdx.x, ne = nb + np < nu ? nb + np : nu;
      for (size_t u = nb + threadIdx.x * 4096; u < ne; u += 32 * 4096) {
        const unsigned bytes = unsigned((ne - u < 4096 ? ne - u : 4096) * 16);
        const size_t g = __cvta_generic_to_global(m.w[i + 1] + u);
        asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(g), "r"(bytes) : "memory");
      }
    }
#endif
    grid_barrier(counter, unsigned(i + 1) * gridDim.x);
  }
}

// The persistent step's plan itself: before it waits at the barrier, each block copies the first
// kSmemBytes of its slice of the next matrix into shared memory (cp.async.bulk, counted on an
// mbarrier); after the barrier it sums those bytes from shared memory and streams the rest.
constexpr int kSmemBytes = 48 * 1024;  // 4 blocks a SM: 192 KB of an H200 SM's 228

__device__ __forceinline__ void slice_of(size_t units, size_t& begin, size_t& end) {
  const size_t per = (units + gridDim.x - 1) / gridDim.x;
  begin = per * blockIdx.x;
  end = begin + per < units ? begin + per : units;
  if (end < begin) end = begin;
}

// wait_mask: bit j set = the barrier before each layer's matrix j (qkv 0, o 1, gate/up 2, down 3).
// 0xF is the chained step (every matrix waits for the whole grid); 0x5 waits only before qkv and
// gate/up, the two that read a norm of the whole residual row (a per-tile design's o_proj and
// down_proj wait only for their own K range's producers, here for nobody); 0 never waits (the
// floor of any dependency scheme with staged weights).
__global__ void __launch_bounds__(kThreads, 4)
    persistent_smem_kernel(Matrices m, float* out, unsigned* counter, unsigned wait_mask) {
  extern __shared__ __align__(128) uint4 stage[];  // kSmemBytes
  __shared__ __align__(8) unsigned long long bar;
  if (threadIdx.x == 0) mbar_init(smem_addr(&bar));
  __syncthreads();
  uint32_t phase = 0;
  unsigned barriers = 0;
  for (int i = 0; i < m.count; i++) {
    size_t begin, end;
    slice_of(m.units[i], begin, end);
    size_t from = begin;  // units before `from` came through shared memory
    float acc = 0.0f;
    if (i > 0) {
      const size_t staged = min(end - begin, size_t(kSmemBytes / 16));
      mbar_wait(smem_addr(&bar), phase & 1);
      phase++;
      for (size_t u = threadIdx.x; u < staged; u += kThreads) {
        const uint4 v = stage[u];
        const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int j = 0; j < 4; j++) {
          const __nv_bfloat162 h = *reinterpret_cast<const __nv_bfloat162*>(&words[j]);
          acc += __bfloat162float(h.x) + __bfloat162float(h.y);
        }
      }
      from = begin + staged;
    }
    acc += stream_units(m.w[i], from, end, threadIdx.x, kThreads);
    block_add(acc, out);  // ends with a barrier of the block: nobody reads `stage` after it
    if (i + 1 < m.count && threadIdx.x == 0) {
      size_t nb, ne;
      slice_of(m.units[i + 1], nb, ne);
      const uint32_t bytes = uint32_t(min(ne - nb, size_t(kSmemBytes / 16)) * 16);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
      asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // the reads above before the copy's writes
#endif
      mbar_arrive_expect(smem_addr(&bar), bytes);
      for (uint32_t o = 0; o < bytes; o += 16384)
        bulk_copy(smem_addr(stage) + o, m.w[i + 1] + nb + o / 16, min(bytes - o, 16384u), smem_addr(&bar));
    }
    if (i + 1 < m.count && ((wait_mask >> ((i + 1) % 4)) & 1)) grid_barrier(counter, ++barriers * gridDim.x);
  }
}

struct Shape {
  const char* name;
  int hidden, inter, qkv;  // qkv: rows of the stacked q/k/v matrix
};
const Shape kShapes[] = {{"0.5b", 896, 4864, 1152}, {"7b", 3584, 18944, 4608}};

float elapsed_us(cudaEvent_t a, cudaEvent_t b) {
  float ms = 0;
  CUDA_OK(cudaEventElapsedTime(&ms, a, b));
  return ms * 1000.0f;
}

}  // namespace

int main(int argc, char** argv) {
  int launches = 200, reps = 5;
  std::string shape_list = "0.5b,7b", layer_list = "24,8";
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    auto next = [&] { return flag_value(argc, argv, i, "bench_persistent_probe"); };
    if (a == "--launches")
      launches = std::max(1, std::atoi(next()));
    else if (a == "--reps")
      reps = std::max(1, std::atoi(next()));
    else if (a == "--shapes")
      shape_list = next();
    else if (a == "--layers")
      layer_list = next();
    else {
      std::fprintf(stderr,
                   "usage: bench_persistent_probe [--launches 200] [--shapes 0.5b,7b] [--layers 24,8] [--reps 5]\n");
      return 2;
    }
  }
  const std::vector<std::string> shapes = split_list(shape_list), layer_counts = split_list(layer_list);
  int dev = 0, sms = 0, coop = 0;
  CUDA_OK(cudaGetDevice(&dev));
  CUDA_OK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  CUDA_OK(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev));
  cudaDeviceProp prop;
  CUDA_OK(cudaGetDeviceProperties(&prop, dev));
  std::printf("{\"kind\":\"device\",\"name\":\"%s\",\"sms\":%d,\"pdl\":%d,\"cooperative\":%d}\n", prop.name, sms,
              int(cuda::pdl_enabled()), coop);
  if (!coop) {
    std::fprintf(stderr, "bench_persistent_probe: the device has no cooperative launch\n");
    return 2;
  }
  cudaStream_t s;
  CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cudaEvent_t e0, e1;
  CUDA_OK(cudaEventCreate(&e0));
  CUDA_OK(cudaEventCreate(&e1));
  unsigned* counter = nullptr;
  CUDA_OK(cudaMalloc(&counter, sizeof(unsigned)));

  // The copy rate (the floor's denominator): a 1 GiB device-to-device copy, best of reps.
  double copy_gbs = 0;
  {
    const size_t bytes = size_t(1) << 30;
    void *a = nullptr, *b = nullptr;
    CUDA_OK(cudaMalloc(&a, bytes));
    CUDA_OK(cudaMalloc(&b, bytes));
    for (int r = 0; r < reps + 1; r++) {
      CUDA_OK(cudaEventRecord(e0, s));
      CUDA_OK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, s));
      CUDA_OK(cudaEventRecord(e1, s));
      CUDA_OK(cudaEventSynchronize(e1));
      if (r > 0) copy_gbs = std::max(copy_gbs, 2.0 * bytes / (elapsed_us(e0, e1) * 1e3));  // read + write
    }
    cudaFree(a), cudaFree(b);
    std::printf("{\"kind\":\"copy\",\"gb_per_s\":%.1f}\n", copy_gbs);
  }

  // 1. Kernel boundaries: a graph of `launches` empty kernels, with and without PDL.
  for (int pdl : {1, 0}) {
    if (pdl && !cuda::pdl_enabled()) continue;  // launch_kernel adds PDL exactly when pdl_enabled()
    cudaGraph_t g;
    cudaGraphExec_t ge;
    CUDA_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < launches; i++) {
      if (pdl)
        cuda::launch_kernel(empty_kernel, dim3(2 * sms), dim3(kThreads), 0, s);
      else
        empty_kernel<<<2 * sms, kThreads, 0, s>>>();
    }
    CUDA_OK(cudaStreamEndCapture(s, &g));
    CUDA_OK(cudaGraphInstantiate(&ge, g, 0));
    std::vector<double> t;
    for (int r = 0; r < reps + 1; r++) {
      CUDA_OK(cudaEventRecord(e0, s));
      CUDA_OK(cudaGraphLaunch(ge, s));
      CUDA_OK(cudaEventRecord(e1, s));
      CUDA_OK(cudaEventSynchronize(e1));
      if (r > 0) t.push_back(elapsed_us(e0, e1) / launches);
    }
    std::printf("{\"kind\":\"boundary\",\"pdl\":%d,\"us\":%.3f}\n", pdl, median(t));
    cudaGraphExecDestroy(ge), cudaGraphDestroy(g);
  }

  // 2. Device-wide barriers in one cooperative launch of 1 and of 4 blocks per SM.
  for (int per_sm : {1, 4}) {
    std::vector<double> t;
    int n = launches;
    void* args[] = {&counter, &n};
    for (int r = 0; r < reps + 1; r++) {
      CUDA_OK(cudaMemsetAsync(counter, 0, sizeof(unsigned), s));
      CUDA_OK(cudaEventRecord(e0, s));
      CUDA_OK(cudaLaunchCooperativeKernel(reinterpret_cast<void*>(barrier_kernel), dim3(per_sm * sms), dim3(kThreads),
                                          args, 0, s));
      CUDA_OK(cudaEventRecord(e1, s));
      CUDA_OK(cudaEventSynchronize(e1));
      if (r > 0) t.push_back(elapsed_us(e0, e1) / launches);
    }
    std::printf("{\"kind\":\"barrier\",\"blocks\":%d,\"us\":%.3f}\n", per_sm * sms, median(t));
  }

  // 3. Decode layers' weights streamed four ways. The shared-memory way runs 4 blocks of 48 KB a SM.
  CUDA_OK(cudaFuncSetAttribute(reinterpret_cast<const void*>(persistent_smem_kernel),
                               cudaFuncAttributePreferredSharedMemoryCarveout, 100));
  // 48 KB of dynamic shared memory plus the kernel's static mbarrier is over the 48 KB a kernel
  // gets without asking: without this its occupancy came out 0 and the launch "invalid argument"
  // (H200, 2026-12-05 04:46 UTC).
  CUDA_OK(cudaFuncSetAttribute(reinterpret_cast<const void*>(persistent_smem_kernel),
                               cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes));
  bool sums_agree = true;
  for (size_t si = 0; si < shapes.size(); si++) {
    const Shape* sh = nullptr;
    for (const Shape& x : kShapes)
      if (shapes[si] == x.name) sh = &x;
    if (!sh) {
      std::fprintf(stderr, "bench_persistent_probe: unknown shape %s (0.5b, 7b)\n", shapes[si].c_str());
      return 2;
    }
    const int layers = si < layer_counts.size() ? std::atoi(layer_counts[si].c_str()) : 8;
    const size_t H = sh->hidden, I = sh->inter;
    const size_t per_layer[4] = {size_t(sh->qkv) * H * 2, H * H * 2, 2 * I * H * 2, H * I * 2};  // bytes
    std::vector<const uint4*> w;
    std::vector<size_t> units;
    size_t total = 0;
    for (int l = 0; l < layers; l++)
      for (size_t b : per_layer) {
        void* p = nullptr;
        CUDA_OK(cudaMalloc(&p, b));
        CUDA_OK(cudaMemset(p, 0x3c, b));  // bf16 0x3c3c = 0.0115
        w.push_back(static_cast<const uint4*>(p));
        units.push_back(b / 16);
        total += b;
      }
    const int count = int(w.size());
    const uint4** dw = nullptr;
    size_t* du = nullptr;
    CUDA_OK(cudaMalloc(&dw, count * sizeof(void*)));
    CUDA_OK(cudaMalloc(&du, count * sizeof(size_t)));
    CUDA_OK(cudaMemcpy(dw, w.data(), count * sizeof(void*), cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(du, units.data(), count * sizeof(size_t), cudaMemcpyHostToDevice));
    const int grid_launch = 4 * sms;  // 4 blocks of 256 threads per SM (the decode GEMM's occupancy)
    // The shared-memory way: as many of those 4 as its registers and 48 KB leave resident (a
    // cooperative launch of more is refused: 4 a SM was, on the H200 of 2026-12-05).
    int smem_per_sm = 0;
    CUDA_OK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&smem_per_sm, persistent_smem_kernel, kThreads, kSmemBytes));
    const int grid_smem = std::min(4, smem_per_sm) * sms;
    if (grid_smem < 1) {
      std::fprintf(stderr,
                   "bench_persistent_probe: persistent_smem_kernel cannot be resident (%d B of shared memory)\n",
                   kSmemBytes);
      return 1;
    }
    float* out = nullptr;
    CUDA_OK(cudaMalloc(&out, grid_launch * sizeof(float)));
    const double floor_us = total / (copy_gbs * 1e3) / layers;

    // One launch per matrix, PDL, in a graph.
    cudaGraph_t g;
    cudaGraphExec_t ge;
    CUDA_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < count; i++)
      cuda::launch_kernel(stream_kernel, dim3(grid_launch), dim3(kThreads), 0, s, w[i], units[i], out);
    CUDA_OK(cudaStreamEndCapture(s, &g));
    CUDA_OK(cudaGraphInstantiate(&ge, g, 0));
    constexpr int kModes = 6;
    const char* names[kModes] = {"launches",
                                 "persistent",
                                 "persistent_ahead",
                                 "persistent_smem",
                                 "persistent_smem_2waits",
                                 "persistent_smem_nowait"};
    const unsigned wait_masks[kModes] = {0, 0, 0, 0xF, 0x5, 0x0};
    double sums[kModes] = {};
    for (int mode = 0; mode < kModes; mode++) {
      std::vector<double> t;
      for (int r = 0; r < reps + 1; r++) {
        CUDA_OK(cudaMemsetAsync(out, 0, grid_launch * sizeof(float), s));
        CUDA_OK(cudaMemsetAsync(counter, 0, sizeof(unsigned), s));
        CUDA_OK(cudaEventRecord(e0, s));
        if (mode == 0) {
          CUDA_OK(cudaGraphLaunch(ge, s));
        } else if (mode >= 3) {
          Matrices m{dw, du, count};
          unsigned mask = wait_masks[mode];
          void* args[] = {&m, &out, &counter, &mask};
          CUDA_OK(cudaLaunchCooperativeKernel(reinterpret_cast<void*>(persistent_smem_kernel), dim3(grid_smem),
                                              dim3(kThreads), args, kSmemBytes, s));
        } else {
          Matrices m{dw, du, count};
          int ahead = mode == 2;
          void* args[] = {&m, &out, &counter, &ahead};
          CUDA_OK(cudaLaunchCooperativeKernel(reinterpret_cast<void*>(persistent_kernel), dim3(grid_launch),
                                              dim3(kThreads), args, 0, s));
        }
        CUDA_OK(cudaEventRecord(e1, s));
        CUDA_OK(cudaEventSynchronize(e1));
        if (r > 0) t.push_back(elapsed_us(e0, e1) / layers);
      }
      std::vector<float> h(grid_launch);
      CUDA_OK(cudaMemcpy(h.data(), out, h.size() * sizeof(float), cudaMemcpyDeviceToHost));
      for (float x : h) sums[mode] += x;
      std::printf(
          "{\"kind\":\"layer\",\"shape\":\"%s\",\"layers\":%d,\"mode\":\"%s\",\"blocks\":%d,\"us_per_layer\":%.2f,"
          "\"floor_us\":%.2f,\"vs_floor\":%.3f}\n",
          sh->name, layers, names[mode], mode >= 3 ? grid_smem : grid_launch, median(t), floor_us,
          median(t) / floor_us);
    }
    // Every way sums the same values (in other orders): relative agreement to 1e-3.
    for (int mode = 1; mode < kModes; mode++)
      if (std::abs(sums[mode] - sums[0]) > 1e-3 * std::abs(sums[0])) sums_agree = false;
    cudaGraphExecDestroy(ge), cudaGraphDestroy(g);
    for (const uint4* p : w) cudaFree(const_cast<uint4*>(p));
    cudaFree(dw), cudaFree(du), cudaFree(out);
  }
  cudaFree(counter);
  if (!sums_agree) {
    std::fprintf(stderr, "bench_persistent_probe: the ways summed different weights\n");
    return 1;
  }
  return 0;
}
