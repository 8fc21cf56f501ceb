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

static inline uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

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

double Rng::uniform() {
  return double(next() >> 11) * 0x1.0p-53;
}

int sample_token(const float* logits, int vocab, const SamplingParams& p, Rng& rng) {
  if (p.temperature <= 0.0f) return int(std::max_element(logits, logits + vocab) - logits);
  const double m = *std::max_element(logits, logits + vocab);
  const double inv_t = 1.0 / p.temperature;
  auto weight = [&](int id) { return std::exp((double(logits[id]) - m) * inv_t); };

  // Plain temperature sampling: the weights once, then one scan; no sorting.
  if ((p.top_k <= 0 || p.top_k >= vocab) && p.top_p >= 1.0f) {
    thread_local std::vector<float> w;
    w.resize(size_t(vocab));
    const float mf = float(m), inv = float(inv_t);
    double total = 0.0;
    for (int i = 0; i < vocab; i++) total += w[i] = std::exp((logits[i] - mf) * inv);
    double u = rng.uniform() * total;
    for (int i = 0; i < vocab; i++) {
      if (u < w[i]) return i;
      u -= w[i];
    }
    return int(std::max_element(logits, logits + vocab) - logits);
  }

  // Candidates best first. Top-p needs only the head of the ranking: sort the best `n`
  // and widen until they hold the mass p (or everything is sorted).
  auto better = [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::vector<int> ids(vocab);
  std::iota(ids.begin(), ids.end(), 0);
  const int limit = p.top_k > 0 ? std::min(p.top_k, vocab) : vocab;
  double all = 0.0;
  if (p.top_k > 0) {
    std::partial_sort(ids.begin(), ids.begin() + limit, ids.end(), better);
    for (int i = 0; i < limit; i++) all += weight(ids[i]);
  } else {
    for (int i = 0; i < vocab; i++) all += weight(i);
  }
  int n = limit;
  if (p.top_p < 1.0f) {
    for (int sorted = std::min(256, limit);; sorted = std::min(sorted * 4, limit)) {
      if (p.top_k <= 0) std::partial_sort(ids.begin(), ids.begin() + sorted, ids.end(), better);
      double cum = 0.0;
      int keep = 0;
      while (keep < sorted && cum < p.top_p * all) cum += weight(ids[keep++]);
      if (cum >= p.top_p * all || sorted == limit) {
        n = std::max(keep, 1);
        break;
      }
    }
  }
  std::vector<double> prob(n);
  double total = 0.0;
  for (int i = 0; i < n; i++) total += prob[i] = weight(ids[i]);
  double u = rng.uniform() * total;
  for (int i = 0; i < n; i++) {
    if (u < prob[i]) return ids[i];
    u -= prob[i];
  }
  return ids[n - 1];
}

}  // namespace hw
