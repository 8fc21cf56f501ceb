// Tests of the model loader: JSON, fp16/bf16 conversions, config.json (both dialects),
// safetensors (single file and sharded) and weight binding, including every bad input's message.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "config.h"
#include "error.h"
#include "json.h"
#include "safetensors.h"
#include "tensor.h"
#include "weights.h"
#include "safetensors_writer.h"
#include "weight_names.h"

namespace fs = std::filesystem;
using namespace hw;

static int g_failures = 0;
static int g_checks = 0;

#define CHECK(cond)                                                                 \
  do {                                                                              \
    ++g_checks;                                                                     \
    if (!(cond)) {                                                                  \
      ++g_failures;                                                                 \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                               \
  } while (0)

// Runs fn, expects an EngineError whose message contains every one of `parts`.
static void expect_error(const char* label, const std::function<void()>& fn, const std::vector<std::string>& parts) {
  ++g_checks;
  try {
    fn();
  } catch (const EngineError& e) {
    std::string msg = e.what();
    for (const std::string& p : parts) {
      if (msg.find(p) == std::string::npos) {
        ++g_failures;
        std::fprintf(stderr, "[%s] message lacks \"%s\": %s\n", label, p.c_str(), msg.c_str());
        return;
      }
    }
    std::printf("  ok  %-28s %s\n", label, msg.c_str());
    return;
  } catch (const std::exception& e) {
    ++g_failures;
    std::fprintf(stderr, "[%s] threw a non-EngineError: %s\n", label, e.what());
    return;
  }
  ++g_failures;
  std::fprintf(stderr, "[%s] did not throw\n", label);
}

// ---- checkpoints: the shared safetensors writer, then optional damage ----

struct TestTensor {
  std::string dtype = "F32";
  std::vector<int64_t> shape;
  std::vector<float> values;  // encoded per dtype when written
};

static std::vector<uint8_t> encode(const TestTensor& t) {
  std::vector<uint8_t> out;
  for (float v : t.values) {
    if (t.dtype == "F32") {
      uint8_t b[4];
      std::memcpy(b, &v, 4);
      out.insert(out.end(), b, b + 4);
    } else if (t.dtype == "I8") {
      out.push_back(uint8_t(int8_t(v)));
    } else {
      uint16_t h = t.dtype == "F16" ? f32_to_f16(v) : f32_to_bf16(v);
      out.push_back(uint8_t(h & 0xFF));
      out.push_back(uint8_t(h >> 8));
    }
  }
  return out;
}

// Writes a safetensors file whose data_offsets follow the values given; `header_len_delta`
// then lies about the header length, `truncate_by` drops bytes from the end.
static void write_checkpoint(const std::string& path, const std::map<std::string, TestTensor>& ts,
                             int64_t header_len_delta = 0, size_t truncate_by = 0) {
  std::vector<TensorSpec> specs;
  std::vector<std::vector<uint8_t>> data;
  for (const auto& [name, t] : ts) {
    data.push_back(encode(t));
    const size_t element = t.dtype == "F32" ? 4 : t.dtype == "I8" ? 1 : 2;
    specs.push_back({name, t.dtype, t.shape, element, data.back().size()});
  }
  write_safetensors(path, specs, [&](size_t i, std::ofstream& f) {
    f.write(reinterpret_cast<const char*>(data[i].data()), std::streamsize(data[i].size()));
  });
  if (header_len_delta != 0) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    uint64_t n = 0;
    f.read(reinterpret_cast<char*>(&n), 8);
    n = uint64_t(int64_t(n) + header_len_delta);
    f.seekp(0);
    f.write(reinterpret_cast<const char*>(&n), 8);
  }
  if (truncate_by) fs::resize_file(path, fs::file_size(path) - truncate_by);
}

static void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// ---- a tiny model ----

static TestTensor make(const std::string& dtype, std::vector<int64_t> shape, float seed) {
  TestTensor t;
  t.dtype = dtype;
  t.shape = shape;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  // Values exact in bf16 and f16 (small multiples of 1/8), so every dtype reads back exactly.
  for (int64_t i = 0; i < n; ++i) t.values.push_back(seed + float(i % 16) * 0.125f - 1.0f);
  return t;
}

