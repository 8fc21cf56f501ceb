// The shape of the shared cache: blocks, each worker's view in the three layouts, step
// headers, and moving a finished step into the shared history.
#include "engine.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "../error.h"

namespace hw {

int HogwildRun::new_block(BlockKind kind, int owner) {
  const int b = model_.cache().create_block();
  meta_[b] = BlockMeta{kind, owner, {}, {}, {}};
  emit(BlockEvent{BlockOp::Created, b, kind, owner});
  return b;
}

void HogwildRun::record(int block, const Ids& ids, int author, int step) {
  BlockMeta& m = meta_[block];
  m.tokens.insert(m.tokens.end(), ids.begin(), ids.end());
  m.authors.insert(m.authors.end(), ids.size(), author);
  m.steps.insert(m.steps.end(), ids.size(), step);
}

std::vector<ViewSegment> HogwildRun::view_of(int w) const {
  std::vector<int> blocks{prompt_};
  // Isolated (the no-sharing control): finished steps still move to the history, unseen.
  if (cfg_.layout != Layout::Contiguous && cfg_.layout != Layout::Isolated) blocks.push_back(history_);
  for (const Note& n : notes_)
    if (n.written && (n.target == -1 || n.target == w)) blocks.push_back(n.block);
  if (cfg_.layout == Layout::Contiguous || cfg_.layout == Layout::Combined) {
    if (cfg_.layout == Layout::Combined) blocks.push_back(header_others_);
    for (int v = 0; v < int(workers_.size()); v++)
      if (v != w) blocks.push_back(workers_[v].block);
    if (cfg_.layout == Layout::Combined) blocks.push_back(header_own_);
  }
  blocks.push_back(workers_[w].block);
  std::vector<ViewSegment> view;
  for (int b : blocks) view.push_back({b, 0});
  return view;
}

Ids HogwildRun::header(int w, int step) const {
  Ids ids = cfg_.header_prefix[w];
  const std::string digits = std::to_string(step);
  for (char d : digits) ids.push_back(cfg_.digits[d - '0']);
  ids.insert(ids.end(), cfg_.header_suffix.begin(), cfg_.header_suffix.end());
  return ids;
}

void HogwildRun::move_to_history(int w) {
  Worker& wk = workers_[w];
  const int finished = wk.block;
  BlockMeta& src = meta_[finished];
  const int history_before = model_.cache().length(history_);
  model_.append_block(history_, finished);
  if (observer_) observer_->on_append(history_, finished);
  BlockMeta& dst = meta_[history_];
  dst.tokens.insert(dst.tokens.end(), src.tokens.begin(), src.tokens.end());
  dst.authors.insert(dst.authors.end(), src.authors.begin(), src.authors.end());
  dst.steps.insert(dst.steps.end(), src.steps.begin(), src.steps.end());

  emit(StepFinishedEvent{w, wk.step, history_, src.tokens});
  emit(BlockEvent{BlockOp::Merged, history_, BlockKind::History, -1, model_.cache().length(history_)});
  emit(BlockEvent{BlockOp::Freed, finished, BlockKind::Worker, w});

  model_.cache().release_block(finished);
  if (observer_) observer_->on_release(finished);
  // Recorded key attention follows the tokens into the history (the freed id may come back for a
  // new block).
  for (KeyAttentionRecord& rec : key_attention_)
    for (size_t s = 0; s < rec.view.size(); s++)
      if (rec.view[s].block == finished) rec.view[s].block = history_, rec.base[s] = history_before;
  meta_.erase(finished);
  wk.block = new_block(BlockKind::Worker, w);
  wk.step++;
}

void HogwildRun::build_views() {
  views_.assign(workers_.size(), {});
  for (int w = 0; w < int(workers_.size()); w++) views_[w] = view_of(w);
}

// One batched forward: every active worker feeds its pending input, new notes are written,
// then each worker samples its next token. Returns false when the run has nothing left to do.
}  // namespace hw
