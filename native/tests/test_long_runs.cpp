// Long inputs and long runs (issue 13): chunked and paced prefill give the same ids as one
// forward, the load reports its progress, progress arrives before the first token, Stop and
// Pause work during the prefill, runs that cannot fit are refused before any compute, the KV
// budget ends a run cleanly, and the K/V storage takes the checkpoint's dtype.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "error.h"
#include "hogwild/engine.h"
#include "model.h"
#include "event_log.h"
#include "prefill_pacer.h"
#include "testing.h"

using namespace hw;

namespace {

Ids long_prompt(int n, int vocab) {
  Ids p;
  for (int i = 0; i < n; i++) p.push_back(int32_t(1 + (i * 7919) % (vocab - 1)));
  return p;
}

// A protocol run (headers, finisher) whose steps end often: every 6th id ends a paragraph.
HogwildConfig protocol_config(int workers, int prompt_tokens, int vocab) {
  HogwildConfig c;
  c.workers = workers;
  c.layout = Layout::Combined;
  c.prompt = long_prompt(prompt_tokens, vocab);
  for (int w = 0; w < workers; w++) {
    c.header_prefix.push_back({20, int32_t(21 + w % 4)});
    c.first_input.push_back({20, int32_t(21 + w % 4), 31, 40, 41});
  }
  for (int d = 0; d < 10; d++) c.digits.push_back(30 + d);
  c.header_suffix = {40, 41};
  c.header_others = {42, 43, 44};
  c.header_own = {45, 46};
  c.self_check = {50, 51, 52};
  c.finisher = {55, 56, 57};
  c.finisher_max_tokens = 4;
  c.max_tokens = 200;
  c.token_bytes.assign(vocab, "w");
  for (int id = 0; id < vocab; id += 6) c.token_bytes[id] = ".\n\n";
  c.sampling.temperature = 1.0f;
  c.seed = 3;
  return c;
}

HogwildConfig raw_greedy(int workers, int prompt_tokens, int steps, int vocab) {
  HogwildConfig c;
  c.workers = workers;
  c.layout = Layout::Combined;
  c.raw = true;
  c.raw_steps = steps;
  c.prompt = long_prompt(prompt_tokens, vocab);
  for (int w = 0; w < workers; w++) c.first_input.push_back({int32_t(5 + w)});
  c.sampling.temperature = 0.0f;  // greedy
  return c;
}

void test_chunked_same_ids(const TinyModel& tm) {
  std::vector<std::vector<int32_t>> ref;
  for (int chunk : {100000, 1, 7, 64}) {
    auto model = Model::load(tm.dir, {});
    HogwildConfig c = raw_greedy(3, 301, 12, tm.spec.vocab);
    c.prefill_chunk = chunk;
    c.prefill_report_s = 0;  // fixed chunks
    EventLog col;
    HogwildRun run(*model, c, col.sink());
    run.run();
    CHECK(col.final_state() == "finished", "chunk %d: run ended '%s'", chunk, col.final_state().c_str());
    const auto ids = col.raw_ids();
    if (ref.empty()) ref = ids;
    CHECK(!ids.empty() && ids == ref, "chunk %d: greedy ids differ from the unchunked prefill", chunk);
    int progress = 0, last_done = -1;
    bool increasing = true;
    for (const ProgressEvent* e : col.all<ProgressEvent>()) {
      progress++;
      increasing &= e->done > last_done && e->total == 301;
      last_done = e->done;
    }
    const int chunks = (301 + chunk - 1) / chunk;
    CHECK(progress == chunks + 1, "chunk %d: %d progress events for %d chunks", chunk, progress, chunks);
    CHECK(increasing && last_done == 301, "chunk %d: progress ends at %d of 301", chunk, last_done);
    const int first_progress = col.index_of<ProgressEvent>(), first_tokens = col.index_of<TokensEvent>();
    CHECK(first_progress >= 0 && first_progress < first_tokens,
          "chunk %d: progress (event %d) before the first token (event %d)", chunk, first_progress, first_tokens);
  }
}

// The pacer's arithmetic: a small first chunk, then what fits in report_s at the last chunk's
// rate (in steps of kStep, between kStep and the largest chunk); fixed chunks when report_s is 0.
void test_pacer() {
  PrefillPacer p(128, 1.0);
  CHECK(p.next(1000) == PrefillPacer::kStep, "first paced chunk %d", p.next(1000));
  p.done(16, 0.5);  // 32 tok/s: 32 fit in a second
  CHECK(p.next(1000) == 32, "after 16 tokens in 0.5 s: %d", p.next(1000));
  p.done(32, 0.1);  // 320 tok/s: more than the largest chunk
  CHECK(p.next(1000) == 128, "after 32 tokens in 0.1 s: %d", p.next(1000));
  p.done(128, 4.0);  // 32 tok/s again
  CHECK(p.next(1000) == 32, "after 128 tokens in 4 s: %d", p.next(1000));
  p.done(32, 100.0);  // slower than one token a second: the smallest chunk
  CHECK(p.next(1000) == PrefillPacer::kStep && p.next(5) == 5, "slow machine: %d, tail %d", p.next(1000), p.next(5));
  PrefillPacer fixed(100, 0);
  fixed.done(100, 1e-9);
  CHECK(fixed.next(1000) == 100 && fixed.next(7) == 7, "fixed chunks: %d", fixed.next(1000));
  PrefillPacer tiny(8, 1.0);
  CHECK(tiny.next(1000) == 8, "a largest chunk under kStep: %d", tiny.next(1000));
}

// The run's paced prefill: chunk sizes follow the pacer (smallest when nothing fits in the
// time, the largest after the first when everything does), the first progress with tokens
// done comes after kStep tokens, and the greedy ids are those of fixed chunks.
void test_paced_prefill(const TinyModel& tm) {
  std::vector<std::vector<int32_t>> ref;
  for (double report_s : {0.0, 1e-12, 1e12}) {
    auto model = Model::load(tm.dir, {});
    HogwildConfig c = raw_greedy(2, 301, 6, tm.spec.vocab);
    c.prefill_chunk = 64;
    c.prefill_report_s = report_s;
    EventLog col;
    HogwildRun run(*model, c, col.sink());
    run.run();
    const auto ids = col.raw_ids();
    if (ref.empty()) ref = ids;
    CHECK(!ids.empty() && ids == ref, "report_s %g: greedy ids differ from fixed chunks", report_s);
    std::vector<int> sizes;
    int last = 0;
    for (const ProgressEvent* e : col.all<ProgressEvent>())
      if (e->done > 0) sizes.push_back(e->done - last), last = e->done;
    std::vector<int> want;
    if (report_s == 0)
      want = {64, 64, 64, 64, 45};
    else if (report_s < 1)
      want.assign(18, 16), want.push_back(13);
    else
      want = {16, 64, 64, 64, 64, 29};
    CHECK(sizes == want, "report_s %g: %zu chunks, the first %d", report_s, sizes.size(),
          sizes.empty() ? -1 : sizes[0]);
    const HogwildRun::Timings t = run.timings();
    CHECK(t.prefill_first_chunk == want[0] && t.prefill_largest_chunk == *std::max_element(want.begin(), want.end()),
          "report_s %g: timings say chunks of %d..%d", report_s, t.prefill_first_chunk, t.prefill_largest_chunk);
    CHECK(t.prefill_ms > 0 && t.prefill_attention_ms > 0 && t.prefill_attention_ms <= t.prefill_ms,
          "report_s %g: prefill %.3f ms, attention %.3f ms", report_s, t.prefill_ms, t.prefill_attention_ms);
  }
}

// The load reads the weight files with progress: from 0 to the files' bytes, never backwards.
void test_load_progress(const TinyModel& tm) {
  std::vector<std::pair<double, double>> reports;
  std::string phase;
  auto model = Model::load(tm.dir, {}, [&](const char* p, double done, double total) {
    phase = p;
    reports.push_back({done, total});
  });
  struct stat st {};
  ::stat((tm.dir + "/model.safetensors").c_str(), &st);
  const double bytes = double(st.st_size);
  CHECK(reports.size() >= 2 && reports.front().first == 0, "%zu load reports", reports.size());
  bool ordered = true;
  for (size_t i = 0; i < reports.size(); i++) {
    ordered &= reports[i].second == bytes;
    if (i > 0) ordered &= reports[i].first >= reports[i - 1].first;
  }
  CHECK(ordered && phase == "read", "load reports out of order or with a total other than the file's %.0f bytes",
        bytes);
  CHECK(!reports.empty() && reports.back().first == bytes, "the load reported %.0f of %.0f bytes at the end",
        reports.empty() ? -1.0 : reports.back().first, bytes);
}

// Model::forward_chunked: the last token's logits equal one forward's (within rounding).
void test_forward_chunked(const TinyModel& tm) {
  auto a = Model::load(tm.dir, {});
  auto b = Model::load(tm.dir, {});
  const Ids prompt = long_prompt(257, tm.spec.vocab);
  const int ba = a->cache().create_block(), bb = b->cache().create_block();
  ForwardOutput oa, ob;
  Batch one;
  one.rows.push_back({prompt, ba, {{ba, 0}}, true});
  a->forward(one, oa);
  std::vector<std::pair<int, int>> calls;
  b->forward_chunked({prompt, bb, {{bb, 0}}, true}, 50, ob, [&](int done, int total) {
    calls.push_back({done, total});
  });
  double diff = 0, mag = 0;
  for (int i = 0; i < oa.vocab; i++) {
    diff = std::max(diff, double(std::fabs(oa.row_logits(0)[i] - ob.row_logits(0)[i])));
    mag = std::max(mag, double(std::fabs(oa.row_logits(0)[i])));
  }
  CHECK(diff <= 1e-4 * mag, "chunked logits differ by %.3g (max %.3g)", diff, mag);
  CHECK(calls.size() == 6 && calls.back().first == 257 && calls.back().second == 257, "%zu chunk callbacks",
        calls.size());
  CHECK(b->cache().length(bb) == 257, "the block holds %d tokens", b->cache().length(bb));
}

// Stop from the first progress report: the run ends "stopped" before the prompt is done, and
// the same model runs a full run right after.
void test_stop_during_prefill(const TinyModel& tm) {
  auto model = Model::load(tm.dir, {});
  HogwildConfig c = protocol_config(2, 900, tm.spec.vocab);
  c.prefill_chunk = 64;
  EventLog col;
  HogwildRun* self = nullptr;
  col.on_event = [&](const Event& e) {
    const auto* p = std::get_if<ProgressEvent>(&e);
    if (p && p->done > 0 && self) self->stop();
  };
  HogwildRun run(*model, c, col.sink());
  self = &run;
  run.start();
  run.wait();
  CHECK(col.final_state() == "stopped", "stop during the prefill ended the run as '%s'", col.final_state().c_str());
  const ProgressEvent* p = col.last<ProgressEvent>();
  CHECK(p && p->done < p->total, "the prefill went on to %d of %d after Stop", p ? p->done : -1, p ? p->total : -1);
  CHECK(col.last<TokensEvent>() == nullptr, "tokens were generated after a stop during the prefill");
  CHECK(col.last<ErrorEvent>() == nullptr, "stop during the prefill raised an error");

  EventLog again;
  HogwildConfig c2 = protocol_config(2, 40, tm.spec.vocab);
  c2.max_tokens = 20;
  HogwildRun run2(*model, c2, again.sink());
  run2.run();
  CHECK(again.final_state() == "finished", "the next run on the same model ended '%s'", again.final_state().c_str());
}

// Stop while a chunk is in flight: the forward ends between layers (Cancelled) and the cache
// keeps only whole chunks.
void test_cancel_between_layers(const TinyModel& tm) {
  auto model = Model::load(tm.dir, {});
  const int blk = model->cache().create_block();
  std::atomic<bool> cancel{true};
  ForwardOutput out;
  bool cancelled = false;
  try {
    model->forward_chunked({long_prompt(100, tm.spec.vocab), blk, {{blk, 0}}, true}, 40, out, {}, &cancel);
  } catch (const Cancelled&) {
    cancelled = true;
  }
  CHECK(cancelled, "a set cancel flag did not stop the forward");
  CHECK(model->cache().length(blk) == 0, "a cancelled forward left %d tokens", model->cache().length(blk));
  cancel = false;
  model->forward_chunked({long_prompt(10, tm.spec.vocab), blk, {{blk, 0}}, true}, 40, out, {}, &cancel);
  CHECK(model->cache().length(blk) == 10, "the model works after a cancelled forward (%d tokens)",
        model->cache().length(blk));
}

// Pause from the first progress report: no progress while paused, then the run finishes.
void test_pause_during_prefill(const TinyModel& tm) {
  auto model = Model::load(tm.dir, {});
  HogwildConfig c = protocol_config(2, 500, tm.spec.vocab);
  c.prefill_chunk = 50;
  c.max_tokens = 10;
  EventLog col;
  HogwildRun* self = nullptr;
  std::mutex mu;
  std::condition_variable cv;
  bool paused_seen = false, asked = false;
  col.on_event = [&](const Event& e) {
    const auto* p = std::get_if<ProgressEvent>(&e);
    if (p && p->done > 0 && !asked) {
      asked = true;
      self->pause();
    }
    const auto* s = std::get_if<RunStateEvent>(&e);
    if (s && s->state == RunPhase::Paused) {
      std::lock_guard<std::mutex> lock(mu);
      paused_seen = true;
      cv.notify_all();
    }
  };
  HogwildRun run(*model, c, col.sink());
  self = &run;
  run.start();
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::seconds(30), [&] { return paused_seen; });
  }
  CHECK(paused_seen, "no 'paused' state during the prefill");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  int done_at_pause;
  {
    std::lock_guard<std::mutex> lock(col.mu);
    done_at_pause = col.last<ProgressEvent>()->done;
  }
  run.resume();
  run.wait();
  CHECK(col.final_state() == "finished", "paused then resumed prefill ended '%s'", col.final_state().c_str());
  // Between "paused" and the next "prefill" state no chunk ran.
  bool in_pause = false, progressed = false;
  for (const Event& e : col.events) {
    if (const auto* s = std::get_if<RunStateEvent>(&e)) in_pause = s->state == RunPhase::Paused;
    if (in_pause && std::holds_alternative<ProgressEvent>(e)) progressed = true;
  }
  CHECK(!progressed, "the prefill went on while paused");
  CHECK(done_at_pause > 0 && done_at_pause < 500, "paused at %d of 500", done_at_pause);
}

