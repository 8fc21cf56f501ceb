// Random Hogwild attention problems and their double-precision reference, shared by the CUDA
// kernel's test (test_attention_cuda.cpp) and the GPU-free check of its plan arithmetic
// (test_attention_cuda_plan.cpp).
//
// The reference follows the method literally: it takes the keys exactly as stored (bf16, rotated
// at their block-local index j), un-rotates them, rotates each to its view position offset + j,
// materialises every row's view and computes a plain softmax in double.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "../../src/config.h"
#include "../../src/cpu/rope.h"
#include "../../src/cuda/attention.h"

namespace attn_cases {

using namespace hw::cuda;
using hw::ModelConfig;
using hw::Rope;
using hw::RopeScaling;

enum class Layout { Contiguous, Interleaved, Combined, Prefill };
inline const char* layout_name(Layout l) {
  switch (l) {
    case Layout::Contiguous:
      return "contiguous";
    case Layout::Interleaved:
      return "interleaved";
    case Layout::Combined:
      return "combined";
    default:
      return "prefill";
  }
}

struct Case {
  AttnDims dims;
  Layout layout;
  int workers;
  int max_new;  // tokens per row drawn from 1..max_new
  bool q_bf16, out_bf16, llama3, shares;
  unsigned seed;
  int prompt = 0;  // > 0: the prompt block's length (the engine benchmark's 1k context); 0: drawn
};

inline float bf16_to_float(uint16_t b) {
  uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t float_to_bf16(float f) {  // round to nearest even
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fff + ((u >> 16) & 1);
  return uint16_t(u >> 16);
}

// Rotation in double with the model's frequencies (fp32 values, as the engine computes them).
inline void rotate_d(const double* x, double* y, double pos, const std::vector<float>& inv, int hd) {
  const int half = hd / 2;
  for (int i = 0; i < half; i++) {
    const double a = pos * double(inv[i]), c = std::cos(a), s = std::sin(a);
    const double x0 = x[i], x1 = x[i + half];
    y[i] = x0 * c - x1 * s;
    y[i + half] = x1 * c + x0 * s;
  }
}

struct Built {
  AttnProblem problem;
  std::vector<int> block_len;
  int pages = 0;
};

// Random block structure of one layout. Rows are workers; each row's new tokens are the last
// `tokens` keys of its own block, which ends its view.
inline Built build_problem(const Case& cs, std::mt19937& rng) {
  Built b;
  const int pt = cs.dims.page_tokens;
  auto rnd = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto new_block = [&](int len) {
    b.block_len.push_back(len);
    return int(b.block_len.size()) - 1;
  };
  // Lengths that hit the edge cases: empty, one token, odd, across tile and page edges.
  auto any_len = [&](int hi) {
    const int k = rnd(0, 5);
    return k == 0 ? 0 : k == 1 ? 1 : k == 2 ? 64 : rnd(2, hi);
  };
  const int W = cs.workers;
  std::vector<int> tokens(W);
  for (int w = 0; w < W; w++) tokens[w] = cs.layout == Layout::Prefill ? 0 : rnd(1, cs.max_new);

  const int prompt = new_block(cs.layout == Layout::Prefill ? rnd(200, 400) : cs.prompt > 0 ? cs.prompt : rnd(1, 300));
  std::vector<int> history, own(W);
  if (cs.layout != Layout::Contiguous && cs.layout != Layout::Prefill)
    for (int k = rnd(0, 6); k > 0; k--) history.push_back(new_block(any_len(200)));
  for (int w = 0; w < W; w++) own[w] = new_block(tokens[w] + any_len(150));
  const int hdr_others = cs.layout == Layout::Combined ? new_block(rnd(0, 9)) : -1;
  const int hdr_own = cs.layout == Layout::Combined ? new_block(rnd(1, 7)) : -1;

  for (int w = 0; w < W; w++) {
    AttnRow row;
    std::vector<int> view{prompt};
    if (cs.layout == Layout::Prefill) {
      row.tokens = b.block_len[prompt];  // the whole prompt in one row, keys written this step
    } else {
      row.tokens = tokens[w];
      for (int h : history) view.push_back(h);
      if (cs.layout == Layout::Combined) view.push_back(hdr_others);
      if (cs.layout != Layout::Interleaved)
        for (int v = 0; v < W; v++)
          if (v != w) view.push_back(own[v]);
      if (cs.layout == Layout::Combined) view.push_back(hdr_own);
      view.push_back(own[w]);
    }
    int off = 0;
    for (int blk : view) {
      row.view.push_back({blk, off, b.block_len[blk]});
      off += b.block_len[blk];
    }
    row.first_position = off - row.tokens;
    b.problem.rows.push_back(row);
    if (cs.layout == Layout::Prefill) break;
  }
  // An occasional row with no tokens (the plan must carry it without output).
  if (cs.layout != Layout::Prefill && rnd(0, 3) == 0) {
    AttnRow empty;
    empty.view.push_back({prompt, 0, b.block_len[prompt]});
    b.problem.rows.insert(b.problem.rows.begin() + rnd(0, int(b.problem.rows.size())), empty);
  }
  // Pages in shuffled order, as a cache that has been forked and freed looks.
  int total_pages = 0;
  for (int len : b.block_len) total_pages += (len + pt - 1) / pt + (rnd(0, 3) == 0);
  std::vector<int> ids(total_pages);
  for (int i = 0; i < total_pages; i++) ids[i] = i;
  std::shuffle(ids.begin(), ids.end(), rng);
  int next = 0;
  b.problem.block_pages.resize(b.block_len.size());
  for (size_t k = 0; k < b.block_len.size(); k++) {
    const int n = (b.block_len[k] + pt - 1) / pt;
    for (int i = 0; i < n; i++) b.problem.block_pages[k].push_back(ids[next++]);
  }
  b.pages = total_pages;
  // What the engine tells the kernel: each row's new tokens are the keys this forward writes (the
  // rest was written before; the short kernel reads those before its PDL wait).
  b.problem.block_fresh_from = b.block_len;
  if (cs.layout == Layout::Prefill)
    b.problem.block_fresh_from[prompt] = 0;
  else
    for (int w = 0; w < W; w++) b.problem.block_fresh_from[own[w]] = b.block_len[own[w]] - tokens[w];
  return b;
}

// A drawn problem with its pages, queries and reference outputs.
struct CaseData {
  Built b;
  ModelConfig mc;
  std::vector<float> inv;       // RoPE frequencies, as the engine computes them
  std::vector<uint16_t> pages;  // bf16, [page][layer][K,V][kv_head][token][head_dim]
  std::vector<float> q;         // [T][heads][head_dim]
  int T = 0, layer = 0, segments = 0;
  std::vector<double> ref;     // [T][heads][head_dim]
  std::vector<double> ref_sh;  // [segments]: the last token's share per view segment
};

inline CaseData make_case(const Case& cs) {
  CaseData cd;
  std::mt19937 rng(cs.seed);
  const AttnDims& d = cs.dims;
  const int HD = d.head_dim, group = d.heads / d.kv_heads, pt = d.page_tokens;
  cd.b = build_problem(cs, rng);
  const Built& b = cd.b;
  const AttnProblem& p = b.problem;

  ModelConfig& mc = cd.mc;
  mc.heads = d.heads, mc.kv_heads = d.kv_heads, mc.head_dim = HD, mc.hidden = d.heads * HD;
  mc.rope_theta = 1e6f;
  if (cs.llama3) {
    mc.rope_theta = 5e5f;
    mc.rope_scaling = RopeScaling{true, 8.0f, 1.0f, 4.0f, 8192};
  }
  cd.inv = Rope(mc).inv_freq();
  const std::vector<float>& inv = cd.inv;

  // Pages: random bf16 K/V in every layer (the kernel must pick the right one).
  const size_t page_elems = kv_page_elems(d);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<uint16_t>& pages = cd.pages;
  pages.resize(size_t(b.pages) * page_elems);
  for (auto& x : pages) x = float_to_bf16(u(rng));
  int& T = cd.T;
  for (const AttnRow& r : p.rows) T += r.tokens;
  const float q_scale = std::uniform_real_distribution<float>(0.5f, 4.f)(rng);  // flat to peaked
  std::vector<float>& q = cd.q;
  q.resize(size_t(T) * d.heads * HD);
  for (auto& x : q) x = u(rng) * q_scale;
  if (cs.q_bf16)
    for (auto& x : q) x = bf16_to_float(float_to_bf16(x));
  const int layer = cd.layer = d.layers - 1;

  // Reference.
  std::vector<double>& ref = cd.ref;
  ref.assign(q.size(), 0.0);
  int& segments = cd.segments;
  for (const AttnRow& r : p.rows) segments += int(r.view.size());
  std::vector<double>& ref_sh = cd.ref_sh;
  ref_sh.assign(segments, 0.0);
  const double scale = 1.0 / std::sqrt(double(HD));
  std::vector<double> qd(HD), qr(HD), kd(HD), ku(HD);
  int t0 = 0, seg0 = 0;
  for (const AttnRow& row : p.rows) {
    for (int kvh = 0; kvh < d.kv_heads; kvh++) {
      // The row's view materialised: keys rotated to their view positions, values, segment of each.
      std::vector<double> keys, vals;
      std::vector<int> key_pos, key_seg;
      for (size_t s = 0; s < row.view.size(); s++) {
        const AttnSegment& sg = row.view[s];
        for (int j = 0; j < sg.length; j++) {
          const int page = p.block_pages[sg.block][j / pt];
          const uint16_t* kst = pages.data() + size_t(page) * page_elems + kv_elem_offset(d, layer, 0, kvh, j % pt);
          const uint16_t* vst = pages.data() + size_t(page) * page_elems + kv_elem_offset(d, layer, 1, kvh, j % pt);
          for (int e = 0; e < HD; e++) kd[e] = bf16_to_float(kst[e]);
          rotate_d(kd.data(), ku.data(), -double(j), inv, HD);             // unrotated key
          rotate_d(ku.data(), kd.data(), double(sg.offset + j), inv, HD);  // at its view position
          keys.insert(keys.end(), kd.begin(), kd.end());
          for (int e = 0; e < HD; e++) vals.push_back(bf16_to_float(vst[e]));
          key_pos.push_back(sg.offset + j);
          key_seg.push_back(int(s));
        }
      }
      for (int i = 0; i < row.tokens; i++) {
        const int pos = row.first_position + i;
        for (int g = 0; g < group; g++) {
          const int head = kvh * group + g;
          const float* qt = q.data() + (size_t(t0 + i) * d.heads + head) * HD;
          for (int e = 0; e < HD; e++) qd[e] = qt[e];
          rotate_d(qd.data(), qr.data(), double(pos), inv, HD);
          std::vector<double> w(key_pos.size(), 0.0);
          double mx = -INFINITY;
          for (size_t k = 0; k < key_pos.size(); k++) {
            if (key_pos[k] > pos) continue;
            double sdot = 0;
            for (int e = 0; e < HD; e++) sdot += qr[e] * keys[k * HD + e];
            w[k] = sdot * scale;
            mx = std::max(mx, w[k]);
          }
          double tot = 0;
          for (size_t k = 0; k < key_pos.size(); k++) {
            w[k] = key_pos[k] > pos ? 0.0 : std::exp(w[k] - mx);
            tot += w[k];
          }
          double* o = ref.data() + (size_t(t0 + i) * d.heads + head) * HD;
          for (size_t k = 0; k < key_pos.size(); k++)
            if (w[k] > 0)
              for (int e = 0; e < HD; e++) o[e] += w[k] / tot * vals[k * HD + e];
          if (i == row.tokens - 1)
            for (size_t k = 0; k < key_pos.size(); k++) ref_sh[seg0 + key_seg[k]] += w[k] / tot / d.heads;
        }
      }
    }
    t0 += row.tokens;
    seg0 += int(row.view.size());
  }

  return cd;
}

}  // namespace attn_cases
