// The Hogwild engine against an independent reference. The reference keeps every block's
// keys UNrotated, materialises each worker's view by rotating the keys to their view
// positions, and runs plain softmax attention in double precision: the rotate-keys
// formulation, with none of the engine's code (no query rotation, no pages, own RoPE).
// Every forward the engine runs (prompt, headers, workers, notes, finisher) is replayed
// through it and the logits compared.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <thread>
#include <unistd.h>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <functional>

#include "error.h"
#include "hogwild/engine.h"
#include "hogwild/step_rules.h"
#include "model.h"
#include "event_log.h"
#include "testing.h"

using namespace hw;

// ------------------------------------------------------------------ the reference

class Reference : public RunObserver {
 public:
  explicit Reference(const TinyModel& m) : m_(m), s_(m.spec) {
    const int half = s_.head_dim / 2;
    for (int i = 0; i < half; i++) {
      float f = float(1.0 / std::pow(s_.theta, double(2 * i) / s_.head_dim));
      if (s_.llama3) {  // factor 8, low 1, high 4, original 64 (testing.h)
        const double wavelen = 2 * M_PI / f, low_wl = 64.0 / 1.0, high_wl = 64.0 / 4.0;
        if (wavelen > low_wl)
          f = float(f / 8.0);
        else if (wavelen >= high_wl) {
          const double smooth = (64.0 / wavelen - 1.0) / (4.0 - 1.0);
          f = float((1 - smooth) * f / 8.0 + smooth * f);
        }
      }
      inv_freq_.push_back(f);
    }
  }

  // Results of the last check.
  double max_diff = 0;
  int forwards = 0, rows_checked = 0;
  std::vector<std::vector<std::vector<int>>> views_seen;  // per forward, per row: blocks in view order
  std::function<void(const Batch&)> after_forward;

  void on_forward(const Batch& batch, const ForwardOutput& out) override {
    std::vector<std::vector<double>> logits = forward(batch);
    forwards++;
    std::vector<std::vector<int>> vs;
    for (const BatchRow& row : batch.rows) {
      std::vector<int> blocks;
      for (const ViewSegment& s : row.view) blocks.push_back(s.block);
      vs.push_back(blocks);
    }
    views_seen.push_back(vs);
    // Compare: the reference returns, per row, the logits of the same tokens the engine did.
    size_t k = 0;
    for (size_t r = 0; r < batch.rows.size(); r++) {
      for (int i = 0; i < out.logit_count[r]; i++, k++) {
        const float* got = out.row_logits(int(r), i);
        for (int v = 0; v < s_.vocab; v++) max_diff = std::max(max_diff, std::abs(double(got[v]) - logits[k][v]));
        rows_checked++;
      }
    }
    if (after_forward) after_forward(batch);
  }
  void on_append(int dst, int src) override {
    K_[dst].resize(s_.layers);
    V_[dst].resize(s_.layers);
    for (int l = 0; l < s_.layers; l++) {
      K_[dst][l].insert(K_[dst][l].end(), K_[src][l].begin(), K_[src][l].end());
      V_[dst][l].insert(V_[dst][l].end(), V_[src][l].begin(), V_[src][l].end());
    }
  }
  void on_fork(int dst, int src) override {
    K_[dst] = K_[src];
    V_[dst] = V_[src];
  }
  void on_release(int block) override {
    K_.erase(block);
    V_.erase(block);
  }
  int length(int block) {
    auto it = K_.find(block);
    return it == K_.end() || it->second.empty() ? 0 : int(it->second[0].size()) / kvd();
  }
  // Offsets the reference expects for a row's view, from its own block lengths.
  std::vector<int> offsets_after(const BatchRow& row, const std::map<int, int>& added) {
    std::vector<int> o;
    int off = 0;
    for (const ViewSegment& s : row.view) {
      o.push_back(off);
      auto it = added.find(s.block);
      off += length(s.block) + (it == added.end() ? 0 : it->second);
    }
    return o;
  }
  int offset_errors = 0;

 private:
  int kvd() const { return s_.kv_heads * s_.head_dim; }
  const std::vector<float>& W(WeightRole r, int layer = -1) const { return m_.at(weight_name(r, layer)); }

