#include "engine.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "../error.h"

namespace hw {

const char* block_kind_name(BlockKind k) {
  switch (k) {
    case BlockKind::Prompt: return "prompt";
    case BlockKind::Worker: return "worker";
    case BlockKind::History: return "history";
    case BlockKind::Header: return "header";
    case BlockKind::Note: return "note";
    case BlockKind::Finisher: return "finisher";
  }
  return "?";
}

Layout parse_layout(const std::string& name) {
  if (name == "contiguous") return Layout::Contiguous;
  if (name == "interleaved") return Layout::Interleaved;
  if (name == "combined") return Layout::Combined;
  fail("layout", "unknown layout '" + name + "' (contiguous, interleaved or combined)");
}

static constexpr int kMaxNoteTokens = 2048;

HogwildRun::HogwildRun(Model& model, HogwildConfig cfg, EventSink sink)
    : model_(model), cfg_(std::move(cfg)), sink_(std::move(sink)) {
  const int vocab = model_.config().vocab;
  auto check_ids = [&](const Ids& ids, const std::string& what) {
    for (int32_t id : ids)
      if (id < 0 || id >= vocab)
        fail("run config", what + ": token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                               std::to_string(vocab - 1) + ")");
  };
  if (cfg_.workers < 1 || cfg_.workers > cfg_.max_workers)
    fail("run config", "workers must be 1.." + std::to_string(cfg_.max_workers) + ", got " + std::to_string(cfg_.workers));
  if (cfg_.prompt.empty()) fail("run config", "the prompt is empty");
  check_ids(cfg_.prompt, "prompt");
  if (int(cfg_.first_input.size()) != cfg_.workers)
    fail("run config", "expected a first input for each of the " + std::to_string(cfg_.workers) + " workers, got " +
                           std::to_string(cfg_.first_input.size()));
  for (int w = 0; w < cfg_.workers; w++) {
    if (cfg_.first_input[w].empty()) fail("run config", "worker " + std::to_string(w) + " has no first input ids");
    check_ids(cfg_.first_input[w], "worker " + std::to_string(w));
  }
  if (cfg_.raw) {
    if (cfg_.raw_steps < 1) fail("run config", "steps must be at least 1, got " + std::to_string(cfg_.raw_steps));
  } else {
    if (int(cfg_.header_prefix.size()) < cfg_.workers) fail("run config", "missing step header ids for some workers");
    if (cfg_.digits.size() != 10) fail("run config", "digit ids must list the ids of 0..9");
    if (cfg_.max_tokens < 1) fail("run config", "the token budget must be at least 1");
    if (cfg_.layout == Layout::Combined && (cfg_.header_others.empty() || cfg_.header_own.empty()))
      fail("run config", "the combined layout needs both header texts");
    for (const Ids& h : cfg_.header_prefix) check_ids(h, "header");
    check_ids(cfg_.digits, "digits");
    check_ids(cfg_.header_suffix, "header suffix");
    check_ids(cfg_.self_check, "self-check");
    check_ids(cfg_.finisher, "finisher");
  }
  if (cfg_.self_check_interval < 1) cfg_.self_check_interval = 1;
  next_self_check_ = cfg_.self_check_interval;
  worker_count_ = cfg_.workers;
  worker_finished_.assign(cfg_.workers, false);
}

HogwildRun::~HogwildRun() {
  stop();
  if (thread_.joinable()) thread_.join();
}

// ------------------------------------------------------------------ controls

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
      if (id < 0 || id >= model_.config().vocab) fail("inject", "token id " + std::to_string(id) + " is outside the vocabulary");
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
      if (t < 0 || t >= model_.config().vocab) fail("fork", "header token id " + std::to_string(t) + " is outside the vocabulary");
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
  for (Control& c : todo) {
    switch (c.type) {
      case Control::Type::Pause:
      case Control::Type::Resume: {
        const bool pause = c.type == Control::Type::Pause;
        if (c.worker == -1) {
          if (paused_ != pause) emit({Event::Type::RunState, pause ? "paused" : "running"});
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
        Event e{Event::Type::Note};
        e.worker = c.worker;
        e.block = n.block;
        e.ids = c.ids;
        emit(std::move(e));
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
        Event b{Event::Type::Block, "created"};
        b.block = workers_[id].block;
        b.kind = BlockKind::Worker;
        b.owner = id;
        b.length = model_.cache().length(b.block);
        emit(std::move(b));
        emit(worker_event(id));
        std::lock_guard<std::mutex> lock(control_mu_);
        worker_finished_.push_back(false);
        break;
      }
    }
  }
}

Event HogwildRun::worker_event(int w) const {
  const Worker& wk = workers_[w];
  Event e{Event::Type::Worker, wk.finished ? "finished" : wk.paused ? "paused" : "running"};
  e.worker = w;
  e.owner = wk.forked_from;
  e.value = wk.temperature;
  return e;
}

void HogwildRun::finish_worker(int w) {
  workers_[w].finished = true;
  emit(worker_event(w));
  std::lock_guard<std::mutex> lock(control_mu_);
  worker_finished_[w] = true;
}

// ------------------------------------------------------------------ blocks and views

int HogwildRun::new_block(BlockKind kind, int owner) {
  const int b = model_.cache().create_block();
  meta_[b] = BlockMeta{kind, owner, {}, {}, {}};
  Event e{Event::Type::Block, "created"};
  e.block = b;
  e.kind = kind;
  e.owner = owner;
  emit(std::move(e));
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
  if (cfg_.layout != Layout::Contiguous) blocks.push_back(history_);
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
  model_.append_block(history_, finished);
  if (observer_) observer_->on_append(history_, finished);
  BlockMeta& dst = meta_[history_];
  dst.tokens.insert(dst.tokens.end(), src.tokens.begin(), src.tokens.end());
  dst.authors.insert(dst.authors.end(), src.authors.begin(), src.authors.end());
  dst.steps.insert(dst.steps.end(), src.steps.begin(), src.steps.end());

  Event done{Event::Type::StepFinished};
  done.worker = w;
  done.step = wk.step;
  done.block = history_;
  done.ids = src.tokens;
  emit(std::move(done));
  Event merged{Event::Type::Block, "merged"};
  merged.block = history_;
  merged.kind = BlockKind::History;
  merged.length = model_.cache().length(history_);
  emit(std::move(merged));
  Event freed{Event::Type::Block, "freed"};
  freed.block = finished;
  freed.kind = BlockKind::Worker;
  freed.owner = w;
  emit(std::move(freed));

  model_.cache().release_block(finished);
  if (observer_) observer_->on_release(finished);
  meta_.erase(finished);
  wk.block = new_block(BlockKind::Worker, w);
  wk.step++;
}

// ------------------------------------------------------------------ the loop

void HogwildRun::start() {
  thread_ = std::thread([this] { loop(); });
}

void HogwildRun::run() { loop(); }

void HogwildRun::wait() {
  std::unique_lock<std::mutex> lock(done_mu_);
  done_cv_.wait(lock, [this] { return done_.load(); });
}

void HogwildRun::forward(const Batch& batch, ForwardOutput& out) {
  const auto t0 = std::chrono::steady_clock::now();
  model_.forward(batch, out);
  timings_.forward_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  timings_.attention_ms += out.attention_ms;
  if (observer_) observer_->on_forward(batch, out);
}

void HogwildRun::emit(Event e) { outbox_.push_back(std::move(e)); }

void HogwildRun::flush(bool force) {
  const auto now = std::chrono::steady_clock::now();
  if (outbox_.empty()) return;
  if (!force && now - last_flush_ < std::chrono::milliseconds(15)) return;
  last_flush_ = now;
  std::vector<Event> batch;
  batch.swap(outbox_);
  if (sink_) sink_(std::move(batch));
}

void HogwildRun::loop() {
  started_ = last_flush_ = std::chrono::steady_clock::now();
  try {
    emit({Event::Type::RunState, "prefill"});
    prefill_shared();
    emit({Event::Type::RunState, "running"});
    flush(true);
    timings_ = Timings{};  // the loop proper, without the shared prefill
    const auto loop_start = std::chrono::steady_clock::now();
    for (;;) {
      apply_controls();
      std::unique_lock<std::mutex> lock(control_mu_);
      if (stopping_) break;
      const bool hold = paused_ && steps_allowed_ == 0;
      if (!hold && paused_) steps_allowed_--;
      lock.unlock();
      StepResult result = StepResult::Idle;
      if (!hold) {
        std::lock_guard<std::mutex> step_lock(step_mu_);
        result = step_once();
      }
      if (result == StepResult::Done) break;
      if (result == StepResult::Ran) {
        flush(false);
        timings_.steps++;
        timings_.loop_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - loop_start).count();
        continue;
      }
      // Paused (the run, or every worker still going): wait for the next control.
      flush(true);
      lock.lock();
      control_cv_.wait(lock, [this] { return stopping_ || !controls_.empty(); });
    }
    bool stopped;
    {
      std::lock_guard<std::mutex> lock(control_mu_);
      stopped = stopping_;
    }
    if (stopped) {
      emit({Event::Type::RunState, "stopped"});
    } else {
      std::lock_guard<std::mutex> step_lock(step_mu_);
      finish();
      emit({Event::Type::RunState, "finished"});
    }
  } catch (const std::exception& e) {
    Event err{Event::Type::Error, e.what()};
    emit(std::move(err));
    emit({Event::Type::RunState, "failed"});
  }
  flush(true);
  {
    std::lock_guard<std::mutex> lock(control_mu_);
    stopping_ = true;
  }
  {
    std::lock_guard<std::mutex> lock(done_mu_);
    done_ = true;
  }
  done_cv_.notify_all();
}

