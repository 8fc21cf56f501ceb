// Rotary position embedding (rotate-half form, as in Qwen2/Qwen3/Llama).
#pragma once
#include <vector>

#include "../config.h"

namespace hw {

// cos and sin of every rotation in [0, positions()), exactly as Rope::rotate computes them:
// the tables the attention op rotates queries with (one row per relative distance).
struct RopeTable {
  int half = 0;                 // head_dim / 2
  std::vector<float> cos, sin;  // [position][half]
  int positions() const { return half > 0 ? int(cos.size() / size_t(half)) : 0; }
  const float* cos_at(int p) const { return cos.data() + size_t(p) * half; }
  const float* sin_at(int p) const { return sin.data() + size_t(p) * half; }
};

// dst = src rotated by table row p (the same arithmetic as Rope::rotate).
void rope_apply(const RopeTable& t, int p, const float* src, float* dst);

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
  // Grows `t` to cover positions [0, n) (never shrinks; rows already there are kept).
  void extend(RopeTable& t, int n) const;

 private:
  int head_dim_;
  std::vector<float> inv_freq_;  // head_dim/2 frequencies, llama3 scaling applied
};

}  // namespace hw
