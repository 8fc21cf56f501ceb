// What a run reports, in batches: one type per event, and an Event is one of them. The addon
// turns each type into its JavaScript object with a visitor (native/addon/convert.cpp); the
// TypeScript side of the same shapes is native/addon/hogwild_native.d.ts.
#pragma once
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace hw {

enum class BlockKind { Prompt, Worker, History, Header, Note, Finisher };
enum class BlockOp { Created, Grown, Merged, Freed };
enum class RunPhase { Prefill, Running, Paused, Finishing, Finished, Stopped, Failed };
enum class WorkerPhase { Running, Paused, Finished };

// The names the events carry to JavaScript ("prompt", "created", "prefill", ...).
const char* block_kind_name(BlockKind k);
const char* block_op_name(BlockOp op);
const char* run_phase_name(RunPhase p);
const char* worker_phase_name(WorkerPhase p);

struct RunStateEvent {
  RunPhase state;
  std::string message;  // why the run ended, when not by its budget (e.g. the KV budget)
};

// The shared prompt's prefill, after each chunk.
struct ProgressEvent {
  int done = 0, total = 0;  // prompt tokens
  float tokens_per_second = 0.0f;
};

struct ErrorEvent {
  std::string message;
};

struct WorkerEvent {
  int worker;
  WorkerPhase state;
  int forked_from = -1;  // -1: not a fork
  float temperature = 0.0f;
};

// Tokens written into the worker's block this step (headers included), in order.
struct TokensEvent {
  int worker;
  int step;  // the worker's step
  std::vector<int32_t> ids;
};

// The worker's step moved, whole, to the end of the shared history.
struct StepFinishedEvent {
  int worker;
  int step;
  int history_block;
  std::vector<int32_t> ids;
};

struct BlockEvent {
  BlockOp op;
  int block;
  BlockKind kind;
  int owner = -1;  // worker, -1 shared
  int length = 0;  // length now
  int step = 0;    // the run's step counter (grown blocks)
};

// Every worker's view this step: per worker [block, offset, length]*.
struct ViewsEvent {
  int step;
  std::vector<std::vector<int32_t>> views;
};

struct AttentionEvent {
  int step;
  std::vector<std::vector<float>> shares;        // per worker, one per view segment (mean over layers)
  std::vector<std::vector<float>> layer_shares;  // per worker, [layers][view segments]
};

struct StatsEvent {
  int step;
  int tokens;  // generated so far, all workers
  float tokens_per_second;
  float ms_per_step;
  double kv_bytes;  // KV storage held now
};

struct NoteEvent {
  int target;  // -1: every worker
  int block;
  std::vector<int32_t> ids;
};

// The final answer's ids, after the finisher prompt.
struct FinisherTokensEvent {
  std::vector<int32_t> ids;
};

// A raw run's end: per worker the generated ids and the top logits of the last step.
struct RawResultEvent {
  struct Worker {
    std::vector<int32_t> ids, top_ids;
    std::vector<float> top_logits;
  };
  std::vector<Worker> workers;
};

using Event =
    std::variant<RunStateEvent, ProgressEvent, ErrorEvent, WorkerEvent, TokensEvent, StepFinishedEvent, BlockEvent,
                 ViewsEvent, AttentionEvent, StatsEvent, NoteEvent, FinisherTokensEvent, RawResultEvent>;

}  // namespace hw
