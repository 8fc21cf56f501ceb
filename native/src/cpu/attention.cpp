// The attention op's entry: checks the shapes, lists the work items, and runs them with the
// instruction set this CPU supports (AVX-512 where present, else AVX2;
// override: HW_CPU_ISA=avx2|avx512, as for matmul).
#include "attention.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "../error.h"
#include "attention_impl.h"

namespace hw::cpu {
namespace {

// Query rows (tokens x query heads of one KV head) per work item. Larger items widen each
// 16-bit K/V tile and pay the per-item costs once for more rows: on the 2-core VM
// (bench_attention, 4k tokens in chunks of 80, interleaved rounds) 256 rows ran 1.25x the
// rate of 32. So a prefill's items are as large as kMaxItemRows allows while every thread
// still gets kItemsPerThread of them (balance); never below kMinItemRows.
constexpr int kMinItemRows = 32, kMaxItemRows = 256, kItemsPerThread = 4;

// 0: the size above; otherwise fixed (set_attention_item_rows, for benchmarks).
std::atomic<int>& fixed_item_rows() {
  static std::atomic<int> v{0};
  return v;
}

// Query tokens per item for rows of `group` query heads per KV head.
int item_tokens(const AttnPlan& plan, int group, int kv_heads) {
  const int fixed = fixed_item_rows();
  if (fixed > 0) return std::max(1, fixed / group);
  const par::Pool* pool = par::current();
  const int threads = pool ? pool->size() : 1;
  const int64_t rows = int64_t(plan.tokens) * group * kv_heads;
  const int64_t per_item = rows / (int64_t(kItemsPerThread) * threads);
  const int target = int(std::clamp<int64_t>(per_item, kMinItemRows, kMaxItemRows));
  return std::max(1, target / group);
}

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

int attention_item_rows() {
  return fixed_item_rows();
}

void set_attention_item_rows(int rows) {
  fixed_item_rows() = std::max(0, rows);
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
  const int tile = item_tokens(plan, group, kv.kv_heads);
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