  void rope(double* x, int pos) const {
    const int half = s_.head_dim / 2;
    for (int i = 0; i < half; i++) {
      const double a = double(float(pos) * inv_freq_[i]);
      const double c = std::cos(a), s = std::sin(a), x1 = x[i], x2 = x[i + half];
      x[i] = x1 * c - x2 * s;
      x[i + half] = x2 * c + x1 * s;
    }
  }
  static void rmsnorm(const double* x, const std::vector<float>& w, int n, double* y) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    const double inv = 1.0 / std::sqrt(ss / n + 1e-6);
    for (int i = 0; i < n; i++) y[i] = x[i] * inv * w[i];
  }
  static void matvec(const std::vector<float>& w, const double* x, int out, int in, double* y) {
    for (int o = 0; o < out; o++) {
      double acc = 0;
      for (int i = 0; i < in; i++) acc += double(w[size_t(o) * in + i]) * x[i];
      y[o] = acc;
    }
  }

  // All rows of a batch, layer by layer (every row's K/V written before any row attends).
  std::vector<std::vector<double>> forward(const Batch& batch) {
    const int H = s_.hidden, HD = s_.head_dim, QD = s_.heads * HD, KD = kvd(), I = s_.intermediate;
    std::map<int, int> added;
    for (const BatchRow& r : batch.rows) added[r.block] = int(r.tokens.size());
    struct Tok {
      int row, i, pos;
    };
    std::vector<Tok> toks;
    std::vector<std::vector<int>> offsets;
    for (size_t r = 0; r < batch.rows.size(); r++) {
      const BatchRow& row = batch.rows[r];
      std::vector<int> off = offsets_after(row, added);
      for (size_t s = 0; s < off.size(); s++) offset_errors += off[s] != row.view[s].offset;
      offsets.push_back(off);
      int own = 0;
      for (size_t s = 0; s < row.view.size(); s++)
        if (row.view[s].block == row.block) own = off[s];
      for (int i = 0; i < int(row.tokens.size()); i++) toks.push_back({int(r), i, own + length(row.block) + i});
    }
    const int T = int(toks.size());
    std::vector<std::vector<double>> x(T, std::vector<double>(H));
    for (int t = 0; t < T; t++) {
      const int id = batch.rows[toks[t].row].tokens[toks[t].i];
      for (int j = 0; j < H; j++) x[t][j] = W(WeightRole::Embed)[size_t(id) * H + j];
    }
    for (int l = 0; l < s_.layers; l++) {
      std::vector<std::vector<double>> q(T, std::vector<double>(QD));
      std::vector<double> h(H), k(KD), v(KD);
      for (int t = 0; t < T; t++) {
        rmsnorm(x[t].data(), W(WeightRole::AttnNorm, l), H, h.data());
        matvec(W(WeightRole::Wq, l), h.data(), QD, H, q[t].data());
        matvec(W(WeightRole::Wk, l), h.data(), KD, H, k.data());
        matvec(W(WeightRole::Wv, l), h.data(), KD, H, v.data());
        if (s_.bias) {
          for (int j = 0; j < QD; j++) q[t][j] += W(WeightRole::Bq, l)[j];
          for (int j = 0; j < KD; j++) k[j] += W(WeightRole::Bk, l)[j], v[j] += W(WeightRole::Bv, l)[j];
        }
        if (s_.qk_norm) {
          for (int hh = 0; hh < s_.heads; hh++) rmsnorm(&q[t][hh * HD], W(WeightRole::QNorm, l), HD, &q[t][hh * HD]);
          for (int hh = 0; hh < s_.kv_heads; hh++) rmsnorm(&k[hh * HD], W(WeightRole::KNorm, l), HD, &k[hh * HD]);
        }
        const int block = batch.rows[toks[t].row].block;
        auto& kb = K_[block];
        auto& vb = V_[block];
        kb.resize(s_.layers);
        vb.resize(s_.layers);
        kb[l].insert(kb[l].end(), k.begin(), k.end());  // stored UNrotated
        vb[l].insert(vb[l].end(), v.begin(), v.end());
      }
      // Attention over each row's materialised view: keys rotated to their view positions.
      std::vector<std::vector<double>> att(T, std::vector<double>(QD, 0.0));
      for (int t = 0; t < T; t++) {
        const BatchRow& row = batch.rows[toks[t].row];
        const std::vector<int>& off = offsets[toks[t].row];
        const int pq = toks[t].pos;
        for (int hh = 0; hh < s_.heads; hh++) {
          const int g = hh / (s_.heads / s_.kv_heads);
          std::vector<double> qr(q[t].begin() + hh * HD, q[t].begin() + (hh + 1) * HD);
          rope(qr.data(), pq);
          std::vector<double> scores;
          std::vector<const double*> vals;
          for (size_t s = 0; s < row.view.size(); s++) {
            const int b = row.view[s].block;
            const int n = length(b);
            for (int j = 0; j < n; j++) {
              const int pk = off[s] + j;
              if (pk > pq) continue;
              std::vector<double> kr(K_[b][l].begin() + size_t(j) * KD + g * HD,
                                     K_[b][l].begin() + size_t(j) * KD + (g + 1) * HD);
              rope(kr.data(), pk);
              double sc = 0;
              for (int d = 0; d < HD; d++) sc += qr[d] * kr[d];
              scores.push_back(sc / std::sqrt(double(HD)));
              vals.push_back(&V_[b][l][size_t(j) * KD + g * HD]);
            }
          }
          const double mx = *std::max_element(scores.begin(), scores.end());
          double tot = 0;
          for (double& sc : scores) tot += (sc = std::exp(sc - mx));
          for (size_t j = 0; j < scores.size(); j++)
            for (int d = 0; d < HD; d++) att[t][hh * HD + d] += scores[j] / tot * vals[j][d];
        }
      }
      std::vector<double> o(H), gate(I), up(I), down(H);
      for (int t = 0; t < T; t++) {
        matvec(W(WeightRole::Wo, l), att[t].data(), H, QD, o.data());
        for (int j = 0; j < H; j++) x[t][j] += o[j];
        rmsnorm(x[t].data(), W(WeightRole::MlpNorm, l), H, h.data());
        matvec(W(WeightRole::Gate, l), h.data(), I, H, gate.data());
        matvec(W(WeightRole::Up, l), h.data(), I, H, up.data());
        for (int j = 0; j < I; j++) gate[j] = gate[j] / (1 + std::exp(-gate[j])) * up[j];
        matvec(W(WeightRole::Down, l), gate.data(), H, I, down.data());
        for (int j = 0; j < H; j++) x[t][j] += down[j];
      }
    }
    // Logits of the tokens the engine returns logits for, in the same order.
    std::vector<std::vector<double>> logits;
    const std::vector<float>& head = s_.tied ? W(WeightRole::Embed) : W(WeightRole::LmHead);
    std::vector<double> h(H);
    for (int t = 0; t < T; t++) {
      const BatchRow& row = batch.rows[toks[t].row];
      const bool last = toks[t].i == int(row.tokens.size()) - 1;
      if (!(row.all_logits || (row.logits && last))) continue;
      rmsnorm(x[t].data(), W(WeightRole::FinalNorm), H, h.data());
      std::vector<double> lg(s_.vocab);
      matvec(head, h.data(), s_.vocab, H, lg.data());
      logits.push_back(lg);
    }
    return logits;
  }

  const TinyModel& m_;
  TinySpec s_;
  std::vector<float> inv_freq_;
  std::map<int, std::vector<std::vector<double>>> K_, V_;  // block -> layer -> [n * kv_dim]
};

