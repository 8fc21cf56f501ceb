#include "step_rules.h"

namespace hw {

bool StepDetector::feed(const std::string& bytes) {
  bool ended = false;
  for (char c : bytes) consume(c, ended);
  return ended;
}

void StepDetector::close_run() {
  if (run_char_ == '$' && run_len_ >= 2 && fence_ == 0) math_ = !math_;
  if ((run_char_ == '`' || run_char_ == '~') && run_len_ >= 3 && run_at_line_start_ && !math_) {
    if (fence_ == 0)
      fence_ = run_char_;
    else if (fence_ == run_char_)
      fence_ = 0;
  }
  run_char_ = 0;
  run_len_ = 0;
}

void StepDetector::consume(char c, bool& ended) {
  if (c != run_char_) close_run();
  if (c == '`' || c == '~' || c == '$') {
    if (run_len_ == 0) run_at_line_start_ = line_blank_;
    run_char_ = c;
    run_len_++;
  }
  if (c == '\n') {
    if (prev_ == '\n' && fence_ == 0 && !math_ && sentence_end()) ended = true;
    line_blank_ = true;
  } else if (c != ' ' && c != '\t' && c != '\r') {
    line_blank_ = false;
    tail_.push_back(c);
    if (tail_.size() > 8) tail_.erase(0, tail_.size() - 8);
  }
  prev_ = c;
}

bool StepDetector::sentence_end() const {
  // Skip closers that may follow the punctuation: quotes, brackets, emphasis.
  size_t n = tail_.size();
  while (n > 0 && std::string("\"')]*_").find(tail_[n - 1]) != std::string::npos) n--;
  if (n == 0) return false;
  const char last = tail_[n - 1];
  if (last == '.' || last == '?' || last == '!') return true;
  // Full-width forms: 。 (E3 80 82), ？ (EF BC 9F), ！ (EF BC 81).
  if (n >= 3) {
    const std::string t = tail_.substr(n - 3, 3);
    return t == "\xE3\x80\x82" || t == "\xEF\xBC\x9F" || t == "\xEF\xBC\x81";
  }
  return false;
}

}  // namespace hw
