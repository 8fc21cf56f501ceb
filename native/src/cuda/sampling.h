// Token sampling on the GPU, from the logits the forward left on the device: greedy,
// temperature, top-k, top-p, with the CPU sampler's rules (temperature, then top-k, then
// top-p over the kept candidates; ties broken by the lower id), so the distribution is the
// same. The uniform number comes from the worker's own generator on the host (one draw per
// sampled token, as on the CPU), so runs stay reproducible per seed.
//
// Two paths, picked per row on the device (a captured graph may replay with other params):
// - fast (greedy, or 1 <= top_k <= kFastTopK): a candidates kernel splits each row into
//   slices and keeps every slice's best k (value, id) pairs; a finisher block per row merges
//   them into the exact top-k, cuts top-p and draws, walking the kept ids best first (as the
//   CPU sampler does, so the same u gives the same id up to exp's last bit; except rows with
//   top_k >= vocab and no top-p, which the CPU walks by id: the same distribution, other ids).
// - general (top_k off or above kFastTopK): one block per row walks the whole vocabulary
//   (radix cuts for top-k and top-p), walking the kept ids by id.
// HW_SAMPLE_FAST=0 (read once) sends every row the general way.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "sampling_select.h"  // kFastTopK

namespace hw::cuda {

struct RowSampling {
  int row = 0;               // the logits row to sample
  float temperature = 0.0f;  // <= 0: greedy
  int top_k = 0;             // 0 = off
  float top_p = 1.0f;        // 1 = off
  float u = 0.0f;            // uniform draw in [0, 1)
};

// The fast path's scratch: the slices' candidates (packed order key and id), owned by the caller
// so that nothing is allocated while a graph is captured.
struct SampleWorkspace {
  unsigned long long* cand = nullptr;
  size_t capacity = 0;  // entries
};

// Entries sample_rows needs in its workspace for n rows of `vocab` logits.
size_t sample_workspace_entries(int n, int vocab);

// out[i] = the id drawn from logits row params[i].row (rows of `vocab` floats), for i < n.
// Throws EngineError when `ws` holds fewer than sample_workspace_entries(n, vocab) entries.
void sample_rows(const float* logits, int n, int vocab, const RowSampling* params, int* out, const SampleWorkspace& ws,
                 cudaStream_t s);

// Tests and benchmarks: true sends every row the general way (as HW_SAMPLE_FAST=0), false
// returns to the default.
void sampling_force_slow(bool on);

}  // namespace hw::cuda