// ------------------------------------------------------------------ helpers

static const double kLogitBound = 2e-3;

static HogwildConfig raw_config(int workers, Layout layout, int steps, int vocab) {
  HogwildConfig c;
  c.workers = workers;
  c.layout = layout;
  c.raw = true;
  c.raw_steps = steps;
  c.prompt = {1, 2, 3, 4, 5};
  for (int w = 0; w < workers; w++) {
    Ids in;
    for (int i = 0; i <= w % 3; i++) in.push_back((7 + 5 * w + i) % vocab);
    c.first_input.push_back(in);
  }
  c.sampling.temperature = 1.0f;
  c.seed = 42;
  return c;
}

// A vocabulary where every 6th id ends a sentence and a paragraph, so steps end often.
static void add_protocol(HogwildConfig& c, int vocab) {
  c.raw = false;
  for (int w = 0; w < c.workers; w++) c.header_prefix.push_back({Ids{20, int32_t(21 + w % 4)}});
  for (int d = 0; d < 10; d++) c.digits.push_back(30 + d);
  c.header_suffix = {40, 41};
  for (int w = 0; w < c.workers; w++) c.first_input[w] = {20, int32_t(21 + w % 4), 31, 40, 41};  // "**Name [1]:** "
  c.header_others = {42, 43, 44};
  c.header_own = {45, 46};
  c.self_check = {50, 51, 52};
  c.self_check_interval = 9;
  c.finisher = {55, 56, 57};
  c.finisher_max_tokens = 4;
  c.max_tokens = 60;
  c.token_bytes.assign(vocab, "w");
  for (int id = 0; id < vocab; id += 6) c.token_bytes[id] = ".\n\n";
  c.eos = {};  // no early stop: every path runs to the budget
}

static const char* layout_name(Layout l) {
  return l == Layout::Contiguous ? "contiguous" : l == Layout::Interleaved ? "interleaved" : "combined";
}

// ------------------------------------------------------------------ tests

static void test_equivalence(const TinyModel& tm, const std::string& label) {
  for (Layout layout : {Layout::Contiguous, Layout::Interleaved, Layout::Combined}) {
    for (int W : {1, 2, 3, 4, 8}) {
      for (bool raw : {true, false}) {
        auto model = Model::load(tm.dir, test_backend());
        HogwildConfig c = raw_config(W, layout, 9, tm.spec.vocab);
        for (int id = 0; id < tm.spec.vocab; id += 2) c.raw_step_ids.push_back(id);  // frequent raw moves
        if (!raw) add_protocol(c, tm.spec.vocab);
        EventLog col;
        HogwildRun run(*model, c, col.sink());
        Reference ref(tm);
        run.set_observer(&ref);
        if (!raw && W >= 2) run.inject(1, {60, 61});  // a note for one worker, written in step 1
        run.run();
        const int moves = int(col.all<StepFinishedEvent>().size());
        CHECK(col.final_state() == "finished", "%s %s W=%d raw=%d ended '%s'", label.c_str(), layout_name(layout), W,
              raw, col.final_state().c_str());
        CHECK(ref.max_diff < kLogitBound, "%s %s W=%d raw=%d: max |logit diff| %.3g over %d rows", label.c_str(),
              layout_name(layout), W, raw, ref.max_diff, ref.rows_checked);
        CHECK(ref.offset_errors == 0, "%s %s W=%d: %d view offsets differ from the reference", label.c_str(),
              layout_name(layout), W, ref.offset_errors);
        CHECK(ref.rows_checked >= 6 * W, "%s %s W=%d raw=%d: only %d rows checked", label.c_str(), layout_name(layout),
              W, raw, ref.rows_checked);
        if (layout != Layout::Contiguous)
          CHECK(moves > 0, "%s %s W=%d raw=%d: no step moved", label.c_str(), layout_name(layout), W, raw);
        std::printf("  %-8s %-11s W=%d %-3s max|diff| %.2e rows %4d moves %d\n", label.c_str(), layout_name(layout), W,
                    raw ? "raw" : "run", ref.max_diff, ref.rows_checked, moves);
      }
    }
  }
}

// Each worker's view, block by block, as DESIGN.md defines the layouts.
static void test_view_shapes(const TinyModel& tm) {
  for (Layout layout : {Layout::Contiguous, Layout::Interleaved, Layout::Combined}) {
    auto model = Model::load(tm.dir, test_backend());
    HogwildConfig c = raw_config(3, layout, 3, tm.spec.vocab);
    add_protocol(c, tm.spec.vocab);
    EventLog col;
    HogwildRun run(*model, c, col.sink());
    Reference ref(tm);
    run.set_observer(&ref);
    run.inject(2, {60, 61, 62});
    run.run();
    std::map<int, BlockKind> kind;
    std::map<int, int> owner;
    for (const BlockEvent* e : col.all<BlockEvent>())
      if (e->op == BlockOp::Created) kind[e->block] = e->kind, owner[e->block] = e->owner;
    // Step 1 of the loop is forward #2 (prompt) or #3 (prompt, headers).
    const auto& rows = ref.views_seen.at(layout == Layout::Combined ? 2 : 1);
    for (int w = 0; w < 3; w++) {
      std::vector<std::string> got;
      for (int b : rows[w]) {
        std::string k = block_kind_name(kind[b]);
        if (kind[b] == BlockKind::Worker) k += std::to_string(owner[b]);
        got.push_back(k);
      }
      std::vector<std::string> want{"prompt"};
      if (layout != Layout::Contiguous) want.push_back("history");
      if (w == 2) want.push_back("note");
      if (layout == Layout::Combined) want.push_back("header");
      if (layout != Layout::Interleaved)
        for (int v = 0; v < 3; v++)
          if (v != w) want.push_back("worker" + std::to_string(v));
      if (layout == Layout::Combined) want.push_back("header");
      want.push_back("worker" + std::to_string(w));
      std::string g, x;
      for (auto& s : got) g += s + " ";
      for (auto& s : want) x += s + " ";
      CHECK(got == want, "%s worker %d view: got [%s] want [%s]", layout_name(layout), w, g.c_str(), x.c_str());
    }
  }
}

