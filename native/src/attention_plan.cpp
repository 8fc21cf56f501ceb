#include "attention_plan.h"

namespace hw {

void plan_add_row(AttnPlan& p, int tokens, int first_position) {
  AttnRow r;
  r.q_begin = p.tokens;
  r.tokens = tokens;
  r.first_position = first_position;
  r.seg_begin = int(p.segments.size());
  r.key_begin = p.keys_total;
  p.tokens += tokens;
  const int last = first_position + tokens - 1;
  if (last > p.max_position) p.max_position = last;
  p.rows.push_back(r);
}

void plan_add_segment(AttnPlan& p, const int* pages, int page_tokens, int length, int offset) {
  AttnRow& r = p.rows.back();
  AttnSegment s;
  s.page_begin = int(p.page_table.size());
  s.length = length;
  s.offset = offset;
  // Only the pages that hold the segment's tokens (the cache may hold reserved ones too).
  p.page_table.insert(p.page_table.end(), pages, pages + (length + page_tokens - 1) / page_tokens);
  p.keys_total += visible_keys(s, r.first_position + r.tokens - 1);
  p.segments.push_back(s);
  r.seg_count++;
}

AttnPlan plan_attention(const Batch& batch, const std::vector<RowPlan>& plans, const KvCache& cache) {
  AttnPlan p;
  for (size_t r = 0; r < batch.rows.size(); r++) {
    const BatchRow& row = batch.rows[r];
    plan_add_row(p, int(row.tokens.size()), plans[r].first_position);
    for (size_t s = 0; s < row.view.size(); s++)
      plan_add_segment(p, cache.pages(row.view[s].block).data(), cache.page_tokens(), plans[r].segment_lengths[s],
                       row.view[s].offset);
  }
  return p;
}

}  // namespace hw
