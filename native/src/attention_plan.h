// The Hogwild attention problem of one forward, in flat arrays that every backend reads the
// same way (the CPU op in cpu/attention.h; the CUDA kernel mirrors it). Built once per
// forward from the batch and the cache; the same for every layer.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "backend.h"
#include "batch.h"
#include "kv_cache.h"
#include "kv_q8.h"

namespace hw {

// Element type of the K/V page storage. Q8 (opt-in): int8 with a bf16 scale per block of 32
// elements of a row (kv_q8.h); its elements are the int8 values, its scales lie apart.
enum class KvDType : uint8_t { F32, F16, BF16, Q8 };
inline size_t kv_dtype_bytes(KvDType t) {
  return t == KvDType::F32 ? 4 : t == KvDType::Q8 ? 1 : 2;
}
inline const char* kv_dtype_name(KvDType t) {
  return t == KvDType::F32 ? "f32" : t == KvDType::F16 ? "f16" : t == KvDType::Q8 ? "q8" : "bf16";
}

// Paged K/V of one layer, in elements of `dtype` from each page's base pointer:
//   key   element d of token `index`, KV head h: k_offset + (h * head_dim + d) * page_tokens + index
//         (keys_token_major: k_offset + (h * page_tokens + index) * head_dim + d)
//   value element d of token `index`, KV head h: v_offset + (h * page_tokens + index) * head_dim + d
// The CPU backend keeps keys dimension-major inside a page ([kv_head][head_dim][page_tokens]):
// a tile of keys is then a ready operand of the query-key product. Token-major keys (the
// layout a GPU backend may keep) are read too, through a transposing copy: slower, for
// checking other backends against this op. Keys are stored rotated by RoPE at their
// block-local index; values are plain.
// Q8 also has the scales (bf16), b = d / kQ8Block of nb = q8_blocks(head_dim), laid out as
// the elements are: keys [kv_head][nb][page_tokens] from ks_offset, values
// [kv_head][page_tokens][nb] from vs_offset (bf16 units from a page's base). Q8 keys are
// always dimension-major.
struct PagedKv {
  KvDType dtype = KvDType::F32;
  int page_tokens = 0, kv_heads = 0, head_dim = 0;
  const void* const* pages = nullptr;
  size_t k_offset = 0, v_offset = 0;  // in elements, from a page's base
  bool keys_token_major = false;
  size_t ks_offset = 0, vs_offset = 0;  // Q8: in bf16 units, from a page's base

  size_t key_index(int h, int d, int index) const {
    return keys_token_major ? k_offset + (size_t(h) * page_tokens + index) * head_dim + d
                            : k_offset + (size_t(h) * head_dim + d) * page_tokens + index;
  }
  size_t value_index(int h, int index) const { return v_offset + (size_t(h) * page_tokens + index) * head_dim; }
  size_t key_scale_index(int h, int b, int index) const {
    return ks_offset + (size_t(h) * q8_blocks(head_dim) + b) * page_tokens + index;
  }
  size_t value_scale_index(int h, int index) const {
    return vs_offset + (size_t(h) * page_tokens + index) * q8_blocks(head_dim);
  }
};

// A block placed in a row's view.
struct AttnSegment {
  int page_begin = 0;  // the block's pages are page_table[page_begin ...], in token order
  int length = 0;      // tokens the block holds, this step's writes included
  int offset = 0;      // view position of the block's first token
};

// One batch row: `tokens` queries at consecutive view positions from first_position.
struct AttnRow {
  int q_begin = 0;  // first query token in the q / out arrays
  int tokens = 0;
  int first_position = 0;
  int seg_begin = 0, seg_count = 0;  // its view: segments[seg_begin, seg_begin + seg_count)
  int key_begin = 0;                 // first entry of its last token's visible keys in the key output
};

struct AttnPlan {
  std::vector<AttnRow> rows;
  std::vector<AttnSegment> segments;
  std::vector<int> page_table;
  int tokens = 0;        // query tokens in all rows
  int keys_total = 0;    // sum over rows of the keys their last token sees
  int max_position = 0;  // largest query view position (the RoPE table must cover it)
};

// Keys that a query at view position p sees in a segment: key j is visible iff offset + j <= p.
inline int visible_keys(const AttnSegment& s, int p) {
  const int v = p - s.offset + 1;
  return v <= 0 ? 0 : (v < s.length ? v : s.length);
}

// Appends one row to a plan. `pages` holds the block's pages (at least enough for `length`).
void plan_add_row(AttnPlan& plan, int tokens, int first_position);
void plan_add_segment(AttnPlan& plan, const int* pages, int page_tokens, int length, int offset);

// The plan of a validated forward (see Model::forward: plans[r].segment_lengths are the
// lengths after this step's writes).
AttnPlan plan_attention(const Batch& batch, const std::vector<RowPlan>& plans, const KvCache& cache);

}  // namespace hw
