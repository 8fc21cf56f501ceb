// One call of the forward entry: rows of new tokens, each with the view it attends to.
#pragma once
#include <atomic>
#include <cstdint>
#include <vector>

namespace hw {

// A block placed in a view. Key j of the block sits at view position offset + j; a query
// at view position p sees it iff offset + j <= p.
struct ViewSegment {
  int block = -1;
  int offset = 0;
};

struct BatchRow {
  std::vector<int32_t> tokens;    // new tokens, written at the end of `block`
  int block = -1;                 // the block that receives their K/V (rotated at block-local index)
  std::vector<ViewSegment> view;  // ordered blocks this row attends to; must contain `block`
  bool logits = true;             // return the logits of the last new token
  bool all_logits = false;        // return the logits of every new token
  // Device sampling (backends whose samples() is true): the last token's next id is drawn by
  // the backend with these settings and this uniform draw from the row's generator.
  bool sample = false;
  float temperature = 0.0f, top_p = 1.0f;
  int top_k = 0;
  double uniform = 0.0;
};

struct Batch {
  std::vector<BatchRow> rows;     // no two rows write the same block
  bool attention_shares = false;  // also report each row's attention share per view segment
  // With attention_shares: also each row's attention on every visible key (ForwardOutput::
  // key_attention). Costly on the GPU (Backend::key_attention_costly), so asked for only when needed.
  bool key_attention = false;
  bool sampled_ids_only = false;  // with device sampling: logits need not reach the host
  // When set and true, the forward stops between layers and throws Cancelled (the cache is
  // left as it was): a long prefill chunk can be stopped within a layer's time.
  const std::atomic<bool>* cancel = nullptr;
};

struct ForwardOutput {
  int vocab = 0;
  std::vector<float> logits;     // [logit rows, vocab], rows in batch order
  std::vector<int> logit_row;    // per batch row: its first logit row, -1 if none
  std::vector<int> logit_count;  // per batch row: how many logit rows it has
  std::vector<int32_t> sampled;  // per batch row: the id the backend drew (-1 if none)
  // With attention_shares: per batch row, [layers][view segments] fractions of the last new
  // token's attention mass that fell on each segment, averaged over query heads.
  std::vector<std::vector<float>> shares;
  // With key_attention: per batch row, the last new token's attention on every visible key,
  // keys in view order (segment by segment), averaged over heads and layers.
  std::vector<std::vector<float>> key_attention;

  double attention_ms = 0;  // time spent in attention (all layers), for benchmarks

  const float* row_logits(int row, int i = 0) const {
    return logits.data() + size_t(logit_row[row] + i) * size_t(vocab);
  }
};

}  // namespace hw
