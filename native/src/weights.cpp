#include "weights.h"

#include "error.h"
#include "weight_names.h"

namespace hw {

// Where each tensor of the list goes.
static Tensor* slot(ModelWeights& w, const WeightSpec& s) {
  LayerWeights* l = s.layer >= 0 ? &w.layers[size_t(s.layer)] : nullptr;
  switch (s.role) {
    case WeightRole::Embed:
      return &w.embed;
    case WeightRole::AttnNorm:
      return &l->attn_norm;
    case WeightRole::Wq:
      return &l->wq;
    case WeightRole::Wk:
      return &l->wk;
    case WeightRole::Wv:
      return &l->wv;
    case WeightRole::Wo:
      return &l->wo;
    case WeightRole::Bq:
      return &l->bq;
    case WeightRole::Bk:
      return &l->bk;
    case WeightRole::Bv:
      return &l->bv;
    case WeightRole::QNorm:
      return &l->q_norm;
    case WeightRole::KNorm:
      return &l->k_norm;
    case WeightRole::MlpNorm:
      return &l->mlp_norm;
    case WeightRole::Gate:
      return &l->w_gate;
    case WeightRole::Up:
      return &l->w_up;
    case WeightRole::Down:
      return &l->w_down;
    case WeightRole::FinalNorm:
      return &w.final_norm;
    case WeightRole::LmHead:
      return &w.lm_head;
  }
  return nullptr;
}

ModelWeights load_weights(const std::string& dir, const ModelConfig& cfg) {
  // Everything binds into a local object first; a throw anywhere unmaps every file.
  ModelWeights w;
  w.files = std::make_unique<CheckpointFiles>(dir);
  const CheckpointFiles& f = *w.files;

  w.layers.resize(size_t(cfg.layers));
  for (const WeightSpec& spec : weight_specs(cfg, false)) *slot(w, spec) = f.require(spec.name, spec.shape);

  // Tied: transformers ignores a stored lm_head and reuses the embedding. When config.json
  // does not say either way, the checkpoint decides: no lm_head.weight means tied.
  const std::string lm_head = weight_name(WeightRole::LmHead);
  bool tied = cfg.tied_embeddings || (!cfg.tie_explicit && !f.find(lm_head));
  if (!tied && !f.find(lm_head))
    fail(dir, "missing tensor '" + lm_head + "' (config.json sets tie_word_embeddings to false)");
  w.lm_head = tied ? w.embed : f.require(lm_head, {cfg.vocab, cfg.hidden});
  return w;
}

}  // namespace hw
