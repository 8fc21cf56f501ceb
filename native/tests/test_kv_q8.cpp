// The opt-in q8 K/V cache (kv_q8.h) end to end on the CPU backend: the format itself, logits
// against bf16 K/V (the default for bf16 checkpoints), history moves with key re-rotation
// (append_block), copy-on-write forks, the per-token bytes behind the KV budget, and the
// option's errors (unknown names, the CUDA backend). The op itself is checked against a double
// reference in test_attention.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "error.h"
#include "hogwild/engine.h"
#include "kv_q8.h"
#include "model.h"
#include "tensor.h"
#include "testing.h"

using namespace hw;

namespace {

// Logits of q8 K/V against bf16 K/V on the tiny head_dim-64 model below, as normalised mean
// squared error (sum of squared differences over the sum of squares). Measured 2026-12-04:
// 1.5e-4 over a 300-token prompt's every position (bf16 against f32 K/V: 2.1e-5), 2.8e-4 for
// an appended step (its keys quantised twice). An append without the keys' re-rotation gave
// 0.35, so the bound separates a wrong scale, block or rotation from q8's rounding.
constexpr double kLogitsNmse = 1e-3;

double nmse(const float* got, const float* want, size_t n) {
  double num = 0, den = 1e-30;
  for (size_t i = 0; i < n; i++) {
    num += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    den += double(want[i]) * want[i];
  }
  return std::isfinite(num) ? num / den : INFINITY;
}

Ids tokens(int n, int vocab, int salt) {
  Ids p;
  for (int i = 0; i < n; i++) p.push_back(int32_t(1 + (i * 7919 + salt * 104729) % (vocab - 1)));
  return p;
}

BackendOptions kv(const char* dtype) {
  BackendOptions o;
  o.device = "cpu";
  o.kv_dtype = dtype;
  return o;
}

// All logits of a prompt fed in one forward to a new block.
std::vector<float> prompt_logits(Model& m, const Ids& prompt) {
  const int b = m.cache().create_block();
  Batch batch;
  BatchRow row{prompt, b, {{b, 0}}, true};
  row.all_logits = true;
  batch.rows.push_back(row);
  ForwardOutput out;
  m.forward(batch, out);
  return {out.row_logits(0), out.row_logits(0) + size_t(prompt.size()) * out.vocab};
}

// Logits of one token written at the end of `block`, seeing `view`.
std::vector<float> step_logits(Model& m, int32_t token, int block, const std::vector<ViewSegment>& view) {
  Batch batch;
  batch.rows.push_back({{token}, block, view, true});
  ForwardOutput out;
  m.forward(batch, out);
  return {out.row_logits(0), out.row_logits(0) + out.vocab};
}

// The format: half a step of error at most, zero blocks, partial blocks, idempotent.
void test_format() {
  std::mt19937 rng(17);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int hd : {128, 64, 40, 8}) {
    std::vector<float> x(hd), y(hd), z(hd);
    for (int d = 0; d < hd; d++) x[d] = nd(rng) * (d < 32 ? 0.01f : 3.0f);  // blocks of different ranges
    if (hd == 40) std::fill(x.begin() + 32, x.end(), 0.0f);                 // a zero (partial) block
    std::vector<int8_t> q(hd), q2(hd);
    std::vector<uint16_t> s(q8_blocks(hd)), s2(s.size());
    q8_quantize_row(x.data(), 1, hd, q.data(), 1, s.data(), 1);
    q8_dequantize_row(q.data(), 1, s.data(), 1, hd, y.data());
    bool within = true;
    for (int d = 0; d < hd; d++) {
      const int b = d / kQ8Block, e = std::min(hd, (b + 1) * kQ8Block);
      float mx = 0;
      for (int i = b * kQ8Block; i < e; i++) mx = std::max(mx, std::fabs(x[i]));
      // Half a step of the block's scale, the scale rounded to bf16 (2^-9 relative).
      within = within && std::fabs(y[d] - x[d]) <= 0.5f * (mx / 127.0f) * (1.0f + 1.0f / 256.0f) + 1e-30f;
    }
    CHECK(within, "head_dim %d: an element is off by more than half a step", hd);
    if (hd == 40) CHECK(s[1] == 0 && y[35] == 0.0f, "a zero block decodes to zeros (scale bits %u)", s[1]);
    q8_quantize_row(y.data(), 1, hd, q2.data(), 1, s2.data(), 1);
    CHECK(q == q2 && s == s2, "head_dim %d: re-quantising de-quantised values changed the bytes", hd);
  }
}