// The prompt (and the combined layout's headers) are written once, before any worker runs.
void HogwildRun::prefill_shared() {
  prompt_ = new_block(BlockKind::Prompt, -1);
  Batch batch;
  batch.rows.push_back({cfg_.prompt, prompt_, {{prompt_, 0}}, false});
  if (cfg_.layout != Layout::Contiguous) history_ = new_block(BlockKind::History, -1);
  if (cfg_.layout == Layout::Combined && !cfg_.raw) {
    header_others_ = new_block(BlockKind::Header, -1);
    header_own_ = new_block(BlockKind::Header, -1);
  }
  ForwardOutput out;
  forward(batch, out);
  record(prompt_, cfg_.prompt, -1, 0);
  if (cfg_.layout == Layout::Combined) {
    if (cfg_.raw) {
      // Raw runs have no header texts: empty header blocks keep the view's shape.
      header_others_ = new_block(BlockKind::Header, -1);
      header_own_ = new_block(BlockKind::Header, -1);
    } else {
      const int n = int(cfg_.prompt.size());
      Batch hb;
      hb.rows.push_back({cfg_.header_others, header_others_, {{prompt_, 0}, {header_others_, n}}, false});
      hb.rows.push_back({cfg_.header_own, header_own_, {{prompt_, 0}, {header_own_, n}}, false});
      forward(hb, out);
      record(header_others_, cfg_.header_others, -1, 0);
      record(header_own_, cfg_.header_own, -1, 0);
    }
  }
  for (int w = 0; w < cfg_.workers; w++) {
    Worker wk;
    wk.block = new_block(BlockKind::Worker, w);
    wk.pending = cfg_.first_input[w];
    wk.temperature = cfg_.sampling.temperature;
    wk.rng = Rng(cfg_.seed + uint64_t(w));
    workers_.push_back(std::move(wk));
    Event e{Event::Type::Worker, "running"};
    e.worker = w;
    e.value = workers_[w].temperature;
    emit(std::move(e));
  }
}

