// Times the CUDA Hogwild attention kernel at 16k context in the combined layout with a
// realistic block structure: a 1024-token prompt, the shared history (one long rotated block and
// the 3 most recent finished steps as their own segments), the "others" header, the W workers'
// current steps (odd lengths 61..297), the "own" header. Every worker's view holds 16384 keys;
// all views share the same blocks at different offsets. One decode token per worker.
// Prints RESULT lines that native/bench/cuda/attention_cuda_compare.py sets against torch SDPA.
// At short contexts where that structure leaves under a quarter of the keys to the history, the
// prompt, recent steps and worker steps shrink in proportion (same blocks, fewer keys each).
// As in the engine, each worker's own block gets this step's key (the short kernel's fresh tiles).
//
// Usage: bench_attention_cuda [context=16384] [shape name] [W]   (the last two filter, for ncu)
//        bench_attention_cuda --contexts 1024,4096,16384 [--shapes QwQ-32B,Qwen2.5-7B] [--workers 1,4]
// Shapes run by default: QwQ-32B, Qwen3-8B; the engine's Qwen2.5-0.5B and Qwen2.5-7B when named.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "../../src/cuda/attention.h"
#include "../bench_util.h"
#include "../../src/cuda/cuda_ok.h"

using namespace hw::cuda;

