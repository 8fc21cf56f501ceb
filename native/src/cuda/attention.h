// Hogwild attention on the GPU (issue 8, item 5): for every query token of every batch row,
// one softmax over all visible keys of all blocks in the row's view, with the keys read once
// per (block, KV head) for all workers.
//
// How it works (attention.cu):
// - The KV pages stay where the backend keeps them (bf16, CPU page layout, below). Keys were
//   rotated by RoPE at their block-local index when written; the kernel rotates each *query*
//   by p - offset for each block it meets (never the keys), so one K/V tile serves every row
//   that views its block, each with its own rotation and causal limit.
// - The distinct blocks of all views are cut into 64-key tiles; the tiles are split into
//   equal-cost chunks, one CTA per (chunk, KV head, query tile), sized to fill every SM
//   whatever the block sizes (split-K). A CTA puts up to 64 query rows (tokens x query heads
//   of one KV head) on tensor cores (mma.sync bf16, fp32 accumulators) and keeps one online
//   softmax (m, l, o) per row; a second small kernel merges the chunks by log-sum-exp and,
//   on request, the attention share of every view segment from the same numbers.
//
// Use (cuda-core's CUDA backend, once per forward, then once per layer):
//   HogwildAttention att(dims);                     // once, after the model is loaded
//   att.plan(attn_problem_from_batch(batch, plans, cache));   // host: the same for all layers
//   att.upload(stream);                             // plan -> device (async, pinned staging)
//   for each layer: (write this layer's K/V into the pages first: instant visibility)
//       att.run(layer, args, stream);
// plan() returns true when the launch shape changed (a captured CUDA graph must then be
// re-captured); otherwise only the device plan's contents change, at fixed addresses, so a
// graph that contains upload()'s copy and the run() launches stays valid.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

// The runtime's stream handle, declared as driver_types.h does (an identical redeclaration), so
// that host code can include this header without the CUDA headers.
struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace hw {
struct Batch;
struct RowPlan;
class KvCache;

namespace cuda {

enum class AttnDType : int { F32 = 0, BF16 = 1 };

struct AttnDims {
  int layers = 0;        // decoder layers held by every page
  int heads = 0;         // query heads
  int kv_heads = 0;      // KV heads; divides heads (GQA ratio heads / kv_heads, any >= 1)
  int head_dim = 0;      // 64 or 128 (others are refused with a clear error)
  int page_tokens = 32;  // tokens per KV page: KvCache::page_tokens()
};

// Device KV page layout, the CPU backend's, in bf16: one page holds page_tokens tokens of
// every layer, as [layer][K,V][kv_head][token][head_dim]. Keys are stored rotated by RoPE at
// their block-local index; values plain.
inline size_t kv_page_elems(const AttnDims& d) {
  return size_t(d.layers) * 2 * d.kv_heads * d.page_tokens * d.head_dim;
}
// Element offset of (layer, which = 0 for K / 1 for V, kv_head, token index) inside a page.
inline size_t kv_elem_offset(const AttnDims& d, int layer, int which, int kv_head, int index) {
  return ((size_t(layer) * 2 + which) * d.kv_heads + kv_head) * d.page_tokens * d.head_dim + size_t(index) * d.head_dim;
}

// One block placed in a row's view: key j of the block sits at view position offset + j and
// is visible to a query at view position p iff j < length and offset + j <= p.
struct AttnSegment {
  int block = -1;  // block id: index into AttnProblem::block_pages
  int offset = 0;  // view offset of the block's first key (>= 0)
  int length = 0;  // keys of the block this row may see (after this step's writes)
};

// One batch row: `tokens` consecutive query tokens at view positions first_position, +1, ...
struct AttnRow {
  int first_position = 0;
  int tokens = 0;
  std::vector<AttnSegment> view;  // ordered; names each block at most once
};

struct AttnProblem {
  std::vector<AttnRow> rows;                  // query tokens are the rows' tokens, in row order
  std::vector<std::vector<int>> block_pages;  // by block id: page ids of tokens 0, pt, 2pt, ...
  // By block id (optional; empty or shorter = 0 for the blocks it leaves out): the first key this
  // forward writes into the block. Keys before it were written by earlier launches, so the short
  // kernel (HW_ATTN_SHORT) may read them before its programmatic-dependent-launch wait.
  std::vector<int> block_fresh_from;
};

// The problem of one forward: rows, views and segment lengths from the plans, pages from the cache.
AttnProblem attn_problem_from_batch(const Batch& batch, const std::vector<RowPlan>& plans, const KvCache& cache);

// Device pointers for one layer's launch.
struct AttnLayerArgs {
  const void* q = nullptr;  // [T][heads][head_dim], q_type; q/k-norm and biases applied, NOT rotated
  AttnDType q_type = AttnDType::F32;
  void* out = nullptr;  // [T][heads][head_dim], out_type; every element written
  AttnDType out_type = AttnDType::F32;
  const void* const* pages = nullptr;  // device array: pages[page id] -> that page's first bf16 element
  const float* inv_freq = nullptr;     // device, head_dim/2 RoPE frequencies with llama3 scaling
                                       // folded in, exactly as hw::Rope computes them; the angle is
                                       // float(delta) * inv_freq[i] in fp32, as on the CPU
  float* shares = nullptr;             // device [total_segments()] for this layer, or nullptr: the
                                       // last token's attention mass per view segment, averaged over
                                       // heads (zeroed and filled by run); segments numbered row by
                                       // row in view order (segment_index())
  float scale = 0.0f;                  // softmax scale; 0 = 1/sqrt(head_dim)
};

class HogwildAttention {
 public:
  // Reads the device's SM count and shared-memory limit (`device` -1 = the current one).
  explicit HogwildAttention(const AttnDims& dims, int device = -1);
  ~HogwildAttention();
  HogwildAttention(const HogwildAttention&) = delete;
  HogwildAttention& operator=(const HogwildAttention&) = delete;

  // Host only: checks the problem (throws hw::EngineError naming the row, segment or block)
  // and builds the work plan. Returns true when the launch shape or the device buffers changed.
  bool plan(const AttnProblem& problem);
  // Enqueues the plan's copy to the device on `stream` (waits for the previous copy to finish
  // before reusing the pinned staging buffer).
  void upload(cudaStream_t stream);
  // Attention of one layer over the uploaded plan. Throws hw::EngineError with the CUDA error's
  // name and the kernel's name if a launch fails.
  void run(int layer, const AttnLayerArgs& args, cudaStream_t stream);

  int tokens() const;                             // T: query tokens of the planned problem
  int total_segments() const;                     // view segments of all rows
  int segment_index(int row, int segment) const;  // index into AttnLayerArgs::shares
  size_t device_bytes() const;                    // plan + split-K workspace held on the device
  std::string launch_summary() const;             // "chunks x kv_heads x qtiles CTAs of N threads, pieces", for logs

  struct Impl;

 private:
  Impl* impl_;
};

}  // namespace cuda
}  // namespace hw
