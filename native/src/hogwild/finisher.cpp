// The finisher: when the budget ends, one linearised view of everything (prompt, history,
// notes to all, every worker's block) and the finisher prompt, continued greedily; the
// continuation is the final answer's text.
#include "engine.h"

#include <algorithm>
#include <string>

namespace hw {

void HogwildRun::finish() {
  if (cfg_.raw || cfg_.finisher.empty()) return;
  emit(RunStateEvent{RunPhase::Finishing});
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
  FinisherTokensEvent answer;
  for (int i = 0; i < cfg_.finisher_max_tokens; i++) {
    if (view.back().offset + model_.cache().length(fin) + int(input.size()) > model_.max_context()) break;
    Batch batch;
    batch.rows.push_back({input, fin, view, true});
    ForwardOutput out;
    forward(batch, out);
    record(fin, input, -1, 0);
    emit(BlockEvent{BlockOp::Grown, fin, BlockKind::Finisher, -1, model_.cache().length(fin)});
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

}  // namespace hw