// Dtypes vary by kind of tensor on purpose, so that every conversion is read: the dtype and
// the first value of each.
static std::pair<const char*, float> tiny_dtype(WeightRole r) {
  switch (r) {
    case WeightRole::Embed:
      return {"BF16", 0.5f};
    case WeightRole::Wq:
      return {"F16", 0.25f};
    case WeightRole::Wv:
      return {"F32", 0.125f};
    case WeightRole::Bq:
      return {"F32", 0.0f};
    case WeightRole::AttnNorm:
    case WeightRole::MlpNorm:
    case WeightRole::FinalNorm:
      return {"F32", 1.0f};
    case WeightRole::Bk:
    case WeightRole::Up:
      return {"F16", 0.0f};
    case WeightRole::QNorm:
    case WeightRole::KNorm:
      return {"BF16", 1.0f};
    case WeightRole::LmHead:
      return {"F16", -0.5f};
    default:
      return {"BF16", 0.0f};  // k_proj, o_proj, v bias, gate, down
  }
}

// hidden 8, intermediate 16, 2 layers, 4 heads, 2 KV heads, vocab 12 (Qwen3: head_dim 4, so
// 2 * 8 = 16 q rows).
static ModelConfig tiny_config(Arch arch, int head_dim) {
  ModelConfig c;
  c.arch = arch;
  c.hidden = 8, c.intermediate = 16, c.layers = 2, c.heads = 4, c.kv_heads = 2, c.head_dim = head_dim, c.vocab = 12;
  c.qkv_bias = arch == Arch::Qwen2, c.qk_norm = arch == Arch::Qwen3;
  return c;
}

// Every tensor of the engine's list (weight_names.h) with made-up values. That the list names
// what transformers writes is checked by loading its checkpoints (test/fixtures, parity tests).
static std::map<std::string, TestTensor> tiny_tensors(Arch arch, int head_dim, bool lm_head) {
  std::map<std::string, TestTensor> ts;
  for (const WeightSpec& s : weight_specs(tiny_config(arch, head_dim), lm_head)) {
    const auto [dtype, seed] = tiny_dtype(s.role);
    ts[s.name] = make(dtype, s.shape, seed);
  }
  return ts;
}

static const char* kQwen3Config = R"({
  "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
  "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 4,
  "vocab_size": 12, "max_position_embeddings": 40960, "rms_norm_eps": 1e-06,
  "rope_theta": 1000000, "rope_scaling": null, "hidden_act": "silu",
  "attention_bias": false, "use_sliding_window": false, "sliding_window": null,
  "eos_token_id": 11, "torch_dtype": "bfloat16", "transformers_version": "4.51.0"
})";

static const char* kQwen2Config = R"({
  "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
  "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 12,
  "max_position_embeddings": 32768, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
  "tie_word_embeddings": false, "use_sliding_window": false, "sliding_window": 131072,
  "eos_token_id": [10, 11], "torch_dtype": "bfloat16"
})";

// Llama 3.1 as transformers 4.x writes it ...
static const char* kLlama4x = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 12,
  "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
  "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "attention_bias": false, "mlp_bias": false, "tie_word_embeddings": false,
  "eos_token_id": [9, 10, 11], "bos_token_id": 1, "torch_dtype": "bfloat16"
})";

// ... and as transformers 5.x writes it.
static const char* kLlama5x = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 12,
  "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "head_dim": 2,
  "rope_parameters": {"rope_theta": 500000.0, "rope_type": "llama3", "factor": 8.0,
                      "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 8192},
  "attention_bias": false, "mlp_bias": false, "tie_word_embeddings": false,
  "eos_token_id": [9, 10, 11], "bos_token_id": 1, "dtype": "bfloat16"
})";

