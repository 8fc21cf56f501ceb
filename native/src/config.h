// The shape of a decoder-only transformer, read from a Hugging Face config.json.
#pragma once
#include <string>
#include <vector>

namespace hw {

enum class Arch { Qwen2, Qwen3, Llama };

// Frequency scaling applied to RoPE (Llama 3.1+ "llama3" rope_type).
struct RopeScaling {
  bool llama3 = false;               // false: plain RoPE
  float factor = 1.0f;               // how much longer the context is than in pre-training
  float low_freq_factor = 1.0f;      // wavelengths above original/low are divided by factor
  float high_freq_factor = 1.0f;     // wavelengths below original/high are kept
  int original_max_position = 8192;  // context length of pre-training
};

struct ModelConfig {
  Arch arch = Arch::Qwen2;       // which family of block (biases, q/k norms)
  std::string arch_name;         // "Qwen2ForCausalLM", ... as written in config.json
  int hidden = 0;                // model width (hidden_size)
  int intermediate = 0;          // MLP width (intermediate_size)
  int layers = 0;                // number of decoder blocks (num_hidden_layers)
  int heads = 0;                 // query heads (num_attention_heads)
  int kv_heads = 0;              // key/value heads (num_key_value_heads), divides heads
  int head_dim = 0;              // width of one head (head_dim, else hidden / heads)
  int vocab = 0;                 // rows of the embedding (vocab_size)
  int max_context = 0;           // longest position the model supports (max_position_embeddings)
  float rms_eps = 1e-6f;         // RMSNorm epsilon (rms_norm_eps)
  float rope_theta = 10000.0f;   // RoPE base (rope_theta or rope_parameters.rope_theta)
  RopeScaling rope_scaling;      // optional frequency scaling
  bool tied_embeddings = false;  // lm_head shares the embedding matrix (tie_word_embeddings)
  bool tie_explicit = false;     // tie_word_embeddings was written; if not, a checkpoint
                                 // without lm_head.weight is taken as tied
  bool qkv_bias = false;         // q/k/v projections carry biases (Qwen2)
  bool qk_norm = false;          // per-head RMSNorm on q and k before RoPE (Qwen3)
  std::vector<int> eos_ids;      // end-of-sequence ids from config.json (eos_token_id)

  int q_dim() const { return heads * head_dim; }
  int kv_dim() const { return kv_heads * head_dim; }
  int group() const { return heads / kv_heads; }  // query heads per KV head
};

// Parses <dir>/config.json; both the transformers 4.x and 5.x dialects.
ModelConfig load_config(const std::string& dir);
// Parses config text; `where` names the source in error messages.
ModelConfig parse_config(const std::string& text, const std::string& where);

}  // namespace hw
