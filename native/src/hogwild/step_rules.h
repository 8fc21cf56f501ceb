// When does a worker's step end? At a token containing the paragraph break "\n\n", when the
// text before the break ends a sentence (. ? ! and their full-width forms, possibly followed
// by closing quotes, brackets or emphasis) and no code fence (``` or ~~~) or display math
// ($$) is open. The detector follows the text byte by byte as tokens arrive.
#pragma once
#include <string>

namespace hw {

class StepDetector {
 public:
  // Feeds one token's bytes; true when a step-ending break occurs inside them.
  bool feed(const std::string& bytes);
  bool in_fence() const { return fence_ != 0; }
  bool in_math() const { return math_; }

 private:
  void consume(char c, bool& ended);
  void close_run();
  bool sentence_end() const;

  std::string tail_;        // the last few non-whitespace bytes of the text
  char prev_ = 0;           // the previous byte
  char fence_ = 0;          // '`' or '~' while a fence is open
  bool math_ = false;       // inside $$ ... $$
  char run_char_ = 0;       // byte of the current run of ` ~ or $
  int run_len_ = 0;         // its length so far
  bool line_blank_ = true;  // only whitespace so far on this line
  bool run_at_line_start_ = false;
};

}  // namespace hw
