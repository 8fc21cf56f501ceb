// How a long prompt is cut into chunks. The first chunk is small, so that the first progress
// report (real tokens done) comes soon after the start; later chunks grow toward the largest
// chunk while one still takes less than `report_s` seconds, so that progress, Pause and the
// rate keep their pace on a slow or loaded machine. report_s <= 0: every chunk is max_chunk.
#pragma once
#include <algorithm>

namespace hw {

class PrefillPacer {
 public:
  static constexpr int kStep = 16;  // chunk sizes are multiples of this (but the last)

  PrefillPacer(int max_chunk, double report_s)
      : max_(std::max(1, max_chunk)), report_s_(report_s), next_(report_s > 0 ? std::min(max_, kStep) : max_) {}

  // Tokens of the next chunk, with `remaining` tokens left.
  int next(int remaining) const { return std::min(next_, remaining); }

  // A chunk of `tokens` took `seconds`: size the next one from its rate.
  void done(int tokens, double seconds) {
    if (report_s_ <= 0 || tokens <= 0) return;
    if (seconds <= 0) {
      next_ = max_;
      return;
    }
    const double fit = double(tokens) / seconds * report_s_;
    const int rounded = fit >= double(max_) ? max_ : int(fit) / kStep * kStep;
    next_ = std::clamp(rounded, std::min(max_, kStep), max_);
  }

 private:
  int max_;
  double report_s_;
  int next_;
};

}  // namespace hw
