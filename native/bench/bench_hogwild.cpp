// npm run bench:hogwild — what the Hogwild machinery costs on the CPU.
//  1. Qwen2.5-0.5B shape (random bf16), 4 workers, combined layout with step moves, headers
//     and events: the share of each step spent outside the model's forward and outside
//     sampling (views, offsets, step rules, history moves, events). Target: at most 5%.
//     Sampling (151936-way, temperature 1) is printed beside it.
//  2. Attention at 4k keys: 4 workers whose views hold 4096 keys in 7 blocks, against one
//     sequence attending over 4096 keys in one block (same attention shape, 1 layer).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "hogwild/engine.h"
#include "model.h"
#include "random_checkpoint.h"

using namespace hw;

static void bench_bookkeeping(const std::string& dir, int workers, int tokens_per_worker) {
  auto model = Model::load(dir, {});
  HogwildConfig c;
  c.workers = workers;
  c.layout = Layout::Combined;
  c.prompt.assign(64, 100);
  for (int w = 0; w < workers; w++) {
    c.header_prefix.push_back({1000, int32_t(1001 + w)});
    c.first_input.push_back({1000, int32_t(1001 + w), 1011, 1020});
  }
  for (int d = 0; d < 10; d++) c.digits.push_back(1010 + d);
  c.header_suffix = {1020};
  c.header_others = {1030, 1031};
  c.header_own = {1032};
  c.self_check = {1040, 1041};
  c.self_check_interval = 40;
  c.finisher.clear();  // the finisher is one sequence: not what this measures
  c.max_tokens = workers * tokens_per_worker;
  c.token_bytes.assign(model->config().vocab, "w");
  for (int id = 0; id < model->config().vocab; id += 16) c.token_bytes[id] = ".\n\n";  // frequent steps
  c.sampling.temperature = 1.0f;
  c.attention_shares = true;
  int events = 0, moves = 0;
  HogwildRun run(*model, c, [&](std::vector<Event>&& batch) {
    for (const Event& e : batch) events++, moves += std::holds_alternative<StepFinishedEvent>(e);
  });
  run.run();
  const HogwildRun::Timings t = run.timings();
  const double step = t.loop_ms / t.steps, fwd = t.forward_ms / t.steps, smp = t.sampling_ms / t.steps;
  const double book = step - fwd - smp;
  std::printf(
      "  W=%d: %d steps, %.1f ms/step: forward %.1f ms, sampling %.2f ms (%.1f%%), Hogwild bookkeeping "
      "%.3f ms = %.2f%% of a step (%d events, %d step moves, attention shares on)\n",
      workers, t.steps, step, fwd, smp, 100.0 * smp / step, book, 100.0 * book / step, events, moves);
}

static double attention_ms(Model& m, const Batch& batch, int reps) {
  double total = 0;
  for (int i = 0; i < reps; i++) {
    ForwardOutput out;
    m.forward(batch, out);
    total += out.attention_ms;
    for (const BatchRow& r : batch.rows) m.cache().truncate(r.block, m.cache().length(r.block) - 1);
  }
  return total / reps;
}

static void bench_attention(const std::string& dir) {
  auto m = Model::load(dir, {});
  auto prefill = [&](int block, int n, std::vector<ViewSegment> view) {
    for (int done = 0; done < n; done += 512) {
      Batch b;
      b.rows.push_back({std::vector<int32_t>(std::min(512, n - done), 7), block, view, false});
      ForwardOutput out;
      m->forward(b, out);
    }
  };
  // One sequence of 4096 keys.
  const int single = m->cache().create_block();
  prefill(single, 4095, {{single, 0}});
  Batch one;
  one.rows.push_back({{9}, single, {{single, 0}}, true});
  const double t1 = attention_ms(*m, one, 20);

  // Hogwild: prompt 3584, history 256, 4 workers x 63 (+1 new token each) = 4096 keys per view.
  const int P = m->cache().create_block(), H = m->cache().create_block();
  const int W = 4;
  std::vector<int> own(W);
  prefill(P, 3584, {{P, 0}});
  prefill(H, 256, {{P, 0}, {H, 3584}});
  for (int w = 0; w < W; w++) {
    own[w] = m->cache().create_block();
    prefill(own[w], 63, {{P, 0}, {H, 3584}, {own[w], 3840}});
  }
  Batch hog;
  for (int w = 0; w < W; w++) {
    std::vector<ViewSegment> v{{P, 0}, {H, 3584}};
    int off = 3840;
    for (int u = 0; u < W; u++)
      if (u != w) v.push_back({own[u], off}), off += 64;
    v.push_back({own[w], off});
    hog.rows.push_back({{9}, own[w], v, true});
  }
  const double t4 = attention_ms(*m, hog, 20);
  std::printf("  single sequence, 4096 keys in 1 block : %.3f ms per decode step (all heads)\n", t1);
  std::printf("  4 workers, 4096 keys each in %zu blocks: %.3f ms per step = %.2fx single, %.2fx per worker\n",
              hog.rows[0].view.size(), t4, t4 / t1, t4 / t1 / W);
}

int main() {
  const std::string base = "/tmp/hw-bench-" + std::to_string(::getpid());
  std::printf("bench:hogwild (CPU, %ld threads)\n", sysconf(_SC_NPROCESSORS_ONLN));
  BenchShape full = qwen25_05b();
  std::printf("writing a random Qwen2.5-0.5B-shaped bf16 checkpoint...\n");
  write_random_checkpoint(full, base + "/full");
  std::printf("1. bookkeeping per step (Qwen2.5-0.5B shape, combined layout)\n");
  bench_bookkeeping(base + "/full", 1, 24);
  bench_bookkeeping(base + "/full", 4, 24);
  BenchShape att = full;  // the same attention shape, one layer, a small vocabulary
  att.layers = 1;
  att.vocab = 1024;
  att.intermediate = 256;
  write_random_checkpoint(att, base + "/attn");
  std::printf("2. attention at 4k keys (Qwen2.5-0.5B attention: 14 heads, 2 KV heads, head_dim 64)\n");
  bench_attention(base + "/attn");
  std::system(("rm -rf '" + base + "'").c_str());
  return 0;
}
