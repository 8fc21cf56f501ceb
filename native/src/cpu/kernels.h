// CPU building blocks of the forward pass. Activations are fp32; weights stay in their
// stored dtype (bf16 / fp16 / fp32) and are widened on the fly, so weights are read
// straight from the mapping.
#pragma once
#include <cstdint>

#include "../tensor.h"

namespace hw::cpu {

// y[t][o] = sum_i W[o][i] * x[t][i] for t < n, o < W.rows(). Each weight row is read
// once per call whatever n is, so n rows cost about as much memory traffic as one.
// Parallel over output rows on the current par::Pool (parallel.h).
void matmul(const Tensor& W, const float* x, int n, float* y);

// y = x / rms(x) * w over `dim` elements; w is fp32.
void rmsnorm(const float* x, const float* w, int dim, float eps, float* y);

// y[i] = silu(gate[i]) * up[i]
void swiglu(const float* gate, const float* up, int n, float* y);

// Dot product of two fp32 vectors.
float dot(const float* a, const float* b, int n);
// y += a * x
void axpy(float a, const float* x, int n, float* y);

// Widens one row of an embedding table to fp32.
void embed_row(const Tensor& table, int64_t row, float* out);

}  // namespace hw::cpu
