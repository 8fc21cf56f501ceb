// Writes a seeded random checkpoint (config.json + bf16 model.safetensors) with a real
// model's shapes, for benchmarks. Values are uniform in [-scale, scale): meaningless text,
// realistic memory traffic.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "../tests/safetensors_writer.h"
#include "weight_names.h"

struct BenchShape {
  std::string arch = "Qwen2ForCausalLM";
  int hidden = 896, intermediate = 4864, layers = 24, heads = 14, kv_heads = 2, head_dim = 64, vocab = 151936;
  bool tied = true, bias = true, qk_norm = false;
  int max_context = 32768;
};

inline BenchShape qwen25_05b() {
  return BenchShape{};
}

inline void write_random_checkpoint(const BenchShape& s, const std::string& dir, uint64_t seed = 1) {
  hw::ModelConfig cfg;
  cfg.hidden = s.hidden, cfg.intermediate = s.intermediate, cfg.layers = s.layers, cfg.heads = s.heads;
  cfg.kv_heads = s.kv_heads, cfg.head_dim = s.head_dim, cfg.vocab = s.vocab;
  cfg.qkv_bias = s.bias, cfg.qk_norm = s.qk_norm;
  const std::vector<hw::WeightSpec> ts = hw::weight_specs(cfg, !s.tied);

  std::vector<TensorSpec> specs;
  for (const hw::WeightSpec& t : ts) specs.push_back({t.name, "BF16", t.shape, 2});
  std::system(("mkdir -p '" + dir + "'").c_str());
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  std::vector<uint16_t> buf(1 << 20);
  write_safetensors(dir + "/model.safetensors", specs, [&](size_t ti, std::ofstream& f) {
    const hw::WeightSpec& t = ts[ti];
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    // 1/sqrt(fan_in) keeps activations in range through the layers.
    const float scale = t.shape.size() == 2 ? 1.7f / std::sqrt(float(t.shape[1])) : 0.02f;
    while (n > 0) {
      const int64_t m = std::min<int64_t>(n, int64_t(buf.size()));
      for (int64_t i = 0; i < m; i++) {
        if (t.is_norm) {
          buf[i] = 0x3F80;  // 1.0
          continue;
        }
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        const float u = (float(x >> 40) / float(1 << 24) * 2.0f - 1.0f) * scale;
        uint32_t bits;
        std::memcpy(&bits, &u, 4);
        buf[i] = uint16_t(bits >> 16);
      }
      f.write(reinterpret_cast<const char*>(buf.data()), std::streamsize(m * 2));
      n -= m;
    }
  });
  std::ofstream c(dir + "/config.json");
  c << "{\"architectures\":[\"" << s.arch << "\"],\"hidden_size\":" << s.hidden
    << ",\"intermediate_size\":" << s.intermediate << ",\"num_hidden_layers\":" << s.layers
    << ",\"num_attention_heads\":" << s.heads << ",\"num_key_value_heads\":" << s.kv_heads
    << ",\"head_dim\":" << s.head_dim << ",\"vocab_size\":" << s.vocab
    << ",\"max_position_embeddings\":" << s.max_context << ",\"rms_norm_eps\":1e-6,\"rope_theta\":1000000.0"
    << ",\"tie_word_embeddings\":" << (s.tied ? "true" : "false") << ",\"torch_dtype\":\"bfloat16\"}";
}
