// The Hogwild run loop: the shared prefill, then one batched forward per step (every worker
// feeds its pending input and samples its next token), step moves, events in batches.
#include "engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <string>

#include "../error.h"
#include "../prefill_pacer.h"

namespace hw {

Layout parse_layout(const std::string& name) {
  if (name == "contiguous") return Layout::Contiguous;
  if (name == "interleaved") return Layout::Interleaved;
  if (name == "combined") return Layout::Combined;
  if (name == "isolated") return Layout::Isolated;
  fail("layout", "unknown layout '" + name + "' (contiguous, interleaved, combined or isolated)");
}

KeyAttention parse_key_attention(const std::string& name) {
  if (name == "auto") return KeyAttention::Auto;
  if (name == "every-step") return KeyAttention::EveryStep;
  if (name == "on-request") return KeyAttention::OnRequest;
  fail("key attention", "unknown mode '" + name + "' (auto, every-step or on-request)");
}

static std::string grouped(long long n) {
  std::string s = std::to_string(n < 0 ? -n : n);
  for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(size_t(i), ",");
  return n < 0 ? "-" + s : s;
}

static std::string bytes_text(double b) {
  char buf[32];
  if (b >= 1e9)
    std::snprintf(buf, sizeof buf, "%.2f GB", b / 1e9);
  else if (b >= 1e6)
    std::snprintf(buf, sizeof buf, "%.0f MB", b / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.0f KB", b / 1e3);
  return buf;
}

// 80% of the memory the kernel says is available (for a GPU backend: the free device memory),
// plus the KV storage the model already holds (it is reused first). Unknown: no limit.
static double default_kv_budget(Model& model) {
  const double device_free = model.backend().kv_memory_free();
  if (device_free >= 0) return 0.8 * device_free + double(model.backend().kv_bytes());
  std::ifstream f("/proc/meminfo");
  std::string key;
  double kb = 0;
  while (f >> key >> kb) {
    if (key == "MemAvailable:") return 0.8 * kb * 1024.0 + double(model.backend().kv_bytes());
    f.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return std::numeric_limits<double>::infinity();
}

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
    fail("run config",
         "workers must be 1.." + std::to_string(cfg_.max_workers) + ", got " + std::to_string(cfg_.workers));
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
  if (cfg_.prefill_chunk < 1)
    fail("run config", "the prefill chunk must be at least 1 token, got " + std::to_string(cfg_.prefill_chunk));
  next_self_check_ = cfg_.self_check_interval;
  worker_count_ = cfg_.workers;
  worker_finished_.assign(cfg_.workers, false);
  kv_budget_ = cfg_.kv_budget_bytes > 0 ? cfg_.kv_budget_bytes : default_kv_budget(model_);
  check_fits();
}

// ------------------------------------------------------------------ fitting the run

int HogwildRun::context_limit() const {
  return cfg_.max_context > 0 ? std::min(cfg_.max_context, model_.max_context()) : model_.max_context();
}

// Before any compute: the prompt, first inputs, headers and finisher must fit in the context
// with room to generate, and the run's K/V (those plus the token budget) in the KV budget.
void HogwildRun::check_fits() const {
  const int ctx = context_limit();
  const int model_ctx = model_.config().max_context;
  const std::string source = cfg_.max_context > 0 && cfg_.max_context < model_ctx
                                 ? " (" + cfg_.max_context_setting + ", or the model's " + grouped(model_ctx) + ")"
                                 : " (the model's)";
  long long first = 0;
  for (const Ids& f : cfg_.first_input) first += (long long)f.size();
  const long long prompt = (long long)cfg_.prompt.size();
  const long long headers = cfg_.layout == Layout::Combined && !cfg_.raw
                                ? (long long)(cfg_.header_others.size() + cfg_.header_own.size())
                                : 0;
  const long long finisher = cfg_.raw ? 0 : (long long)cfg_.finisher.size();
  const long long problem = prompt + first + headers + finisher;
  const std::string parts = "prompt " + grouped(prompt) + ", first inputs " + grouped(first) +
                            (headers ? ", headers " + grouped(headers) : "") +
                            (finisher ? ", finisher " + grouped(finisher) : "");
  if (problem > ctx)
    fail("run",
         "the problem is " + grouped(problem) + " tokens (" + parts + "); the context is " + grouped(ctx) + source);
  const long long generate = cfg_.raw ? (long long)cfg_.workers * cfg_.raw_steps : (long long)cfg_.max_tokens;
  if (cfg_.raw && problem + generate > ctx)
    fail("run", "the run needs " + grouped(problem + generate) + " positions (" + parts + ", " + grouped(generate) +
                    " steps of all workers); the context is " + grouped(ctx) + source);
  if (!cfg_.raw && ctx - problem < cfg_.workers)
    fail("run", "the problem is " + grouped(problem) + " tokens (" + parts +
                    "), which leaves no room to generate in a context of " + grouped(ctx) + source);

  // K/V: every block known now rounded up to whole pages, plus the tokens still to come (no
  // more than the context leaves). An explicit budget must hold all of it; the default one
  // (from the free memory) must hold what the run needs to start, and a run that reaches it
  // later ends cleanly (kv_budget_reached).
  const int pt = model_.cache().page_tokens();
  auto paged = [&](long long n) { return (n + pt - 1) / pt * pt; };
  long long tokens = paged(prompt) + paged((long long)cfg_.header_others.size()) * (headers > 0) +
                     paged((long long)cfg_.header_own.size()) * (headers > 0);
  for (const Ids& f : cfg_.first_input) tokens += paged((long long)f.size());
  if (cfg_.kv_budget_bytes > 0)
    tokens += std::min(generate, (long long)ctx - problem) + (cfg_.raw ? 0 : finisher + cfg_.finisher_max_tokens);
  const double per_token = double(model_.backend().kv_bytes_per_token());
  if (double(tokens) * per_token > kv_budget_)
    fail("run",
         "the run needs about " + bytes_text(double(tokens) * per_token) + " of KV memory (" + grouped(tokens) +
             " tokens x " + bytes_text(per_token) +
             (cfg_.kv_budget_bytes > 0 ? ": prompt, first inputs and token budget" : ": prompt and first inputs") +
             "); the KV budget is " + bytes_text(kv_budget_) + " (" + cfg_.kv_budget_setting + ")");
}

// Before a step: would its new pages take the cache's storage past the budget?
bool HogwildRun::kv_budget_reached(const std::map<int, int>& added) {
  const KvCache& c = model_.cache();
  const int pt = c.page_tokens();
  int new_pages = 0;
  for (const auto& [block, n] : added) {
    const int len = c.length(block);
    new_pages += (len + n + pt - 1) / pt - (len + pt - 1) / pt;
  }
  const int reused = c.pages_allocated() - c.pages_in_use();
  const double page_bytes = double(model_.backend().kv_bytes_per_token()) * pt;
  const double after = double(c.pages_allocated() + std::max(0, new_pages - reused)) * page_bytes;
  if (after <= kv_budget_) return false;
  end_message_ = "the run reached its KV memory budget of " + bytes_text(kv_budget_) + " (" + cfg_.kv_budget_setting +
                 "): " + bytes_text(double(c.pages_allocated()) * page_bytes) + " in use";
  return true;
}

void HogwildRun::release_cache() {
  if (!done_) fail("release", "the run is still going (stop it first)");
  std::lock_guard<std::mutex> step_lock(step_mu_);
  if (released_) return;
  for (const auto& entry : meta_) model_.cache().release_block(entry.first);
  released_ = true;
}

HogwildRun::~HogwildRun() {
  stop();
  if (thread_.joinable()) thread_.join();
}

// ------------------------------------------------------------------ the loop

void HogwildRun::start() {
  thread_ = std::thread([this] { loop(); });
}

void HogwildRun::run() {
  loop();
}

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

void HogwildRun::emit(Event e) {
  outbox_.push_back(std::move(e));
}

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
    emit(RunStateEvent{RunPhase::Prefill});
    prefill_shared();
    emit(RunStateEvent{paused_ ? RunPhase::Paused : RunPhase::Running});
    flush(true);
    {
      Timings loop_only;  // the loop proper; the shared prefill's figures are kept
      loop_only.prefill_ms = timings_.prefill_ms;
      loop_only.prefill_attention_ms = timings_.prefill_attention_ms;
      loop_only.prefill_first_chunk = timings_.prefill_first_chunk;
      loop_only.prefill_largest_chunk = timings_.prefill_largest_chunk;
      timings_ = loop_only;
    }
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
        timings_.loop_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - loop_start).count();
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
      emit(RunStateEvent{RunPhase::Stopped});
    } else {
      std::lock_guard<std::mutex> step_lock(step_mu_);
      finish();
      emit(RunStateEvent{RunPhase::Finished, end_message_});
    }
  } catch (const Cancelled&) {
    emit(RunStateEvent{RunPhase::Stopped});  // Stop during the prefill: the engine stays usable
  } catch (const std::exception& e) {
    emit(ErrorEvent{e.what()});
    emit(RunStateEvent{RunPhase::Failed});
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
  if (cfg_.layout != Layout::Contiguous) history_ = new_block(BlockKind::History, -1);
  if (cfg_.layout == Layout::Combined && !cfg_.raw) {
    header_others_ = new_block(BlockKind::Header, -1);
    header_own_ = new_block(BlockKind::Header, -1);
  }
  // The prompt in chunks: memory stays bounded, progress is reported, and Stop and Pause
  // take effect between chunks (Stop also between the layers of a chunk).
  ForwardOutput out;
  const auto t0 = std::chrono::steady_clock::now();
  const int total = int(cfg_.prompt.size());
  auto progress = [&](int done) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    emit(ProgressEvent{done, total, s > 0 && done > 0 ? float(done / s) : 0.0f});
    flush(true);
  };
  progress(0);  // the work is known: tokens done and total, before any compute
  PrefillPacer pacer(cfg_.prefill_chunk, cfg_.prefill_report_s);
  const double attention_before = timings_.attention_ms;
  for (int done = 0; done < total;) {
    const int n = pacer.next(total - done);
    Batch chunk;
    chunk.cancel = &cancel_;
    chunk.rows.push_back(
        {Ids(cfg_.prompt.begin() + done, cfg_.prompt.begin() + done + n), prompt_, {{prompt_, 0}}, false});
    const auto tc = std::chrono::steady_clock::now();
    forward(chunk, out);
    pacer.done(n, std::chrono::duration<double>(std::chrono::steady_clock::now() - tc).count());
    if (done == 0) timings_.prefill_first_chunk = n;
    timings_.prefill_largest_chunk = std::max(timings_.prefill_largest_chunk, n);
    done += n;
    progress(done);
    if (done < total) hold_between_chunks();
  }
  timings_.prefill_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  timings_.prefill_attention_ms = timings_.attention_ms - attention_before;
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
    emit(WorkerEvent{w, WorkerPhase::Running, -1, workers_[w].temperature});
  }
}

