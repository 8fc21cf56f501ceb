// The reference backend: the whole forward pass on the CPU in fp32 activations, weights read
// straight from the mapping. Every other backend is checked against this one.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>

#include "../backend.h"
#include "../error.h"
#include "../attention_plan.h"
#include "attention.h"
#include "kernels.h"
#include "parallel.h"
#include "rope.h"

namespace hw {
namespace {

// Per-token loops (norms, activations) are cheap: a parallel region only pays off for many tokens.
constexpr int kParallelTokens = 16;

// Calls fn(t) for t in [0, n): on the model's threads for many tokens, else on this one.
template <class F>
void for_tokens(int n, F&& fn) {
  auto body = [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; t++) fn(int(t));
  };
  if (n >= kParallelTokens)
    par::parallel_for(n, 1, body);
  else
    body(0, n);
}

std::vector<float> widen(const Tensor& t) {
  std::vector<float> v;
  if (t.empty()) return v;
  v.resize(size_t(t.numel()));
  tensor_to_f32(t, 0, t.rows(), v.data());
  return v;
}

// Small per-layer vectors widened once to fp32 (norm weights and biases: a few KB).
struct LayerVectors {
  std::vector<float> attn_norm, mlp_norm, q_norm, k_norm, bq, bk, bv;
};

KvDType choose_kv_dtype(const std::string& want, DType weights) {
  if (want == "f32") return KvDType::F32;
  if (want == "bf16") return KvDType::BF16;
  if (want == "f16") return KvDType::F16;
  if (want == "q8") return KvDType::Q8;  // opt-in only: never the automatic choice
  if (want != "auto" && !want.empty())
    fail("cpu backend", "unknown KV dtype '" + want + "' (auto, f32, bf16, f16 or q8)");
  return weights == DType::BF16 ? KvDType::BF16 : weights == DType::F16 ? KvDType::F16 : KvDType::F32;
}

class CpuBackend final : public Backend {
 public:
  CpuBackend(const ModelConfig& cfg, const ModelWeights& w, const BackendOptions& opt) : cfg_(cfg), w_(w), rope_(cfg) {
    if (cfg.head_dim > 512) fail("cpu backend", "head_dim " + std::to_string(cfg.head_dim) + " is over 512");
    kv_dtype_ = choose_kv_dtype(opt.kv_dtype, w.layers.empty() ? w.embed.dtype : w.layers[0].wk.dtype);
    for (const LayerWeights& l : w.layers) {
      layer_vectors_.push_back({widen(l.attn_norm), widen(l.mlp_norm), widen(l.q_norm), widen(l.k_norm), widen(l.bq),
                                widen(l.bk), widen(l.bv)});
    }
    final_norm_ = widen(w.final_norm);
  }

  std::string name() const override { return "cpu"; }

  void ensure_pages(int pages) override {
    while (int(pages_.size()) < pages) {
      pages_.emplace_back(new uint8_t[page_bytes()]);
      page_ptrs_.push_back(pages_.back().get());
    }
  }

  size_t kv_bytes() const override { return pages_.size() * page_bytes(); }
  size_t kv_bytes_per_token() const override { return size_t(cfg_.layers) * token_layer_bytes(); }
  std::string kv_dtype() const override { return kv_dtype_name(kv_dtype_); }

  // Keys rotated on the way: de-quantised (or widened), rotated, stored again. Plain copies
  // (copy-on-write of a shared page) copy the bytes.
  void move_tokens(const std::vector<TokenMove>& moves, int delta) override {
    if (delta == 0) {
      for (const TokenMove& m : moves) copy_token(m.src, m.dst);
      return;
    }
    std::vector<float> k(cfg_.head_dim), kr(cfg_.head_dim), v(cfg_.head_dim);
    for (const TokenMove& m : moves) {
      for (int l = 0; l < cfg_.layers; l++) {
        for (int h = 0; h < cfg_.kv_heads; h++) {
          read_key(m.src.page, l, h, m.src.index, k.data());
          if (delta != 0) rope_.rotate(k.data(), kr.data(), delta);
          write_key(m.dst.page, l, h, m.dst.index, delta != 0 ? kr.data() : k.data());
          read_value(m.src.page, l, h, m.src.index, v.data());
          write_value(m.dst.page, l, h, m.dst.index, v.data());
        }
      }
    }
  }

