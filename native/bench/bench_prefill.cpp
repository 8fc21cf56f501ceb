// Long-prompt benchmark (issue 13's targets) on a random checkpoint with the built-in model's
// shapes (Qwen3-0.6B, bf16):
//
//   bench_prefill [--tokens N] [--chunk C] [--report-s S] [--threads T] [--shape qwen3-0.6b|qwen2.5-0.5b]
//                 [--skip-memory] [--kv-dtype auto,q8,...] [--decode-contexts 1024,8192,...] [--decode-rounds R]
//
// Prints, from one run (each target also as a "target | ..." line for scripts/bench-prefill.mjs):
//   0. the model load, with its progress reports (the weight files read into memory);
//   1. the matmul prefill rate of this machine (bench_cpu's method: every layer's weights
//      applied to C tokens at once), the reference for the next line;
//   2. an N-token prefill as the engine runs it (a raw run of 1 worker: chunks of at most C
//      tokens, paced at S seconds): whole-step GFLOP/s with the attention FLOPs counted, as a
//      share of (1) (target >= 50%), and attention's share of the time (target <= 40%);
//   3. time from the request (the run's construction) to the first progress event, and to
//      the first one with tokens done (target <= 2 s);
//   4. Stop latency: the same prefill is stopped 2 s in and the time until the run loop has
//      ended is measured (the forward stops between layers), target <= 1 s;
//   5. KV bytes per token, bf16 against fp32 (target: half);
//   6. resident memory with the K/V of 8 workers x 4k tokens written into the cache (blocks
//      grown by the engine's own history move, real writes), target < 5 GB; once per K/V type
//      of --kv-dtype (default auto: the checkpoint's bf16), each with its own peak;
//   7. with two or more K/V types: the decode step time of each (8 workers, one token each a
//      step, over a shared context of each --decode-contexts length), the types' steps
//      interleaved round by round in this one process; the median of --decode-rounds steps.
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

#include "cpu/attention.h"
#include "cpu/kernels.h"
#include "error.h"
#include "hogwild/engine.h"
#include "model.h"
#include "bench_util.h"
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

constexpr double kMiB = 1048576.0;

// A figure with its target, for the summary at the end (scripts/bench-prefill.mjs reads these lines).
void target(const char* what, double value, const char* unit, const char* goal, bool met) {
  std::printf("target | %s | %.3g %s | %s %s | %s\n", what, value, unit, goal, unit, met ? "met" : "NOT met");
}

// /proc/self/status figure in MiB.
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

// 6. Resident memory with 8 workers x 4k tokens of K/V, written by history moves (each
// appends a prefilled 512-token block with re-rotation, as a finished step moves).
void memory_section(const std::string& dir, BackendOptions opt, const std::string& kv_dtype, int chunk,
                    double weight_bytes) {
  opt.kv_dtype = kv_dtype;
  // The peak is this part's own: the kernel's peak resident figure (VmHWM) restarts here.
  if (FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", f);
    std::fclose(f);
  }
  const double before_gb = status_mb("VmRSS:") * kMiB / 1e9;
  auto m = Model::load(dir, opt);
  const ModelConfig& cfg = m->config();
  const int src = m->cache().create_block();
  ForwardOutput o;
  m->forward_chunked({prompt_ids(512, cfg.vocab), src, {{src, 0}}, true}, chunk, o);
  const auto t_moves = Clock::now();
  for (int wk = 0; wk < 8; wk++) {
    const int b = m->cache().create_block();
    for (int k = 0; k < 8; k++) m->append_block(b, src);
  }
  const std::string kv = m->backend().kv_dtype();
  std::printf(
      "6. [K/V %s, %zu bytes a token] 8 workers x 4,096 tokens of K/V written (%.1f s): KV storage %.2f GB, resident "
      "%.2f GB now, peak %.2f GB (target < 5 GB; the weights are read into memory at load and count in full; "
      "resident before the load %.2f GB)\n",
      kv.c_str(), m->backend().kv_bytes_per_token(), since(t_moves), double(m->backend().kv_bytes()) / 1e9,
      status_mb("VmRSS:") * kMiB / 1e9, status_mb("VmHWM:") * kMiB / 1e9, before_gb);
  // Where it goes: anonymous memory (the K/V pages, the engine's buffers, the heap) and
  // file pages (the mapped weights), against the KV storage and the weight files' size.
  const double anon = status_mb("RssAnon:") * kMiB, file = status_mb("RssFile:") * kMiB;
  const double kv_b = double(m->backend().kv_bytes());
  std::printf(
      "   resident now: anonymous %.3f GB (KV pages %.3f GB + other %.1f MB), file-backed %.3f GB (weight files "
      "%.3f GB + other %.1f MB); KV + weight files alone: %.3f GB\n",
      anon / 1e9, kv_b / 1e9, (anon - kv_b) / 1e6, file / 1e9, weight_bytes / 1e9, (file - weight_bytes) / 1e6,
      (kv_b + weight_bytes) / 1e9);
  const double peak_gb = status_mb("VmHWM:") * kMiB / 1e9;
  target(("8 workers x 4k tokens, peak resident, K/V " + kv).c_str(), peak_gb, "GB", "< 5", peak_gb < 5.0);
}

