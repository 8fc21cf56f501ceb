// Inspecting one cache position, and the finisher that writes the final answer.
#include "engine.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "../error.h"

namespace hw {

void HogwildRun::finish() {
  if (cfg_.raw || cfg_.finisher.empty()) return;
  emit({Event::Type::RunState, "finishing"});
  std::vector<int> blocks{prompt_};
  if (history_ >= 0) blocks.push_back(history_);
  for (const Note& n : notes_)
    if (n.written && n.target == -1) blocks.push_back(n.block);
  for (const Worker& wk : workers_) blocks.push_back(wk.block);
  const int fin = new_block(BlockKind::Finisher, -1);
  blocks.push_back(fin);
  std::vector<ViewSegment> view;
  int offset = 0;
  for (int b : blocks) {
    view.push_back({b, offset});
    offset += model_.cache().length(b);
  }
  Ids input = cfg_.finisher;
  SamplingParams greedy;
  Event answer{Event::Type::FinisherTokens};
  for (int i = 0; i < cfg_.finisher_max_tokens; i++) {
    if (view.back().offset + model_.cache().length(fin) + int(input.size()) > model_.max_context()) break;
    Batch batch;
    batch.rows.push_back({input, fin, view, true});
    ForwardOutput out;
    forward(batch, out);
    record(fin, input, -1, 0);
    Event grown{Event::Type::Block, "grown"};
    grown.block = fin;
    grown.kind = BlockKind::Finisher;
    grown.length = model_.cache().length(fin);
    emit(std::move(grown));
    Rng rng(0);
    const int32_t next = sample_token(out.row_logits(0), model_.config().vocab, greedy, rng);
    if (std::find(cfg_.eos.begin(), cfg_.eos.end(), next) != cfg_.eos.end()) break;
    answer.ids.push_back(next);
    input = {next};
    {
      std::lock_guard<std::mutex> lock(control_mu_);
      if (stopping_) break;
    }
  }
  emit(std::move(answer));
}

InspectResult HogwildRun::inspect(int block, int index, bool attention) {
  std::lock_guard<std::mutex> step_lock(step_mu_);
  auto it = meta_.find(block);
  if (it == meta_.end()) fail("inspect", "no block " + std::to_string(block) + " in this run");
  const BlockMeta& m = it->second;
  if (index < 0 || index >= int(m.authors.size()))
    fail("inspect", "block " + std::to_string(block) + " has " + std::to_string(m.authors.size()) + " tokens; no index " +
                        std::to_string(index));
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
