// Token sampling on the GPU, from the logits the forward left on the device: greedy,
// temperature, top-k, top-p, with the CPU sampler's rules (temperature, then top-k, then
// top-p over the kept candidates; ties broken by the lower id), so the distribution is the
// same. The uniform number comes from the worker's own generator on the host (one draw per
// sampled token, as on the CPU), so runs stay reproducible per seed; only the order in which
// the kept candidates are walked differs (by id here, by rank on the CPU).
#pragma once
#include <cuda_runtime.h>

namespace hw::cuda {

struct RowSampling {
  int row = 0;               // the logits row to sample
  float temperature = 0.0f;  // <= 0: greedy
  int top_k = 0;             // 0 = off
  float top_p = 1.0f;        // 1 = off
  float u = 0.0f;            // uniform draw in [0, 1)
};

// out[i] = the id drawn from logits row params[i].row (rows of `vocab` floats), for i < n.
void sample_rows(const float* logits, int n, int vocab, const RowSampling* params, int* out, cudaStream_t s);

}  // namespace hw::cuda
