// CUDA building blocks of the forward pass (everything but the GEMMs and attention).
// Activations are fp32 in device memory; GEMM inputs are written in the weights' dtype
// (`act`: F32, BF16 or F16) so a GEMM reads them directly. KV pages hold `kv` (F32 for fp32
// checkpoints, else BF16) in the CPU's layout: [layer][K,V][kv_head][token][head_dim].
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "../tensor.h"

namespace hw::cuda {

// Where K/V pages live and how one page is laid out.
struct KvLayout {
  void* const* pages = nullptr;  // device array: base of each page
  DType kv = DType::BF16;
  int layers = 0, kv_heads = 0, page_tokens = 0, head_dim = 0;
};

// x[t] = fp32(table[ids[t]]), table [vocab, H] in `dt`.
void embed(const void* table, DType dt, const int* ids, int T, int H, float* x, cudaStream_t s);

// out[i] = rmsnorm(x[rows ? rows[i] : i]) * w, written in `act`; n rows of H.
void rmsnorm(const float* x, const int* rows, int n, int H, const float* w, float eps, void* out, DType act,
             cudaStream_t s);

// Per token of qkv [T, QD + 2 KD]: biases, per-head q/k RMSNorm, then K rotated at the
// token's block-local index and K, V written to their slot. q is copied, unrotated, to q_out.
struct QkvPost {
  float* qkv = nullptr;
  float* q_out = nullptr;  // [T, QD]
  int T = 0, heads = 0, kv_heads = 0, head_dim = 0;
  const float* bias = nullptr;    // [QD + 2 KD] or null
  const float* q_norm = nullptr;  // [head_dim] or null
  const float* k_norm = nullptr;
  float eps = 1e-6f;
  const int* local = nullptr;       // [T] block-local index (RoPE position of the key)
  const int* slot_page = nullptr;   // [T]
  const int* slot_index = nullptr;  // [T]
  const float* inv_freq = nullptr;  // [head_dim / 2]
  int layer = 0;
  // Each K head's elements stored in RoPE pairs (element 2i = i, 2i + 1 = i + half: gemm.h's
  // gemm_qkv layout); only without q/k norms.
  bool k_paired = false;
};
void qkv_post(const QkvPost& p, const KvLayout& kv, cudaStream_t s);

// out = silu(gu[:, :I]) * gu[:, I:], written in `act`. interleaved8: gu's columns hold gate and
// up in alternating runs of 8 (16j..16j+7 = gate 8j..8j+7, 16j+8..16j+15 = up; gemm.h's gemm_swiglu).
void swiglu(const float* gu, int T, int I, void* out, DType act, cudaStream_t s, bool interleaved8 = false);

// out = x converted to `act` (n elements).
void convert(const float* x, size_t n, void* out, DType act, cudaStream_t s);

// Token copies between slots: moves[i] = {src page, src index, dst page, dst index}; keys
// rotated `delta` positions further (0 = plain copy).
void move_tokens(const int4* moves, int n, int delta, const float* inv_freq, const KvLayout& kv, cudaStream_t s);

// Fills n elements of `dt` with seeded uniform values in [-scale, scale] (+ shift).
void fill_random(void* data, DType dt, size_t n, uint64_t seed, float scale, float shift, cudaStream_t s);

}  // namespace hw::cuda
