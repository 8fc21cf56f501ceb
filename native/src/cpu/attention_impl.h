// Private to the attention op: the work list shared by its per-ISA translation units.
#pragma once
#include <vector>

#include "attention.h"
#include "parallel.h"

namespace hw::cpu {

// One work item: `nt` query tokens from t0 of a row, with all query heads of one KV head.
struct AttnItem {
  int row, kv_head, t0, nt;
};

struct AttnJob {
  const AttnPlan* plan;
  const PagedKv* kv;
  const RopeTable* rope;
  int heads;
  float scale;
  const float* q;
  float* out;
  const AttnShares* shares;     // null: no shares
  std::vector<AttnItem> items;  // most expensive first
  int max_rows;                 // most query rows (tokens x group) of an item
};

void attention_run_avx2(const AttnJob& job);
void attention_run_avx512(const AttnJob& job);      // only on CPUs with AVX-512F/BW/VL/DQ
void attention_run_avx512bf16(const AttnJob& job);  // those and AVX512-BF16
void attention_run_amx(const AttnJob& job);         // those, AMX-TILE and AMX-BF16, tiles permitted

}  // namespace hw::cpu