// The ids a raw run generates when nothing interrupts it, on a model of its own.
static std::vector<std::vector<int32_t>> uninterrupted(const TinyModel& tm, const HogwildConfig& c) {
  auto model = Model::load(tm.dir, test_backend());
  EventLog col;
  HogwildRun run(*model, c, col.sink());
  run.run();
  return col.raw_ids();
}

// W = 1, contiguous, raw: plain greedy generation of prompt + first input.
static void test_single_worker_is_plain(const TinyModel& tm) {
  auto model = Model::load(tm.dir, test_backend());
  HogwildConfig c = raw_config(1, Layout::Contiguous, 12, tm.spec.vocab);
  c.sampling.temperature = 0.0f;
  EventLog col;
  HogwildRun run(*model, c, col.sink());
  run.run();
  auto plain = Model::load(tm.dir, test_backend());
  const int b = plain->cache().create_block();
  Ids input = c.prompt;
  input.insert(input.end(), c.first_input[0].begin(), c.first_input[0].end());
  Ids greedy;
  for (int i = 0; i < 12; i++) {
    Batch batch;
    batch.rows.push_back({input, b, {{b, 0}}, true});
    ForwardOutput out;
    plain->forward(batch, out);
    const float* lg = out.row_logits(0);
    input = {int32_t(std::max_element(lg, lg + tm.spec.vocab) - lg)};
    greedy.push_back(input[0]);
  }
  auto got = col.raw_ids();
  CHECK(!got.empty() && got[0] == greedy, "W=1 raw run differs from plain greedy generation");
}

// Fork: the copy continues from the same state; the cache is shared, not copied.
static void test_fork(const TinyModel& tm) {
  auto model = Model::load(tm.dir, test_backend());
  HogwildConfig c = raw_config(2, Layout::Interleaved, 12, tm.spec.vocab);
  c.first_input[0].assign(100, 9);  // 4 pages, so a full copy would show
  c.sampling.temperature = 0.8f;
  EventLog col;
  HogwildRun run(*model, c, col.sink());
  int pages_before = -1, pages_after = -1, forward_no = 0;
  struct Obs : RunObserver {
    std::function<void()> f;
    void on_forward(const Batch&, const ForwardOutput&) override { f(); }
  } obs;
  obs.f = [&] {
    forward_no++;
    if (forward_no == 4) {
      pages_before = model->cache().pages_in_use();
      run.fork(0);
    }
    if (forward_no == 5) pages_after = model->cache().pages_in_use();
  };
  run.set_observer(&obs);
  run.run();
  CHECK(col.final_state() == "finished", "fork run ended '%s'", col.final_state().c_str());
  if (const ErrorEvent* e = col.first<ErrorEvent>()) std::printf("fork run error: %s\n", e->message.c_str());
  auto ids = col.raw_ids();
  CHECK(ids.size() == 3, "expected 3 workers after the fork, got %zu", ids.size());
  if (ids.size() == 3) {
    // The fork has the origin's history up to the fork, then the same continuation.
    const size_t n = ids[2].size();
    CHECK(n >= 8, "fork generated %zu tokens", n);
    CHECK(std::equal(ids[2].begin(), ids[2].end(), ids[0].begin()), "fork and origin diverge");
  }
  // One step writes 3 tokens (one page each at most) plus one copy-on-write page.
  CHECK(pages_after - pages_before <= 4, "fork copied the cache: pages %d -> %d", pages_before, pages_after);
}

