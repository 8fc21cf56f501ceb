// Token sampling: greedy, temperature, top-k, top-p, from a seeded generator per row.
#pragma once
#include <cstdint>

namespace hw {

struct SamplingParams {
  float temperature = 0.0f;  // 0 = greedy (argmax)
  int top_k = 0;             // keep the k most likely tokens; 0 = off
  float top_p = 1.0f;        // keep the smallest set whose probability reaches p; 1 = off
};

// xoshiro256** seeded through splitmix64: the same seed gives the same stream everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0);
  uint64_t next();
  double uniform();  // in [0, 1)

 private:
  uint64_t s_[4];
};

// Applies temperature, then top-k, then top-p (the order transformers uses) and draws one id.
int sample_token(const float* logits, int vocab, const SamplingParams& p, Rng& rng);

}  // namespace hw
