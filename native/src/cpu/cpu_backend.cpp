// The reference backend: the whole forward pass on the CPU in fp32 activations, weights read
// straight from the mapping. Every other backend is checked against this one.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>

#include "../backend.h"
#include "../error.h"
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
  if (n >= kParallelTokens) par::parallel_for(n, 1, body);
  else body(0, n);
}

std::vector<float> widen(const Tensor& t) {
  std::vector<float> v;
  if (t.empty()) return v;
  v.resize(size_t(t.numel()));
  tensor_to_f32(t, 0, t.rows(), v.data());
  return v;
}

// *p += v, safe against other threads adding to the same float.
void atomic_add(float* p, float v) {
  float old, want;
  __atomic_load(p, &old, __ATOMIC_RELAXED);
  do want = old + v;
  while (!__atomic_compare_exchange(p, &old, &want, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

// Small per-layer vectors widened once to fp32 (norm weights and biases: a few KB).
struct LayerVectors {
  std::vector<float> attn_norm, mlp_norm, q_norm, k_norm, bq, bk, bv;
};

class CpuBackend final : public Backend {
 public:
  CpuBackend(const ModelConfig& cfg, const ModelWeights& w, const BackendOptions& opt)
      : cfg_(cfg), w_(w), rope_(cfg) {
    for (const LayerWeights& l : w.layers) {
      layer_vectors_.push_back({widen(l.attn_norm), widen(l.mlp_norm), widen(l.q_norm), widen(l.k_norm),
                                widen(l.bq), widen(l.bk), widen(l.bv)});
    }
    final_norm_ = widen(w.final_norm);
  }

  std::string name() const override { return "cpu"; }

  void ensure_pages(int pages) override {
    while (int(pages_.size()) < pages) pages_.emplace_back(new float[page_floats()]);
  }

  size_t kv_bytes() const override { return pages_.size() * page_floats() * sizeof(float); }

  void move_tokens(const std::vector<TokenMove>& moves, int delta) override {
    const int hd = cfg_.head_dim;
    for (const TokenMove& m : moves) {
      for (int l = 0; l < cfg_.layers; l++) {
        for (int h = 0; h < cfg_.kv_heads; h++) {
          const float* ks = key(m.src.page, l, h, m.src.index);
          float* kd = key(m.dst.page, l, h, m.dst.index);
          if (delta != 0) rope_.rotate(ks, kd, delta);
          else std::memcpy(kd, ks, hd * sizeof(float));
          std::memcpy(value(m.dst.page, l, h, m.dst.index), value(m.src.page, l, h, m.src.index),
                      hd * sizeof(float));
        }
      }
    }
  }

  void forward(const Batch& batch, const std::vector<RowPlan>& plans, const KvCache& cache,
               ForwardOutput& out) override;

 private:
  // Page layout: [layer][K,V][kv_head][token][head_dim].
  size_t page_floats() const {
    return size_t(cfg_.layers) * 2 * cfg_.kv_heads * page_tokens_ * cfg_.head_dim;
  }
  float* kv(int page, int layer, int which, int head, int index) const {
    size_t off = ((size_t(layer) * 2 + which) * cfg_.kv_heads + head) * page_tokens_ + index;
    return pages_[page].get() + off * cfg_.head_dim;
  }
  float* key(int page, int layer, int head, int index) const { return kv(page, layer, 0, head, index); }
  float* value(int page, int layer, int head, int index) const { return kv(page, layer, 1, head, index); }

  void attention(const Batch& batch, const std::vector<RowPlan>& plans, const KvCache& cache, int layer,
                 const std::vector<int>& row_start, const float* q, float* out, ForwardOutput& fo);

  const ModelConfig& cfg_;
  const ModelWeights& w_;
  Rope rope_;
  std::vector<LayerVectors> layer_vectors_;
  std::vector<float> final_norm_;
  std::vector<std::unique_ptr<float[]>> pages_;
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

  std::vector<float> x(size_t(T) * H), h(size_t(T) * H), q(size_t(T) * QD), k(size_t(T) * KD),
      v(size_t(T) * KD), att(size_t(T) * QD), gate(size_t(T) * I), up(size_t(T) * I);
  for (int t = 0; t < T; t++) {
    const BatchRow& row = batch.rows[row_of[t]];
    cpu::embed_row(w_.embed, row.tokens[t - row_start[row_of[t]]], x.data() + size_t(t) * H);
  }

  out.shares.clear();
  out.key_attention.clear();
  if (batch.attention_shares) {
    out.shares.resize(batch.rows.size());
    out.key_attention.resize(batch.rows.size());
    for (size_t r = 0; r < batch.rows.size(); r++) {
      const BatchRow& row = batch.rows[r];
      out.shares[r].assign(size_t(cfg_.layers) * row.view.size(), 0.0f);
      const int p = plans[r].first_position + int(row.tokens.size()) - 1;
      size_t keys = 0;
      for (size_t s = 0; s < row.view.size(); s++)
        keys += size_t(std::max(0, std::min(plans[r].segment_lengths[s], p - row.view[s].offset + 1)));
      out.key_attention[r].assign(keys, 0.0f);
    }
  }

  for (int l = 0; l < cfg_.layers; l++) {
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
        for (int hh = 0; hh < cfg_.heads; hh++) cpu::rmsnorm(qt + hh * HD, lv.q_norm.data(), HD, cfg_.rms_eps, qt + hh * HD);
        for (int hh = 0; hh < cfg_.kv_heads; hh++) cpu::rmsnorm(kt + hh * HD, lv.k_norm.data(), HD, cfg_.rms_eps, kt + hh * HD);
      }
      const RowPlan& plan = plans[r];
      const Slot s = plan.write_slots[i];
      const int local = cache.length(batch.rows[r].block) + i;
      for (int hh = 0; hh < cfg_.kv_heads; hh++) {
        rope_.rotate(kt + hh * HD, key(s.page, l, hh, s.index), local);
        std::memcpy(value(s.page, l, hh, s.index), vt + hh * HD, HD * sizeof(float));
      }
    });

    // Every row's K/V of this layer is in place: now attention (instant visibility).
    const auto t_att = std::chrono::steady_clock::now();
    attention(batch, plans, cache, l, row_start, q.data(), att.data(), out);
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

// One softmax over every visible key of every block in the row's view. The query is rotated
// once per block by (p - offset): with keys stored rotated at their block-local index j this
// gives exactly the logit of ordinary attention at relative distance p - (offset + j).
void CpuBackend::attention(const Batch& batch, const std::vector<RowPlan>& plans, const KvCache& cache,
                           int layer, const std::vector<int>& row_start, const float* q, float* out,
                           ForwardOutput& fo) {
  const int HD = cfg_.head_dim, QD = cfg_.q_dim(), group = cfg_.group();
  const float scale = 1.0f / std::sqrt(float(HD));
  const int T = row_start.back();
  const int n_heads = cfg_.heads;

  par::parallel_for(int64_t(T) * n_heads, 1, [&](int64_t th0, int64_t th1) {
    // Scratch kept per thread across calls (no allocation per head).
    thread_local std::vector<float> scores, qr, seg_mass;
    thread_local std::vector<int> seg_end;
    qr.resize(HD);
    for (int th = int(th0); th < int(th1); th++) {
      const int t = th / n_heads, head = th % n_heads, kvh = head / group;
      int r = int(std::upper_bound(row_start.begin(), row_start.end(), t) - row_start.begin()) - 1;
      const BatchRow& row = batch.rows[r];
      const RowPlan& plan = plans[r];
      const int p = plan.first_position + (t - row_start[r]);
      const float* qt = q + size_t(t) * QD + size_t(head) * HD;
      const size_t nseg = row.view.size();

      // Pass 1: all visible scores, in view order.
      scores.clear();
      seg_mass.assign(nseg, 0.0f);
      seg_end.assign(nseg, 0);
      float m = -INFINITY;
      for (size_t s = 0; s < nseg; s++) {
        const ViewSegment& seg = row.view[s];
        const int visible = std::min(plan.segment_lengths[s], p - seg.offset + 1);
        if (visible > 0) {
          rope_.rotate(qt, qr.data(), p - seg.offset);
          const std::vector<int>& pages = cache.pages(seg.block);
          for (int j = 0; j < visible; j++) {
            const float* kj = key(pages[j / page_tokens_], layer, kvh, j % page_tokens_);
            float sc = cpu::dot(qr.data(), kj, HD) * scale;
            scores.push_back(sc);
            m = std::max(m, sc);
          }
        }
        seg_end[s] = int(scores.size());
      }

      // Pass 2: softmax weights and the weighted sum of values.
      float* o = out + size_t(t) * QD + size_t(head) * HD;
      std::fill(o, o + HD, 0.0f);
      float total = 0.0f;
      int idx = 0;
      for (size_t s = 0; s < nseg; s++) {
        const ViewSegment& seg = row.view[s];
        const std::vector<int>& pages = cache.pages(seg.block);
        float mass = 0.0f;
        for (int j = 0; idx < seg_end[s]; j++, idx++) {
          const float e = scores[idx] = std::exp(scores[idx] - m);  // kept for the shares below
          mass += e;
          cpu::axpy(e, value(pages[j / page_tokens_], layer, kvh, j % page_tokens_), HD, o);
        }
        seg_mass[s] = mass;
        total += mass;
      }
      const float inv = total > 0.0f ? 1.0f / total : 0.0f;
      for (int d = 0; d < HD; d++) o[d] *= inv;

      // Share of attention per view segment (per layer) and per key (over all layers) for the
      // row's last token, averaged over heads.
      if (batch.attention_shares && t == row_start[r + 1] - 1) {
        float* sh = fo.shares[r].data() + size_t(layer) * nseg;
        for (size_t s = 0; s < nseg; s++) atomic_add(sh + s, seg_mass[s] * inv / float(n_heads));
        float* ka = fo.key_attention[r].data();
        const float w = inv / float(n_heads * cfg_.layers);
        for (int i = 0; i < int(scores.size()); i++) atomic_add(ka + i, scores[i] * w);
      }
    }
  });
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const ModelConfig& cfg, const ModelWeights& w,
                                          const BackendOptions& opt) {
  return std::make_unique<CpuBackend>(cfg, w, opt);
}

}  // namespace hw