// Pause, single steps and resume change nothing in what is generated. Every wait is on what
// the engine reports (its forwards, its events), never on a fixed sleep: the engine flushes its
// events just before it holds, so an event seen here means the hold has been decided.
static void test_pause_resume(const TinyModel& tm) {
  HogwildConfig c = raw_config(3, Layout::Combined, 20, tm.spec.vocab);
  c.raw_step_ids = {0, 3, 6, 9};
  const auto plain = uninterrupted(tm, c);

  auto m2 = Model::load(tm.dir, test_backend());
  EventLog col;
  std::mutex mu;
  std::condition_variable cv;
  int steps = 0;          // forwards so far (under mu)
  bool paused = false;    // a "paused" run state has been flushed
  int worker_events = 0;  // worker events flushed
  struct Obs : RunObserver {
    std::function<void()> f;
    void on_forward(const Batch&, const ForwardOutput&) override { f(); }
  } obs;
  obs.f = [&] {
    std::lock_guard<std::mutex> lock(mu);
    steps++;
    cv.notify_all();
  };
  col.on_event = [&](const Event& e) {
    std::lock_guard<std::mutex> lock(mu);
    if (const auto* s = std::get_if<RunStateEvent>(&e)) paused = s->state == RunPhase::Paused;
    if (std::holds_alternative<WorkerEvent>(e)) worker_events++;
    cv.notify_all();
  };
  // A generous bound, so that a broken engine fails the test instead of hanging it.
  auto wait = [&](const char* what, const std::function<bool()>& ready) {
    std::unique_lock<std::mutex> lock(mu);
    const bool ok = cv.wait_for(lock, std::chrono::seconds(120), ready);
    CHECK(ok, "pause test: timed out waiting for %s", what);
    return ok;
  };
  HogwildRun r2(*m2, c, col.sink());
  r2.set_observer(&obs);
  r2.pause();
  r2.start();
  if (!wait("the run to hold", [&] { return paused; })) {
    r2.stop();
    r2.wait();
    return;
  }
  int at_pause, events_before;
  {
    std::lock_guard<std::mutex> lock(mu);
    at_pause = steps;
    events_before = worker_events;
  }
  r2.single_step();
  r2.single_step();
  wait("two single steps", [&] { return steps >= at_pause + 2; });
  // A control that runs no forward: once its event is out, the engine has applied it and held
  // again, so any step beyond the two granted would have been counted by now.
  r2.set_temperature(0, c.sampling.temperature);
  wait("the run to hold again", [&] { return worker_events > events_before; });
  {
    std::lock_guard<std::mutex> lock(mu);
    CHECK(steps == at_pause + 2, "two single steps ran %d steps", steps - at_pause);
  }
  r2.resume();
  r2.wait();
  CHECK(col.raw_ids() == plain, "pause / step / resume changed the generated tokens");
}

// Bad controls are refused with a clear error and leave the run as it was.
static void test_bad_controls(const TinyModel& tm) {
  HogwildConfig c = raw_config(3, Layout::Contiguous, 8, tm.spec.vocab);
  c.max_workers = 3;
  const auto plain = uninterrupted(tm, c);

  auto m2 = Model::load(tm.dir, test_backend());
  EventLog col;
  HogwildRun run(*m2, c, col.sink());
  auto expect_error = [&](const char* what, const std::string& needle, auto f) {
    try {
      f();
      CHECK(false, "%s was accepted", what);
    } catch (const EngineError& e) {
      CHECK(std::string(e.what()).find(needle) != std::string::npos, "%s: message '%s' lacks '%s'", what, e.what(),
            needle.c_str());
    }
  };
  expect_error("fork of an unknown worker", "no worker 7", [&] { run.fork(7); });
  expect_error("fork past the limit", "limit is 3", [&] { run.fork(0); });
  expect_error("empty note", "empty", [&] { run.inject(-1, {}); });
  expect_error("oversized note", "at most", [&] { run.inject(-1, Ids(5000, 1)); });
  expect_error("note to an unknown worker", "no worker 9", [&] { run.inject(9, {1}); });
  expect_error("note with a bad id", "outside the vocabulary", [&] { run.inject(0, {999999}); });
  expect_error("bad temperature", "between 0 and 10", [&] { run.set_temperature(0, -1.0f); });
  run.run();
  CHECK(col.raw_ids() == plain, "refused controls changed the run");
  expect_error("control after the end", "already ended", [&] { run.pause(); });
  expect_error("fork after the end", "already ended", [&] { run.fork(0); });

  // Bad configs are refused before anything runs.
  auto bad = [&](const char* what, const std::string& needle, auto edit) {
    HogwildConfig b = raw_config(2, Layout::Contiguous, 4, tm.spec.vocab);
    edit(b);
    expect_error(what, needle, [&] { HogwildRun r(*m2, b, nullptr); });
  };
  bad("empty prompt", "prompt is empty", [](HogwildConfig& b) { b.prompt.clear(); });
  bad("worker without ids", "no first input", [](HogwildConfig& b) { b.first_input[1].clear(); });
  bad("id outside the vocabulary", "outside the vocabulary", [](HogwildConfig& b) { b.first_input[0] = {100000}; });
  bad("too many workers", "workers must be", [](HogwildConfig& b) {
    b.workers = 40;
    b.first_input.assign(40, {1});
  });
  bad("steps < 1", "steps must be at least 1", [](HogwildConfig& b) { b.raw_steps = 0; });
}

