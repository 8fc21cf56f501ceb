// Shared by the engine's test executables: a CHECK macro that counts failures, and a writer
// of small random checkpoints (config.json + fp32 model.safetensors) whose weights the test
// also keeps in memory, so that references never go through the engine's own loader.
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "backend.h"
#include "safetensors_writer.h"
#include "weight_names.h"

inline int g_failures = 0;
inline int g_checks = 0;

#define CHECK(cond, ...)                                                   \
  do {                                                                     \
    ++g_checks;                                                            \
    if (!(cond)) {                                                         \
      ++g_failures;                                                        \
      std::fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                   \
      std::fprintf(stderr, "\n");                                          \
    }                                                                      \
  } while (0)

inline int test_summary(const char* name) {
  std::printf("%s: %d checks, %d failures\n", name, g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}

// The device the engine tests run on: HW_TEST_DEVICE (cpu unless set; the GPU test script
// runs the same tests again with cuda).
inline hw::BackendOptions test_backend() {
  hw::BackendOptions o;
  if (const char* d = std::getenv("HW_TEST_DEVICE")) o.device = d;
  return o;
}

struct TinySpec {
  std::string arch = "Qwen3ForCausalLM";
  int hidden = 32, intermediate = 64, layers = 2, heads = 4, kv_heads = 2, head_dim = 8, vocab = 64;
  bool bias = false, qk_norm = true, tied = true, llama3 = false;
  double theta = 10000.0;
  int max_context = 4096;
  bool bf16 = false;  // store the weights as bf16 (the kept fp32 copy is then the rounded value)
};

struct TinyModel {
  TinySpec spec;
  std::string dir;
  std::map<std::string, std::vector<float>> w;  // HF names -> row-major fp32
  const std::vector<float>& at(const std::string& n) const { return w.at(n); }
};

// The shape of a TinySpec as the engine's config (what decides the checkpoint's tensors).
inline hw::ModelConfig tiny_config(const TinySpec& s) {
  hw::ModelConfig c;
  c.hidden = s.hidden, c.intermediate = s.intermediate, c.layers = s.layers, c.heads = s.heads;
  c.kv_heads = s.kv_heads, c.head_dim = s.head_dim, c.vocab = s.vocab;
  c.qkv_bias = s.bias, c.qk_norm = s.qk_norm, c.tied_embeddings = s.tied;
  return c;
}

// Random weights: scale * N(0, 1) + shift, per kind of tensor (norms near 1).
inline std::pair<float, float> tiny_init(hw::WeightRole r) {
  switch (r) {
    case hw::WeightRole::Embed:
      return {1.0f, 0.0f};
    case hw::WeightRole::AttnNorm:
    case hw::WeightRole::MlpNorm:
    case hw::WeightRole::FinalNorm:
      return {0.1f, 1.0f};
    case hw::WeightRole::QNorm:
    case hw::WeightRole::KNorm:
      return {0.2f, 1.0f};
    case hw::WeightRole::Wq:
    case hw::WeightRole::Wk:
    case hw::WeightRole::Wv:
      return {0.35f, 0.0f};
    case hw::WeightRole::LmHead:
      return {0.5f, 0.0f};
    default:
      return {0.3f, 0.0f};  // o_proj, biases, MLP
  }
}

inline TinyModel write_tiny_model(const TinySpec& s, const std::string& dir, unsigned seed) {
  TinyModel m{s, dir, {}};
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const hw::WeightSpec& t : hw::weight_specs(tiny_config(s), !s.tied)) {
    const auto [scale, shift] = tiny_init(t.role);
    size_t n = 1;
    for (int64_t d : t.shape) n *= size_t(d);
    std::vector<float> v(n);
    for (float& x : v) x = shift + scale * nd(rng);
    m.w[t.name] = std::move(v);
    shapes[t.name] = t.shape;
  }

  std::vector<TensorSpec> specs;
  std::vector<std::vector<float>*> data;
  for (auto& [name, v] : m.w) {
    specs.push_back({name, s.bf16 ? "BF16" : "F32", shapes[name], size_t(s.bf16 ? 2 : 4)});
    data.push_back(&v);
  }
  std::system(("mkdir -p '" + dir + "'").c_str());
  write_safetensors(dir + "/model.safetensors", specs, [&](size_t i, std::ofstream& f) {
    if (!s.bf16) {
      f.write(reinterpret_cast<const char*>(data[i]->data()), std::streamsize(data[i]->size() * 4));
      return;
    }
    for (float& x : *data[i]) {  // round to nearest even, and keep the rounded value
      uint32_t u;
      std::memcpy(&u, &x, 4);
      u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
      std::memcpy(&x, &u, 4);
      const uint16_t h = uint16_t(u >> 16);
      f.write(reinterpret_cast<const char*>(&h), 2);
    }
  });

  std::ofstream c(dir + "/config.json");
  c << "{\"architectures\":[\"" << s.arch << "\"],\"hidden_size\":" << s.hidden
    << ",\"intermediate_size\":" << s.intermediate << ",\"num_hidden_layers\":" << s.layers
    << ",\"num_attention_heads\":" << s.heads << ",\"num_key_value_heads\":" << s.kv_heads
    << ",\"head_dim\":" << s.head_dim << ",\"vocab_size\":" << s.vocab
    << ",\"max_position_embeddings\":" << s.max_context << ",\"rms_norm_eps\":1e-6,\"rope_theta\":" << s.theta
    << ",\"tie_word_embeddings\":" << (s.tied ? "true" : "false")
    << ",\"hidden_act\":\"silu\",\"eos_token_id\":" << (s.vocab - 1);
  if (s.llama3)
    c << ",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
         "\"original_max_position_embeddings\":64}";
  c << "}";
  return m;
}
