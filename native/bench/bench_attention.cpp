// The CPU attention op alone, on the attention of a long prefill as the engine runs it (issue
// 13's attention share): one row prefilled in chunks of C tokens, chunk i's queries against
// the i * C + C keys of the block so far (causal), K/V in bf16 pages of 32 tokens, the
// built-in model's attention shapes (16 query heads, 8 KV heads, head_dim 128). One layer's
// attention over the whole prompt is timed; times 28 layers it is the prefill's attention.
//
//   bench_attention [--tokens N] [--chunk C] [--threads T] [--rounds R] [--item-rows A,B,...]
//                   [--isa avx2,avx512,avx512bf16] [--page-layers L]
//
// --page-layers 28: each page holds 28 layers' K/V, as the CPU backend's pages do (a layer's
// page tiles are then 3.7 MB apart); the last layer's is read.
// Each --item-rows value (query rows per work item; 0, the default, is the op's own choice), with
// each --isa (the op's instruction set; default: the one it picks), is measured in every round, the order rotating between rounds, so that a shared machine's noise falls on
// all of them alike; the median per value is printed with GFLOP/s (4 * head_dim FLOPs per
// query head and visible key), by the wall clock and by the process's CPU time (on a busy
// machine the threads lose their cores for whole slices: CPU seconds vary less than wall
// seconds, though they also count a waiting thread's spinning).
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "attention_plan.h"
#include "bench_util.h"
#include "config.h"
#include "cpu/attention.h"
#include "cpu/parallel.h"
#include "cpu/rope.h"

using namespace hw;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  int tokens = 8192, chunk = 128, threads = 2, rounds = 3, page_layers = 1;
  std::vector<int> item_rows = {cpu::attention_item_rows()};
  std::vector<std::string> isas = {cpu::attention_isa()};
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    auto next = [&] { return flag_value(argc, argv, i, "bench_attention"); };
    if (a == "--tokens")
      tokens = std::atoi(next());
    else if (a == "--chunk")
      chunk = std::atoi(next());
    else if (a == "--threads")
      threads = std::atoi(next());
    else if (a == "--page-layers")
      page_layers = std::atoi(next());
    else if (a == "--rounds")
      rounds = std::atoi(next());
    else if (a == "--item-rows") {
      item_rows.clear();
      for (const std::string& n : split_list(next())) item_rows.push_back(std::atoi(n.c_str()));
    } else if (a == "--isa") {
      isas = split_list(next());
      for (const std::string& name : isas)
        if (!cpu::set_attention_isa(name.c_str())) {
          std::fprintf(stderr, "bench_attention: this CPU cannot run ISA '%s'\n", name.c_str());
          return 2;
        }
    } else {
      std::fprintf(stderr,
                   "usage: bench_attention [--tokens N] [--chunk C] [--threads T] [--rounds R] [--item-rows A,B,...] "
                   "[--isa A,B,...] [--page-layers L]\n");
      return 2;
    }
  }
  if (tokens < 1 || chunk < 1 || threads < 1 || rounds < 1 || page_layers < 1 || item_rows.empty() || isas.empty()) {
    std::fprintf(stderr, "bench_attention: every value must be positive\n");
    return 2;
  }
  constexpr int kHeads = 16, kKvHeads = 8, kHd = 128, kPage = 32;

  // One block of `tokens` keys in bf16 pages (the CPU backend's layout: keys dimension-major).
  const int pages = (tokens + kPage - 1) / kPage;
  const size_t layer_elems = size_t(2) * kKvHeads * kHd * kPage, page_elems = layer_elems * size_t(page_layers);
  std::vector<std::vector<uint16_t>> storage(static_cast<size_t>(pages), std::vector<uint16_t>(page_elems, 0));
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  auto bf16 = [](float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return uint16_t((u + 0x7fff + ((u >> 16) & 1)) >> 16);
  };
  std::vector<const void*> ptrs;
  for (auto& pg : storage) {
    for (auto& x : pg) x = bf16(nd(rng));
    ptrs.push_back(pg.data());
  }
  PagedKv kv;
  kv.dtype = KvDType::BF16;
  kv.page_tokens = kPage;
  kv.kv_heads = kKvHeads;
  kv.head_dim = kHd;
  kv.pages = ptrs.data();
  kv.k_offset = layer_elems * size_t(page_layers - 1);
  kv.v_offset = kv.k_offset + size_t(kKvHeads) * kHd * kPage;
  std::vector<int> page_ids(static_cast<size_t>(pages), 0);
  for (int p = 0; p < pages; p++) page_ids[size_t(p)] = p;

  ModelConfig cfg;
  cfg.head_dim = kHd;
  cfg.rope_theta = 1000000.0f;
  Rope rope(cfg);
  RopeTable table;
  rope.extend(table, tokens + 1);
  std::vector<float> q(size_t(chunk) * kHeads * kHd), out(q.size());
  for (auto& x : q) x = nd(rng);

  par::Pool pool(threads);
  par::Use use(&pool);
  auto cpu_s = [] {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  };
  // One layer's attention over the whole prompt, chunk by chunk: {wall s, CPU s}.
  auto layer = [&]() {
    const double c0 = cpu_s();
    const auto t0 = Clock::now();
    for (int t = 0; t < tokens; t += chunk) {
      const int n = std::min(chunk, tokens - t);
      AttnPlan plan;
      plan_add_row(plan, n, t);
      plan_add_segment(plan, page_ids.data(), kPage, t + n, 0);
      cpu::attention(plan, kv, table, kHeads, 1.0f / std::sqrt(float(kHd)), q.data(), out.data());
    }
    return std::make_pair(std::chrono::duration<double>(Clock::now() - t0).count(), cpu_s() - c0);
  };
  const double flops = double(kHeads) * kHd * 4.0 * (double(tokens) * (tokens + 1) / 2.0);
  std::printf("bench_attention: %d tokens in chunks of %d, %d threads, bf16 K/V, %d rounds\n", tokens, chunk, threads,
              rounds);
  struct Variant {
    std::string isa;
    int rows;
    std::vector<double> wall, cpu;
  };
  std::vector<Variant> vs;
  for (const std::string& isa : isas)
    for (int rows : item_rows) vs.push_back({isa, rows, {}, {}});
  for (int r = 0; r < rounds; r++) {
    for (size_t k = 0; k < vs.size(); k++) {
      Variant& v = vs[(k + size_t(r)) % vs.size()];  // rotating order
      cpu::set_attention_isa(v.isa.c_str());
      cpu::set_attention_item_rows(v.rows);
      const auto [s, c] = layer();
      v.wall.push_back(s);
      v.cpu.push_back(c);
      std::printf("  round %d, %s, item rows %d: %.3f s (%.1f GFLOP/s), CPU %.3f s\n", r, v.isa.c_str(), v.rows, s,
                  flops / s / 1e9, c);
      std::fflush(stdout);
    }
  }
  for (const Variant& v : vs) {
    const double med = median(v.wall), cmed = median(v.cpu);
    std::printf(
        "%s, item rows %d: median %.3f s per layer, %.1f GFLOP/s (x28 layers = %.1f s); CPU %.3f s, %.1f GFLOP per "
        "CPU-second\n",
        v.isa.c_str(), v.rows, med, flops / med / 1e9, 28 * med, cmed, flops / cmed / 1e9);
  }
  cpu::set_attention_item_rows(0);
  return 0;
}
