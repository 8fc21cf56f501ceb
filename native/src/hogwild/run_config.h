// Everything a Hogwild run needs, as data: the mechanism lives in C++, the policy (texts,
// names, which tokens end a step) arrives tokenised from TypeScript.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../sampler.h"

namespace hw {

enum class Layout {
  Contiguous,   // [prompt, notes, other workers' blocks in id order, own block]
  Interleaved,  // [prompt, history of finished steps, notes, own unfinished step]
  Isolated,     // [prompt, notes, own unfinished step]: the no-sharing control of the evaluation
  Combined,     // [prompt, history, notes, "(others)" header, others' unfinished steps, "(own)" header, own step]
};

using Ids = std::vector<int32_t>;

enum class KeyAttention { Auto, EveryStep, OnRequest };

struct HogwildConfig {
  int workers = 2;                       // parallel workers at the start (forks may add more)
  int max_workers = 16;                  // upper bound on workers, forks included
  Layout layout = Layout::Combined;      // how each worker's view is assembled
  Ids prompt;                            // the shared prompt block, prefilled once at positions 0..n-1
  std::vector<Ids> first_input;          // per worker: its first input (its first step header)
  std::vector<Ids> header_prefix;        // per worker: "**Name [" (the step number and suffix follow)
  Ids digits;                            // ids of "0".."9"
  Ids header_suffix;                     // "]:** "
  Ids header_others;                     // combined layout: header block before others' unfinished steps
  Ids header_own;                        // combined layout: header block before the own unfinished step
  Ids self_check;                        // fed at the start of the next step every self_check_interval tokens
  int self_check_interval = 1000;        // generated tokens (all workers together) between self-checks
  Ids finisher;                          // appended to the linearised view when the budget ends
  int finisher_max_tokens = 64;          // greedy tokens for the final answer
  std::vector<std::string> token_bytes;  // every vocabulary entry's bytes (step rules)
  std::vector<int32_t> eos;              // any of these ends a worker
  SamplingParams sampling;               // shared sampling settings (temperature per worker may change)
  uint64_t seed = 0;                     // worker w draws from Rng(seed + w)
  int max_tokens = 1024;                 // generated tokens of all workers together
  int max_context = 0;                   // longest view a worker may reach (0 = the model's); the run ends there
  std::string max_context_setting = "max_context";  // how the user sets max_context (for messages)
  int prefill_chunk = 128;  // most prompt tokens per forward: memory bound, progress and Stop between chunks
  // Paced prefill (PrefillPacer): the first chunk is small and later ones take about this many
  // seconds at most (never more than prefill_chunk tokens); 0 = every chunk is prefill_chunk.
  double prefill_report_s = 1.0;
  // KV memory budget in bytes: checked before the run (prompt, first inputs and the token
  // budget) and before every step; a run that reaches it ends cleanly. 0 = 80% of the memory
  // available when the run starts (MemAvailable) plus what the cache already holds.
  double kv_budget_bytes = 0;
  std::string kv_budget_setting = "kv_budget";  // how the user sets the budget (for messages)
  bool attention_shares = false;                // report per-step attention shares per view segment
  // With attention_shares, when each worker's attention on every visible key (what inspect()
  // reports) is recorded: every step, or only on the step after request_key_attention(). Auto:
  // every step unless the backend says it is costly (Backend::key_attention_costly: CUDA).
  KeyAttention key_attention = KeyAttention::Auto;
  // Raw mode: exact ids, no headers, self-check, finisher or stop on eos.
  bool raw = false;
  int raw_steps = 0;                  // exactly this many steps
  std::vector<int32_t> raw_step_ids;  // tokens that end a step (interleaved / combined)
  int top_logits = 0;                 // raw mode: report the top-K logits of the last step
};

}  // namespace hw
