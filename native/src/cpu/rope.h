// Rotary position embedding (rotate-half form, as in Qwen2/Qwen3/Llama).
#pragma once
#include <vector>

#include "../config.h"

namespace hw {

class Rope {
 public:
  explicit Rope(const ModelConfig& cfg);
  int head_dim() const { return head_dim_; }
  // The head_dim/2 frequencies (llama3 scaling applied): what GPU kernels upload to rotate alike.
  const std::vector<float>& inv_freq() const { return inv_freq_; }
  // Rotates one head vector in place by `position` (may be negative or any relative distance).
  void rotate(float* x, int position) const;
  // Writes the rotation of `src` by `position` into `dst`.
  void rotate(const float* src, float* dst, int position) const;

 private:
  int head_dim_;
  std::vector<float> inv_freq_;  // head_dim/2 frequencies, llama3 scaling applied
};

}  // namespace hw
