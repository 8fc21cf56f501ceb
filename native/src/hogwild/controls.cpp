// Controls of a running Hogwild run: validated and queued on the caller's thread, applied
// by the engine thread between steps.
#include "engine.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "../error.h"

namespace hw {

// Notes longer than this are refused (a note is a prompt, not a document).
static constexpr int kMaxNoteTokens = 2048;

void HogwildRun::check_worker(int w, const char* what) const {
  if (w < 0 || w >= worker_count_)
    fail(what, "no worker " + std::to_string(w) + " (this run has " + std::to_string(worker_count_) + ")");
}

// Validates a control under the control lock, then queues it; the engine thread applies
// the queue between steps. `check` throws EngineError on bad input, leaving the run as it was.
template <typename Check>
void HogwildRun::enqueue(const char* what, Control c, Check&& check) {
  std::lock_guard<std::mutex> lock(control_mu_);
  if (done_ || stopping_) fail(what, "the run has already ended");
  check();
  controls_.push_back(std::move(c));
  control_cv_.notify_all();
}

void HogwildRun::pause(int worker) {
  enqueue("pause", {Control::Type::Pause, worker}, [&] {
    if (worker != -1) check_worker(worker, "pause");
  });
}

void HogwildRun::resume(int worker) {
  enqueue("resume", {Control::Type::Resume, worker}, [&] {
    if (worker != -1) check_worker(worker, "resume");
  });
}

void HogwildRun::single_step() {
  enqueue("step", {Control::Type::Step}, [] {});
}

void HogwildRun::stop(int worker) {
  if (worker != -1) {
    enqueue("stop", {Control::Type::StopWorker, worker}, [&] { check_worker(worker, "stop"); });
    return;
  }
  std::lock_guard<std::mutex> lock(control_mu_);  // ending the run is always allowed
  stopping_ = true;
  cancel_ = true;  // a prefill chunk in flight ends at its next layer
  control_cv_.notify_all();
}

void HogwildRun::inject(int target, Ids ids) {
  const size_t n = ids.size();
  enqueue("inject", {Control::Type::Inject, target, 0.0f, ids}, [&] {
    if (target != -1) check_worker(target, "inject");
    if (n == 0) fail("inject", "the note is empty");
    if (int(n) > kMaxNoteTokens)
      fail("inject", "the note has " + std::to_string(n) + " tokens; at most " + std::to_string(kMaxNoteTokens));
    for (int32_t id : ids)
      if (id < 0 || id >= model_.config().vocab)
        fail("inject", "token id " + std::to_string(id) + " is outside the vocabulary");
  });
}

int HogwildRun::fork(int worker, Ids header_prefix) {
  int id = -1;
  enqueue("fork", {Control::Type::Fork, worker, 0.0f, header_prefix}, [&] {
    check_worker(worker, "fork");
    if (worker_count_ >= cfg_.max_workers)
      fail("fork", "the run already has " + std::to_string(worker_count_) + " workers, the limit is " +
                       std::to_string(cfg_.max_workers));
    if (worker < int(worker_finished_.size()) && worker_finished_[worker])
      fail("fork", "worker " + std::to_string(worker) + " has finished");
    for (int32_t t : header_prefix)
      if (t < 0 || t >= model_.config().vocab)
        fail("fork", "header token id " + std::to_string(t) + " is outside the vocabulary");
    id = worker_count_++;
  });
  return id;
}

void HogwildRun::set_temperature(int worker, float temperature) {
  enqueue("set temperature", {Control::Type::Temperature, worker, temperature}, [&] {
    check_worker(worker, "set temperature");
    if (!(temperature >= 0.0f && temperature <= 10.0f)) fail("set temperature", "temperature must be between 0 and 10");
  });
}

// Runs on the engine thread between steps.
void HogwildRun::apply_controls() {
  std::deque<Control> todo;
  {
    std::lock_guard<std::mutex> lock(control_mu_);
    todo.swap(controls_);
  }
  // Forks and notes add workers and blocks, which inspect() reads from another thread.
  std::lock_guard<std::mutex> step_lock(step_mu_);
  for (Control& c : todo) {
    switch (c.type) {
      case Control::Type::Pause:
      case Control::Type::Resume: {
        const bool pause = c.type == Control::Type::Pause;
        if (c.worker == -1) {
          if (paused_ != pause) emit(RunStateEvent{pause ? RunPhase::Paused : RunPhase::Running});
          paused_ = pause;
        } else if (!workers_[c.worker].finished) {
          workers_[c.worker].paused = pause;
          emit(worker_event(c.worker));
        }
        break;
      }
      case Control::Type::Step:
        if (paused_) steps_allowed_++;  // a step while running is just the next step
        break;
      case Control::Type::StopWorker:
        if (!workers_[c.worker].finished) finish_worker(c.worker);
        break;
      case Control::Type::Temperature:
        workers_[c.worker].temperature = c.value;
        emit(worker_event(c.worker));
        break;
      case Control::Type::Inject: {
        // The note's text is written with the next step, in the view [prompt, history, note].
        Note n{new_block(BlockKind::Note, -1), c.worker, c.ids};
        emit(NoteEvent{c.worker, n.block, c.ids});
        notes_.push_back(std::move(n));
        break;
      }
      case Control::Type::Fork: {
        const Worker& origin = workers_[c.worker];
        Worker copy = origin;
        copy.block = model_.fork_block(origin.block);
        if (observer_) observer_->on_fork(copy.block, origin.block);
        copy.forked_from = c.worker;
        meta_[copy.block] = meta_[origin.block];
        meta_[copy.block].owner = int(workers_.size());
        workers_.push_back(std::move(copy));
        // The fork writes its headers under its origin's name until told otherwise.
        if (!cfg_.raw) cfg_.header_prefix.push_back(c.ids.empty() ? cfg_.header_prefix.at(c.worker) : c.ids);
        const int id = int(workers_.size()) - 1;
        const int block = workers_[id].block;
        emit(BlockEvent{BlockOp::Created, block, BlockKind::Worker, id, model_.cache().length(block)});
        emit(worker_event(id));
        std::lock_guard<std::mutex> lock(control_mu_);
        worker_finished_.push_back(false);
        break;
      }
    }
  }
}

WorkerEvent HogwildRun::worker_event(int w) const {
  const Worker& wk = workers_[w];
  const WorkerPhase state = wk.finished ? WorkerPhase::Finished
                            : wk.paused ? WorkerPhase::Paused
                                        : WorkerPhase::Running;
  return {w, state, wk.forked_from, wk.temperature};
}

void HogwildRun::finish_worker(int w) {
  workers_[w].finished = true;
  emit(worker_event(w));
  std::lock_guard<std::mutex> lock(control_mu_);
  worker_finished_[w] = true;
}

}  // namespace hw
