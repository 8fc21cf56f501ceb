#include "weight_names.h"

namespace hw {

std::string weight_name(WeightRole role, int layer) {
  const std::string p = "model.layers." + std::to_string(layer) + ".";
  switch (role) {
    case WeightRole::Embed:
      return "model.embed_tokens.weight";
    case WeightRole::AttnNorm:
      return p + "input_layernorm.weight";
    case WeightRole::Wq:
      return p + "self_attn.q_proj.weight";
    case WeightRole::Wk:
      return p + "self_attn.k_proj.weight";
    case WeightRole::Wv:
      return p + "self_attn.v_proj.weight";
    case WeightRole::Wo:
      return p + "self_attn.o_proj.weight";
    case WeightRole::Bq:
      return p + "self_attn.q_proj.bias";
    case WeightRole::Bk:
      return p + "self_attn.k_proj.bias";
    case WeightRole::Bv:
      return p + "self_attn.v_proj.bias";
    case WeightRole::QNorm:
      return p + "self_attn.q_norm.weight";
    case WeightRole::KNorm:
      return p + "self_attn.k_norm.weight";
    case WeightRole::MlpNorm:
      return p + "post_attention_layernorm.weight";
    case WeightRole::Gate:
      return p + "mlp.gate_proj.weight";
    case WeightRole::Up:
      return p + "mlp.up_proj.weight";
    case WeightRole::Down:
      return p + "mlp.down_proj.weight";
    case WeightRole::FinalNorm:
      return "model.norm.weight";
    case WeightRole::LmHead:
      return "lm_head.weight";
  }
  return "?";
}

std::vector<WeightSpec> weight_specs(const ModelConfig& cfg, bool lm_head) {
  const int64_t hidden = cfg.hidden, inter = cfg.intermediate, vocab = cfg.vocab;
  const int64_t q_dim = cfg.q_dim(), kv_dim = cfg.kv_dim(), head_dim = cfg.head_dim;
  std::vector<WeightSpec> out;
  auto add = [&](WeightRole role, int layer, std::vector<int64_t> shape, bool is_norm = false) {
    out.push_back({role, layer, weight_name(role, layer), std::move(shape), is_norm});
  };
  add(WeightRole::Embed, -1, {vocab, hidden});
  for (int i = 0; i < cfg.layers; ++i) {
    add(WeightRole::AttnNorm, i, {hidden}, true);
    add(WeightRole::MlpNorm, i, {hidden}, true);
    add(WeightRole::Wq, i, {q_dim, hidden});
    add(WeightRole::Wk, i, {kv_dim, hidden});
    add(WeightRole::Wv, i, {kv_dim, hidden});
    add(WeightRole::Wo, i, {hidden, q_dim});
    if (cfg.qkv_bias) {
      add(WeightRole::Bq, i, {q_dim});
      add(WeightRole::Bk, i, {kv_dim});
      add(WeightRole::Bv, i, {kv_dim});
    }
    if (cfg.qk_norm) {
      add(WeightRole::QNorm, i, {head_dim}, true);
      add(WeightRole::KNorm, i, {head_dim}, true);
    }
    add(WeightRole::Gate, i, {inter, hidden});
    add(WeightRole::Up, i, {inter, hidden});
    add(WeightRole::Down, i, {hidden, inter});
  }
  add(WeightRole::FinalNorm, -1, {hidden}, true);
  if (lm_head) add(WeightRole::LmHead, -1, {vocab, hidden});
  return out;
}

}  // namespace hw
