// Decode and prefill speed of the CUDA backend on random bf16 weights of real model shapes,
// generated on the GPU (seeded; no checkpoint on disk). Decode: W workers, each one token
// per step, each viewing [prompt of `ctx` tokens, the other workers' blocks, its own block],
// the prompt's K/V random (a long context without its prefill); the next ids drawn on the
// device (greedy), as in the engine's run loop. One JSON line per
// measurement on stdout (scripts/gpu/bench_cuda.py turns them into the table).
//
//   bench_cuda [--shapes qwen2.5-0.5b,qwen2.5-7b,qwen3-8b,qwq-32b] [--workers 1,2,4,8]   (also: qwen3-0.6b)
//              [--contexts 1024,16384] [--steps 12] [--warmup 3] [--prefill 2048] [--device-time]
//              [--shares none|segments|keys]
// --shares: the decode steps also ask for the attention shares per segment (what a run panel
// asks every step) or for those and the attention on every key (the token inspector's).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "backend.h"
#include "config.h"
#include "error.h"
#include "model.h"
#include "../bench_util.h"

using namespace hw;

struct Shape {
  const char* name;
  const char* arch;
  int hidden, inter, layers, heads, kv_heads, head_dim, vocab;
  bool tied;
};

static const Shape kShapes[] = {
    {"qwen2.5-0.5b", "Qwen2ForCausalLM", 896, 4864, 24, 14, 2, 64, 151936, true},
    {"qwen3-0.6b", "Qwen3ForCausalLM", 1024, 3072, 28, 16, 8, 128, 151936, true},  // the built-in model's shape
    {"qwen2.5-7b", "Qwen2ForCausalLM", 3584, 18944, 28, 28, 4, 128, 152064, false},
    {"qwen3-8b", "Qwen3ForCausalLM", 4096, 12288, 36, 32, 8, 128, 151936, false},
    {"qwq-32b", "Qwen2ForCausalLM", 5120, 27648, 64, 40, 8, 128, 152064, false},
};

static double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