namespace {

struct Shape {
  const char* name;
  int heads, kv_heads, head_dim;
  bool by_default;  // run without a shape filter
};

bool listed(const std::vector<std::string>& list, const std::string& x) {
  return list.empty() || std::find(list.begin(), list.end(), x) != list.end();
}

uint16_t to_bf16(float f) {  // round to nearest even
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fff + ((u >> 16) & 1);
  return uint16_t(u >> 16);
}

constexpr int kLayers = 4;  // layers cycled while timing: 4 x 64 MB of K/V, well past the 60 MB L2

AttnProblem combined_problem(int W, int context, int page_tokens, std::mt19937& rng, int* pages_needed) {
  std::vector<int> len;
  int prompt = 1024, recent[3] = {173, 211, 157};
  const int hdr_others = 9, hdr_own = 6;
  std::vector<int> steps(W);
  int used = prompt + recent[0] + recent[1] + recent[2] + hdr_others + hdr_own;
  for (int& s : steps) s = 61 + 2 * std::uniform_int_distribution<int>(0, 118)(rng), used += s;
  if (4 * (context - used) < context) {  // short context: shrink the fixed blocks to 3/4 of it
    const double f = 0.75 * context / used;
    auto shrink = [f](int& n) { n = std::max(1, int(n * f)); };
    shrink(prompt);
    for (int& r : recent) shrink(r);
    for (int& s : steps) shrink(s);
    used = prompt + recent[0] + recent[1] + recent[2] + hdr_others + hdr_own;
    for (int s : steps) used += s;
  }
  const int history = context - used;
  // Blocks: 0 prompt, 1 history, 2..4 recent, 5 header (others), 6 header (own), 7.. steps.
  len = {prompt, history, recent[0], recent[1], recent[2], hdr_others, hdr_own};
  for (int s : steps) len.push_back(s);
  AttnProblem p;
  int page = 0;
  for (int l : len) {
    std::vector<int> ids;
    for (int i = 0; i < (l + page_tokens - 1) / page_tokens; i++) ids.push_back(page++);
    p.block_pages.push_back(ids);
  }
  *pages_needed = page;
  for (int w = 0; w < W; w++) {
    std::vector<int> view{0, 1, 2, 3, 4, 5};
    for (int v = 0; v < W; v++)
      if (v != w) view.push_back(7 + v);
    view.push_back(6);
    view.push_back(7 + w);
    AttnRow row;
    int off = 0;
    for (int b : view) row.view.push_back({b, off, len[b]}), off += len[b];
    row.tokens = 1;
    row.first_position = off - 1;
    p.rows.push_back(row);
  }
  // Settled blocks, but for the last key of each worker's own block, written by this step.
  p.block_fresh_from.assign(len.size(), 1 << 30);
  for (int w = 0; w < W; w++) p.block_fresh_from[7 + w] = len[7 + w] - 1;
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional, context_list, only_shapes, only_workers;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if (a.rfind("--", 0) != 0) {
      positional.push_back(a);
      continue;
    }
    if (i + 1 >= argc || (a != "--contexts" && a != "--shapes" && a != "--workers")) {
      std::fprintf(stderr,
                   "usage: bench_attention_cuda [context] [shape] [W] | --contexts A,B --shapes S,T --workers 1,4\n");
      return 2;
    }
    (a == "--contexts" ? context_list : a == "--shapes" ? only_shapes : only_workers) = split_list(argv[++i]);
  }
  if (positional.size() > 0) context_list = {positional[0]};
  if (positional.size() > 1) only_shapes = {positional[1]};
  if (positional.size() > 2) only_workers = {positional[2]};
  std::vector<int> contexts;
  for (const std::string& c : context_list) contexts.push_back(std::atoi(c.c_str()));
  if (contexts.empty()) contexts = {16384};
  cudaDeviceProp prop;
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);
  const Shape shapes[] = {{"QwQ-32B", 40, 8, 128, true},
                          {"Qwen3-8B", 32, 8, 128, true},
                          {"Qwen2.5-0.5B", 14, 2, 64, false},
                          {"Qwen2.5-7B", 28, 4, 128, false}};
  std::mt19937 rng(7);
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreate(&stream));
  cudaEvent_t e0, e1;
  CUDA_OK(cudaEventCreate(&e0));
  CUDA_OK(cudaEventCreate(&e1));

  for (const Shape& sh : shapes) {
    if (only_shapes.empty() ? !sh.by_default : !listed(only_shapes, sh.name)) continue;
    for (const int context : contexts) {
      const AttnDims d{kLayers, sh.heads, sh.kv_heads, sh.head_dim, 32};
      const size_t page_elems = kv_page_elems(d);
      const int max_pages = context / 32 + 64;
      uint16_t* kv = nullptr;  // bf16
      CUDA_OK(cudaMalloc(&kv, size_t(max_pages) * page_elems * 2));
      {  // random bf16 in [-1, 1): never time on zeros
        std::vector<uint16_t> host(page_elems);
        std::uniform_real_distribution<float> u(-1.f, 1.f);
        for (int p = 0; p < max_pages; p++) {
          for (auto& x : host) x = to_bf16(u(rng));
          CUDA_OK(cudaMemcpy(kv + size_t(p) * page_elems, host.data(), page_elems * 2, cudaMemcpyHostToDevice));
        }
      }
      std::vector<const void*> ptrs(max_pages);
      for (int p = 0; p < max_pages; p++) ptrs[p] = kv + size_t(p) * page_elems;
      const void** ptrs_dev;
      CUDA_OK(cudaMalloc(&ptrs_dev, ptrs.size() * sizeof(void*)));
      CUDA_OK(cudaMemcpy(ptrs_dev, ptrs.data(), ptrs.size() * sizeof(void*), cudaMemcpyHostToDevice));
      std::vector<float> inv(sh.head_dim / 2);
      for (int i = 0; i < sh.head_dim / 2; i++) inv[i] = 1.0f / std::pow(1e6f, float(2 * i) / float(sh.head_dim));
      float* inv_dev;
      CUDA_OK(cudaMalloc(&inv_dev, inv.size() * 4));
      CUDA_OK(cudaMemcpy(inv_dev, inv.data(), inv.size() * 4, cudaMemcpyHostToDevice));

      for (int W : {1, 2, 4, 8, 16}) {
        if (!listed(only_workers, std::to_string(W))) continue;
        int pages_needed = 0;
        const AttnProblem p = combined_problem(W, context, 32, rng, &pages_needed);
        if (pages_needed > max_pages) std::fprintf(stderr, "too few pages\n"), std::exit(2);
        HogwildAttention att(d);
        att.plan(p);  // the first plan allocates; time the second, as every later step sees it
        const auto t0 = std::chrono::steady_clock::now();
        att.plan(p);
        const double plan_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
        att.upload(stream);
        const size_t qn = size_t(W) * sh.heads * sh.head_dim;
        float *q, *out, *shares;
        CUDA_OK(cudaMalloc(&q, qn * 4));
        CUDA_OK(cudaMalloc(&out, qn * 4));
        CUDA_OK(cudaMalloc(&shares, size_t(att.total_segments()) * 4 + 4));
        {
          std::vector<float> qh(qn);
          std::uniform_real_distribution<float> u(-1.f, 1.f);
          for (auto& x : qh) x = u(rng);
          CUDA_OK(cudaMemcpy(q, qh.data(), qn * 4, cudaMemcpyHostToDevice));
        }
        AttnLayerArgs a;
        a.q = q, a.out = out, a.pages = ptrs_dev, a.inv_freq = inv_dev;
        double med[2];
        for (int with_shares = 0; with_shares < 2; with_shares++) {
          a.shares = with_shares ? shares : nullptr;
          for (int i = 0; i < 20; i++) att.run(i % kLayers, a, stream);
          constexpr int kBatch = 20, kReps = 25;
          std::vector<float> per;
          for (int r = 0; r < kReps; r++) {
            CUDA_OK(cudaEventRecord(e0, stream));
            for (int i = 0; i < kBatch; i++) att.run(i % kLayers, a, stream);
            CUDA_OK(cudaEventRecord(e1, stream));
            CUDA_OK(cudaEventSynchronize(e1));
            float ms;
            CUDA_OK(cudaEventElapsedTime(&ms, e0, e1));
            per.push_back(ms * 1000.f / kBatch);
          }
          std::sort(per.begin(), per.end());
          med[with_shares] = per[per.size() / 2];
        }
        CUDA_OK(cudaGetLastError());
        const double kv_bytes = double(context) * sh.kv_heads * sh.head_dim * 2 * 2;
        std::printf("RESULT model=%s W=%d context=%d us=%.2f us_shares=%.2f plan_us=%.1f kv_GBps=%.0f launch=%s\n",
                    sh.name, W, context, med[0], med[1], plan_us, kv_bytes / (med[0] * 1e-6) / 1e9,
                    att.launch_summary().c_str());
        std::fflush(stdout);
        cudaFree(q), cudaFree(out), cudaFree(shares);
      }
      cudaFree(kv), cudaFree(ptrs_dev), cudaFree(inv_dev);
    }
  }
  return 0;
}