void HogwildRun::build_views() {
  views_.assign(workers_.size(), {});
  for (int w = 0; w < int(workers_.size()); w++) views_[w] = view_of(w);
}

// One batched forward: every active worker feeds its pending input, new notes are written,
// then each worker samples its next token. Returns false when the run has nothing left to do.
HogwildRun::StepResult HogwildRun::step_once() {
  const auto t0 = std::chrono::steady_clock::now();
  const bool budget_spent = !cfg_.raw && generated_ >= cfg_.max_tokens;
  const bool raw_done = cfg_.raw && step_ >= cfg_.raw_steps;
  bool any_active = false, any_paused = false;
  for (const Worker& wk : workers_) {
    any_active |= !wk.finished && !wk.paused;
    any_paused |= !wk.finished && wk.paused;
  }
  if (budget_spent || raw_done || (!any_active && !any_paused)) return StepResult::Done;
  if (!any_active) return StepResult::Idle;
  auto active = [](const Worker& wk) { return !wk.finished && !wk.paused && !wk.pending.empty(); };

  // Lengths after this step's writes decide the offsets; computed once, shared by all layers.
  std::map<int, int> added;
  for (const Worker& wk : workers_)
    if (active(wk)) added[wk.block] = int(wk.pending.size());
  std::vector<Note*> new_notes;
  for (Note& n : notes_)
    if (!n.written) {
      added[n.block] = int(n.text.size());
      new_notes.push_back(&n);
      n.written = true;  // visible to its targets from this step on (instant visibility)
    }
  build_views();
  view_lengths_.assign(workers_.size(), {});
  for (int w = 0; w < int(workers_.size()); w++) {
    int offset = 0;
    for (ViewSegment& s : views_[w]) {
      s.offset = offset;
      auto it = added.find(s.block);
      const int len = model_.cache().length(s.block) + (it == added.end() ? 0 : it->second);
      view_lengths_[w].push_back(len);
      offset += len;
    }
  }

  // A view that would outgrow the context ends the run (the finisher still gets its turn).
  const int limit = cfg_.max_context > 0 ? std::min(cfg_.max_context, model_.max_context()) : model_.max_context();
  for (int w = 0; w < int(workers_.size()); w++) {
    if (!active(workers_[w])) continue;
    int total = 0;
    for (int len : view_lengths_[w]) total += len;
    if (total > limit) return StepResult::Done;
  }

  Batch batch;
  batch.attention_shares = cfg_.attention_shares;
  std::vector<int> row_worker;
  for (int w = 0; w < int(workers_.size()); w++) {
    Worker& wk = workers_[w];
    if (!active(wk)) continue;
    // A raw step move has no header to feed, so the closing token's logits start the next step.
    batch.rows.push_back({wk.pending, wk.block, views_[w], !wk.move_after_feed || cfg_.raw});
    row_worker.push_back(w);
  }
  for (const Note* n : new_notes) {
    std::vector<ViewSegment> v{{prompt_, 0}};
    int off = model_.cache().length(prompt_);
    if (history_ >= 0) v.push_back({history_, off}), off += model_.cache().length(history_);
    v.push_back({n->block, off});
    batch.rows.push_back({n->text, n->block, v, false});
    row_worker.push_back(-1);
  }

  ForwardOutput out;
  forward(batch, out);
  step_++;
  for (const Note* n : new_notes) record(n->block, n->text, -1, 0);
  for (const BatchRow& row : batch.rows) {
    Event grown{Event::Type::Block, "grown"};
    grown.block = row.block;
    grown.kind = meta_[row.block].kind;
    grown.owner = meta_[row.block].owner;
    grown.length = model_.cache().length(row.block);
    grown.step = step_;
    emit(std::move(grown));
  }

  key_attention_.assign(workers_.size(), {});
  Event views{Event::Type::Views};
  views.step = step_;
  Event att{Event::Type::Attention};
  att.step = step_;
  for (int w = 0; w < int(workers_.size()); w++) {
    std::vector<int32_t> v;
    for (size_t s = 0; s < views_[w].size(); s++) {
      v.push_back(views_[w][s].block);
      v.push_back(views_[w][s].offset);
      v.push_back(view_lengths_[w][s]);
    }
    views.views.push_back(std::move(v));
  }
  if (cfg_.attention_shares) {
    att.shares.assign(workers_.size(), {});
    att.layer_shares.assign(workers_.size(), {});
  }

  // Sampling over a large vocabulary is the costly part of a step outside the model: one
  // worker per thread (each draws from its own generator, so the order does not matter).
  const int vocab = model_.config().vocab;
  std::vector<int32_t> sampled(batch.rows.size(), -1);
  const auto t_sample = std::chrono::steady_clock::now();
#pragma omp parallel for schedule(dynamic, 1)
  for (int r = 0; r < int(batch.rows.size()); r++) {
    const int w = row_worker[r];
    if (w < 0 || !batch.rows[r].logits) continue;
    Worker& wk = workers_[w];
    SamplingParams sp = cfg_.sampling;
    sp.temperature = wk.temperature;
    sampled[r] = sample_token(out.row_logits(r), vocab, sp, wk.rng);
  }
  timings_.sampling_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_sample).count();

  for (size_t r = 0; r < batch.rows.size(); r++) {
    const int w = row_worker[r];
    if (w < 0) continue;
    Worker& wk = workers_[w];
    record(wk.block, wk.pending, w, wk.step);
    Event tokens{Event::Type::Tokens};
    tokens.worker = w;
    tokens.step = wk.step;
    tokens.ids = wk.pending;
    wk.pending.clear();

    if (cfg_.attention_shares) {
      const size_t nseg = views_[w].size();
      std::vector<float> mean(nseg, 0.0f);
      for (int l = 0; l < model_.config().layers; l++)
        for (size_t s = 0; s < nseg; s++) mean[s] += out.shares[r][size_t(l) * nseg + s] / float(model_.config().layers);
      att.shares[w] = std::move(mean);
      att.layer_shares[w] = out.shares[r];
      key_attention_[w] = std::move(out.key_attention[r]);
    }

    const bool move_now = wk.move_after_feed;
    wk.move_after_feed = false;
    if (move_now && !cfg_.raw) {
      // The fed token closed the step: move it into the shared history; the next step
      // starts with its header (and the self-check question when one is due).
      emit(std::move(tokens));
      const int next = wk.step + 1;
      move_to_history(w);
      wk.pending = header(w, next);
      if (self_check_due_) {
        wk.pending.insert(wk.pending.end(), cfg_.self_check.begin(), cfg_.self_check.end());
        self_check_due_ = false;
      }
      continue;
    }

    const int32_t next = sampled[r];
    generated_++;
    wk.generated.push_back(next);
    if (!cfg_.raw && generated_ >= next_self_check_) {
      self_check_due_ = true;
      next_self_check_ += cfg_.self_check_interval;
    }
    const bool eos = std::find(cfg_.eos.begin(), cfg_.eos.end(), next) != cfg_.eos.end();
    if (!cfg_.raw && eos) {
      emit(std::move(tokens));
      finish_worker(w);
      continue;
    }
    wk.pending = {next};
    bool ends_step = false;
    if (cfg_.raw) {
      ends_step = cfg_.layout != Layout::Contiguous &&
                  std::find(cfg_.raw_step_ids.begin(), cfg_.raw_step_ids.end(), next) != cfg_.raw_step_ids.end();
    } else {
      ends_step = next < int(cfg_.token_bytes.size()) && wk.detector.feed(cfg_.token_bytes[next]);
    }
    if (ends_step) {
      if (cfg_.layout == Layout::Contiguous) {
        // No history in this layout: the next header goes straight into the same block.
        wk.step++;
        Ids h = header(w, wk.step);
        wk.pending.insert(wk.pending.end(), h.begin(), h.end());
        if (self_check_due_) {
          wk.pending.insert(wk.pending.end(), cfg_.self_check.begin(), cfg_.self_check.end());
          self_check_due_ = false;
        }
      } else {
        wk.move_after_feed = true;
      }
    }
    emit(std::move(tokens));
    if (move_now) move_to_history(w);  // raw: the token just sampled starts the next step
  }
  emit(std::move(views));
  if (cfg_.attention_shares) emit(std::move(att));

  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  Event stats{Event::Type::Stats};
  stats.step = step_;
  stats.count = generated_;
  stats.value = total_s > 0 ? float(generated_ / total_s) : 0.0f;
  stats.value2 = float(ms);
  emit(std::move(stats));

  // Raw runs report the top logits of their last step.
  if (cfg_.raw && step_ == cfg_.raw_steps) {
    Event res{Event::Type::RawResult};
    for (int w = 0; w < int(workers_.size()); w++) {
      res.raw_ids.push_back(workers_[w].generated);
      std::vector<int32_t> top;
      std::vector<float> vals;
      for (size_t r = 0; r < batch.rows.size() && cfg_.top_logits > 0; r++) {
        if (row_worker[r] != w) continue;
        const float* lg = out.row_logits(int(r));
        std::vector<int32_t> idx(vocab);
        for (int i = 0; i < vocab; i++) idx[i] = i;
        const int k = std::min(cfg_.top_logits, vocab);
        std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                          [&](int a, int b) { return lg[a] > lg[b] || (lg[a] == lg[b] && a < b); });
        for (int i = 0; i < k; i++) top.push_back(idx[i]), vals.push_back(lg[idx[i]]);
      }
      res.raw_top_ids.push_back(std::move(top));
      res.raw_top_logits.push_back(std::move(vals));
    }
    emit(std::move(res));
  }
  return StepResult::Ran;
}