// Moves, headers, self-checks, inspect.
static void test_protocol(const TinyModel& tm) {
  auto model = Model::load(tm.dir, test_backend());
  HogwildConfig c = raw_config(3, Layout::Combined, 0, tm.spec.vocab);
  add_protocol(c, tm.spec.vocab);
  c.max_tokens = 90;
  c.attention_shares = true;
  EventLog col;
  HogwildRun run(*model, c, col.sink());
  Reference ref(tm);
  run.set_observer(&ref);
  run.run();
  // The history holds exactly the finished steps, in completion order.
  Ids expected;
  int moves = 0;
  for (const StepFinishedEvent* e : col.all<StepFinishedEvent>()) {
    expected.insert(expected.end(), e->ids.begin(), e->ids.end());
    moves++;
    // A finished step starts with its header and ends with the paragraph break.
    CHECK(e->ids.size() >= 4 && e->ids[0] == 20 && c.token_bytes[e->ids.back()] == ".\n\n",
          "step %d of worker %d malformed", e->step, e->worker);
  }
  CHECK(moves >= 3, "only %d steps finished", moves);
  CHECK(run.block_tokens(run.history_block()) == expected, "history differs from the finished steps");

  // Self-checks: each follows a header; at most one per interval of generated tokens.
  int self_checks = 0;
  const Ids& hist = run.block_tokens(run.history_block());
  for (size_t i = 0; i + 2 < hist.size(); i++)
    if (hist[i] == 50 && hist[i + 1] == 51 && hist[i + 2] == 52) {
      self_checks++;
      CHECK(i >= 2 && hist[i - 1] == 41 && hist[i - 2] == 40, "self-check not right after a header");
    }
  CHECK(self_checks >= 1 && self_checks <= 90 / 9, "self-checks: %d", self_checks);
  CHECK(col.first<FinisherTokensEvent>() != nullptr, "no finisher");
  // Attention shares: a distribution over the view's segments, per layer and on average.
  int attention_events = 0;
  for (const AttentionEvent* a : col.all<AttentionEvent>()) {
    const AttentionEvent& e = *a;
    attention_events++;
    for (size_t w = 0; w < e.shares.size(); w++) {
      if (e.shares[w].empty()) continue;  // the worker fed no row this step
      double sum = 0;
      for (float x : e.shares[w]) sum += x;
      CHECK(std::abs(sum - 1.0) < 1e-4, "attention shares of worker %zu sum to %f", w, sum);
      const size_t nseg = e.shares[w].size();
      CHECK(e.layer_shares[w].size() == nseg * size_t(tm.spec.layers), "per-layer shares have %zu values",
            e.layer_shares[w].size());
      for (int l = 0; l < tm.spec.layers; l++) {
        double ls = 0;
        for (size_t k = 0; k < nseg; k++) ls += e.layer_shares[w][l * nseg + k];
        CHECK(std::abs(ls - 1.0) < 1e-4, "layer %d shares sum to %f", l, ls);
      }
    }
  }
  CHECK(attention_events > 0, "no attention events");
  CHECK(ref.max_diff < kLogitBound, "protocol run logits differ: %.3g", ref.max_diff);

  // Inspect: positions agree with the reference's own offsets for the last step's views.
  const auto& views = run.last_views();
  for (int w = 0; w < run.workers(); w++) {
    int off = 0;
    for (const ViewSegment& s : views[w]) {
      const int len = ref.length(s.block);
      if (len > 0 && s.block != run.worker_block(w)) {
        InspectResult r = run.inspect(s.block, len - 1, true);
        CHECK(r.seen[w].position == off + len - 1, "inspect: worker %d sees block %d index %d at %d, reference %d", w,
              s.block, len - 1, r.seen[w].position, off + len - 1);
        CHECK(r.attention.size() == size_t(run.workers()) && r.attention[w] >= 0.0f && r.attention[w] <= 1.0f,
              "inspect attention missing");
      }
      off += len;
    }
  }
  bool threw = false;
  try {
    run.inspect(9999, 0, false);
  } catch (const EngineError&) {
    threw = true;
  }
  CHECK(threw, "inspect of a missing block did not fail");
}

// Per-key attention, what inspect() reports. An observer maps each forward's key attention to
// cache positions itself (keys in view order, each segment up to the row's last token, lengths
// from the cache after the forward), follows a finished step's tokens into the history and
// forgets a block when the run releases it (its id may come back for a new block). inspect() must give exactly those values, or -1 where the worker's
// last recorded view did not hold the position.
struct KeyAttentionCapture : RunObserver {
  Model* model = nullptr;
  HogwildRun* run = nullptr;  // read on the engine thread, during its own forward
  std::mutex mu;
  std::condition_variable cv;
  int forwards = 0;
  int prompt_block = -1;
  std::vector<bool> asked;  // per forward: did it ask for key attention
  // Per worker, from the last forward that asked: (block, index) -> value.
  std::map<int, std::map<std::pair<int, int>, float>> expected;

  void on_forward(const Batch& batch, const ForwardOutput& out) override {
    std::lock_guard<std::mutex> lock(mu);
    if (prompt_block < 0 && !batch.rows.empty()) prompt_block = batch.rows[0].block;
    asked.push_back(batch.key_attention);
    if (batch.key_attention) {
      expected.clear();
      CHECK(out.key_attention.size() == batch.rows.size(), "key attention for %zu of %zu rows",
            out.key_attention.size(), batch.rows.size());
      for (size_t r = 0; r < batch.rows.size() && r < out.key_attention.size(); r++) {
        const BatchRow& row = batch.rows[r];
        int worker = -1;
        for (int w = 0; w < run->workers(); w++)
          if (run->worker_block(w) == row.block) worker = w;
        if (worker < 0) continue;  // a note: not a worker's row
        int last = -1;
        for (const ViewSegment& s : row.view)
          if (s.block == row.block) last = s.offset + model->cache().length(s.block) - 1;
        size_t key = 0;
        auto& m = expected[worker];
        const size_t nseg = row.view.size();
        const int layers = model->config().layers;
        for (size_t g = 0; g < nseg; g++) {
          const ViewSegment& s = row.view[g];
          const int visible = std::max(0, std::min(model->cache().length(s.block), last - s.offset + 1));
          double sum = 0, share = 0;
          for (int i = 0; i < visible && key + i < out.key_attention[r].size(); i++) {
            m[{s.block, i}] = out.key_attention[r][key + i];
            sum += out.key_attention[r][key + i];
          }
          // The segment's keys hold its share of the attention (mean over layers): the same
          // mass, so the keys are in the order and the number this mapping assumes.
          for (int l = 0; l < layers; l++) share += out.shares[r][size_t(l) * nseg + g] / layers;
          CHECK(std::abs(sum - share) < 1e-4, "row %zu segment %zu: its keys sum to %g, its share is %g", r, g, sum,
                share);
          key += size_t(visible);
        }
        CHECK(key == out.key_attention[r].size(), "row %zu: %zu keys visible, the backend gave %zu", r, key,
              out.key_attention[r].size());
      }
    }
    forwards++;
    cv.notify_all();
  }
  int appends = 0;  // finished steps appended to the history
  // A finished step's tokens follow into the history, after its earlier tokens.
  void on_append(int dst, int src) override {
    std::lock_guard<std::mutex> lock(mu);
    appends++;
    const int base = model->cache().length(dst) - model->cache().length(src);
    for (auto& [worker, m] : expected) {
      std::map<std::pair<int, int>, float> moved;
      for (auto it = m.begin(); it != m.end();)
        if (it->first.first == src) {
          moved[{dst, base + it->first.second}] = it->second;
          it = m.erase(it);
        } else {
          ++it;
        }
      m.insert(moved.begin(), moved.end());
    }
  }
  void on_release(int block) override {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [worker, m] : expected)
      for (auto it = m.begin(); it != m.end();) it = it->first.first == block ? m.erase(it) : std::next(it);
  }
};

