// Long-prompt benchmark (issue 13's targets) on a random checkpoint with the built-in model's
// shapes (Qwen3-0.6B, bf16):
//
//   bench_prefill [--tokens N] [--chunk C] [--threads T] [--shape qwen3-0.6b|qwen2.5-0.5b] [--skip-memory]
//
// Prints, from one run:
//   1. the matmul prefill rate of this machine (bench_cpu's method: every layer's weights
//      applied to C tokens at once), the reference for the next line;
//   2. an N-token prefill in chunks of C (the engine's way): whole-step GFLOP/s with the
//      attention FLOPs counted, as a share of (1) (target >= 50%), and attention's share of
//      the time (target <= 40%);
//   3. time to the first progress report with a rate (the end of the first chunk; the engine
//      reports 0 / N before any compute), target <= 2 s;
//   4. Stop latency: a prefill in flight is cancelled after 2 s and the time until control
//      returns is measured (the forward stops between layers), target <= 1 s;
//   5. KV bytes per token, bf16 against fp32 (target: half);
//   6. resident memory with the K/V of 8 workers x 4k tokens written into the cache (blocks
//      grown by the engine's own history move, real writes), target < 5 GB.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "cpu/kernels.h"
#include "error.h"
#include "model.h"
#include "random_checkpoint.h"
#include "weights.h"

using namespace hw;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

BenchShape qwen3_06b() {
  BenchShape s;
  s.arch = "Qwen3ForCausalLM";
  s.hidden = 1024;
  s.intermediate = 3072;
  s.layers = 28;
  s.heads = 16;
  s.kv_heads = 8;
  s.head_dim = 128;
  s.vocab = 151936;
  s.bias = false;
  s.qk_norm = true;
  s.max_context = 40960;
  return s;
}

double status_mb(const char* key) {
  FILE* f = std::fopen("/proc/self/status", "r");
  char line[256];
  double kb = 0;
  while (f && std::fgets(line, sizeof line, f))
    if (std::strncmp(line, key, std::strlen(key)) == 0) kb = std::atof(line + std::strlen(key));
  if (f) std::fclose(f);
  return kb / 1024.0;
}

