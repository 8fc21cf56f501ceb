// The tensors of a checkpoint, by their Hugging Face names and shapes: the one list that the
// loader binds (weights.cpp) and that the tests and benchmarks write their checkpoints from.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "config.h"

namespace hw {

enum class WeightRole {
  Embed,
  AttnNorm,
  Wq,
  Wk,
  Wv,
  Wo,
  Bq,
  Bk,
  Bv,
  QNorm,
  KNorm,
  MlpNorm,
  Gate,
  Up,
  Down,
  FinalNorm,
  LmHead
};

struct WeightSpec {
  WeightRole role;
  int layer;  // -1: not a layer's (embedding, final norm, lm_head)
  std::string name;
  std::vector<int64_t> shape;
  bool is_norm;  // an RMSNorm weight (writers start these near 1)
};

// "model.layers.3.self_attn.q_proj.weight", "model.embed_tokens.weight", ...
std::string weight_name(WeightRole role, int layer = -1);

// Every tensor the config needs, layer by layer; lm_head.weight only when `lm_head` (an
// untied checkpoint). The shapes are the ones the loader requires.
std::vector<WeightSpec> weight_specs(const ModelConfig& cfg, bool lm_head);

}  // namespace hw