  void forward(const Batch& batch, const std::vector<RowPlan>& plans, const KvCache& cache,
               ForwardOutput& out) override;

 private:
  // Page layout: per layer, K as [kv_head][head_dim][token] then V as [kv_head][token][head_dim]
  // (PagedKv in attention_plan.h), elements of kv_dtype_; q8 then has the key scales
  // [kv_head][block][token] and the value scales [kv_head][token][block] (bf16, kv_q8.h).
  size_t token_layer_bytes() const {
    const size_t kv = size_t(cfg_.kv_heads);
    const size_t elems = 2 * kv * cfg_.head_dim * kv_dtype_bytes(kv_dtype_);
    return kv_dtype_ == KvDType::Q8 ? elems + 2 * kv * q8_blocks(cfg_.head_dim) * sizeof(uint16_t) : elems;
  }
  size_t page_bytes() const { return size_t(cfg_.layers) * page_tokens_ * token_layer_bytes(); }
  PagedKv layer_kv(int layer) const {
    PagedKv kv;
    kv.dtype = kv_dtype_;
    kv.page_tokens = page_tokens_;
    kv.kv_heads = cfg_.kv_heads;
    kv.head_dim = cfg_.head_dim;
    kv.pages = page_ptrs_.data();
    const size_t es = kv_dtype_bytes(kv_dtype_), base = size_t(layer) * page_tokens_ * token_layer_bytes();
    const size_t k_elems = size_t(cfg_.kv_heads) * cfg_.head_dim * page_tokens_;
    kv.k_offset = base / es;
    kv.v_offset = kv.k_offset + k_elems;
    if (kv_dtype_ == KvDType::Q8) {  // bytes = elements here; the scales in bf16 units
      kv.ks_offset = (base + 2 * k_elems) / sizeof(uint16_t);
      kv.vs_offset = kv.ks_offset + size_t(cfg_.kv_heads) * q8_blocks(cfg_.head_dim) * page_tokens_;
    }
    return kv;
  }
  float load(int page, size_t i) const;  // element i of a 32- or 16-bit page
  void store(int page, size_t i, float x);
  int8_t* q8_data(int page) const { return reinterpret_cast<int8_t*>(pages_[page].get()); }
  uint16_t* q8_scales(int page) const { return reinterpret_cast<uint16_t*>(pages_[page].get()); }
  void read_key(int page, int layer, int head, int index, float* k) const {
    const PagedKv kv = layer_kv(layer);
    if (kv_dtype_ == KvDType::Q8)
      return q8_dequantize_row(q8_data(page) + kv.key_index(head, 0, index), size_t(page_tokens_),
                               q8_scales(page) + kv.key_scale_index(head, 0, index), size_t(page_tokens_),
                               cfg_.head_dim, k);
    for (int d = 0; d < cfg_.head_dim; d++) k[d] = load(page, kv.key_index(head, d, index));
  }
  void write_key(int page, int layer, int head, int index, const float* k) {
    const PagedKv kv = layer_kv(layer);
    if (kv_dtype_ == KvDType::Q8)
      return q8_quantize_row(k, 1, cfg_.head_dim, q8_data(page) + kv.key_index(head, 0, index), size_t(page_tokens_),
                             q8_scales(page) + kv.key_scale_index(head, 0, index), size_t(page_tokens_));
    for (int d = 0; d < cfg_.head_dim; d++) store(page, kv.key_index(head, d, index), k[d]);
  }
  void read_value(int page, int layer, int head, int index, float* v) const {
    const PagedKv kv = layer_kv(layer);
    const size_t base = kv.value_index(head, index);
    if (kv_dtype_ == KvDType::Q8)
      return q8_dequantize_row(q8_data(page) + base, 1, q8_scales(page) + kv.value_scale_index(head, index), 1,
                               cfg_.head_dim, v);
    for (int d = 0; d < cfg_.head_dim; d++) v[d] = load(page, base + d);
  }
  void write_value(int page, int layer, int head, int index, const float* v) {
    const PagedKv kv = layer_kv(layer);
    const size_t base = kv.value_index(head, index);
    if (kv_dtype_ == KvDType::Q8)
      return q8_quantize_row(v, 1, cfg_.head_dim, q8_data(page) + base, 1,
                             q8_scales(page) + kv.value_scale_index(head, index), 1);
    for (int d = 0; d < cfg_.head_dim; d++) store(page, base + d, v[d]);
  }
  // One token's K/V (and q8 scales) in every layer, byte for byte.
  void copy_token(Slot src, Slot dst) {
    const uint8_t* s = pages_[src.page].get();
    uint8_t* t = pages_[dst.page].get();
    const size_t es = kv_dtype_bytes(kv_dtype_), hd = size_t(cfg_.head_dim);
    for (int l = 0; l < cfg_.layers; l++) {
      const PagedKv kv = layer_kv(l);
      for (int h = 0; h < cfg_.kv_heads; h++) {
        for (int d = 0; d < cfg_.head_dim; d++)
          std::memcpy(t + kv.key_index(h, d, dst.index) * es, s + kv.key_index(h, d, src.index) * es, es);
        std::memcpy(t + kv.value_index(h, dst.index) * es, s + kv.value_index(h, src.index) * es, hd * es);
        if (kv_dtype_ != KvDType::Q8) continue;
        const int nb = q8_blocks(cfg_.head_dim);
        for (int b = 0; b < nb; b++)
          std::memcpy(t + kv.key_scale_index(h, b, dst.index) * 2, s + kv.key_scale_index(h, b, src.index) * 2, 2);
        std::memcpy(t + kv.value_scale_index(h, dst.index) * 2, s + kv.value_scale_index(h, src.index) * 2, nb * 2);
      }
    }
  }

