// Inspecting one cache position: which block holds it, who wrote it, where each worker sees it.
#include "engine.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "../error.h"

namespace hw {

InspectResult HogwildRun::inspect(int block, int index, bool attention) {
  std::lock_guard<std::mutex> step_lock(step_mu_);
  auto it = meta_.find(block);
  if (it == meta_.end()) fail("inspect", "no block " + std::to_string(block) + " in this run");
  const BlockMeta& m = it->second;
  if (index < 0 || index >= int(m.authors.size()))
    fail("inspect", "block " + std::to_string(block) + " has " + std::to_string(m.authors.size()) +
                        " tokens; no index " + std::to_string(index));
  if (attention && key_attention_.empty())
    fail("inspect", "attention is recorded only when the run reports attention shares (attentionShares)");
  InspectResult r;
  r.block = block;
  r.index = index;
  r.token = m.tokens[index];
  r.author = m.authors[index];
  r.step = m.steps[index];
  for (int w = 0; w < int(views_.size()) && w < int(workers_.size()); w++) {
    InspectResult::Seen seen{w, -1, 0};
    float share = -1.0f;
    const std::vector<ViewSegment>& v = views_[w];
    // Position of the worker's next query: right after its own block in this step's view.
    int own_end = 0;
    for (size_t s = 0; s < v.size(); s++)
      if (v[s].block == workers_[w].block) own_end = v[s].offset + view_lengths_[w][s];
    size_t key_index = 0;
    const int last_query = own_end - 1;
    for (size_t s = 0; s < v.size(); s++) {
      const int visible = std::max(0, std::min(view_lengths_[w][s], last_query - v[s].offset + 1));
      if (v[s].block == block && index < view_lengths_[w][s]) {
        seen.position = v[s].offset + index;
        seen.rotation = own_end - v[s].offset;
        if (attention && index < visible && key_index + index < key_attention_[w].size())
          share = key_attention_[w][key_index + index];
      }
      key_index += size_t(visible);
    }
    r.seen.push_back(seen);
    if (attention) r.attention.push_back(share);
  }
  return r;
}

}  // namespace hw
