// The CUDA backend against the transformers fixtures in test/fixtures, plus its failure paths.
// - Logits of every prompt position (one prefill forward) against transformers: fp32
//   fixtures within 2e-3 absolute (README of the fixtures: fp32 engines stay near 1e-4);
//   the bf16 fixture within 5% of max|logit| (the CPU is at 2.7%: transformers rounds every
//   activation to bf16).
// - Greedy decoding, one token per forward after the prefill, 40 tokens per prompt: on the
//   fp32 fixtures the ids are identical between the CPU and CUDA backends and equal to
//   transformers'; on bf16, equal to transformers' over its robust prefix.
// - Out of memory: a run whose KV needs more than the free GPU memory is refused before it
//   starts, a KV cache larger than the free memory fails with the bytes needed and free, weights too large for the GPU fail before anything is allocated, nothing
//   leaks, and a normal forward succeeds right after.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <string>

#include "../testing.h"
#include "error.h"
#include "hogwild/engine.h"
#include "json.h"
#include "model.h"

using namespace hw;

static std::string root() {
  const char* r = std::getenv("HW_REPO_ROOT");
  return r ? r : ".";
}

static std::vector<int32_t> ints(const Json& a) {
  std::vector<int32_t> v;
  for (const Json& x : a.as_array()) v.push_back(int32_t(x.as_int()));
  return v;
}

static std::vector<int32_t> greedy(Model& m, const std::vector<int32_t>& prompt, int n) {
  const int blk = m.cache().create_block();
  std::vector<int32_t> out;
  std::vector<int32_t> feed = prompt;
  for (int i = 0; i < n; i++) {
    Batch b;
    b.rows.push_back({feed, blk, {{blk, 0}}});
    ForwardOutput o;
    m.forward(b, o);
    const float* l = o.row_logits(0);
    int best = 0;
    for (int v = 1; v < o.vocab; v++)
      if (l[v] > l[best]) best = v;
    out.push_back(best);
    feed = {best};
  }
  m.cache().release_block(blk);
  return out;
}

static void test_fixture(const std::string& name) {
  const std::string dir = root() + "/test/fixtures/" + name;
  const Json ref = Json::parse_file(dir + "/reference.json");
  const bool bf16 = ref.get("dtype")->as_string() == "bfloat16";
  BackendOptions go;
  go.device = "cuda";
  // The load reports the copy to the GPU as the CPU path reports its read: phase "upload",
  // from 0, never backwards, ending at its total (the device weights' bytes).
  double up_first = -1, up_last = -1, up_total = -1;
  bool up_monotonic = true;
  auto gpu = Model::load(dir, go, [&](const char* phase, double done, double total) {
    if (std::string(phase) != "upload") return;
    if (up_first < 0) up_first = done;
    if (done < up_last) up_monotonic = false;
    up_last = done;
    up_total = total;
  });
  CHECK(up_first == 0 && up_total > 0, "%s: no upload progress from 0 (first %.0f, total %.0f)", name.c_str(), up_first,
        up_total);
  CHECK(up_monotonic && up_last == up_total, "%s: upload progress went backwards or ended at %.0f of %.0f",
        name.c_str(), up_last, up_total);
  auto cpu = Model::load(dir, BackendOptions{});
  const auto& prompts = ref.get("prompts")->as_array();
  double worst = 0, worst_rel = 0;
  int same = 0, compared = 0;
  for (size_t i = 0; i < prompts.size(); i++) {
    const std::vector<int32_t> prompt = ints(prompts[i]);
    const int blk = gpu->cache().create_block();
    Batch b;
    b.rows.push_back({prompt, blk, {{blk, 0}}, true, true});
    ForwardOutput o;
    gpu->forward(b, o);
    gpu->cache().release_block(blk);
    const auto& want = ref.get("logits")->as_array()[i].as_array();
    double maxabs = 0, diff = 0;
    for (size_t t = 0; t < want.size(); t++) {
      const auto& row = want[t].as_array();
      for (size_t v = 0; v < row.size(); v++) {
        const double w = double(float(row[v].as_double()));
        maxabs = std::max(maxabs, std::abs(w));
        diff = std::max(diff, std::abs(double(o.row_logits(0, int(t))[v]) - w));
      }
    }
    worst = std::max(worst, diff);
    worst_rel = std::max(worst_rel, diff / maxabs);
    if (bf16)
      CHECK(diff <= 0.05 * maxabs, "%s prompt %zu: max |logit diff| %.3g > 5%% of %.3g", name.c_str(), i, diff, maxabs);
    else
      CHECK(diff <= 2e-3, "%s prompt %zu: max |logit diff| %.3g > 2e-3", name.c_str(), i, diff);

    const std::vector<int32_t> want_ids = ints(ref.get("greedy")->as_array()[i]);
    const std::vector<int32_t> g = greedy(*gpu, prompt, int(want_ids.size()));
    const int robust = int(ref.get("greedy_robust_prefix")->as_array()[i].as_int());
    if (bf16) {
      for (int s = 0; s < robust; s++)
        CHECK(g[s] == want_ids[s], "%s prompt %zu: greedy id %d differs from transformers", name.c_str(), i, s);
    } else {
      const std::vector<int32_t> c = greedy(*cpu, prompt, int(want_ids.size()));
      CHECK(g == c, "%s prompt %zu: CUDA and CPU greedy ids differ", name.c_str(), i);
      CHECK(g == want_ids, "%s prompt %zu: CUDA greedy ids differ from transformers", name.c_str(), i);
      same += g == c;
      compared++;
    }
  }
  if (bf16)
    std::printf(
        "  %s (bf16): logits max diff %.3g (%.2f%% of max|logit|, bound 5%%); greedy = transformers over the robust prefixes\n",
        name.c_str(), worst, 100 * worst_rel);
  else
    std::printf(
        "  %s (fp32): logits max diff %.3g (bound 2e-3); greedy 40 ids: CUDA = CPU = transformers on %d/%d prompts\n",
        name.c_str(), worst, same, compared);
}

