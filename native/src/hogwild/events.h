// What a run reports, in batches. The addon turns these into JavaScript objects.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hw {

enum class BlockKind { Prompt, Worker, History, Header, Note, Finisher };
const char* block_kind_name(BlockKind k);

struct Event {
  enum class Type {
    RunState,
    Worker,
    Tokens,
    StepFinished,
    Block,
    Views,
    Attention,
    Stats,
    Note,
    FinisherTokens,
    RawResult,
    Error,
    Progress
  };
  Type type;
  std::string text;     // RunState: state; Block: op; Worker: state; Error: message; Progress: phase ("prefill")
  std::string message;  // RunState: why the run ended, when not by its budget (e.g. the KV budget)
  int worker = -1;      // Worker, Tokens, StepFinished; Note: target (-1 = all)
  int step = 0;         // the run's step counter (or the worker's step for StepFinished/Tokens)
  int block = -1;       // Block, StepFinished (the history block), Note
  int length = 0;       // Block: length now
  int owner = -1;       // Block: owner worker (-1 shared); Worker: forked from (-1 none)
  BlockKind kind = BlockKind::Prompt;
  float value = 0.0f;        // Worker: temperature; Stats: tokens per second; Progress: tokens per second
  int done = 0, total = 0;   // Progress: tokens done and total
  double kv_bytes = 0;       // Stats: KV storage held now
  float value2 = 0.0f;       // Stats: ms per step
  int count = 0;             // Stats: generated tokens so far
  std::vector<int32_t> ids;  // Tokens, StepFinished, Note, FinisherTokens
  std::vector<std::vector<int32_t>> views;       // Views: per worker [block, offset, length]*
  std::vector<std::vector<float>> shares;        // Attention: per worker, one per view segment (mean over layers)
  std::vector<std::vector<float>> layer_shares;  // Attention: per worker, [layers][view segments]
  // RawResult: per worker generated ids, top ids and their logits.
  std::vector<std::vector<int32_t>> raw_ids, raw_top_ids;
  std::vector<std::vector<float>> raw_top_logits;
};

}  // namespace hw
