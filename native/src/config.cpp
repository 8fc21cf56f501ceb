#include "config.h"

#include <climits>

#include "error.h"
#include "json.h"

namespace hw {

namespace {

const char* kSupported = "Qwen2ForCausalLM, Qwen3ForCausalLM, LlamaForCausalLM";

// Field readers: a field that is absent or null takes the default (the transformers class
// default); any other type or an out-of-range value is an error naming the field.
struct Fields {
  const Json& obj;
  const std::string& where;
  std::string prefix;  // "rope_scaling." for nested objects, so messages name the full path

  const Json* find(const char* key) const {
    const Json* v = obj.get(key);
    return v && !v->is_null() ? v : nullptr;
  }
  [[noreturn]] void bad(const char* key, const std::string& what) const {
    fail(where, "field '" + prefix + key + "' " + what);
  }

  int64_t integer(const char* key, int64_t def, bool required = false) const {
    const Json* v = find(key);
    if (!v) {
      if (required) bad(key, "is missing");
      return def;
    }
    if (!v->is_int()) bad(key, std::string("must be an integer, got ") + v->type_name());
    return v->as_int();
  }
  int positive(const char* key, int64_t def, bool required = false) const {
    int64_t n = integer(key, def, required);
    if (n <= 0 || n > INT_MAX) bad(key, "must be a positive integer, got " + std::to_string(n));
    return int(n);
  }
  double number(const char* key, double def, bool required = false) const {
    const Json* v = find(key);
    if (!v) {
      if (required) bad(key, "is missing");
      return def;
    }
    if (!v->is_number()) bad(key, std::string("must be a number, got ") + v->type_name());
    return v->as_double();
  }
  double positive_number(const char* key, double def, bool required = false) const {
    double x = number(key, def, required);
    if (!(x > 0)) bad(key, "must be positive, got " + std::to_string(x));
    return x;
  }
  bool boolean(const char* key, bool def) const {
    const Json* v = find(key);
    if (!v) return def;
    if (!v->is_bool()) bad(key, std::string("must be true or false, got ") + v->type_name());
    return v->as_bool();
  }
  std::string string(const char* key, const std::string& def) const {
    const Json* v = find(key);
    if (!v) return def;
    if (!v->is_string()) bad(key, std::string("must be a string, got ") + v->type_name());
    return v->as_string();
  }
};

// The family, from architectures[0] or else model_type.
void read_arch(const Json& j, const std::string& where, ModelConfig& c) {
  std::string name;
  const Json* archs = j.get("architectures");
  if (archs && archs->is_array() && archs->size() > 0 && archs->as_array()[0].is_string()) {
    name = archs->as_array()[0].as_string();
  } else if (archs && !archs->is_null() && !(archs->is_array() && archs->size() == 0)) {
    fail(where, "field 'architectures' must be a list of class names");
  } else {
    const Json* type = j.get("model_type");
    if (!type || !type->is_string())
      fail(where, "missing field 'architectures' (or 'model_type'); supported: " + std::string(kSupported));
    const std::string& t = type->as_string();
    name = t == "qwen2"   ? "Qwen2ForCausalLM"
           : t == "qwen3" ? "Qwen3ForCausalLM"
           : t == "llama" ? "LlamaForCausalLM"
                          : t;
  }
  if (name == "Qwen2ForCausalLM")
    c.arch = Arch::Qwen2;
  else if (name == "Qwen3ForCausalLM")
    c.arch = Arch::Qwen3;
  else if (name == "LlamaForCausalLM")
    c.arch = Arch::Llama;
  else
    fail(where, "unknown architecture '" + name + "' (supported: " + kSupported + ")");
  c.arch_name = name;
}

// RoPE base and scaling. transformers 4.x writes rope_theta + rope_scaling at the top level;
// 5.x writes rope_parameters {rope_theta, rope_type, ...}. Either may carry "llama3" scaling.
void read_rope(const Json& j, const std::string& where, ModelConfig& c) {
  Fields top{j, where, ""};
  double theta = top.positive_number("rope_theta", 10000.0);
  const Json* spec = nullptr;
  std::string spec_name;
  for (const char* key : {"rope_parameters", "rope_scaling"}) {
    const Json* v = top.find(key);
    if (!v) continue;
    if (!v->is_object()) top.bad(key, std::string("must be an object or null, got ") + v->type_name());
    spec = v;
    spec_name = key;
    break;  // rope_parameters (5.x) wins when a file carries both
  }
  c.rope_scaling = RopeScaling{};
  if (spec) {
    Fields f{*spec, where, spec_name + "."};
    theta = f.positive_number("rope_theta", theta);
    // 4.x files may say "type" instead of "rope_type".
    std::string type = f.string("rope_type", f.string("type", "default"));
    if (type == "llama3") {
      RopeScaling& s = c.rope_scaling;
      s.llama3 = true;
      s.factor = float(f.positive_number("factor", 0, true));
      s.low_freq_factor = float(f.positive_number("low_freq_factor", 0, true));
      s.high_freq_factor = float(f.positive_number("high_freq_factor", 0, true));
      s.original_max_position = f.positive("original_max_position_embeddings", 0, true);
      if (!(s.high_freq_factor > s.low_freq_factor))
        fail(where, spec_name + ": high_freq_factor must be greater than low_freq_factor");
    } else if (type != "default") {
      fail(where, spec_name + ": rope type '" + type + "' is not supported (supported: default, llama3)");
    }
  }
  c.rope_theta = float(theta);
}

void read_eos(const Json& j, const std::string& where, ModelConfig& c) {
  c.eos_ids.clear();
  const Json* v = j.get("eos_token_id");
  if (!v || v->is_null()) return;
  auto add = [&](const Json& id) {
    if (!id.is_int() || id.as_int() < 0 || id.as_int() > INT_MAX)
      fail(where, "field 'eos_token_id' must be a token id or a list of token ids");
    c.eos_ids.push_back(int(id.as_int()));
  };
  if (v->is_array()) {
    for (const Json& id : v->as_array()) add(id);
  } else {
    add(*v);
  }
}

ModelConfig config_from_json(const Json& j, const std::string& where) {
  if (!j.is_object()) fail(where, "expected a JSON object at the top level");
  ModelConfig c;
  read_arch(j, where, c);
  Fields f{j, where, ""};

  c.hidden = f.positive("hidden_size", 0, true);
  c.intermediate = f.positive("intermediate_size", 0, true);
  c.layers = f.positive("num_hidden_layers", 0, true);
  c.heads = f.positive("num_attention_heads", 0, true);
  c.vocab = f.positive("vocab_size", 0, true);
  c.kv_heads = f.positive("num_key_value_heads", c.heads);  // absent: plain multi-head attention
  if (c.heads % c.kv_heads != 0)
    fail(where, "num_attention_heads (" + std::to_string(c.heads) + ") is not a multiple of num_key_value_heads (" +
                    std::to_string(c.kv_heads) + ")");

  // Defaults below are those of the transformers config classes, used when a field is absent.
  if (c.arch == Arch::Qwen3) {
    c.head_dim = f.positive("head_dim", 128);
  } else if (f.find("head_dim")) {
    c.head_dim = f.positive("head_dim", 0);
  } else {
    if (c.hidden % c.heads != 0)
      fail(where, "hidden_size (" + std::to_string(c.hidden) + ") is not a multiple of " + "num_attention_heads (" +
                      std::to_string(c.heads) + ") and head_dim is absent");
    c.head_dim = c.hidden / c.heads;
  }
  c.max_context = f.positive("max_position_embeddings", c.arch == Arch::Llama ? 2048 : 32768);
  c.rms_eps = float(f.positive_number("rms_norm_eps", 1e-6));
  c.tied_embeddings = f.boolean("tie_word_embeddings", false);
  c.tie_explicit = f.find("tie_word_embeddings") != nullptr;
  read_rope(j, where, c);
  read_eos(j, where, c);

  // Qwen2 always has q/k/v biases. Llama and Qwen3 put attention_bias on q/k/v *and* o_proj,
  // and the engine has no o_proj bias: refuse rather than compute something else.
  c.qkv_bias = c.arch == Arch::Qwen2;
  c.qk_norm = c.arch == Arch::Qwen3;
  if (c.arch != Arch::Qwen2 && f.boolean("attention_bias", false))
    fail(where, "attention_bias true (biases on q/k/v/o projections) is not supported");
  if (f.boolean("mlp_bias", false)) fail(where, "mlp_bias true is not supported");
  std::string act = f.string("hidden_act", "silu");
  if (act != "silu") fail(where, "hidden_act '" + act + "' is not supported (supported: silu)");
  if (f.boolean("use_sliding_window", false))
    fail(where, "use_sliding_window true is not supported (sliding-window attention)");
  return c;
}

}  // namespace

ModelConfig parse_config(const std::string& text, const std::string& where) {
  return config_from_json(Json::parse(text, where), where);
}

ModelConfig load_config(const std::string& dir) {
  std::string path = dir.empty() || dir.back() == '/' ? dir + "config.json" : dir + "/config.json";
  return config_from_json(Json::parse_file(path), path);  // read errors name the path too
}

}  // namespace hw
