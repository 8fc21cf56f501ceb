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
  InspectResult r;
  r.block = block;
  r.index = index;
  r.token = m.tokens[index];
  r.author = m.authors[index];
  r.step = m.steps[index];
  for (int w = 0; w < int(views_.size()) && w < int(workers_.size()); w++) {
    InspectResult::Seen seen{w, -1, 0};
    const std::vector<ViewSegment>& v = views_[w];
    // Position of the worker's next query: right after its own block in this step's view.
    int own_end = 0;
    for (size_t s = 0; s < v.size(); s++)
      if (v[s].block == workers_[w].block) own_end = v[s].offset + view_lengths_[w][s];
    for (size_t s = 0; s < v.size(); s++)
      if (v[s].block == block && index < view_lengths_[w][s]) {
        seen.position = v[s].offset + index;
        seen.rotation = own_end - v[s].offset;
      }
    r.seen.push_back(seen);
  }
  if (attention && cfg_.attention_shares) attach_key_attention(r);
  return r;
}

// The attention each worker's last token paid the position, from the latest step that recorded
// it, looked up through the views of that step (the views may have changed since; a block moved
// into the history since is looked up there).
void HogwildRun::attach_key_attention(InspectResult& r) {
  int latest = -1;
  for (const KeyAttentionRecord& rec : key_attention_) latest = std::max(latest, rec.step);
  r.attention_pending = latest < step_ && !done_;
  if (latest < 0) return;
  r.attention_step = latest;
  r.attention.assign(r.seen.size(), -1.0f);
  for (size_t w = 0; w < r.seen.size() && w < key_attention_.size(); w++) {
    const KeyAttentionRecord& rec = key_attention_[w];
    if (rec.step != latest) continue;  // the worker fed no row at that step
    size_t key = 0;
    for (size_t s = 0; s < rec.view.size(); s++) {
      const int i = r.index - rec.base[s];
      if (rec.view[s].block == r.block && i >= 0 && i < rec.visible[s] && key + i < rec.values.size())
        r.attention[w] = rec.values[key + i];
      key += size_t(rec.visible[s]);
    }
  }
}

}  // namespace hw