int main(int argc, char** argv) {
  std::string shapes = "qwen2.5-0.5b,qwen2.5-7b,qwen3-8b,qwq-32b", workers = "1,2,4,8", contexts = "1024,16384";
  int steps = 12, warmup = 3, prefill = 2048;
  bool device_time = false;
  std::string shares = "none";
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    auto next = [&] { return flag_value(argc, argv, i, "bench_cuda"); };
    if (a == "--shapes")
      shapes = next();
    else if (a == "--workers")
      workers = next();
    else if (a == "--contexts")
      contexts = next();
    else if (a == "--steps")
      steps = std::max(1, std::atoi(next()));
    else if (a == "--warmup")  // profiling: fewer untimed steps (the second one captures the CUDA graph)
      warmup = std::max(0, std::atoi(next()));
    else if (a == "--prefill")
      prefill = std::max(0, std::atoi(next()));
    else if (a == "--device-time")  // two CUDA events a step: kept out of the default timing
      device_time = true;
    else if (a == "--shares") {
      shares = next();
      if (shares != "none" && shares != "segments" && shares != "keys") {
        std::fprintf(stderr, "bench_cuda: --shares takes none, segments or keys, not %s\n", shares.c_str());
        return 2;
      }
    } else {
      std::fprintf(stderr,
                   "usage: bench_cuda [--shapes A,B] [--workers 1,2,4,8] [--contexts 1024,16384] [--steps S] "
                   "[--warmup N] [--prefill T] [--device-time] [--shares none|segments|keys]\n");
      return 2;
    }
  }
  try {
    for (const std::string& sn : split_list(shapes)) {
      const Shape* sh = nullptr;
      for (const Shape& s : kShapes)
        if (sn == s.name) sh = &s;
      if (!sh) throw EngineError("unknown shape " + sn);
      char cfg_json[1024];
      std::snprintf(cfg_json, sizeof cfg_json,
                    "{\"architectures\":[\"%s\"],\"hidden_size\":%d,\"intermediate_size\":%d,\"num_hidden_layers\":%d,"
                    "\"num_attention_heads\":%d,\"num_key_value_heads\":%d,\"head_dim\":%d,\"vocab_size\":%d,"
                    "\"max_position_embeddings\":40960,\"rms_norm_eps\":1e-6,\"rope_theta\":1000000.0,"
                    "\"tie_word_embeddings\":%s}",
                    sh->arch, sh->hidden, sh->inter, sh->layers, sh->heads, sh->kv_heads, sh->head_dim, sh->vocab,
                    sh->tied ? "true" : "false");
      const ModelConfig cfg = parse_config(cfg_json, sh->name);
      BackendOptions opt;
      opt.device = "cuda";
      opt.random_weights_seed = 1234;
      const auto t_load = std::chrono::steady_clock::now();
      auto model = Model::random(cfg, opt);
      const double load_ms = ms_since(t_load);
      const size_t H = cfg.hidden, QD = cfg.q_dim(), KD = cfg.kv_dim(), I = cfg.intermediate, V = cfg.vocab;
      const size_t weight_elems =
          V * H * (cfg.tied_embeddings ? 1 : 2) + cfg.layers * ((QD + 2 * KD) * H + H * QD + 3 * I * H);
      // A decode step reads every layer matrix and the lm_head once (the embedding: W rows).
      const size_t step_bytes = (weight_elems - (cfg.tied_embeddings ? 0 : V * H)) * 2;
      const size_t kv_per_token = size_t(cfg.layers) * 2 * KD * 2;
      std::printf(
          "{\"kind\":\"model\",\"shape\":\"%s\",\"weight_bytes\":%zu,\"step_read_bytes\":%zu,\"kv_bytes_per_token\":%zu,"
          "\"load_ms\":%.1f,\"device\":\"%s\"}\n",
          sh->name, weight_elems * 2, step_bytes, kv_per_token, load_ms, model->device().c_str());
      std::fflush(stdout);

      for (const std::string& cs : split_list(contexts)) {
        const int ctx = std::stoi(cs);
        for (const std::string& ws : split_list(workers)) {
          const int W = std::stoi(ws);
          KvCache& cache = model->cache();
          std::vector<TokenMove> copies;
          const int P = cache.create_block();
          cache.reserve(P, ctx, copies);
          cache.commit(P, ctx);
          std::vector<int> blocks;
          for (int w = 0; w < W; w++) {
            blocks.push_back(cache.create_block());
            cache.reserve(blocks.back(), 16, copies);
            cache.commit(blocks.back(), 16);
          }
          model->backend().ensure_pages(cache.pages_allocated());
          cuda_fill_kv_random(model->backend(), 99);
          if (device_time) cuda_time_steps(model->backend(), true);
          std::vector<double> times, device_times;
          for (int s = 0; s < steps + warmup; s++) {
            Batch b;
            for (int w = 0; w < W; w++) {
              BatchRow r;
              r.tokens = {int32_t((s * 7919 + w * 104729) % cfg.vocab)};
              r.block = blocks[w];
              int off = 0;
              r.view.push_back({P, 0});
              off = ctx;
              for (int o = 0; o < W; o++)
                if (o != w) r.view.push_back({blocks[o], off}), off += cache.length(blocks[o]);
              r.view.push_back({blocks[w], off});
              r.sample = true;  // greedy on the device, as the engine's run loop asks
              b.rows.push_back(std::move(r));
            }
            b.sampled_ids_only = true;
            b.attention_shares = shares != "none";
            b.key_attention = shares == "keys";
            ForwardOutput out;
            const auto t0 = std::chrono::steady_clock::now();
            model->forward(b, out);
            if (s >= warmup) times.push_back(ms_since(t0));
            if (s >= warmup && device_time) device_times.push_back(cuda_last_step_device_ms(model->backend()));
          }
          if (device_time) cuda_time_steps(model->backend(), false);
          const double ms = median(times);
          // device_ms (--device-time): the step's kernels alone, first launch to sampled ids; the rest
          // of step_ms is the host's (the engine's and the backend's preparation, the launch, the
          // ids' copy back), which the GPU waits for.
          std::printf("{\"kind\":\"decode\",\"shape\":\"%s\",\"W\":%d,\"ctx\":%d,\"step_ms\":%.4f,\"tok_s\":%.1f",
                      sh->name, W, ctx, ms, W * 1000.0 / ms);
          if (shares != "none") std::printf(",\"shares\":\"%s\"", shares.c_str());
          if (device_time) std::printf(",\"device_ms\":%.4f", median(device_times));
          std::printf("}\n");
          std::fflush(stdout);
          cache.release_block(P);
          for (int b : blocks) cache.release_block(b);
        }
      }

      if (prefill > 0) {
        std::vector<double> times;
        for (int rep = 0; rep < 3; rep++) {
          const int blk = model->cache().create_block();
          Batch b;
          BatchRow r;
          for (int i = 0; i < prefill; i++) r.tokens.push_back(int32_t((i * 7919) % cfg.vocab));
          r.block = blk;
          r.view = {{blk, 0}};
          b.rows.push_back(std::move(r));
          ForwardOutput out;
          const auto t0 = std::chrono::steady_clock::now();
          model->forward(b, out);
          times.push_back(ms_since(t0));
          model->cache().release_block(blk);
        }
        const double ms = *std::min_element(times.begin() + 1, times.end());
        // Matmul FLOPs of the layers (every token) and the lm_head (the last token only), plus
        // causal attention (QK^T and PV over half the square).
        const double n = prefill;
        const double flops = 2.0 * n * double(cfg.layers) * double((QD + 2 * KD) * H + H * QD + 3 * I * H) +
                             2.0 * double(V * H) + 2.0 * 2.0 * n * n / 2.0 * double(QD) * cfg.layers;
        std::printf("{\"kind\":\"prefill\",\"shape\":\"%s\",\"tokens\":%d,\"ms\":%.3f,\"tflops\":%.1f}\n", sh->name,
                    prefill, ms, flops / (ms * 1e-3) / 1e12);
        std::fflush(stdout);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda: %s\n", e.what());
    return 1;
  }
  return 0;
}
