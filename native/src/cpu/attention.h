// Hogwild attention on the CPU, as one op: every row's queries against the blocks of its
// view, one softmax per query over all visible keys (DESIGN.md section 2).
//
// Keys are stored rotated at their block-local index j; a query at view position p is
// rotated once per block by p - offset (RoPE is relative), never the keys. Queries are
// processed in tiles (tokens x the query heads of one KV head) against tiles of keys, with
// an online softmax, so prefill (multi-token rows) and decode use the same code.
// Every other backend's attention is checked against this op (tests/test_attention.cpp).
#pragma once
#include "../attention_plan.h"
#include "rope.h"

namespace hw::cpu {

// Optional outputs for the last query token of every row, averaged over query heads.
struct AttnShares {
  float* segments = nullptr;  // [plan.segments.size()]: share of its attention per view segment
  float* keys = nullptr;      // [plan.keys_total]: attention on each visible key, in view order
                              // (row r's keys start at plan.rows[r].key_begin); may be null
};

// q: [plan.tokens][heads][head_dim], after biases and q-norm, before RoPE.
// out: [plan.tokens][heads][head_dim]. scale: usually 1/sqrt(head_dim).
// kv: one layer's pages. K/V in fp32, f16 or bf16 (read as stored, accumulated in fp32), or
// q8 (de-quantised per tile to fp32; keys dimension-major).
// The RoPE table must cover plan.max_position. shares (optional) is overwritten.
// Throws EngineError on shapes that do not fit together. Parallel over (row, KV head,
// query tile) with OpenMP.
void attention(const AttnPlan& plan, const PagedKv& kv, const RopeTable& rope, int heads, float scale, const float* q,
               float* out, const AttnShares* shares = nullptr);

// Which instruction set the op runs with ("avx2", "avx512", "avx512bf16" or "amx"; the last
// two take bf16 K/V through bf16 products, queries and weights rounded to bf16);
// set_attention_isa picks one for tests and benchmarks (false when this CPU cannot run it).
const char* attention_isa();
bool set_attention_isa(const char* name);

// Query rows (tokens x the query heads of one KV head) per work item: 0 (the default) sizes
// them from the work and the threads; a fixed size is for benchmarks (bench_attention
// compares sizes in one run).
int attention_item_rows();
void set_attention_item_rows(int rows);

}  // namespace hw::cpu
