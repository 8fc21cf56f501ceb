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
// arrival counter per column tile (the last counter counts the blocks of a fused RMSNorm
// epilogue). The counters must be zero when the workspace is first used
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

// A residual GEMM's follow-up RMSNorm: out[m] = rmsnorm(y[m]) * w, the next GEMM's input.
// With the switch on (HW_GEMM_NORM=1) and a workspace, the decode kernel's last block writes it
// (one launch fewer); otherwise gemm() launches rmsnorm() after the product. out may be x.
// The fused form measured slower on the H200 (2026-12-02 14:30 UTC: 7B W=4 5.61 vs 5.01 ms a step,
// 0.5B W=4 1.28 vs 1.13: one block's serial tail costs more than the launch it saves), so it is off.
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

// Tests: the decode kernel's variant, tiles per block (1 or 2), K chunks in flight per warp
// (4, the default, or 8; 8 only applies to M <= 8) and the L2 prefetch hint with 8 chunks
// (1 on, 0 off); 0 (prefetch: -1) keeps the default choice. Benchmarks: HW_GEMM_TILES,
// HW_GEMM_UNROLL, HW_GEMM_PREFETCH.
void gemm_force_shape(int tiles, int unroll, int prefetch = -1);

// Tests: splits of K for the decode kernel (1: none; 0: the default choice, HW_GEMM_SPLIT or the
// cost model of gemm_split.h). Applies only to launches given a workspace that holds them.
void gemm_force_split(int splits);

// Tests: the fused RMSNorm epilogue on (1) or off (0); -1 = HW_GEMM_NORM.
void gemm_force_norm(int on);

// A GEMM whose input is an RMSNorm of the fp32 residual stream: y (+)= W · (rmsnorm(x[row m]) * w).
// With the fold on (gemm_fold_norm_enabled) and a decode launch with bf16 weights, the decode
// kernel reads x itself: it multiplies x by w while it loads it, rounds to bf16, sums the
// squares of x alongside and scales each output by 1/rms(row) at the end, so no rmsnorm launch and
// no 16-bit input buffer (the rounding point moves from x/rms*w to x*w: the same relative error).
// Otherwise (fold off, prefill, fp32/fp16 weights: x*w could overflow fp16 before the scaling)
// rmsnorm() writes `act` and gemm() reads it. No split of K when folded.
struct GemmInputNorm {
  const float* x = nullptr;   // [*, K] fp32
  const int* rows = nullptr;  // device: the M rows of x to use, or null (rows 0..M-1)
  const float* w = nullptr;   // [K]
  float eps = 1e-6f;
  void* act = nullptr;  // [max(M, 16), K] in gemm_input_type(W): the unfolded path's buffer
};
void gemm_normed(const DeviceMatrix& W, const GemmInputNorm& in, int M, float* y, bool accumulate, cudaStream_t s,
                 const GemmWorkspace* ws = nullptr);

// The down_proj's input of a SwiGLU MLP from its gate/up GEMM: out[m][i] = silu(g_i) * u_i with
// (g, u) = W x[m] (or W rmsnorm(x[m]) with `in`, as gemm_normed), for W's rows interleaved in 8s:
// rows 16j..16j+7 are gate rows 8j..8j+7 and rows 16j+8..16j+15 the same up rows (W.rows = 2 I,
// I % 8 == 0; the backend uploads this layout unless HW_GEMM_SWIGLU=0). In decode (M <= 16, 16-bit
// weights) the decode kernel writes `out` from its epilogue (two tiles per block: the gate tile
// and its up tile), so no fp32 gate/up output and no swiglu launch; otherwise the GEMM writes gu
// ([M, 2 I] fp32, the interleaved layout) and swiglu(..., interleaved8) reads it. out: [M, I] in
// gemm_input_type(W); it must not alias x or in->act (other blocks still read them).
void gemm_swiglu(const DeviceMatrix& W, const void* x, const GemmInputNorm* in, int M, float* gu, void* out,
                 cudaStream_t s, const GemmWorkspace* ws = nullptr);

// The qkv GEMM and qkv_post in one (models without q/k norms): for W's rows [q | k | v] with each
// K head's rows stored in RoPE pairs (row 2i = the head's row i, row 2i + 1 = its row i + half;
// the backend uploads this layout unless HW_GEMM_QKV=0, and the matching bias), does what
// gemm() into p.qkv and then qkv_post(p) do: in decode (M = p.T <= 16, 16-bit weights) from the
// decode kernel's epilogue (no fp32 qkv output, no qkv_post launch); otherwise through p.qkv with
// qkv_post reading the paired layout. x or `in` as for gemm_swiglu. p.k_paired must be set.
void gemm_qkv(const DeviceMatrix& W, const void* x, const GemmInputNorm* in, int M, const QkvPost& p,
              const KvLayout& kv, cudaStream_t s, const GemmWorkspace* ws = nullptr);

// The fold switch: HW_GEMM_FOLD_NORM=1 (the weights' loads issued before the activations' are
// converted) or =2 (the activations first), read once; or gemm_force_fold_norm(1/2/0) (tests; -1:
// the environment's). Off by default.
bool gemm_fold_norm_enabled();
void gemm_force_fold_norm(int on);

}  // namespace hw::cuda
