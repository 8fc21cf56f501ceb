#include "events.h"

namespace hw {

const char* block_kind_name(BlockKind k) {
  switch (k) {
    case BlockKind::Prompt:
      return "prompt";
    case BlockKind::Worker:
      return "worker";
    case BlockKind::History:
      return "history";
    case BlockKind::Header:
      return "header";
    case BlockKind::Note:
      return "note";
    case BlockKind::Finisher:
      return "finisher";
  }
  return "?";
}

const char* block_op_name(BlockOp op) {
  switch (op) {
    case BlockOp::Created:
      return "created";
    case BlockOp::Grown:
      return "grown";
    case BlockOp::Merged:
      return "merged";
    case BlockOp::Freed:
      return "freed";
  }
  return "?";
}

const char* run_phase_name(RunPhase p) {
  switch (p) {
    case RunPhase::Prefill:
      return "prefill";
    case RunPhase::Running:
      return "running";
    case RunPhase::Paused:
      return "paused";
    case RunPhase::Finishing:
      return "finishing";
    case RunPhase::Finished:
      return "finished";
    case RunPhase::Stopped:
      return "stopped";
    case RunPhase::Failed:
      return "failed";
  }
  return "?";
}

const char* worker_phase_name(WorkerPhase p) {
  switch (p) {
    case WorkerPhase::Running:
      return "running";
    case WorkerPhase::Paused:
      return "paused";
    case WorkerPhase::Finished:
      return "finished";
  }
  return "?";
}

}  // namespace hw