static size_t free_bytes() {
  size_t f = 0, t = 0;
  cudaMemGetInfo(&f, &t);
  return f;
}

static void expect_error(const std::function<void()>& f, const std::vector<std::string>& needles, const char* what) {
  try {
    f();
    CHECK(false, "%s did not fail", what);
  } catch (const EngineError& e) {
    std::string m = e.what();
    for (const std::string& n : needles)
      CHECK(m.find(n) != std::string::npos, "%s: message '%s' lacks '%s'", what, m.c_str(), n.c_str());
    std::printf("  %s fails: %s\n", what, m.c_str());
  }
}

static void test_oom() {
  const std::string dir = root() + "/test/fixtures/qwen3-tiny";
  BackendOptions go;
  go.device = "cuda";
  const size_t before = free_bytes();
  {
    auto m = Model::load(dir, go);
    const size_t free_now = free_bytes();
    const int64_t tokens = int64_t(free_now / (size_t(m->config().layers) * 2 * m->config().kv_dim() * 4)) * 2;
    // A run whose token budget needs more K/V than an explicit budget allows is refused before
    // it starts, counted in the GPU's bf16/fp32 page bytes (the default budget, from the free
    // device memory, only has to hold the start: a run that reaches it later ends cleanly).
    HogwildConfig c;
    c.kv_budget_bytes = 64.0 * double(m->backend().kv_bytes_per_token());
    c.kv_budget_setting = "test budget of 64 tokens";
    c.workers = 2;
    c.layout = Layout::Contiguous;
    c.prompt = {1, 2, 3, 4, 5};
    c.first_input = {{5}, {6}};
    c.header_prefix = {{20, 21}, {20, 22}};
    for (int d = 0; d < 10; d++) c.digits.push_back(30 + d);
    c.header_suffix = {40, 41};
    c.token_bytes.assign(size_t(m->config().vocab), "w");
    c.max_tokens = int(std::min<int64_t>(tokens, 2000000000));
    expect_error([&] { HogwildRun run(*m, c, [](std::vector<Event>&&) {}); }, {"of KV memory", "the KV budget is"},
                 "a run whose KV needs more than its budget");
    expect_error([&] { m->backend().ensure_pages(int(std::min<int64_t>(tokens / 32 + 1, 2000000000))); },
                 {"not enough GPU memory for the KV cache", "bytes", "free"}, "a KV cache twice the free memory");
    // The same model runs normally right after.
    const Json ref = Json::parse_file(dir + "/reference.json");
    const std::vector<int32_t> prompt = ints(ref.get("prompts")->as_array()[2]);
    const std::vector<int32_t> want = ints(ref.get("greedy")->as_array()[2]);
    CHECK(greedy(*m, prompt, 8) == std::vector<int32_t>(want.begin(), want.begin() + 8),
          "greedy after the KV failure differs");
  }
  // Weights larger than the GPU: refused before any allocation.
  ModelConfig big = parse_config(
      R"({"architectures":["Qwen2ForCausalLM"],"hidden_size":8192,"intermediate_size":65536,"num_hidden_layers":80,)"
      R"("num_attention_heads":64,"num_key_value_heads":8,"vocab_size":152064,"max_position_embeddings":4096,)"
      R"("rms_norm_eps":1e-6,"rope_theta":1000000.0,"tie_word_embeddings":false})",
      "big config");
  go.random_weights_seed = 1;
  expect_error([&] { Model::random(big, go); }, {"not enough GPU memory for the weights", "bytes", "free"},
               "weights larger than the GPU");
  const size_t after = free_bytes();
  const double leaked = double(before) - double(after);
  CHECK(leaked < 64e6, "GPU memory not returned after the failures: %.0f bytes", leaked);
  std::printf("  free GPU memory before %.3f GB, after the failures %.3f GB\n", before / 1e9, after / 1e9);
  go.random_weights_seed = 0;
  auto small = Model::load(dir, go);
  CHECK(small->device().find("cuda") == 0, "the model after the failures is on '%s'", small->device().c_str());
  std::printf("  a model loads right after: %s\n", small->device().c_str());
}

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    for (const char* f : {"qwen2-tiny", "qwen3-tiny", "llama-tiny", "qwen2-bf16"}) test_fixture(f);
    test_oom();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FAIL: %s\n", e.what());
    return 1;
  }
  return test_summary("test_cuda_fixtures");
}