static bool same_config(const ModelConfig& a, const ModelConfig& b) {
  return a.arch == b.arch && a.arch_name == b.arch_name && a.hidden == b.hidden && a.intermediate == b.intermediate &&
         a.layers == b.layers && a.heads == b.heads && a.kv_heads == b.kv_heads && a.head_dim == b.head_dim &&
         a.vocab == b.vocab && a.max_context == b.max_context && a.rms_eps == b.rms_eps &&
         a.rope_theta == b.rope_theta && a.rope_scaling.llama3 == b.rope_scaling.llama3 &&
         a.rope_scaling.factor == b.rope_scaling.factor &&
         a.rope_scaling.low_freq_factor == b.rope_scaling.low_freq_factor &&
         a.rope_scaling.high_freq_factor == b.rope_scaling.high_freq_factor &&
         a.rope_scaling.original_max_position == b.rope_scaling.original_max_position &&
         a.tied_embeddings == b.tied_embeddings && a.tie_explicit == b.tie_explicit && a.qkv_bias == b.qkv_bias &&
         a.qk_norm == b.qk_norm && a.eos_ids == b.eos_ids;
}

// Replaces the first occurrence of `from` in a config text.
static std::string edit(std::string s, const std::string& from, const std::string& to) {
  size_t at = s.find(from);
  if (at == std::string::npos) {
    std::fprintf(stderr, "test bug: '%s' not in config\n", from.c_str());
    ++g_failures;
    return s;
  }
  return s.replace(at, from.size(), to);
}

// Counts this process's mappings of files under `dir` (a failed load must leave none).
static int mappings_under(const std::string& dir) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  int n = 0;
  while (std::getline(maps, line))
    if (line.find(dir) != std::string::npos) ++n;
  return n;
}

// ---- the tests ----

static void test_json() {
  std::printf("json\n");
  Json j = Json::parse(R"( {"a": [1, -2.5e3, true, false, null], "s": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00",
                             "big": 12345678901234567890, "o": {}, "e": [] } )",
                       "t");
  CHECK(j.is_object() && j.size() == 5);
  const Json* a = j.get("a");
  CHECK(a && a->is_array() && a->size() == 5);
  CHECK(a->as_array()[0].is_int() && a->as_array()[0].as_int() == 1);
  CHECK(!a->as_array()[1].is_int() && a->as_array()[1].as_double() == -2500.0);
  CHECK(a->as_array()[2].as_bool() && !a->as_array()[3].as_bool() && a->as_array()[4].is_null());
  CHECK(j.get("s")->as_string() == "x\"\\/\b\f\n\r\t\xC3\xA9\xF0\x9F\x98\x80");
  CHECK(!j.get("big")->is_int() && j.get("big")->as_double() > 1.2e19);
  CHECK(j.get("o")->is_object() && j.get("e")->is_array() && j.get("missing") == nullptr);
  CHECK(Json::parse("\"\xE4\xB8\xAD\"", "t").as_string() == "\xE4\xB8\xAD");
  CHECK(Json::parse("0", "t").as_int() == 0 && Json::parse("-0.0", "t").as_double() == 0.0);
  CHECK(Json::parse("1E+2", "t").as_double() == 100.0);

  expect_error("json trailing comma", [] { Json::parse("[1, 2,]", "cfg.json"); },
               {"cfg.json: invalid JSON at byte 6: expected a value, got ']'"});
  expect_error("json unterminated", [] { Json::parse("{\"a\": \"b", "x"); },
               {"x: invalid JSON at byte 8: unterminated string"});
  expect_error("json leading zero", [] { Json::parse("01", "x"); }, {"byte 1", "leading zeros"});
  expect_error("json lone surrogate", [] { Json::parse("\"\\ud83d\"", "x"); }, {"byte 1", "unpaired high surrogate"});
  expect_error("json low surrogate", [] { Json::parse("\"\\ude00\"", "x"); }, {"unpaired low surrogate"});
  expect_error("json bad escape", [] { Json::parse("\"\\x\"", "x"); }, {"invalid escape"});
  expect_error("json raw newline", [] { Json::parse("\"a\nb\"", "x"); }, {"control character"});
  expect_error("json bad utf8", [] { Json::parse("\"\xC0\xAF\"", "x"); }, {"invalid UTF-8"});
  expect_error("json duplicate key", [] { Json::parse("{\"a\":1,\"b\":2,\"a\":3}", "x"); },
               {"byte 13", "duplicate key 'a'"});
  expect_error("json NaN", [] { Json::parse("[NaN]", "x"); }, {"byte 1: expected a value, got 'N'"});
  expect_error("json comment", [] { Json::parse("{} // no", "x"); }, {"after the value"});
  expect_error("json empty", [] { Json::parse("  ", "x"); }, {"unexpected end of input"});
  expect_error("json huge number", [] { Json::parse("1e999", "x"); }, {"out of range"});
  expect_error("json deep nesting", [] { Json::parse(std::string(100000, '['), "x"); }, {"nesting"});
  expect_error("json wrong type", [] { Json::parse("\"s\"", "x").as_int(); }, {"string"});
}