  const ModelConfig& cfg_;
  const ModelWeights& w_;
  Rope rope_;
  std::vector<LayerVectors> layer_vectors_;
  std::vector<float> final_norm_;
  std::vector<std::unique_ptr<uint8_t[]>> pages_;
  std::vector<const void*> page_ptrs_;  // pages_[i].get(), in the form the attention op reads
  KvDType kv_dtype_ = KvDType::F32;
  RopeTable rope_table_;  // query rotations by relative distance, grown as views grow
  int page_tokens_ = 32;  // taken from the cache at each forward
};

void CpuBackend::forward(const Batch& batch, const std::vector<RowPlan>& plans, const KvCache& cache,
                         ForwardOutput& out) {
  page_tokens_ = cache.page_tokens();
  out.attention_ms = 0;
  const int H = cfg_.hidden, QD = cfg_.q_dim(), KD = cfg_.kv_dim(), HD = cfg_.head_dim;
  const int I = cfg_.intermediate;

  // Token t of the flattened batch belongs to row row_of[t]; row r owns [row_start[r], row_start[r+1]).
  std::vector<int> row_start{0};
  for (const BatchRow& r : batch.rows) row_start.push_back(row_start.back() + int(r.tokens.size()));
  const int T = row_start.back();
  std::vector<int> row_of(T);
  for (size_t r = 0; r < batch.rows.size(); r++)
    for (int t = row_start[r]; t < row_start[r + 1]; t++) row_of[t] = int(r);

  std::vector<float> x(size_t(T) * H), h(size_t(T) * H), q(size_t(T) * QD), k(size_t(T) * KD), v(size_t(T) * KD),
      att(size_t(T) * QD), gate(size_t(T) * I), up(size_t(T) * I);
  for (int t = 0; t < T; t++) {
    const BatchRow& row = batch.rows[row_of[t]];
    cpu::embed_row(w_.embed, row.tokens[t - row_start[row_of[t]]], x.data() + size_t(t) * H);
  }

  // The attention problem is the same in every layer.
  const AttnPlan plan = plan_attention(batch, plans, cache);
  rope_.extend(rope_table_, plan.max_position + 1);
  const float scale = 1.0f / std::sqrt(float(HD));
  const bool keys_wanted = batch.attention_shares && batch.key_attention;
  std::vector<float> seg_shares, key_shares;
  if (batch.attention_shares) seg_shares.resize(plan.segments.size());
  if (keys_wanted) key_shares.resize(size_t(plan.keys_total));

  out.shares.clear();
  out.key_attention.clear();
  if (batch.attention_shares) {
    out.shares.resize(batch.rows.size());
    if (keys_wanted) out.key_attention.resize(batch.rows.size());
    for (size_t r = 0; r < batch.rows.size(); r++) {
      const BatchRow& row = batch.rows[r];
      out.shares[r].assign(size_t(cfg_.layers) * row.view.size(), 0.0f);
      if (!keys_wanted) continue;
      const int p = plans[r].first_position + int(row.tokens.size()) - 1;
      size_t keys = 0;
      for (size_t s = 0; s < row.view.size(); s++)
        keys += size_t(std::max(0, std::min(plans[r].segment_lengths[s], p - row.view[s].offset + 1)));
      out.key_attention[r].assign(keys, 0.0f);
    }
  }

  for (int l = 0; l < cfg_.layers; l++) {
    if (batch.cancel && batch.cancel->load(std::memory_order_relaxed)) throw Cancelled();
    const LayerWeights& lw = w_.layers[l];
    const LayerVectors& lv = layer_vectors_[l];
    for_tokens(T, [&](int t) {
      cpu::rmsnorm(x.data() + size_t(t) * H, lv.attn_norm.data(), H, cfg_.rms_eps, h.data() + size_t(t) * H);
    });
    cpu::matmul(lw.wq, h.data(), T, q.data());
    cpu::matmul(lw.wk, h.data(), T, k.data());
    cpu::matmul(lw.wv, h.data(), T, v.data());

    // Biases, per-head q/k norms, then keys rotated at their block-local index and written.
    for_tokens(T, [&](int t) {
      const int r = row_of[t], i = t - row_start[r];
      float* qt = q.data() + size_t(t) * QD;
      float* kt = k.data() + size_t(t) * KD;
      float* vt = v.data() + size_t(t) * KD;
      if (cfg_.qkv_bias) {
        for (int j = 0; j < QD; j++) qt[j] += lv.bq[j];
        for (int j = 0; j < KD; j++) kt[j] += lv.bk[j], vt[j] += lv.bv[j];
      }
      if (cfg_.qk_norm) {
        for (int hh = 0; hh < cfg_.heads; hh++)
          cpu::rmsnorm(qt + hh * HD, lv.q_norm.data(), HD, cfg_.rms_eps, qt + hh * HD);
        for (int hh = 0; hh < cfg_.kv_heads; hh++)
          cpu::rmsnorm(kt + hh * HD, lv.k_norm.data(), HD, cfg_.rms_eps, kt + hh * HD);
      }
      const RowPlan& plan = plans[r];
      const Slot s = plan.write_slots[i];
      const int local = cache.length(batch.rows[r].block) + i;
      float kr[512];  // head_dim <= 512 (checked at construction)
      for (int hh = 0; hh < cfg_.kv_heads; hh++) {
        rope_.rotate(kt + hh * HD, kr, local);
        write_key(s.page, l, hh, s.index, kr);
        write_value(s.page, l, hh, s.index, vt + hh * HD);
      }
    });

    // Every row's K/V of this layer is in place: now attention (instant visibility).
    const auto t_att = std::chrono::steady_clock::now();
    if (batch.attention_shares) {
      cpu::AttnShares sh{seg_shares.data(), keys_wanted ? key_shares.data() : nullptr};
      cpu::attention(plan, layer_kv(l), rope_table_, cfg_.heads, scale, q.data(), att.data(), &sh);
      for (size_t r = 0; r < plan.rows.size(); r++) {
        const AttnRow& ar = plan.rows[r];
        for (int s = 0; s < ar.seg_count; s++)
          out.shares[r][size_t(l) * ar.seg_count + s] = seg_shares[ar.seg_begin + s];
        if (!keys_wanted) continue;
        for (size_t k = 0; k < out.key_attention[r].size(); k++)
          out.key_attention[r][k] += key_shares[ar.key_begin + k] / float(cfg_.layers);
      }
    } else {
      cpu::attention(plan, layer_kv(l), rope_table_, cfg_.heads, scale, q.data(), att.data());
    }
    out.attention_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_att).count();

    cpu::matmul(lw.wo, att.data(), T, h.data());
    for (size_t j = 0; j < size_t(T) * H; j++) x[j] += h[j];

    for_tokens(T, [&](int t) {
      cpu::rmsnorm(x.data() + size_t(t) * H, lv.mlp_norm.data(), H, cfg_.rms_eps, h.data() + size_t(t) * H);
    });
    cpu::matmul(lw.w_gate, h.data(), T, gate.data());
    cpu::matmul(lw.w_up, h.data(), T, up.data());
    for_tokens(T, [&](int t) {
      cpu::swiglu(gate.data() + size_t(t) * I, up.data() + size_t(t) * I, I, gate.data() + size_t(t) * I);
    });
    cpu::matmul(lw.w_down, gate.data(), T, h.data());
    for (size_t j = 0; j < size_t(T) * H; j++) x[j] += h[j];
  }

