// y[M, N] (+)= x[M, K] · W[N, K]^T for a weight matrix on the device.
//
// Decode (M <= 16 rows, 16-bit weights): the project's kernel. It is memory-bound, so it reads
// each weight exactly once for all M rows: every warp streams 16-byte pieces of W rows
// straight into the B operand of m16n8k16 tensor-core MMAs (the rows of x, at most 16, are
// the A operand), with fp32 accumulation. Prefill (M > 16) and fp32 weights go to cuBLAS
// (see cublas_loader.h for why it is loaded at run time).
#pragma once
#include <cuda_runtime.h>

#include "../tensor.h"
#include "kernels.h"

namespace hw::cuda {

struct DeviceMatrix {
  const void* data = nullptr;  // row-major [rows, cols]
  DType dtype = DType::BF16;
  int rows = 0, cols = 0;  // N, K
};

// The element type a GEMM with these weights reads its input in (the weights' own).
inline DType gemm_input_type(const DeviceMatrix& W) {
  return W.dtype;
}

// Rows of input buffer the GEMM may read: the decode kernel reads 16 rows whatever M is.
constexpr int kDecodeRows = 16;

// Scratch of the decode kernel's split-K (see gemm_split.h): fp32 partial tiles and one
// arrival counter per column tile. The counters must be zero when the workspace is first used
// (a launch leaves them zero again). One workspace per stream: launches on one stream may share
// it, launches that can run at the same time may not.
struct GemmWorkspace {
  float* partials = nullptr;
  size_t partial_floats = 0;
  int* counters = nullptr;
  int counter_count = 0;
};
// Sizes a backend allocates: enough for the splits of an o_proj / down_proj sized launch.
constexpr size_t kGemmWorkspaceFloats = size_t(1) << 20;
constexpr int kGemmWorkspaceCounters = 8192;

// A residual GEMM's follow-up RMSNorm: out[m] = rmsnorm(y[m]) * w, the next GEMM's input, launched
// after the product. (Fused into the decode kernel's last block it measured slower on the H200,
// 2026-12-02 14:30 UTC: 7B W=4 5.61 vs 5.01 ms a step: one block's serial tail costs more than
// the launch it saves.) out may be x.
struct GemmNorm {
  const float* w = nullptr;  // [N]
  float eps = 1e-6f;
  void* out = nullptr;  // [M, N] in act
  DType act = DType::BF16;
};

// x: [max(M, 16), K] in gemm_input_type(W) (rows past M may be read by the decode kernel but
// never reach y). y: [M, N] fp32; accumulate adds to y (residual connections). With a workspace
// the decode kernel may split K over more blocks when N gives too few (without: never).
void gemm(const DeviceMatrix& W, const void* x, int M, float* y, bool accumulate, cudaStream_t s,
          const GemmWorkspace* ws = nullptr, const GemmNorm* norm = nullptr);

// Forces the cuBLAS path for every M (tests compare the two paths).
void gemm_force_cublas(bool on);

// Tests: the decode kernel's tiles per block, 1 or 2 (0: gemm_split.h's decode_tiles, or
// HW_GEMM_TILES for benchmarks).
void gemm_force_tiles(int tiles);

// Tests: splits of K for the decode kernel (1: none; 0: the default choice, HW_GEMM_SPLIT or the
// cost model of gemm_split.h). Applies only to launches given a workspace that holds them.
void gemm_force_split(int splits);

// The down_proj's input of a SwiGLU MLP from its gate/up GEMM: out[m][i] = silu(g_i) * u_i with
// (g, u) = W x[m], for W's rows interleaved in 8s: rows 16j..16j+7 are gate rows 8j..8j+7 and
// rows 16j+8..16j+15 the same up rows (W.rows = 2 I, I % 8 == 0; the backend uploads this layout
// unless HW_GEMM_SWIGLU=0). In decode (M <= 16, 16-bit weights) the decode kernel writes `out`
// from its epilogue (two tiles per block: the gate tile and its up tile), so no fp32 gate/up
// output and no swiglu launch; otherwise the GEMM writes gu ([M, 2 I] fp32, the interleaved
// layout) and swiglu(..., interleaved8) reads it. out: [M, I] in gemm_input_type(W); it must not
// alias x (other blocks still read it).
void gemm_swiglu(const DeviceMatrix& W, const void* x, int M, float* gu, void* out, cudaStream_t s,
                 const GemmWorkspace* ws = nullptr);

// The qkv GEMM and qkv_post in one (models without q/k norms): for W's rows [q | k | v] with each
// K head's rows stored in RoPE pairs (row 2i = the head's row i, row 2i + 1 = its row i + half;
// the backend uploads this layout unless HW_GEMM_QKV=0, and the matching bias), does what
// gemm() into p.qkv and then qkv_post(p) do: in decode (M = p.T <= 16, 16-bit weights) from the
// decode kernel's epilogue (no fp32 qkv output, no qkv_post launch); otherwise through p.qkv with
// qkv_post reading the paired layout. p.k_paired must be set.
void gemm_qkv(const DeviceMatrix& W, const void* x, int M, const QkvPost& p, const KvLayout& kv, cudaStream_t s,
              const GemmWorkspace* ws = nullptr);

}  // namespace hw::cuda
