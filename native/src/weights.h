// The weights of one model, bound by name from the checkpoint and checked against the config.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "safetensors.h"

namespace hw {

struct LayerWeights {
  Tensor attn_norm;             // [hidden]
  Tensor wq, wk, wv, wo;        // [q_dim, hidden], [kv_dim, hidden] x2, [hidden, q_dim]
  Tensor bq, bk, bv;            // biases (Qwen2), empty otherwise
  Tensor q_norm, k_norm;        // [head_dim] per-head RMSNorm (Qwen3), empty otherwise
  Tensor mlp_norm;              // [hidden]
  Tensor w_gate, w_up, w_down;  // [intermediate, hidden] x2, [hidden, intermediate]
};

struct ModelWeights {
  std::unique_ptr<CheckpointFiles> files;  // owns the mappings every Tensor points into
  Tensor embed;                            // [vocab, hidden]
  std::vector<LayerWeights> layers;
  Tensor final_norm;  // [hidden]
  Tensor lm_head;     // [vocab, hidden]; the embedding when tied
};

// Maps <dir>'s safetensors and binds every tensor the config needs. Throws EngineError
// naming the file and the tensor on any missing tensor or wrong shape/dtype; nothing is
// kept half-loaded (the mappings are released on failure).
ModelWeights load_weights(const std::string& dir, const ModelConfig& cfg);

}  // namespace hw