std::vector<int32_t> prompt_ids(int n, int vocab) {
  std::vector<int32_t> p(n);
  for (int i = 0; i < n; i++) p[i] = int32_t(1000 + (i * 7919) % (vocab - 2000));
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  int tokens = 8192, chunk = 128, threads = 0;
  bool memory = true;
  std::string shape = "qwen3-0.6b";
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--tokens")
      tokens = std::atoi(next().c_str());
    else if (a == "--chunk")
      chunk = std::atoi(next().c_str());
    else if (a == "--threads")
      threads = std::atoi(next().c_str());
    else if (a == "--shape")
      shape = next();
    else if (a == "--skip-memory")
      memory = false;
    else {
      std::fprintf(
          stderr,
          "usage: bench_prefill [--tokens N] [--chunk C] [--threads T] [--shape qwen3-0.6b|qwen2.5-0.5b] [--skip-memory]\n");
      return 2;
    }
  }
  if (tokens < chunk || chunk < 1) {
    std::fprintf(stderr, "bench_prefill: need --tokens >= --chunk >= 1\n");
    return 2;
  }
  const BenchShape s = shape == "qwen2.5-0.5b" ? qwen25_05b() : qwen3_06b();
  const std::string dir = "/tmp/hw-bench-prefill-" + std::to_string(getpid());
  std::printf("bench:prefill  shape %s (random bf16), %d-token prompt in chunks of %d, %ld CPUs\n", shape.c_str(),
              tokens, chunk, sysconf(_SC_NPROCESSORS_ONLN));
  write_random_checkpoint(s, dir);

  BackendOptions opt;
  opt.threads = threads;
  auto model = Model::load(dir, opt);
  const ModelConfig& cfg = model->config();

  // 1. The matmul prefill rate (bench_cpu's prefill method, here with the chunk's size).
  ModelWeights w = load_weights(dir, cfg);
  double linear_params = 0;
  size_t widest = 0;
  for (const LayerWeights& l : w.layers)
    for (const Tensor* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      linear_params += double(t->numel());
      widest = std::max<size_t>(widest, size_t(std::max(t->rows(), t->cols())));
    }
  std::vector<float> x(size_t(chunk) * widest, 0.25f), y(size_t(chunk) * widest);
  double mm_best = 1e30;
  for (int rep = 0; rep < 2; rep++) {
    const auto t0 = Clock::now();
    for (const LayerWeights& l : w.layers)
      for (const Tensor* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
        cpu::matmul(*t, x.data(), chunk, y.data());
    mm_best = std::min(mm_best, since(t0));
  }
  const double mm_gflops = 2.0 * linear_params * chunk / mm_best / 1e9;
  std::printf("1. matmul prefill rate (every layer's weights x %d tokens): %.1f GFLOP/s\n", chunk, mm_gflops);
  w = ModelWeights{};  // unmapped: the resident figure below counts only the model's own mapping

  // 2./3. The prefill, chunk by chunk.
  const std::vector<int32_t> ids = prompt_ids(tokens, cfg.vocab);
  const int blk = model->cache().create_block();
  double attention_ms = 0, first_chunk_s = 0, longest_chunk_s = 0;
  auto t_chunk = Clock::now();
  const auto t0 = Clock::now();
  ForwardOutput out;
  for (int done = 0; done < tokens;) {
    const int n = std::min(chunk, tokens - done);
    Batch b;
    b.rows.push_back(
        {std::vector<int32_t>(ids.begin() + done, ids.begin() + done + n), blk, {{blk, 0}}, done + n == tokens});
    model->forward(b, out);
    attention_ms += out.attention_ms;
    done += n;
    const double c = since(t_chunk);
    if (done == n) first_chunk_s = since(t0);
    longest_chunk_s = std::max(longest_chunk_s, c);
    t_chunk = Clock::now();
    if (done % (chunk * 16) == 0 || done == tokens)
      std::fprintf(stderr, "  prefill %d / %d (%.0f tok/s)\n", done, tokens, done / since(t0));
  }
  const double total_s = since(t0);
  const double attn_flops = double(cfg.layers) * cfg.heads * cfg.head_dim * 4.0 * (double(tokens) * (tokens + 1) / 2.0);
  const double lin_flops = 2.0 * linear_params * tokens;
  const double rate = (attn_flops + lin_flops) / total_s / 1e9;
  std::printf(
      "2. prefill of %d tokens: %.1f s, %.1f tok/s; %.2f TFLOP (matmuls %.2f, attention %.2f) at %.1f GFLOP/s = %.0f%% of (1) (target >= 50%%)\n",
      tokens, total_s, tokens / total_s, (attn_flops + lin_flops) / 1e12, lin_flops / 1e12, attn_flops / 1e12, rate,
      100.0 * rate / mm_gflops);
  std::printf("   attention: %.1f s = %.0f%% of the prefill (target <= 40%%), %.1f GFLOP/s\n", attention_ms / 1e3,
              100.0 * attention_ms / 1e3 / total_s, attn_flops / (attention_ms / 1e3) / 1e9);
  std::printf(
      "3. first progress with a rate after %.2f s (end of the first chunk; target <= 2 s); longest chunk %.2f s\n",
      first_chunk_s, longest_chunk_s);

  // 4. Stop latency: cancel a long prefill 2 s in, time until control returns.
  {
    const int b2 = model->cache().create_block();
    std::atomic<bool> cancel{false};
    std::atomic<double> returned{0};
    Clock::time_point t_cancel;
    std::thread th([&] {
      ForwardOutput o;
      try {
        model->forward_chunked({ids, b2, {{b2, 0}}, true}, chunk, o, {}, &cancel);
      } catch (const Cancelled&) {
      }
      returned = since(t_cancel);
    });
    std::this_thread::sleep_for(std::chrono::seconds(2));
    t_cancel = Clock::now();
    cancel = true;
    th.join();
    std::printf("4. Stop during the prefill: control back %.3f s after the request (target <= 1 s)\n", returned.load());
    model->cache().release_block(b2);
  }

  // 5. KV bytes per token.
  const size_t per_token = model->backend().kv_bytes_per_token();
  const size_t per_token_f32 = size_t(cfg.layers) * 2 * cfg.kv_heads * cfg.head_dim * 4;
  std::printf("5. KV per token: %zu bytes (%s) against %zu in fp32 = %.2fx (target 0.5x)\n", per_token,
              model->backend().kv_dtype().c_str(), per_token_f32, double(per_token) / double(per_token_f32));
  model.reset();

  // 6. Resident memory with 8 workers x 4k tokens of K/V, written by history moves (each
  // appends a prefilled 512-token block with re-rotation, as a finished step moves).
  if (memory) {
    auto m = Model::load(dir, opt);
    const int src = m->cache().create_block();
    ForwardOutput o;
    m->forward_chunked({prompt_ids(512, cfg.vocab), src, {{src, 0}}, true}, chunk, o);
    const auto tm = Clock::now();
    for (int wk = 0; wk < 8; wk++) {
      const int b = m->cache().create_block();
      for (int k = 0; k < 8; k++) m->append_block(b, src);
    }
    std::printf(
        "6. 8 workers x 4,096 tokens of K/V written (%.1f s): KV storage %.2f GB, resident %.2f GB now, peak %.2f GB "
        "(target < 5 GB; weights are mapped and count as they are touched)\n",
        since(tm), double(m->backend().kv_bytes()) / 1e9, status_mb("VmRSS:") / 1024.0, status_mb("VmHWM:") / 1024.0);
  }
  std::system(("rm -rf '" + dir + "'").c_str());
  return 0;
}
