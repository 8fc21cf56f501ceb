#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace hw {

static uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

Rng::Rng(uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t Rng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return double(next() >> 11) * 0x1.0p-53; }

int sample_token(const float* logits, int vocab, const SamplingParams& p, Rng& rng) {
  if (p.temperature <= 0.0f) return int(std::max_element(logits, logits + vocab) - logits);

  // Candidates sorted by logit, best first; only as many as top-k needs when it is set.
  std::vector<int> ids(vocab);
  std::iota(ids.begin(), ids.end(), 0);
  auto better = [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  int n = vocab;
  if (p.top_k > 0 && p.top_k < vocab) {
    n = p.top_k;
    std::partial_sort(ids.begin(), ids.begin() + n, ids.end(), better);
  } else {
    std::sort(ids.begin(), ids.end(), better);
  }

  std::vector<double> prob(n);
  const double m = logits[ids[0]];
  double total = 0.0;
  for (int i = 0; i < n; i++) total += prob[i] = std::exp((double(logits[ids[i]]) - m) / p.temperature);
  if (p.top_p < 1.0f) {
    double cum = 0.0;
    int keep = 0;
    while (keep < n && cum < p.top_p * total) cum += prob[keep++];
    n = std::max(keep, 1);
    total = 0.0;
    for (int i = 0; i < n; i++) total += prob[i];
  }
  double u = rng.uniform() * total;
  for (int i = 0; i < n; i++) {
    if (u < prob[i]) return ids[i];
    u -= prob[i];
  }
  return ids[n - 1];
}

}  // namespace hw