// Every position of every block in the final views, for every worker: the captured value or -1.
static int check_inspect_attention(HogwildRun& run, KeyAttentionCapture& cap, const char* what) {
  int checked = 0;
  std::set<int> blocks;
  for (const auto& v : run.last_views())
    for (const ViewSegment& s : v) blocks.insert(s.block);
  for (int b : blocks) {
    const int n = int(run.block_tokens(b).size());
    for (int i = 0; i < n; i++) {
      const InspectResult r = run.inspect(b, i, true);
      CHECK(r.attention.size() == size_t(run.workers()), "%s: inspect(%d, %d) gave %zu attention values", what, b, i,
            r.attention.size());
      for (int w = 0; w < run.workers() && w < int(r.attention.size()); w++) {
        const auto& m = cap.expected[w];
        const auto it = m.find({b, i});
        const float want = it == m.end() ? -1.0f : it->second;
        CHECK(r.attention[w] == want, "%s: worker %d, block %d index %d: attention %g, the forward gave %g", what, w, b,
              i, double(r.attention[w]), double(want));
        checked += it != m.end();
      }
    }
  }
  return checked;
}

static void test_key_attention(const TinyModel& tm) {
  // Every step (the CPU's default): each step's forward asks, and inspect() follows the last one.
  {
    auto model = Model::load(tm.dir, test_backend());
    HogwildConfig c = raw_config(3, Layout::Combined, 0, tm.spec.vocab);
    add_protocol(c, tm.spec.vocab);
    c.max_tokens = 60;
    c.attention_shares = true;
    c.key_attention = model->backend().key_attention_costly() ? KeyAttention::EveryStep : KeyAttention::Auto;
    EventLog col;
    KeyAttentionCapture cap;
    cap.model = model.get();
    HogwildRun run(*model, c, col.sink());
    cap.run = &run;
    run.set_observer(&cap);
    run.run();
    int asked = 0;
    for (bool a : cap.asked) asked += a;
    const int steps = int(col.all<AttentionEvent>().size());
    CHECK(steps > 0 && asked == steps, "every step: %d of %d steps asked for key attention", asked, steps);
    const int checked = check_inspect_attention(run, cap, "every step");
    CHECK(checked > 50, "every step: only %d recorded positions checked", checked);
    const InspectResult r = run.inspect(cap.prompt_block, 0, true);
    CHECK(r.attention_step == col.all<AttentionEvent>().back()->step && !r.attention_pending,
          "every step: attention from step %d (pending %d), the last step was %d", r.attention_step,
          int(r.attention_pending), col.all<AttentionEvent>().back()->step);
    std::printf("  key attention every step: %d steps, %d positions x workers equal to the forward's\n", steps,
                checked);
  }
  // On request (what a costly backend does): nothing until asked, then one step records.
  {
    auto model = Model::load(tm.dir, test_backend());
    HogwildConfig c = raw_config(3, Layout::Combined, 60, tm.spec.vocab);
    c.raw_step_ids = {0, 3, 6, 9};
    c.attention_shares = true;
    c.key_attention = KeyAttention::OnRequest;
    EventLog col;
    KeyAttentionCapture cap;
    cap.model = model.get();
    bool paused = false;
    col.on_event = [&](const Event& e) {
      std::lock_guard<std::mutex> lock(cap.mu);
      if (const auto* s = std::get_if<RunStateEvent>(&e)) paused = s->state == RunPhase::Paused;
      cap.cv.notify_all();
    };
    auto wait = [&](const char* what, const std::function<bool()>& ready) {
      std::unique_lock<std::mutex> lock(cap.mu);
      const bool ok = cap.cv.wait_for(lock, std::chrono::seconds(120), ready);
      CHECK(ok, "key attention on request: timed out waiting for %s", what);
      return ok;
    };
    HogwildRun run(*model, c, col.sink());
    cap.run = &run;
    run.set_observer(&cap);
    run.pause();
    run.start();
    if (!wait("the run to hold", [&] { return paused; })) {
      run.stop();
      run.wait();
      return;
    }
    const InspectResult before = run.inspect(cap.prompt_block, 0, true);
    CHECK(before.attention.empty() && before.attention_step == -1 && before.attention_pending,
          "on request, before any: %zu values from step %d, pending %d", before.attention.size(), before.attention_step,
          int(before.attention_pending));
    int at;
    {
      std::lock_guard<std::mutex> lock(cap.mu);
      at = cap.forwards;
      for (bool a : cap.asked) CHECK(!a, "a forward asked for key attention before any request");
    }
    run.request_key_attention();
    run.single_step();
    wait("the asked step", [&] { return cap.forwards > at; });
    const InspectResult fresh = run.inspect(cap.prompt_block, 0, true);  // waits for the step's end
    {
      std::lock_guard<std::mutex> lock(cap.mu);
      CHECK(cap.asked.back(), "the step after a request did not ask for key attention");
    }
    CHECK(fresh.attention_step > 0 && !fresh.attention_pending, "on request: step %d, pending %d", fresh.attention_step,
          int(fresh.attention_pending));
    const int checked = check_inspect_attention(run, cap, "on request");
    CHECK(checked > 0, "on request: no recorded position checked");
    {
      std::lock_guard<std::mutex> lock(cap.mu);
      at = cap.forwards;
    }
    run.single_step();
    wait("a step without a request", [&] { return cap.forwards > at; });
    const InspectResult older = run.inspect(cap.prompt_block, 0, true);
    {
      std::lock_guard<std::mutex> lock(cap.mu);
      CHECK(!cap.asked.back(), "a step after the recorded one asked again without a request");
    }
    CHECK(older.attention_step == fresh.attention_step && older.attention_pending && older.attention == fresh.attention,
          "on request, a step later: step %d (was %d), pending %d", older.attention_step, fresh.attention_step,
          int(older.attention_pending));
    // Steps until a finished step has moved (its block released, its id free for a new block):
    // the record must forget that block, not report its keys for whatever reuses the id.
    auto moved = [&] {
      std::lock_guard<std::mutex> lock(cap.mu);
      return cap.appends;
    };
    const int moves_before = moved();
    for (int i = 0; i < 40 && moved() <= moves_before; i++) {
      {
        std::lock_guard<std::mutex> lock(cap.mu);
        at = cap.forwards;
      }
      run.single_step();
      wait("a step until a move", [&] { return cap.forwards > at; });
      (void)run.inspect(cap.prompt_block, 0, false);  // waits for the step's end (and its events)
    }
    CHECK(moved() > moves_before, "on request: no step moved in 40 steps");
    {  // one step more: the block that took the freed id holds tokens now
      std::lock_guard<std::mutex> lock(cap.mu);
      at = cap.forwards;
    }
    run.single_step();
    wait("a step after the move", [&] { return cap.forwards > at; });
    (void)run.inspect(cap.prompt_block, 0, false);
    check_inspect_attention(run, cap, "on request, after a move");
    run.resume();
    run.wait();
    std::printf(
        "  key attention on request: none before a request, recorded by the next step (%d positions x "
        "workers), kept and marked pending a step later\n",
        checked);
  }
}