// 7. Decode step time per K/V type at each context length: one model per type, each with a
// shared context block grown by history moves (appends of a prefilled 512-token block) and 8
// worker blocks; a step is one forward of 8 rows (one new token each, view [context, own]).
// The types take turns step by step, so that the shared VM's load changes hit them alike.
void decode_section(const std::string& dir, BackendOptions opt, const std::vector<std::string>& dtypes,
                    const std::vector<int>& contexts, int rounds, int chunk) {
  struct Side {
    std::unique_ptr<Model> m;
    int src = -1, ctx = -1;
    std::vector<int> own;
    std::vector<double> ms, att;  // step and attention times
  };
  std::vector<Side> sides(dtypes.size());
  for (size_t i = 0; i < dtypes.size(); i++) {
    opt.kv_dtype = dtypes[i];
    sides[i].m = Model::load(dir, opt);
    Model& m = *sides[i].m;
    sides[i].src = m.cache().create_block();
    sides[i].ctx = m.cache().create_block();
    ForwardOutput o;
    m.forward_chunked({prompt_ids(512, m.config().vocab), sides[i].src, {{sides[i].src, 0}}, false}, chunk, o);
  }
  std::printf(
      "7. decode step time, 8 workers x 1 token over a shared context (%d interleaved rounds, median; "
      "attention instruction set %s):\n",
      rounds, cpu::attention_isa());
  for (int c : contexts) {
    for (Side& sd : sides) {
      while (sd.m->cache().length(sd.ctx) < c) sd.m->append_block(sd.ctx, sd.src);
      for (int b : sd.own) sd.m->cache().release_block(b);
      sd.own.clear();
      for (int w = 0; w < 8; w++) sd.own.push_back(sd.m->cache().create_block());
      sd.ms.clear(), sd.att.clear();
    }
    const int len = sides[0].m->cache().length(sides[0].ctx);
    for (int r = -1; r < rounds; r++)  // round -1: warm-up
      for (Side& sd : sides) {
        Batch batch;
        for (int w = 0; w < 8; w++)
          batch.rows.push_back({{int32_t(1000 + 37 * w + r + 1)}, sd.own[w], {{sd.ctx, 0}, {sd.own[w], len}}, true});
        ForwardOutput o;
        const auto t0 = Clock::now();
        sd.m->forward(batch, o);
        if (r >= 0) sd.ms.push_back(since(t0) * 1e3), sd.att.push_back(o.attention_ms);
      }
    std::printf("   context %6d:", len);
    std::vector<double> med;
    for (size_t i = 0; i < sides.size(); i++) {
      med.push_back(median(sides[i].ms));
      std::printf("  %s %.0f ms (attention %.0f ms; steps %.0f..%.0f)", sides[i].m->backend().kv_dtype().c_str(),
                  med.back(), median(sides[i].att), *std::min_element(sides[i].ms.begin(), sides[i].ms.end()),
                  *std::max_element(sides[i].ms.begin(), sides[i].ms.end()));
    }
    for (size_t i = 1; i < sides.size(); i++)
      std::printf("; %s / %s %.2fx", sides[i].m->backend().kv_dtype().c_str(), sides[0].m->backend().kv_dtype().c_str(),
                  med[i] / med[0]);
    std::printf("\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  int tokens = 8192, chunk = 128, threads = 0;
  double report_s = 1.0;
  bool memory = true;
  std::string shape = "qwen3-0.6b", kv_list = "auto", context_list = "1024,8192,32768";
  int decode_rounds = 5;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    auto next = [&] { return flag_value(argc, argv, i, "bench_prefill"); };
    if (a == "--tokens")
      tokens = std::atoi(next());
    else if (a == "--chunk")
      chunk = std::atoi(next());
    else if (a == "--threads")
      threads = std::atoi(next());
    else if (a == "--report-s")
      report_s = std::atof(next());
    else if (a == "--shape")
      shape = next();
    else if (a == "--skip-memory")
      memory = false;
    else if (a == "--kv-dtype")
      kv_list = next();
    else if (a == "--decode-contexts")
      context_list = next();
    else if (a == "--decode-rounds")
      decode_rounds = std::atoi(next());
    else {
      std::fprintf(
          stderr,
          "usage: bench_prefill [--tokens N] [--chunk C] [--report-s S] [--threads T] [--shape qwen3-0.6b|qwen2.5-0.5b] "
          "[--skip-memory] [--kv-dtype auto,q8,...] [--decode-contexts 1024,8192,...] [--decode-rounds R]\n");
      return 2;
    }
  }
  if (tokens < chunk || chunk < 1) {
    std::fprintf(stderr, "bench_prefill: need --tokens >= --chunk >= 1\n");
    return 2;
  }
  const std::vector<std::string> kv_dtypes = split_list(kv_list);
  std::vector<int> contexts;
  for (const std::string& c : split_list(context_list)) contexts.push_back(std::atoi(c.c_str()));
  std::sort(contexts.begin(), contexts.end());  // the shared context only grows
  if (kv_dtypes.empty() || decode_rounds < 1 ||
      std::any_of(contexts.begin(), contexts.end(), [](int c) { return c < 512; })) {
    std::fprintf(stderr, "bench_prefill: --kv-dtype needs a type, --decode-rounds >= 1, --decode-contexts >= 512\n");
    return 2;
  }
  const BenchShape s = shape == "qwen2.5-0.5b" ? qwen25_05b() : qwen3_06b();
  const std::string dir = "/tmp/hw-bench-prefill-" + std::to_string(getpid());
  std::printf("bench:prefill  shape %s (random bf16), %d-token prompt in chunks of %d, %ld CPUs\n", shape.c_str(),
              tokens, chunk, sysconf(_SC_NPROCESSORS_ONLN));
  write_random_checkpoint(s, dir);

  BackendOptions opt;
  opt.threads = threads;
  int load_reports = 0;
  double first_load_report = -1, load_bytes = 0;
  const auto t_load = Clock::now();
  auto model = Model::load(dir, opt, [&](const char*, double done, double total) {
    if (first_load_report < 0) first_load_report = since(t_load);
    load_reports++;
    load_bytes = total;
  });
  std::printf("0. model load: %.2f s; %d progress reports over %.2f GB of weight files, the first after %.3f s\n",
              since(t_load), load_reports, load_bytes / 1e9, first_load_report);
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

  // 2./3. The prefill as the engine runs it: a raw run (1 worker, 1 step) on the N-token prompt,
  // timed from the request (the run's construction) to each progress event.
  const std::vector<int32_t> ids = prompt_ids(tokens, cfg.vocab);
  auto prefill_run = [&](HogwildRun::EventSink sink) {
    HogwildConfig c;
    c.workers = 1;
    c.layout = Layout::Contiguous;
    c.raw = true;
    c.raw_steps = 1;
    c.prompt = ids;
    c.first_input = {{ids[0]}};
    c.sampling.temperature = 0.0f;
    c.prefill_chunk = chunk;
    c.prefill_report_s = report_s;
    return std::make_unique<HogwildRun>(*model, c, std::move(sink));
  };
  double first_event_s = -1, first_work_s = -1;
  int first_work_done = 0, reports = 0;
  const auto t_request = Clock::now();
  auto run = prefill_run([&](std::vector<Event>&& batch) {
    for (const Event& ev : batch) {
      const auto* e = std::get_if<ProgressEvent>(&ev);
      if (!e) continue;
      reports++;
      if (first_event_s < 0) first_event_s = since(t_request);
      if (e->done > 0 && first_work_s < 0) first_work_s = since(t_request), first_work_done = e->done;
      if (e->done % 1024 < 128 || e->done == e->total)
        std::fprintf(stderr, "  prefill %d / %d (%.0f tok/s)\n", e->done, e->total, e->tokens_per_second);
    }
  });
  run->run();
  const HogwildRun::Timings tm = run->timings();
  run.reset();
  const double total_s = tm.prefill_ms / 1e3, attention_s = tm.prefill_attention_ms / 1e3;
  const double attn_flops = double(cfg.layers) * cfg.heads * cfg.head_dim * 4.0 * (double(tokens) * (tokens + 1) / 2.0);
  const double lin_flops = 2.0 * linear_params * tokens;
  const double rate = (attn_flops + lin_flops) / total_s / 1e9;
  std::printf(
      "2. prefill of %d tokens (the engine's run, chunks of %d..%d tokens paced at %.1f s): %.1f s, %.1f tok/s; %.2f TFLOP "
      "(matmuls %.2f, attention %.2f) at %.1f GFLOP/s = %.0f%% of (1) (target >= 50%%)\n",
      tokens, tm.prefill_first_chunk, tm.prefill_largest_chunk, report_s, total_s, tokens / total_s,
      (attn_flops + lin_flops) / 1e12, lin_flops / 1e12, attn_flops / 1e12, rate, 100.0 * rate / mm_gflops);
  std::printf("   attention: %.1f s = %.0f%% of the prefill (target <= 40%%), %.1f GFLOP/s, instruction set %s\n",
              attention_s, 100.0 * attention_s / total_s, attn_flops / attention_s / 1e9, cpu::attention_isa());
  std::printf(
      "3. progress, from the request: the first report (0 / %d, the work known) after %.3f s; the first with tokens "
      "done (%d / %d) after %.2f s (target <= 2 s); %d reports\n",
      tokens, first_event_s, first_work_done, tokens, first_work_s, reports);
  target("prefill rate / matmul rate", 100.0 * rate / mm_gflops, "%", ">= 50", rate >= 0.5 * mm_gflops);
  target("attention share of the prefill", 100.0 * attention_s / total_s, "%", "<= 40", attention_s <= 0.4 * total_s);
  target("first progress with tokens done, engine (from the request)", first_work_s, "s", "<= 2",
         first_work_s >= 0 && first_work_s <= 2.0);

  // 4. Stop latency: the same prefill, stopped 2 s in; the time until the run loop has ended.
  {
    auto r2 = prefill_run(nullptr);
    r2->start();
    std::this_thread::sleep_for(std::chrono::seconds(2));
    const auto t_stop = Clock::now();
    r2->stop();
    r2->wait();
    const double latency = since(t_stop);
    std::printf("4. Stop during the prefill: the run ended %.3f s after the request (target <= 1 s)\n", latency);
    target("Stop during the prefill", latency, "s", "<= 1", latency <= 1.0);
  }

  // 5. KV bytes per token.
  const size_t per_token = model->backend().kv_bytes_per_token();
  const size_t per_token_f32 = size_t(cfg.layers) * 2 * cfg.kv_heads * cfg.head_dim * 4;
  std::printf("5. KV per token: %zu bytes (%s) against %zu in fp32 = %.2fx (target 0.5x)\n", per_token,
              model->backend().kv_dtype().c_str(), per_token_f32, double(per_token) / double(per_token_f32));
  target("KV bytes per token / fp32", double(per_token) / double(per_token_f32), "x", "0.5",
         2 * per_token <= per_token_f32);
  model.reset();

  if (memory)
    for (const std::string& kv : kv_dtypes) memory_section(dir, opt, kv, chunk, load_bytes);
  if (kv_dtypes.size() >= 2) decode_section(dir, opt, kv_dtypes, contexts, decode_rounds, chunk);
  std::system(("rm -rf '" + dir + "'").c_str());
  return 0;
}