// The finisher: one linearised view (prompt, history, notes, every unfinished step), the
// finisher prompt, then greedy decoding of the final answer.
void HogwildRun::finish() {
  if (cfg_.raw || cfg_.finisher.empty()) return;
  emit({Event::Type::RunState, "finishing"});
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
  Event answer{Event::Type::FinisherTokens};
  for (int i = 0; i < cfg_.finisher_max_tokens; i++) {
    if (view.back().offset + model_.cache().length(fin) + int(input.size()) > model_.max_context()) break;
    Batch batch;
    batch.rows.push_back({input, fin, view, true});
    ForwardOutput out;
    forward(batch, out);
    record(fin, input, -1, 0);
    Event grown{Event::Type::Block, "grown"};
    grown.block = fin;
    grown.kind = BlockKind::Finisher;
    grown.length = model_.cache().length(fin);
    emit(std::move(grown));
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

// ------------------------------------------------------------------ inspect

InspectResult HogwildRun::inspect(int block, int index, bool attention) {
  std::lock_guard<std::mutex> step_lock(step_mu_);
  auto it = meta_.find(block);
  if (it == meta_.end()) fail("inspect", "no block " + std::to_string(block) + " in this run");
  const BlockMeta& m = it->second;
  if (index < 0 || index >= int(m.authors.size()))
    fail("inspect", "block " + std::to_string(block) + " has " + std::to_string(m.authors.size()) + " tokens; no index " +
                        std::to_string(index));
  if (attention && key_attention_.empty())
    fail("inspect", "attention is recorded only when the run reports attention shares (attentionShares)");
  InspectResult r;
  r.block = block;
  r.index = index;
  r.token = m.tokens[index];
  r.author = m.authors[index];
  r.step = m.steps[index];
  for (int w = 0; w < int(views_.size()) && w < int(workers_.size()); w++) {
    InspectResult::Seen seen{w, -1, 0};
    float share = -1.0f;
    const std::vector<ViewSegment>& v = views_[w];
    // Position of the worker's next query: right after its own block in this step's view.
    int own_end = 0;
    for (size_t s = 0; s < v.size(); s++)
      if (v[s].block == workers_[w].block) own_end = v[s].offset + view_lengths_[w][s];
    size_t key_index = 0;
    const int last_query = own_end - 1;
    for (size_t s = 0; s < v.size(); s++) {
      const int visible = std::max(0, std::min(view_lengths_[w][s], last_query - v[s].offset + 1));
      if (v[s].block == block && index < view_lengths_[w][s]) {
        seen.position = v[s].offset + index;
        seen.rotation = own_end - v[s].offset;
        if (attention && index < visible && key_index + index < key_attention_[w].size())
          share = key_attention_[w][key_index + index];
      }
      key_index += size_t(visible);
    }
    r.seen.push_back(seen);
    if (attention) r.attention.push_back(share);
  }
  return r;
}

}  // namespace hw