// Logits with q8 K/V against bf16 K/V (and bf16 against f32, for scale), every position of a prompt.
void test_logits(const TinyModel& tm) {
  auto f32 = Model::load(tm.dir, kv("f32"));
  auto bf16 = Model::load(tm.dir, {});
  auto q8 = Model::load(tm.dir, kv("q8"));
  CHECK(bf16->backend().kv_dtype() == "bf16" && q8->backend().kv_dtype() == "q8", "K/V types %s, %s",
        bf16->backend().kv_dtype().c_str(), q8->backend().kv_dtype().c_str());
  const Ids prompt = tokens(300, tm.spec.vocab, 1);
  const std::vector<float> a = prompt_logits(*f32, prompt), b = prompt_logits(*bf16, prompt),
                           c = prompt_logits(*q8, prompt);
  const double e_bf16 = nmse(b.data(), a.data(), a.size()), e_q8 = nmse(c.data(), b.data(), b.size());
  std::printf("  logits NMSE over 300 positions: q8 vs bf16 K/V %.2e (bound %.0e); bf16 vs f32 K/V %.2e\n", e_q8,
              kLogitsNmse, e_bf16);
  CHECK(e_q8 <= kLogitsNmse, "q8 K/V logits NMSE %.3g against bf16 K/V > %.3g", e_q8, kLogitsNmse);
  CHECK(e_q8 > 0, "q8 K/V gave exactly bf16's logits: was q8 used at all?");
}

// A finished step appended to a history (keys de-quantised, rotated, re-quantised) against
// the same tokens written in one block: the same logits up to q8's rounding.
void test_append(const TinyModel& tm) {
  auto m = Model::load(tm.dir, kv("q8"));
  const Ids hist = tokens(40, tm.spec.vocab, 2), step = tokens(37, tm.spec.vocab, 3);
  const int h = m->cache().create_block(), s = m->cache().create_block();
  Batch b1;
  b1.rows.push_back({hist, h, {{h, 0}}, false});
  ForwardOutput out;
  m->forward(b1, out);
  Batch b2;
  b2.rows.push_back({step, s, {{h, 0}, {s, 40}}, false});
  m->forward(b2, out);
  m->append_block(h, s);
  CHECK(m->cache().length(h) == 77, "the history holds %d tokens", m->cache().length(h));
  const std::vector<float> moved = step_logits(*m, 9, h, {{h, 0}});

  auto ref = Model::load(tm.dir, kv("q8"));
  const int r = ref->cache().create_block();
  Ids all = hist;
  all.insert(all.end(), step.begin(), step.end());
  Batch b3;
  b3.rows.push_back({all, r, {{r, 0}}, false});
  ref->forward(b3, out);
  const std::vector<float> direct = step_logits(*ref, 9, r, {{r, 0}});
  const double e = nmse(moved.data(), direct.data(), direct.size());
  std::printf("  appended step vs one block, q8 K/V: logits NMSE %.2e\n", e);
  CHECK(e <= kLogitsNmse, "after append_block the logits differ: NMSE %.3g > %.3g", e, kLogitsNmse);
}

// A fork shares the pages; its first write copies the shared last page byte for byte: the
// fork and its source then give the same logits for the same token, bit for bit.
void test_fork(const TinyModel& tm) {
  auto m = Model::load(tm.dir, kv("q8"));
  const int a = m->cache().create_block();
  Batch b;
  b.rows.push_back({tokens(45, tm.spec.vocab, 4), a, {{a, 0}}, false});  // the second page part full
  ForwardOutput out;
  m->forward(b, out);
  const int f = m->fork_block(a);
  const int pages_before = m->cache().pages_allocated();
  const std::vector<float> la = step_logits(*m, 7, a, {{a, 0}});
  const std::vector<float> lf = step_logits(*m, 7, f, {{f, 0}});
  CHECK(m->cache().pages_allocated() > pages_before, "no page was copied on write (%d pages)",
        m->cache().pages_allocated());
  CHECK(la == lf, "the fork's logits differ from its source's (NMSE %.3g)", nmse(lf.data(), la.data(), la.size()));
}

