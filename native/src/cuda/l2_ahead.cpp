#include "l2_ahead.h"

#include <cstdlib>

namespace hw::cuda {

namespace {
// A non-negative integer from the environment, or `fallback` when unset or not a number.
long env_count(const char* name, long fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return *end == '\0' && n >= 0 ? n : fallback;
}
}  // namespace

int l2_ahead_mask() {
  static const int mask = int(env_count("HW_L2_AHEAD", 0) & (kL2AheadAttention | kL2AheadMlpNorm | kL2AheadInputNorm));
  return mask;
}

size_t l2_ahead_attention_budget() {
  static const size_t bytes = size_t(env_count("HW_L2_AHEAD_MB", 32)) << 20;
  return bytes;
}

size_t l2_ahead_norm_budget() {
  static const size_t bytes = size_t(env_count("HW_L2_AHEAD_NORM_MB", 12)) << 20;
  return bytes;
}

}  // namespace hw::cuda