// Between prefill chunks: run-level pause and resume take effect (other controls wait for
// the first step); Stop ends the run. A single step while paused lets one more chunk run.
void HogwildRun::hold_between_chunks() {
  for (;;) {
    bool hold;
    {
      std::lock_guard<std::mutex> lock(control_mu_);
      if (stopping_) throw Cancelled();
      for (auto it = controls_.begin(); it != controls_.end();) {
        const bool run_level =
            it->worker == -1 && (it->type == Control::Type::Pause || it->type == Control::Type::Resume);
        if (run_level) {
          const bool pause = it->type == Control::Type::Pause;
          if (paused_ != pause) emit(RunStateEvent{pause ? RunPhase::Paused : RunPhase::Prefill});
          paused_ = pause;
          it = controls_.erase(it);
        } else if (it->type == Control::Type::Step && paused_) {
          steps_allowed_++;
          it = controls_.erase(it);
        } else {
          ++it;
        }
      }
      hold = paused_ && steps_allowed_ == 0;
      if (!hold && paused_) steps_allowed_--;
    }
    if (!hold) return;
    flush(true);
    std::unique_lock<std::mutex> lock(control_mu_);
    // Worker-level controls stay queued: poll rather than wake on every queue change.
    control_cv_.wait_for(lock, std::chrono::milliseconds(50), [this] {
      if (stopping_) return true;
      for (const Control& c : controls_)
        if (c.worker == -1 && c.type != Control::Type::Inject) return true;
      return false;
    });
  }
}