  // Logits only where asked: the last token of a row, or every token with all_logits.
  std::vector<int> picked;
  out.logit_row.assign(batch.rows.size(), -1);
  out.logit_count.assign(batch.rows.size(), 0);
  for (size_t r = 0; r < batch.rows.size(); r++) {
    const BatchRow& row = batch.rows[r];
    int first = row.all_logits ? row_start[r] : (row.logits ? row_start[r + 1] - 1 : row_start[r + 1]);
    if (first < row_start[r + 1]) out.logit_row[r] = int(picked.size());
    for (int t = first; t < row_start[r + 1]; t++) picked.push_back(t);
    out.logit_count[r] = row_start[r + 1] - first;
  }
  const int P = int(picked.size());
  std::vector<float> hp(size_t(P) * H);
  for_tokens(P, [&](int i) {
    cpu::rmsnorm(x.data() + size_t(picked[i]) * H, final_norm_.data(), H, cfg_.rms_eps, hp.data() + size_t(i) * H);
  });
  out.vocab = cfg_.vocab;
  out.logits.assign(size_t(P) * cfg_.vocab, 0.0f);
  if (P > 0) cpu::matmul(w_.lm_head, hp.data(), P, out.logits.data());
}

float CpuBackend::load(int page, size_t i) const {
  const uint8_t* p = pages_[page].get();
  if (kv_dtype_ == KvDType::F32) {
    float f;
    std::memcpy(&f, p + i * 4, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p + i * 2, 2);
  return kv_dtype_ == KvDType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
}

void CpuBackend::store(int page, size_t i, float x) {
  uint8_t* p = pages_[page].get();
  if (kv_dtype_ == KvDType::F32) {
    std::memcpy(p + i * 4, &x, 4);
    return;
  }
  const uint16_t h = kv_dtype_ == KvDType::BF16 ? f32_to_bf16(x) : f32_to_f16(x);
  std::memcpy(p + i * 2, &h, 2);
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const ModelConfig& cfg, const ModelWeights& w, const BackendOptions& opt) {
  return std::make_unique<CpuBackend>(cfg, w, opt);
}

}  // namespace hw
