// The attention op's entry: checks the shapes, lists the work items, and runs them with the
// instruction set this CPU supports (AMX tiles where present and permitted, else AVX512-BF16
// on AMD, else AVX-512, else AVX2; override: HW_CPU_ISA=avx2|avx512|avx512bf16|amx, as for matmul, which knows the
// first two). amx and avx512bf16 change only bf16 K/V: queries and softmax weights rounded to
// bf16, products in AMX tiles or VDPBF16PS, sums in fp32.
#include "attention.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "../error.h"
#include "attention_impl.h"
#include "cpu_features.h"

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

enum class Isa { Avx2, Avx512, Avx512Bf16, Amx };

// The path a name asks for, when this CPU can run it (else false, isa unchanged).
bool isa_by_name(const std::string& s, Isa& isa) {
  if (s == "avx2") return isa = Isa::Avx2, true;
  if (s == "avx512" && has_avx512()) return isa = Isa::Avx512, true;
  if (s == "avx512bf16" && has_avx512bf16()) return isa = Isa::Avx512Bf16, true;
  if (s == "amx" && has_amx()) return isa = Isa::Amx, true;
  return false;
}

std::atomic<Isa>& current_isa() {
  static std::atomic<Isa> v{[] {
    // AMX first: on Sapphire Rapids it ran bf16 K/V at 2.1-2.4x the rate of AVX-512 (bench_attention,
    // bench/RESULTS.md). The AVX-512 bf16 dot products next on AMD: on Zen 5 they ran at 1.6x
    // the rate of fp32 FMAs on widened K/V (Zen 5 issues VDPBF16PS at the rate of an fp32 FMA,
    // 7.3 G/s each on one core; other AMD CPUs with AVX512-BF16, Zen 4, are taken to be alike:
    // unmeasured). On Intel they stay opt-in: 0.8x there (VDPBF16PS issues at half the rate).
    Isa isa = has_amx()                      ? Isa::Amx
              : has_avx512bf16() && is_amd() ? Isa::Avx512Bf16
              : has_avx512()                 ? Isa::Avx512
                                             : Isa::Avx2;
    const char* env = std::getenv("HW_CPU_ISA");
    if (env) isa_by_name(env, isa);  // unknown or unsupported: the best
    return isa;
  }()};
  return v;
}

void check(bool ok, const std::string& what) {
  if (!ok) throw EngineError("attention: " + what);
}

}  // namespace

const char* attention_isa() {
  switch (current_isa().load()) {
    case Isa::Amx:
      return "amx";
    case Isa::Avx512Bf16:
      return "avx512bf16";
    case Isa::Avx512:
      return "avx512";
    default:
      return "avx2";
  }
}

bool set_attention_isa(const char* name) {
  Isa isa;
  if (!isa_by_name(name ? name : "", isa)) return false;
  current_isa() = isa;
  return true;
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
  check(kv.dtype != KvDType::Q8 || !kv.keys_token_major, "q8 keys must be dimension-major");
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
  switch (current_isa().load()) {
    case Isa::Amx:
      attention_run_amx(job);
      break;
    case Isa::Avx512Bf16:
      attention_run_avx512bf16(job);
      break;
    case Isa::Avx512:
      attention_run_avx512(job);
      break;
    default:
      attention_run_avx2(job);
  }
}

}  // namespace hw::cpu