static void test_conversions() {
  std::printf("fp16 / bf16\n");
  // bf16: round to nearest, ties to even.
  CHECK(f32_to_bf16(1.0f) == 0x3F80);
  uint32_t u = 0x3F808000;  // exactly halfway between 0x3F80 and 0x3F81: to even (0x3F80)
  float f;
  std::memcpy(&f, &u, 4);
  CHECK(f32_to_bf16(f) == 0x3F80);
  u = 0x3F818000;  // halfway between 0x3F81 and 0x3F82: to even (0x3F82)
  std::memcpy(&f, &u, 4);
  CHECK(f32_to_bf16(f) == 0x3F82);
  u = 0x3F808001;  // just above halfway: up
  std::memcpy(&f, &u, 4);
  CHECK(f32_to_bf16(f) == 0x3F81);
  CHECK(f32_to_bf16(INFINITY) == 0x7F80 && f32_to_bf16(-INFINITY) == 0xFF80);
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  CHECK(f32_to_bf16(3.4028235e38f) == 0x7F80);  // max float rounds to inf
  CHECK(bf16_to_f32(0xC040) == -3.0f);

  // f16: every finite value round-trips exactly; rounding and specials.
  bool all_round_trip = true;
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7C00) == 0x7C00) continue;  // inf / NaN
    if (f32_to_f16(f16_to_f32(uint16_t(h))) != h) all_round_trip = false;
  }
  CHECK(all_round_trip);
  CHECK(f16_to_f32(0x3C00) == 1.0f && f16_to_f32(0xC000) == -2.0f);
  CHECK(f16_to_f32(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(f16_to_f32(0x7BFF) == 65504.0f);
  CHECK(f32_to_f16(65519.0f) == 0x7BFF && f32_to_f16(65520.0f) == 0x7C00);
  CHECK(f32_to_f16(1e10f) == 0x7C00 && f32_to_f16(-1e10f) == 0xFC00);
  CHECK(f32_to_f16(std::ldexp(1.0f, -25)) == 0x0000);         // tie to even: zero
  CHECK(f32_to_f16(std::ldexp(1.5f, -25)) == 0x0001);         // above the tie
  CHECK(f32_to_f16(std::ldexp(3.0f, -25)) == 0x0002);         // 1.5 units: tie to even 2
  CHECK(f32_to_f16(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);  // tie to even
  CHECK(f32_to_f16(1.0f + std::ldexp(3.0f, -11)) == 0x3C02);  // tie to even (up)
  CHECK(std::isnan(f16_to_f32(f32_to_f16(NAN))) && std::isinf(f16_to_f32(0x7C00)));
  CHECK(std::signbit(f16_to_f32(0x8000)));
  CHECK(dtype_size(DType::BF16) == 2 && std::string(dtype_name(DType::F16)) == "F16");
}

static void test_configs(const std::string& tmp) {
  std::printf("config.json\n");
  ModelConfig q3 = parse_config(kQwen3Config, "q3");
  CHECK(q3.arch == Arch::Qwen3 && q3.arch_name == "Qwen3ForCausalLM");
  CHECK(q3.hidden == 8 && q3.intermediate == 16 && q3.layers == 2 && q3.heads == 4);
  CHECK(q3.kv_heads == 2 && q3.head_dim == 4 && q3.vocab == 12 && q3.max_context == 40960);
  CHECK(q3.qk_norm && !q3.qkv_bias && q3.group() == 2 && q3.q_dim() == 16 && q3.kv_dim() == 8);
  CHECK(q3.rope_theta == 1e6f && !q3.rope_scaling.llama3 && q3.rms_eps == 1e-6f);
  CHECK(!q3.tied_embeddings && !q3.tie_explicit && q3.eos_ids == std::vector<int>{11});

  ModelConfig q2 = parse_config(kQwen2Config, "q2");
  CHECK(q2.arch == Arch::Qwen2 && q2.qkv_bias && !q2.qk_norm && q2.head_dim == 2);
  CHECK(!q2.tied_embeddings && q2.tie_explicit && (q2.eos_ids == std::vector<int>{10, 11}));

  // Both dialects give the same config.
  ModelConfig l4 = parse_config(kLlama4x, "l4");
  ModelConfig l5 = parse_config(kLlama5x, "l5");
  CHECK(l4.arch == Arch::Llama && !l4.qkv_bias && !l4.qk_norm && l4.head_dim == 2);
  CHECK(l4.rope_theta == 500000.0f && l4.rope_scaling.llama3 && l4.rope_scaling.factor == 8.0f);
  CHECK(l4.rope_scaling.low_freq_factor == 1.0f && l4.rope_scaling.high_freq_factor == 4.0f);
  CHECK(l4.rope_scaling.original_max_position == 8192 && l4.rms_eps == 1e-5f);
  CHECK(same_config(l4, l5));
  std::string q3_5x = edit(edit(kQwen3Config, "\"rope_theta\": 1000000, \"rope_scaling\": null",
                                "\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 1000000.0}"),
                           "\"torch_dtype\"", "\"dtype\"");
  CHECK(same_config(q3, parse_config(q3_5x, "q3 5.x")));
  // 4.x files sometimes say "type" instead of "rope_type".
  CHECK(same_config(l4, parse_config(edit(kLlama4x, "\"rope_type\": \"llama3\"", "\"type\": \"llama3\""), "l4")));
  // model_type alone names the family; absent optional fields take the class defaults.
  ModelConfig minimal = parse_config(R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
      "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 100})",
                                     "m");
  CHECK(minimal.arch == Arch::Llama && minimal.arch_name == "LlamaForCausalLM");
  CHECK(minimal.kv_heads == 4 && minimal.head_dim == 16 && minimal.max_context == 2048);
  CHECK(minimal.rope_theta == 10000.0f && minimal.eos_ids.empty() && !minimal.tie_explicit);

  std::string dir = tmp + "/cfg";
  fs::create_directories(dir);
  expect_error("missing config.json", [&] { load_config(dir); },
               {dir + "/config.json: cannot open (No such file or directory)"});
  write_text(dir + "/config.json", edit(kQwen3Config, "Qwen3ForCausalLM", "GPT2LMHeadModel"));
  expect_error("unknown architecture", [&] { load_config(dir); },
               {dir + "/config.json: unknown architecture 'GPT2LMHeadModel' (supported: "
                      "Qwen2ForCausalLM, Qwen3ForCausalLM, LlamaForCausalLM)"});
  write_text(dir + "/config.json", edit(kQwen3Config, "\"hidden_size\": 8,", ""));
  expect_error("missing field", [&] { load_config(dir); }, {dir + "/config.json: field 'hidden_size' is missing"});
  write_text(dir + "/config.json", edit(kQwen3Config, "{", "{,"));
  expect_error("config not JSON", [&] { load_config(dir); },
               {dir + "/config.json: invalid JSON at byte 1: expected a string key"});
  expect_error(
      "heads % kv_heads",
      [] { parse_config(edit(kQwen3Config, "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3"), "c.json"); },
      {"c.json: num_attention_heads (4) is not a multiple of num_key_value_heads (3)"});
  expect_error(
      "non-positive size",
      [] { parse_config(edit(kQwen3Config, "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 0"), "c.json"); },
      {"c.json: field 'num_hidden_layers' must be a positive integer, got 0"});
  expect_error("wrong field type",
               [] { parse_config(edit(kQwen3Config, "\"vocab_size\": 12", "\"vocab_size\": \"12\""), "c.json"); },
               {"c.json: field 'vocab_size' must be an integer, got string"});
  expect_error("rope yarn",
               [] { parse_config(edit(kLlama5x, "\"rope_type\": \"llama3\"", "\"rope_type\": \"yarn\""), "c.json"); },
               {"c.json: rope_parameters: rope type 'yarn' is not supported (supported: default, llama3)"});
  expect_error("rope dynamic (4.x)",
               [] { parse_config(edit(kLlama4x, "\"rope_type\": \"llama3\"", "\"type\": \"dynamic\""), "c.json"); },
               {"c.json: rope_scaling: rope type 'dynamic' is not supported"});
  expect_error("llama3 rope incomplete", [] { parse_config(edit(kLlama4x, "\"factor\": 8.0,", ""), "c.json"); },
               {"c.json: field 'rope_scaling.factor' is missing"});
  expect_error("attention_bias",
               [] { parse_config(edit(kLlama4x, "\"attention_bias\": false", "\"attention_bias\": true"), "c.json"); },
               {"c.json: attention_bias true", "not supported"});
  expect_error("eos type",
               [] { parse_config(edit(kQwen3Config, "\"eos_token_id\": 11", "\"eos_token_id\": \"</s>\""), "c.json"); },
               {"c.json: field 'eos_token_id'"});
}

static void test_model(const std::string& tmp) {
  std::printf("weights\n");
  // Qwen3, tied by absence of lm_head.weight (config does not mention tie_word_embeddings).
  std::string dir = tmp + "/qwen3";
  fs::create_directories(dir);
  write_text(dir + "/config.json", kQwen3Config);
  auto ts = tiny_tensors(Arch::Qwen3, 4, false);
  write_checkpoint(dir + "/model.safetensors", ts);
  {
    ModelConfig cfg = load_config(dir);
    ModelWeights w = load_weights(dir, cfg);
    CHECK(w.layers.size() == 2 && w.lm_head.data == w.embed.data);
    CHECK(w.embed.dtype == DType::BF16 && (w.embed.shape == std::vector<int64_t>{12, 8}));
    CHECK(w.layers[1].wq.dtype == DType::F16 && w.layers[1].wv.dtype == DType::F32);
    CHECK(!w.layers[0].q_norm.empty() && w.layers[0].bq.empty());
    bool exact = true;
    auto same = [&](const Tensor& t, const TestTensor& s) {
      std::vector<float> all(size_t(t.numel()));
      tensor_to_f32(t, 0, t.rows(), all.data());
      for (size_t i = 0; i < all.size(); ++i)
        if (all[i] != s.values[i] || tensor_get(t, int64_t(i)) != s.values[i]) exact = false;
    };
    same(w.embed, ts[weight_name(WeightRole::Embed)]);
    same(w.layers[1].wq, ts[weight_name(WeightRole::Wq, 1)]);
    same(w.layers[1].wv, ts[weight_name(WeightRole::Wv, 1)]);
    same(w.layers[0].k_norm, ts[weight_name(WeightRole::KNorm, 0)]);
    same(w.final_norm, ts[weight_name(WeightRole::FinalNorm)]);
    CHECK(exact);
    std::vector<float> rows(2 * 8);  // a slice of rows
    tensor_to_f32(w.embed, 3, 2, rows.data());
    CHECK(rows[0] == ts[weight_name(WeightRole::Embed)].values[24]);
    CHECK(w.files->mapped_bytes() == fs::file_size(dir + "/model.safetensors"));
    CHECK(w.files->file_of(weight_name(WeightRole::FinalNorm)) == dir + "/model.safetensors");
    CHECK(w.files->find("nope") == nullptr);
    expect_error("tensor_to_f32 range", [&] { tensor_to_f32(w.embed, 11, 2, rows.data()); },
                 {weight_name(WeightRole::Embed), "outside"});
  }
  CHECK(mappings_under(dir) == 0);  // ModelWeights owned the only mapping

  // Qwen2, untied with lm_head, biases; sharded over two files with an index.
  dir = tmp + "/qwen2";
  fs::create_directories(dir);
  write_text(dir + "/config.json", kQwen2Config);
  ts = tiny_tensors(Arch::Qwen2, 2, true);
  std::map<std::string, TestTensor> a, b;
  std::string wm;
  for (const WeightSpec& s : weight_specs(tiny_config(Arch::Qwen2, 2), true)) {
    const bool first = s.layer != 1 && s.role != WeightRole::LmHead;
    (first ? a : b)[s.name] = ts[s.name];
    wm += std::string(wm.empty() ? "" : ",") + "\"" + s.name + "\":\"" +
          (first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors") + "\"";
  }
  write_checkpoint(dir + "/model-00001-of-00002.safetensors", a);
  write_checkpoint(dir + "/model-00002-of-00002.safetensors", b);
  std::string index = "{\"metadata\":{\"total_size\":1},\"weight_map\":{" + wm + "}}";
  write_text(dir + "/model.safetensors.index.json", index);
  {
    ModelConfig cfg = load_config(dir);
    ModelWeights w = load_weights(dir, cfg);
    CHECK(w.lm_head.data != w.embed.data && w.lm_head.dtype == DType::F16);
    CHECK(tensor_get(w.lm_head, 1) == ts[weight_name(WeightRole::LmHead)].values[1]);
    CHECK(!w.layers[1].bv.empty() && w.layers[1].bv.dtype == DType::BF16 && w.layers[1].q_norm.empty());
    CHECK(w.files->file_of(weight_name(WeightRole::LmHead)) == dir + "/model-00002-of-00002.safetensors");
  }
  // The index names a shard that is not there.
  write_text(dir + "/model.safetensors.index.json",
             edit(index, "model-00002-of-00002.safetensors", "model-00003-of-00002.safetensors"));
  expect_error("index names missing shard", [&] { load_weights(dir, load_config(dir)); },
               {dir +
                "/model.safetensors.index.json: names shard 'model-00003-of-00002.safetensors', "
                "which is missing from " +
                dir});
  // A shard that breaks after another one mapped fine: nothing stays mapped.
  write_text(dir + "/model.safetensors.index.json", index);
  write_checkpoint(dir + "/model-00002-of-00002.safetensors", b, 0, 5);
  int before = mappings_under(dir);
  expect_error(
      "truncated second shard", [&] { load_weights(dir, load_config(dir)); },
      {dir + "/model-00002-of-00002.safetensors: tensor '", "but the data section holds only", "(truncated file?)"});
  CHECK(before == 0 && mappings_under(dir) == 0);
  // Untied by config, lm_head absent.
  write_checkpoint(dir + "/model-00002-of-00002.safetensors", b);
  {
    std::map<std::string, TestTensor> one = ts;
    one.erase(weight_name(WeightRole::LmHead));
    std::string d1 = tmp + "/qwen2-nohead";
    fs::create_directories(d1);
    write_text(d1 + "/config.json", kQwen2Config);
    write_checkpoint(d1 + "/model.safetensors", one);
    expect_error("untied, no lm_head", [&] { load_weights(d1, load_config(d1)); },
                 {d1 + ": missing tensor '" + weight_name(WeightRole::LmHead) +
                  "' (config.json sets tie_word_embeddings to false)"});
  }
  // Llama with a lone, oddly named file; tie absent and lm_head present: untied.
  dir = tmp + "/llama";
  fs::create_directories(dir);
  write_text(dir + "/config.json", edit(kLlama5x, "\"tie_word_embeddings\": false,", ""));
  write_checkpoint(dir + "/weights.safetensors", tiny_tensors(Arch::Llama, 2, true));
  {
    ModelWeights w = load_weights(dir, load_config(dir));
    CHECK(w.lm_head.data != w.embed.data && w.layers[0].bq.empty() && w.layers[0].q_norm.empty());
  }
}

// One folder per bad input: a valid Qwen3 model with one thing broken.
static void test_bad_inputs(const std::string& tmp) {
  std::printf("bad inputs\n");
  int n = 0;
  auto model = [&](std::map<std::string, TestTensor> ts, int64_t header_delta = 0, size_t cut = 0) {
    std::string dir = tmp + "/bad" + std::to_string(n++);
    fs::create_directories(dir);
    write_text(dir + "/config.json", kQwen3Config);
    write_checkpoint(dir + "/model.safetensors", ts, header_delta, cut);
    return dir;
  };
  auto load = [](const std::string& dir) { return [dir] { load_weights(dir, load_config(dir)); }; };
  auto good = [] { return tiny_tensors(Arch::Qwen3, 4, false); };

  std::string dir = tmp + "/noweights";
  fs::create_directories(dir);
  write_text(dir + "/config.json", kQwen3Config);
  expect_error("missing weights", load(dir), {dir + ": no model.safetensors or model.safetensors.index.json"});
  expect_error("missing folder", [&] { CheckpointFiles(tmp + "/nowhere"); },
               {tmp + "/nowhere: model folder does not exist"});

  dir = model(good(), 0, 7);
  expect_error("truncated safetensors", load(dir),
               {dir + "/model.safetensors: tensor '", "' needs bytes [", ") but the data section holds only ",
                " bytes (truncated file?)"});

  dir = model(good(), 1000000);
  expect_error("header claims too much", load(dir),
               {dir + "/model.safetensors: header claims ", " bytes but the file holds "});

  dir = tmp + "/tiny";
  fs::create_directories(dir);
  write_text(dir + "/model.safetensors", "abc");
  expect_error("file shorter than 8", [&] { CheckpointFiles{dir}; },
               {dir + "/model.safetensors: file is 3 bytes, too short"});

  dir = tmp + "/garbage";
  fs::create_directories(dir);
  write_text(dir + "/model.safetensors", std::string("\x04\0\0\0\0\0\0\0{\"a\"", 12));
  expect_error("header not JSON", [&] { CheckpointFiles{dir}; },
               {dir + "/model.safetensors (header): invalid JSON at byte 4: "});

  auto ts = good();
  ts[weight_name(WeightRole::Wq, 0)] = make("F16", {16, 4}, 0.0f);
  dir = model(ts);
  expect_error("wrong shape", load(dir),
               {dir + "/model.safetensors: tensor '" + weight_name(WeightRole::Wq, 0) +
                "' has shape [16, 4], expected [16, 8]"});

  ts = good();
  ts[weight_name(WeightRole::Up, 0)].dtype = "I8";
  ts[weight_name(WeightRole::Up, 0)].values.assign(16 * 8, 1.0f);
  dir = model(ts);
  expect_error("unsupported dtype", load(dir),
               {dir + "/model.safetensors: tensor '" + weight_name(WeightRole::Up, 0) +
                "' has dtype I8; supported: F32, F16, BF16"});

  ts = good();
  ts.erase(weight_name(WeightRole::KNorm, 1));
  dir = model(ts);
  expect_error("missing tensor", load(dir),
               {dir + ": missing tensor '" + weight_name(WeightRole::KNorm, 1) + "' (not in model.safetensors)"});

  ts = good();
  ts[weight_name(WeightRole::FinalNorm)].values.resize(7);  // 28 bytes for a shape of 8 floats
  dir = model(ts);
  expect_error("offsets vs shape", load(dir),
               {dir + "/model.safetensors: tensor '" + weight_name(WeightRole::FinalNorm) +
                    "' has dtype F32 and shape [8] (32 bytes) but its data_offsets [",
                ") span 28 bytes"});

  // Wrong vocab in the checkpoint compared to config.
  ts = good();
  ts[weight_name(WeightRole::Embed)] = make("BF16", {13, 8}, 0.0f);
  dir = model(ts);
  expect_error("embedding rows", load(dir),
               {"tensor '" + weight_name(WeightRole::Embed) + "' has shape [13, 8], expected [12, 8]"});

  // Overlapping tensors: hand-written header.
  dir = tmp + "/overlap";
  fs::create_directories(dir);
  std::string h =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  std::string file;
  for (int i = 0; i < 8; ++i) file += char((h.size() >> (8 * i)) & 0xFF);
  file += h + std::string(12, '\0');
  write_text(dir + "/model.safetensors", file);
  expect_error("overlapping tensors", [&] { CheckpointFiles{dir}; },
               {dir + "/model.safetensors: tensors 'a' and 'b' overlap"});
}

int main() {
  std::string tmp = (fs::temp_directory_path() / "hw_test_loader_XXXXXX").string();
  if (!mkdtemp(tmp.data())) {
    std::perror("mkdtemp");
    return 2;
  }
  try {
    test_json();
    test_conversions();
    test_configs(tmp);
    test_model(tmp);
    test_bad_inputs(tmp);
  } catch (const std::exception& e) {
    ++g_failures;
    std::fprintf(stderr, "unexpected exception: %s\n", e.what());
  }
  fs::remove_all(tmp);
  std::printf("%d checks, %d failed\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