// Each worker's row: the keys its last token saw in each segment (the backend's order), its view
// after this step's writes up to the token's position at the end of its own block.
void HogwildRun::record_key_attention(const std::vector<int>& row_worker, ForwardOutput& out) {
  if (key_attention_.size() < workers_.size()) key_attention_.resize(workers_.size());
  for (size_t r = 0; r < row_worker.size() && r < out.key_attention.size(); r++) {
    const int w = row_worker[r];
    if (w < 0) continue;
    KeyAttentionRecord& rec = key_attention_[w];
    const std::vector<ViewSegment>& v = views_[w];
    int last = -1;
    for (size_t s = 0; s < v.size(); s++)
      if (v[s].block == workers_[w].block) last = v[s].offset + view_lengths_[w][s] - 1;
    rec.step = step_;
    rec.view = v;
    rec.base.assign(v.size(), 0);
    rec.visible.assign(v.size(), 0);
    for (size_t s = 0; s < v.size(); s++)
      rec.visible[s] = std::max(0, std::min(view_lengths_[w][s], last - v[s].offset + 1));
    rec.values = std::move(out.key_attention[r]);
  }
}

bool HogwildRun::key_attention_this_step() {
  if (!cfg_.attention_shares) return false;
  const bool asked = key_attention_wanted_.exchange(false);
  switch (cfg_.key_attention) {
    case KeyAttention::EveryStep:
      return true;
    case KeyAttention::OnRequest:
      return asked;
    case KeyAttention::Auto:
      break;
  }
  return asked || !model_.backend().key_attention_costly();
}

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
  if (kv_budget_reached(added)) return StepResult::Done;  // ends cleanly: the finisher still runs
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
    if (total > limit) {
      end_message_ = "the views reached the context of " + grouped(limit) + " tokens";
      return StepResult::Done;
    }
  }

  Batch batch;
  batch.attention_shares = cfg_.attention_shares;
  batch.key_attention = key_attention_this_step();
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

  // Device sampling: each worker's uniform is drawn here, once per sampled token as on the
  // CPU path, so a seed gives one stream of draws whichever backend runs.
  if (model_.backend().samples()) {
    for (size_t r = 0; r < batch.rows.size(); r++) {
      const int w = row_worker[r];
      BatchRow& row = batch.rows[r];
      if (w < 0 || !row.logits) continue;
      Worker& wk = workers_[w];
      row.sample = true;
      row.temperature = wk.temperature;
      row.top_k = cfg_.sampling.top_k;
      row.top_p = cfg_.sampling.top_p;
      row.uniform = wk.temperature > 0.0f ? wk.rng.uniform() : 0.0;
    }
    batch.sampled_ids_only = observer_ == nullptr && cfg_.top_logits <= 0;
  }

  ForwardOutput out;
  forward(batch, out);
  step_++;
  for (const Note* n : new_notes) record(n->block, n->text, -1, 0);
  for (const BatchRow& row : batch.rows) {
    const BlockMeta& m = meta_[row.block];
    emit(BlockEvent{BlockOp::Grown, row.block, m.kind, m.owner, model_.cache().length(row.block), step_});
  }

  ViewsEvent views{step_, {}};
  AttentionEvent att{step_, {}, {}};
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
  // A backend that samples on the device already drew them (sampled_on_device).
  const int vocab = model_.config().vocab;
  std::vector<int32_t> sampled(batch.rows.size(), -1);
  const auto t_sample = std::chrono::steady_clock::now();
  model_.pool().parallel_for(int64_t(batch.rows.size()), 1, [&](int64_t r0, int64_t r1) {
    for (int r = int(r0); r < int(r1); r++) {
      const int w = row_worker[r];
      if (w < 0 || !batch.rows[r].logits) continue;
      if (batch.rows[r].sample) {
        sampled[r] = out.sampled[r];
        continue;
      }
      Worker& wk = workers_[w];
      SamplingParams sp = cfg_.sampling;
      sp.temperature = wk.temperature;
      sampled[r] = sample_token(out.row_logits(r), vocab, sp, wk.rng);
    }
  });
  timings_.sampling_ms +=
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_sample).count();

  // Before any step below moves into the history (a move frees a block id the views still name).
  if (batch.key_attention) record_key_attention(row_worker, out);

  for (size_t r = 0; r < batch.rows.size(); r++) {
    const int w = row_worker[r];
    if (w < 0) continue;
    Worker& wk = workers_[w];
    record(wk.block, wk.pending, w, wk.step);
    TokensEvent tokens{w, wk.step, std::move(wk.pending)};
    wk.pending.clear();

    if (cfg_.attention_shares) {
      const size_t nseg = views_[w].size();
      std::vector<float> mean(nseg, 0.0f);
      for (int l = 0; l < model_.config().layers; l++)
        for (size_t s = 0; s < nseg; s++)
          mean[s] += out.shares[r][size_t(l) * nseg + s] / float(model_.config().layers);
      att.shares[w] = std::move(mean);
      att.layer_shares[w] = out.shares[r];
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
  emit(StatsEvent{step_, generated_, total_s > 0 ? float(generated_ / total_s) : 0.0f, float(ms),
                  double(model_.backend().kv_bytes())});

  // Raw runs report the top logits of their last step.
  if (cfg_.raw && step_ == cfg_.raw_steps) {
    RawResultEvent res;
    for (int w = 0; w < int(workers_.size()); w++) {
      RawResultEvent::Worker rw{workers_[w].generated, {}, {}};
      for (size_t r = 0; r < batch.rows.size() && cfg_.top_logits > 0; r++) {
        if (row_worker[r] != w) continue;
        const float* lg = out.row_logits(int(r));
        std::vector<int32_t> idx(vocab);
        for (int i = 0; i < vocab; i++) idx[i] = i;
        const int k = std::min(cfg_.top_logits, vocab);
        std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                          [&](int a, int b) { return lg[a] > lg[b] || (lg[a] == lg[b] && a < b); });
        for (int i = 0; i < k; i++) rw.top_ids.push_back(idx[i]), rw.top_logits.push_back(lg[idx[i]]);
      }
      res.workers.push_back(std::move(rw));
    }
    emit(std::move(res));
  }
  return StepResult::Ran;
}

// The finisher: one linearised view (prompt, history, notes, every unfinished step), the
// finisher prompt, then greedy decoding of the final answer.
}  // namespace hw
