// The attention op's entry: checks the shapes, lists the work items, and runs them with the
// instruction set this CPU supports (AVX-512 where present, else AVX2;
// override: HW_CPU_ISA=avx2|avx512, as for matmul).
#include "attention.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>

#include "../error.h"
#include "attention_impl.h"

namespace hw::cpu {
namespace {

// Query rows (tokens x query heads of one KV head) per work item: enough to reuse each key
// tile many times from cache, few enough that a prefill splits into many items.
constexpr int kItemRows = 32;

bool has_avx512() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
  return false;
#endif
}

std::atomic<bool>& use_avx512() {
  static std::atomic<bool> v{[] {
    const char* env = std::getenv("HW_CPU_ISA");
    if (env && std::string(env) == "avx2") return false;
    return has_avx512();
  }()};
  return v;
}

void check(bool ok, const std::string& what) {
  if (!ok) throw EngineError("attention: " + what);
}

}  // namespace

const char* attention_isa() {
  return use_avx512() ? "avx512" : "avx2";
}

bool set_attention_isa(const char* name) {
  const std::string s = name ? name : "";
  if (s == "avx2") return use_avx512() = false, true;
  if (s == "avx512" && has_avx512()) return use_avx512() = true, true;
  return false;
}

void attention(const AttnPlan& plan, const PagedKv& kv, const RopeTable& rope, int heads, float scale, const float* q,
               float* out, const AttnShares* shares) {
  check(kv.kv_heads > 0 && heads > 0 && heads % kv.kv_heads == 0,
        std::to_string(heads) + " query heads do not split over " + std::to_string(kv.kv_heads) + " KV heads");
  check(kv.head_dim > 0 && kv.head_dim == 2 * rope.half, "head_dim " + std::to_string(kv.head_dim) +
                                                             " does not match the RoPE table (" +
                                                             std::to_string(2 * rope.half) + ")");
  check(kv.page_tokens > 0, "page_tokens must be positive");
  check(plan.rows.empty() || plan.max_position < rope.positions(),
        "the RoPE table covers " + std::to_string(rope.positions()) + " positions, the plan reaches position " +
            std::to_string(plan.max_position));
  const int group = heads / kv.kv_heads;
  if (shares) {
    if (shares->segments) std::fill(shares->segments, shares->segments + plan.segments.size(), 0.0f);
    if (shares->keys) std::fill(shares->keys, shares->keys + plan.keys_total, 0.0f);
  }

  AttnJob job{&plan, &kv, &rope, heads, scale, q, out, shares, {}, 0};
  const int tile = std::max(1, kItemRows / group);
  for (size_t r = 0; r < plan.rows.size(); r++) {
    const AttnRow& row = plan.rows[r];
    check(row.tokens > 0 && row.first_position >= 0,
          "row " + std::to_string(r) + " has no tokens or a negative position");
    for (int t0 = 0; t0 < row.tokens; t0 += tile)
      for (int h = 0; h < kv.kv_heads; h++) {
        const int nt = std::min(tile, row.tokens - t0);
        job.items.push_back({int(r), h, t0, nt});
        job.max_rows = std::max(job.max_rows, nt * group);
      }
  }
  // Later query tiles of a causal row see more keys: start them first (dynamic schedule).
  auto cost = [&](const AttnItem& it) { return plan.rows[it.row].first_position + it.t0; };
  std::stable_sort(job.items.begin(), job.items.end(),
                   [&](const AttnItem& a, const AttnItem& b) { return cost(a) > cost(b); });
  if (job.items.empty()) return;
  if (use_avx512())
    attention_run_avx512(job);
  else
    attention_run_avx2(job);
}

}  // namespace hw::cpu
