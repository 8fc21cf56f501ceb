#include "weights.h"

#include "error.h"

namespace hw {

ModelWeights load_weights(const std::string& dir, const ModelConfig& cfg) {
  // Everything binds into a local object first; a throw anywhere unmaps every file.
  ModelWeights w;
  w.files = std::make_unique<CheckpointFiles>(dir);
  const CheckpointFiles& f = *w.files;

  const int64_t hidden = cfg.hidden, inter = cfg.intermediate, vocab = cfg.vocab;
  const int64_t q_dim = cfg.q_dim(), kv_dim = cfg.kv_dim(), head_dim = cfg.head_dim;

  w.embed = f.require("model.embed_tokens.weight", {vocab, hidden});
  w.layers.resize(size_t(cfg.layers));
  for (int i = 0; i < cfg.layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    LayerWeights& l = w.layers[size_t(i)];
    l.attn_norm = f.require(p + "input_layernorm.weight", {hidden});
    l.wq = f.require(p + "self_attn.q_proj.weight", {q_dim, hidden});
    l.wk = f.require(p + "self_attn.k_proj.weight", {kv_dim, hidden});
    l.wv = f.require(p + "self_attn.v_proj.weight", {kv_dim, hidden});
    l.wo = f.require(p + "self_attn.o_proj.weight", {hidden, q_dim});
    if (cfg.qkv_bias) {
      l.bq = f.require(p + "self_attn.q_proj.bias", {q_dim});
      l.bk = f.require(p + "self_attn.k_proj.bias", {kv_dim});
      l.bv = f.require(p + "self_attn.v_proj.bias", {kv_dim});
    }
    if (cfg.qk_norm) {
      l.q_norm = f.require(p + "self_attn.q_norm.weight", {head_dim});
      l.k_norm = f.require(p + "self_attn.k_norm.weight", {head_dim});
    }
    l.mlp_norm = f.require(p + "post_attention_layernorm.weight", {hidden});
    l.w_gate = f.require(p + "mlp.gate_proj.weight", {inter, hidden});
    l.w_up = f.require(p + "mlp.up_proj.weight", {inter, hidden});
    l.w_down = f.require(p + "mlp.down_proj.weight", {hidden, inter});
  }
  w.final_norm = f.require("model.norm.weight", {hidden});

  // Tied: transformers ignores a stored lm_head and reuses the embedding. When config.json
  // does not say either way, the checkpoint decides: no lm_head.weight means tied.
  bool tied = cfg.tied_embeddings || (!cfg.tie_explicit && !f.find("lm_head.weight"));
  if (!tied && !f.find("lm_head.weight"))
    fail(dir, "missing tensor 'lm_head.weight' (config.json sets tie_word_embeddings to false)");
  w.lm_head = tied ? w.embed : f.require("lm_head.weight", {vocab, hidden});
  return w;
}

}  // namespace hw