// Bytes per token (the KV budget's unit), whole pages, and a budget that q8 fits and bf16 does not.
void test_budget(const TinyModel& tm) {
  auto bf16 = Model::load(tm.dir, {});
  auto q8 = Model::load(tm.dir, kv("q8"));
  const TinySpec& s = tm.spec;
  const size_t want = size_t(s.layers) * 2 * s.kv_heads * (s.head_dim + 2 * q8_blocks(s.head_dim));
  CHECK(q8->backend().kv_bytes_per_token() == want, "q8: %zu bytes a token, want %zu",
        q8->backend().kv_bytes_per_token(), want);
  CHECK(bf16->backend().kv_bytes_per_token() == size_t(s.layers) * 2 * s.kv_heads * s.head_dim * 2,
        "bf16: %zu bytes a token", bf16->backend().kv_bytes_per_token());
  prompt_logits(*q8, tokens(70, s.vocab, 5));
  const int pt = q8->cache().page_tokens();
  CHECK(q8->cache().pages_allocated() == 3 &&
            q8->backend().kv_bytes() == size_t(q8->cache().pages_allocated()) * pt * want,
        "q8: %d pages hold %zu bytes", q8->cache().pages_allocated(), q8->backend().kv_bytes());

  auto refused = [&](Model& m, double budget) {
    HogwildConfig c;
    c.workers = 2;
    c.raw = true;
    c.raw_steps = 1000;
    c.prompt = tokens(300, s.vocab, 6);
    c.first_input = {{5}, {6}};
    c.max_tokens = 2000;
    c.kv_budget_bytes = budget;
    c.kv_budget_setting = "hogwild.kvBudgetMB";
    try {
      HogwildRun run(m, c, nullptr);
    } catch (const EngineError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  // 300 prompt tokens (10 pages) + 2 first inputs (a page each) + up to 2,000 more: 2,384 tokens.
  const double budget = 2384.0 * double(want) * 1.01;
  const std::string mq = refused(*q8, budget), mb = refused(*bf16, budget);
  CHECK(mq.empty(), "q8 run refused under a budget that holds it: '%s'", mq.c_str());
  CHECK(mb.find("of KV memory") != std::string::npos, "bf16 run under a q8-sized budget: '%s'", mb.c_str());
}

// The option's names and errors: q8 only when asked; the CUDA backend refuses it by name, and
// device auto takes the CPU for it, saying why.
void test_options(const TinyModel& tm) {
  auto message = [&](const BackendOptions& o) {
    try {
      Model::load(tm.dir, o);
    } catch (const EngineError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string bad = message(kv("q4"));
  CHECK(bad.find("'q4'") != std::string::npos && bad.find("q8") != std::string::npos,
        "an unknown K/V type names itself and the choices: '%s'", bad.c_str());
  BackendOptions cuda = kv("q8");
  cuda.device = "cuda";
  const std::string mc = message(cuda);
  CHECK(mc.find("q8 is CPU-only") != std::string::npos, "cuda with q8: '%s'", mc.c_str());
  BackendOptions aut = kv("q8");
  aut.device = "auto";
  auto m = Model::load(tm.dir, aut);
  CHECK(m->backend().name() == "cpu" && m->backend().kv_dtype() == "q8" &&
            m->device().find("q8 is CPU-only") != std::string::npos,
        "device auto with q8: %s on %s", m->backend().kv_dtype().c_str(), m->device().c_str());
}

}  // namespace

int main() {
  const std::string base = "/tmp/hw_test_kv_q8_" + std::to_string(getpid());
  TinySpec spec;  // head_dim 64: two q8 blocks per row, as in real models' 64 and 128
  spec.hidden = 128, spec.intermediate = 256, spec.heads = 4, spec.kv_heads = 2, spec.head_dim = 64;
  spec.bf16 = true;
  const TinyModel tm = write_tiny_model(spec, base, 21);
  test_format();
  test_logits(tm);
  test_append(tm);
  test_fork(tm);
  test_budget(tm);
  test_options(tm);
  std::system(("rm -rf '" + base + "'").c_str());
  return test_summary("test_kv_q8");
}