// Runs that cannot fit are refused in the constructor: no forward, nothing allocated.
void test_refused_up_front(const TinyModel& tm) {
  auto model = Model::load(tm.dir, {});
  auto message = [&](const HogwildConfig& c) {
    try {
      HogwildRun run(*model, c, nullptr);
    } catch (const EngineError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  HogwildConfig c = protocol_config(2, 2500, tm.spec.vocab);
  c.max_context = 2048;
  c.max_context_setting = "hogwild.maxContext";
  std::string m = message(c);
  CHECK(m.find("the problem is 2,518 tokens") != std::string::npos &&
            m.find("the context is 2,048") != std::string::npos &&
            m.find("(hogwild.maxContext, or the model's 4,096)") != std::string::npos,
        "over-long prompt: '%s'", m.c_str());
  c.max_context = 0;
  c.prompt = long_prompt(5000, tm.spec.vocab);
  m = message(c);
  CHECK(m.find("the context is 4,096 (the model's)") != std::string::npos, "over the model's context: '%s'", m.c_str());
  c.prompt = long_prompt(4077, tm.spec.vocab);  // fits (4,095 tokens), but leaves 1 for 2 workers
  m = message(c);
  CHECK(m.find("leaves no room to generate") != std::string::npos, "no room to generate: '%s'", m.c_str());
  HogwildConfig r = raw_greedy(4, 4000, 30, tm.spec.vocab);
  m = message(r);
  CHECK(m.find("the run needs 4,124 positions") != std::string::npos, "raw run over the context: '%s'", m.c_str());
  HogwildConfig k = protocol_config(2, 100, tm.spec.vocab);
  k.kv_budget_bytes = 1000;
  k.kv_budget_setting = "hogwild.kvBudgetMB";
  m = message(k);
  CHECK(m.find("of KV memory") != std::string::npos &&
            m.find("the KV budget is 1 KB (hogwild.kvBudgetMB)") != std::string::npos,
        "KV budget: '%s'", m.c_str());
  // The default budget (from the free memory) is checked against what the run needs to
  // start; a token budget larger than memory ends the run at the budget later, cleanly.
  HogwildConfig big = protocol_config(2, 100, tm.spec.vocab);
  big.max_tokens = 1 << 30;
  CHECK(message(big).empty(), "a huge token budget under the default KV budget was refused: '%s'",
        message(big).c_str());
  CHECK(model->cache().pages_allocated() == 0, "a refused run allocated %d pages", model->cache().pages_allocated());
}

// A budget that admits the run but is reached as blocks grow: the run ends "finished" with
// a message, its tokens and the finisher's answer kept.
void test_kv_budget_reached(const TinyModel& tm) {
  auto model = Model::load(tm.dir, {});
  HogwildConfig c = protocol_config(3, 40, tm.spec.vocab);
  c.max_tokens = 600;
  // Step headers and self-checks are not part of the token budget: with every token ending a
  // step and a self-check of 20 ids at every step, the cache outgrows the estimate.
  c.token_bytes.assign(tm.spec.vocab, ".\n\n");
  c.self_check.assign(20, 50);
  c.self_check_interval = 1;
  // The up-front estimate, as check_fits makes it: known blocks in whole pages, plus the rest.
  const int pt = model->cache().page_tokens();
  auto paged = [&](int n) { return (n + pt - 1) / pt * pt; };
  long long tokens = paged(40) + paged(3) + paged(2) + 3 * paged(5) + 600 + 3 + 4;
  c.kv_budget_bytes = double(tokens) * double(model->backend().kv_bytes_per_token());
  EventLog col;
  HogwildRun run(*model, c, col.sink());
  run.run();
  const RunStateEvent* fin = nullptr;
  for (const RunStateEvent* e : col.all<RunStateEvent>())
    if (e->state == RunPhase::Finished) fin = e;
  CHECK(fin && fin->message.find("KV memory budget") != std::string::npos, "final state '%s', message '%s'",
        col.final_state().c_str(), fin ? fin->message.c_str() : "");
  const StatsEvent* stats = col.last<StatsEvent>();
  CHECK(stats && stats->tokens > 0 && stats->tokens < 600, "generated %d of 600 tokens", stats ? stats->tokens : -1);
  CHECK(stats && stats->kv_bytes > 0 && stats->kv_bytes <= c.kv_budget_bytes * 1.05, "KV in use %.0f, budget %.0f",
        stats ? stats->kv_bytes : -1.0, c.kv_budget_bytes);
  CHECK(col.last<FinisherTokensEvent>() != nullptr, "the finisher did not run after the budget ended the run");
}

void test_kv_dtype(const TinyModel& f32, const TinyModel& bf16) {
  auto a = Model::load(f32.dir, {});
  auto b = Model::load(bf16.dir, {});
  BackendOptions half;
  half.kv_dtype = "f16";
  auto c = Model::load(f32.dir, half);
  CHECK(a->backend().kv_dtype() == "f32", "fp32 checkpoint: K/V in %s", a->backend().kv_dtype().c_str());
  CHECK(b->backend().kv_dtype() == "bf16", "bf16 checkpoint: K/V in %s", b->backend().kv_dtype().c_str());
  CHECK(c->backend().kv_dtype() == "f16", "kv_dtype f16: K/V in %s", c->backend().kv_dtype().c_str());
  CHECK(2 * b->backend().kv_bytes_per_token() == a->backend().kv_bytes_per_token(),
        "bf16 K/V take %zu bytes a token, fp32 %zu", b->backend().kv_bytes_per_token(),
        a->backend().kv_bytes_per_token());
  BackendOptions bad;
  bad.kv_dtype = "int4";
  bool threw = false;
  try {
    Model::load(f32.dir, bad);
  } catch (const EngineError& e) {
    threw = std::string(e.what()).find("int4") != std::string::npos;
  }
  CHECK(threw, "an unknown KV dtype is refused by name");
  // A run on 16-bit K/V works end to end.
  HogwildConfig r = raw_greedy(2, 50, 8, bf16.spec.vocab);
  EventLog x;
  HogwildRun(*b, r, x.sink()).run();
  CHECK(x.final_state() == "finished" && x.raw_ids().size() == 2 && x.raw_ids()[0].size() == 8,
        "bf16-KV run ended '%s'", x.final_state().c_str());
  CHECK(b->backend().kv_bytes() > 0 && b->backend().kv_bytes() % (b->backend().kv_bytes_per_token() * 32) == 0,
        "bf16 pages hold %zu bytes", b->backend().kv_bytes());
}

}  // namespace

int main() {
  const std::string base = "/tmp/hw_test_long_runs_" + std::to_string(getpid());
  TinySpec spec;
  const TinyModel tm = write_tiny_model(spec, base + "/f32", 11);
  TinySpec hs = spec;
  hs.bf16 = true;
  const TinyModel th = write_tiny_model(hs, base + "/bf16", 12);
  test_pacer();
  test_load_progress(tm);
  test_forward_chunked(tm);
  test_chunked_same_ids(tm);
  test_paced_prefill(tm);
  test_cancel_between_layers(tm);
  test_stop_during_prefill(tm);
  test_pause_during_prefill(tm);
  test_refused_up_front(tm);
  test_kv_budget_reached(tm);
  test_kv_dtype(tm, th);
  std::system(("rm -rf '" + base + "'").c_str());
  return test_summary("test_long_runs");
}