// A run that fills its context ends normally (finisher included) instead of failing.
static void test_context_limit(const TinyModel& tm) {
  auto model = Model::load(tm.dir, test_backend());
  HogwildConfig c = raw_config(2, Layout::Combined, 0, tm.spec.vocab);
  add_protocol(c, tm.spec.vocab);
  c.max_tokens = 1000;
  c.max_context = 48;
  EventLog col;
  HogwildRun run(*model, c, col.sink());
  run.run();
  CHECK(col.final_state() == "finished", "a full context ended the run as '%s'", col.final_state().c_str());
  CHECK(col.first<ErrorEvent>() == nullptr, "a full context raised an error");
  int generated = 0;
  if (const StatsEvent* s = col.last<StatsEvent>()) generated = s->tokens;
  CHECK(generated > 0 && generated < 48, "generated %d tokens within a 48-token context", generated);
}

static void test_step_rules() {
  struct Case {
    std::vector<std::string> tokens;
    int ends_at;
  };
  const std::vector<Case> cases = {
      {{"Done", ".", "\n\n"}, 2},
      {{"Done.\n\n"}, 0},
      {{"no stop", "\n\n", "Yes?", "\n\n"}, 3},
      {{"```", "\nx = 1.", "\n\n", "```", "\n", "Ok!", "\n\n"}, 6},
      {{"~~~\n", "a.\n\n", "~~~\n", "b.\n\n"}, 3},
      {{"$$", "x = 1.", "\n\n", "$$", " so it holds.", "\n\n"}, 5},
      {{"He said \"stop.\"", "\n\n"}, 1},
      {{"結論。", "\n\n"}, 1},
      {{"a list:", "\n\n"}, -1},
      {{"inline $x$ ok.", "\n\n"}, 1},
  };
  for (size_t i = 0; i < cases.size(); i++) {
    StepDetector d;
    int at = -1;
    for (size_t t = 0; t < cases[i].tokens.size() && at < 0; t++)
      if (d.feed(cases[i].tokens[t])) at = int(t);
    CHECK(at == cases[i].ends_at, "step rule case %zu: ended at %d, expected %d", i, at, cases[i].ends_at);
  }
}

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    test_step_rules();
    TinySpec qwen3;
    TinySpec qwen2;
    qwen2.arch = "Qwen2ForCausalLM";
    qwen2.bias = true;
    qwen2.qk_norm = false;
    TinySpec llama;
    llama.arch = "LlamaForCausalLM";
    llama.qk_norm = false;
    llama.tied = false;
    llama.llama3 = true;
    llama.kv_heads = 1;
    const std::string base = "/tmp/hw-test-hogwild-" + std::to_string(::getpid());
    TinyModel m3 = write_tiny_model(qwen3, base + "/qwen3", 1);
    TinyModel m2 = write_tiny_model(qwen2, base + "/qwen2", 2);
    TinyModel ml = write_tiny_model(llama, base + "/llama", 3);
    test_equivalence(m3, "qwen3");
    test_equivalence(m2, "qwen2");
    test_equivalence(ml, "llama3");
    test_view_shapes(m3);
    test_single_worker_is_plain(m3);
    test_fork(m3);
    test_pause_resume(m3);
    test_bad_controls(m3);
    test_protocol(m3);
    test_key_attention(m3);
    test_context_limit(m3);
    std::system(("rm -rf '" + base + "'").c_str());
  } catch (const std::exception& e) {
    CHECK(false, "unexpected exception: %s", e.what());
  }
  return test_summary("test_hogwild");
}
