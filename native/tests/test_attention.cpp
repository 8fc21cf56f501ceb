// The Hogwild attention op (cpu/attention.h) against a reference written here.
//
// The reference keeps every key unrotated, materialises each worker's view by rotating the
// keys to their view positions (offset + j) and the query to its position p, in double
// with its own RoPE, and computes a plain softmax in double. The op under test only ever
// sees keys rotated at their block-local index, as the engine stores them.
//
// In the manner of llm.c's dev/cuda and llama.cpp's test-backend-ops: one reference, one
// validator with normalised error bounds per K/V dtype, one timer. q8 K/V are checked twice:
// against the reference on the de-quantised K/V (what the op reads: a tight bound) and
// against the reference on the K/V before quantisation (the format's own error: looser). Random shapes: head_dim
// 64 and 128 (and 40, 8 for the vector tails), GQA ratios 1..8, page sizes that are and are
// not a multiple of the vector width, odd block lengths, empty and one-token blocks, 1..16
// rows (workers) with multi-token rows, every layout (contiguous, combined, interleaved,
// random orders with invisible segments), each instruction set this CPU runs.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "attention_plan.h"
#include "config.h"
#include "cpu/attention.h"
#include "cpu/parallel.h"
#include "cpu/rope.h"
#include "error.h"
#include "kv_q8.h"
#include "tensor.h"
#include "testing.h"

namespace {

using hw::AttnPlan;
using hw::KvDType;
using hw::PagedKv;

// ---- the problem: blocks of unrotated keys and values, rows with views --------------------
struct Block {
  std::vector<float> k0, v;  // [length][kv_heads][hd], keys unrotated
  int length = 0;
  std::vector<int> pages;
};
struct Seg {
  int block, offset;
};
struct Row {
  int block;  // the block its tokens were written into (its last `tokens` tokens)
  int tokens;
  int first_position;
  std::vector<Seg> view;
  std::vector<float> q;  // [tokens][heads][hd], unrotated
};
struct Problem {
  int hd, kv_heads, heads, page_tokens;
  double theta;
  std::vector<Block> blocks;
  std::vector<Row> rows;
};

// ---- reference --------------------------------------------------------------------------
void ref_rotate(const float* x, double pos, int hd, double theta, double* out) {
  const int half = hd / 2;
  for (int i = 0; i < half; i++) {
    const double f = std::pow(theta, -double(2 * i) / double(hd));
    const double c = std::cos(pos * f), s = std::sin(pos * f);
    out[i] = x[i] * c - x[i + half] * s;
    out[i + half] = x[i + half] * c + x[i] * s;
  }
}

struct RefOut {
  std::vector<double> out;                  // [tokens][heads][hd]
  std::vector<std::vector<double>> shares;  // per row: per segment (last token, head mean)
  std::vector<std::vector<double>> keys;    // per row: per visible key of the last token
};

// One worker's view of one KV head, materialised: keys rotated to their view positions.
struct View {
  std::vector<double> keys;  // [n][hd]
  std::vector<int> position, segment;
  std::vector<const float*> values;
};

View materialise(const Problem& P, const Row& row, int kvh) {
  View v;
  const int hd = P.hd;
  for (size_t s = 0; s < row.view.size(); s++) {
    const Block& b = P.blocks[row.view[s].block];
    for (int j = 0; j < b.length; j++) {
      const int pos = row.view[s].offset + j;
      v.keys.resize(v.keys.size() + hd);
      ref_rotate(b.k0.data() + (size_t(j) * P.kv_heads + kvh) * hd, pos, hd, P.theta,
                 v.keys.data() + v.keys.size() - hd);
      v.position.push_back(pos);
      v.segment.push_back(int(s));
      v.values.push_back(b.v.data() + (size_t(j) * P.kv_heads + kvh) * hd);
    }
  }
  return v;
}

RefOut reference(const Problem& P) {
  const int hd = P.hd, group = P.heads / P.kv_heads;
  const double scale = 1.0 / std::sqrt(double(hd));
  RefOut R;
  size_t total = 0;
  for (const Row& r : P.rows) total += size_t(r.tokens);
  R.out.assign(total * P.heads * hd, 0.0);
  size_t t_base = 0;
  std::vector<double> qr(hd);
  for (const Row& row : P.rows) {
    R.shares.emplace_back(row.view.size(), 0.0);
    std::vector<double> key_share;
    for (int kvh = 0; kvh < P.kv_heads; kvh++) {
      const View view = materialise(P, row, kvh);
      for (int i = 0; i < row.tokens; i++) {
        const int p = row.first_position + i;
        for (int h = kvh * group; h < (kvh + 1) * group; h++) {
          ref_rotate(row.q.data() + (size_t(i) * P.heads + h) * hd, p, hd, P.theta, qr.data());
          // Plain causal softmax over the view: key at view position x is visible iff x <= p.
          std::vector<double> w;
          std::vector<size_t> idx;
          for (size_t k = 0; k < view.position.size(); k++) {
            if (view.position[k] > p) continue;
            double dot = 0;
            for (int d = 0; d < hd; d++) dot += qr[d] * view.keys[k * hd + d];
            w.push_back(dot * scale);
            idx.push_back(k);
          }
          if (w.empty()) continue;  // nothing visible: the output stays zero
          const double m = *std::max_element(w.begin(), w.end());
          double sum = 0;
          for (double& x : w) sum += (x = std::exp(x - m));
          double* o = R.out.data() + ((t_base + i) * P.heads + h) * hd;
          for (size_t k = 0; k < w.size(); k++)
            for (int d = 0; d < hd; d++) o[d] += w[k] / sum * view.values[idx[k]][d];
          if (i == row.tokens - 1) {
            key_share.resize(w.size(), 0.0);
            for (size_t k = 0; k < w.size(); k++) {
              key_share[k] += w[k] / sum / P.heads;
              R.shares.back()[size_t(view.segment[idx[k]])] += w[k] / sum / P.heads;
            }
          }
        }
      }
    }
    R.keys.push_back(key_share);
    t_base += size_t(row.tokens);
  }
  return R;
}

// ---- the op's input: pages in the engine's layout, keys rotated at the block-local index --
uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

struct Paged {
  std::vector<std::vector<uint8_t>> storage;
  std::vector<const void*> ptrs;
  PagedKv kv;
};

// Rounds x to the dtype and back (so the reference sees exactly what the op reads).
float round_to(KvDType dt, float x) {
  if (dt == KvDType::F32) return x;
  if (dt == KvDType::BF16) return hw::bf16_to_f32(to_bf16(x));
  return hw::f16_to_f32(hw::f32_to_f16(x));
}

void store(KvDType dt, uint8_t* base, size_t index, float x) {
  if (dt == KvDType::F32)
    std::memcpy(base + index * 4, &x, 4);
  else {
    const uint16_t h = dt == KvDType::BF16 ? to_bf16(x) : hw::f32_to_f16(x);
    std::memcpy(base + index * 2, &h, 2);
  }
}

// q8: one token's rotated key and its value quantised into a page (the engine's layout);
// then the block's unrotated key and value replaced by what the page decodes to, so that the
// reference sees exactly what the op reads (the key un-rotated in double).
void store_q8(Problem& P, Block& b, int j, const PagedKv& kv, uint8_t* base, std::vector<double>& kr) {
  const int hd = P.hd, in_page = j % P.page_tokens;
  int8_t* q = reinterpret_cast<int8_t*>(base);
  uint16_t* sc = reinterpret_cast<uint16_t*>(base);
  std::vector<float> kf(hd), dq(hd);
  for (int h = 0; h < P.kv_heads; h++) {
    float* k0 = b.k0.data() + (size_t(j) * P.kv_heads + h) * hd;
    float* v = b.v.data() + (size_t(j) * P.kv_heads + h) * hd;
    ref_rotate(k0, j, hd, P.theta, kr.data());
    for (int d = 0; d < hd; d++) kf[d] = float(kr[d]);
    hw::q8_quantize_row(kf.data(), 1, hd, q + kv.key_index(h, 0, in_page), size_t(P.page_tokens),
                        sc + kv.key_scale_index(h, 0, in_page), size_t(P.page_tokens));
    hw::q8_dequantize_row(q + kv.key_index(h, 0, in_page), size_t(P.page_tokens),
                          sc + kv.key_scale_index(h, 0, in_page), size_t(P.page_tokens), hd, dq.data());
    ref_rotate(dq.data(), -double(j), hd, P.theta, kr.data());
    for (int d = 0; d < hd; d++) k0[d] = float(kr[d]);
    hw::q8_quantize_row(v, 1, hd, q + kv.value_index(h, in_page), 1, sc + kv.value_scale_index(h, in_page), 1);
    hw::q8_dequantize_row(q + kv.value_index(h, in_page), 1, sc + kv.value_scale_index(h, in_page), 1, hd, v);
  }
}

// Lays the blocks out in pages (in a shuffled page order), filling unused slots with NaN
// so that reading a slot past a block's end cannot go unnoticed (q8: NaN scales).
Paged make_pages(Problem& P, KvDType dt, std::mt19937& rng, bool token_major = false) {
  Paged pg;
  const int pt = P.page_tokens, hd = P.hd;
  int n_pages = 0;
  for (Block& b : P.blocks) n_pages += (b.length + pt - 1) / pt;
  std::vector<int> order(n_pages);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  pg.kv = PagedKv{dt, pt, P.kv_heads, hd, nullptr, 0, size_t(P.kv_heads) * hd * pt, token_major};
  const size_t page_elems = 2 * size_t(P.kv_heads) * hd * pt, es = hw::kv_dtype_bytes(dt);
  // q8: [K int8][V int8][K scales][V scales], the scales in bf16 units from the page's base.
  const size_t scales = dt == KvDType::Q8 ? size_t(P.kv_heads) * hw::q8_blocks(hd) * pt : 0;
  pg.kv.ks_offset = page_elems / 2;
  pg.kv.vs_offset = pg.kv.ks_offset + scales;
  pg.storage.assign(n_pages, std::vector<uint8_t>(page_elems * es + 2 * scales * 2));
  for (auto& s : pg.storage) {
    if (dt == KvDType::Q8) {
      std::fill(s.begin(), s.begin() + page_elems, uint8_t(0x7f));
      const uint16_t nan_bf16 = 0x7fc0;
      for (size_t e = 0; e < 2 * scales; e++) std::memcpy(s.data() + (pg.kv.ks_offset + e) * 2, &nan_bf16, 2);
    } else {
      for (size_t e = 0; e < page_elems; e++) store(dt, s.data(), e, NAN);
    }
  }
  int next = 0;
  std::vector<double> kr(hd);
  for (Block& b : P.blocks) {
    b.pages.clear();
    for (int j = 0; j < b.length; j++) {
      if (j % pt == 0) b.pages.push_back(order[next++]);
      uint8_t* base = pg.storage[b.pages.back()].data();
      if (dt == KvDType::Q8) {
        store_q8(P, b, j, pg.kv, base, kr);
        continue;
      }
      for (int h = 0; h < P.kv_heads; h++) {
        float* v = b.v.data() + (size_t(j) * P.kv_heads + h) * hd;
        ref_rotate(b.k0.data() + (size_t(j) * P.kv_heads + h) * hd, j, hd, P.theta, kr.data());
        for (int d = 0; d < hd; d++) {
          store(dt, base, pg.kv.key_index(h, d, j % pt), float(kr[d]));
          v[d] = round_to(dt, v[d]);
          store(dt, base, pg.kv.value_index(h, j % pt) + d, v[d]);
        }
      }
    }
  }
  for (auto& s : pg.storage) pg.ptrs.push_back(s.data());
  pg.kv.pages = pg.ptrs.data();
  return pg;
}

AttnPlan make_plan(const Problem& P) {
  AttnPlan plan;
  for (const Row& r : P.rows) {
    hw::plan_add_row(plan, r.tokens, r.first_position);
    for (const Seg& s : r.view) {
      const Block& b = P.blocks[s.block];
      hw::plan_add_segment(plan, b.pages.data(), P.page_tokens, b.length, s.offset);
    }
  }
  return plan;
}

// ---- random problems ----------------------------------------------------------------------
enum class Layout { Contiguous, Combined, Interleaved, Random };
const char* layout_name(Layout l) {
  return l == Layout::Contiguous    ? "contiguous"
         : l == Layout::Combined    ? "combined"
         : l == Layout::Interleaved ? "interleaved"
                                    : "random";
}

int odd_length(std::mt19937& rng, int max) {
  const int pick = int(rng() % 6);
  if (pick == 0) return 0;
  if (pick == 1) return 1;
  return int(rng() % unsigned(max)) | 1;
}

Problem make_problem(std::mt19937& rng, int hd, int kv_heads, int group, int page_tokens, int workers, Layout layout,
                     int max_tokens) {
  Problem P{hd, kv_heads, kv_heads * group, page_tokens, rng() % 2 ? 10000.0 : 1000000.0, {}, {}};
  std::normal_distribution<float> nd(0.0f, 1.0f);
  auto add_block = [&](int length) {
    Block b;
    b.length = length;
    b.k0.resize(size_t(length) * kv_heads * hd);
    b.v.resize(b.k0.size());
    // Keys with a common direction make the softmax peaked, as in real models.
    for (float& x : b.k0) x = 1.5f * nd(rng);
    for (float& x : b.v) x = nd(rng);
    P.blocks.push_back(std::move(b));
    return int(P.blocks.size()) - 1;
  };
  const int prompt = add_block(int(rng() % 200) + 1);
  std::vector<int> history;  // finished steps, each its own block (interleaved / combined)
  for (int i = int(rng() % 4); i > 0; i--) history.push_back(add_block(odd_length(rng, 90)));
  const int header = add_block(int(rng() % 5));
  std::vector<int> own(workers), tokens(workers);
  for (int w = 0; w < workers; w++) {
    const int pick = int(rng() % 4);
    tokens[w] = pick == 0 ? 1 : pick == 1 ? int(rng() % unsigned(max_tokens)) + 1 : int(rng() % 9) + 1;
    own[w] = add_block(tokens[w] + odd_length(rng, 60));
  }
  for (int w = 0; w < workers; w++) {
    std::vector<int> order;
    switch (layout) {
      case Layout::Contiguous:  // [prompt, others in id order, own]
        order.push_back(prompt);
        for (int u = 0; u < workers; u++)
          if (u != w) order.push_back(own[u]);
        order.push_back(own[w]);
        break;
      case Layout::Interleaved:  // [prompt, finished steps, own]
        order.push_back(prompt);
        for (int h : history) order.push_back(h);
        order.push_back(own[w]);
        break;
      case Layout::Combined:  // [prompt, history, others' unfinished, header, own]
        order.push_back(prompt);
        for (int h : history) order.push_back(h);
        for (int u = 0; u < workers; u++)
          if (u != w) order.push_back(own[u]);
        order.push_back(header);
        order.push_back(own[w]);
        break;
      case Layout::Random: {  // any order; segments after the own block are (partly) invisible
        order = {prompt, header, own[w]};
        for (int h : history) order.push_back(h);
        for (int u = 0; u < workers; u++)
          if (u != w && rng() % 2) order.push_back(own[u]);
        std::shuffle(order.begin(), order.end(), rng);
        break;
      }
    }
    Row row;
    row.block = own[w];
    row.tokens = tokens[w];
    int offset = 0;
    for (int b : order) {
      if (layout == Layout::Random && rng() % 4 == 0) offset += int(rng() % 7);  // gaps are allowed
      row.view.push_back({b, offset});
      if (b == own[w]) row.first_position = offset + P.blocks[b].length - tokens[w];
      offset += P.blocks[b].length;
    }
    row.q.resize(size_t(row.tokens) * P.heads * hd);
    for (float& x : row.q) x = 1.5f * nd(rng);
    P.rows.push_back(std::move(row));
  }
  return P;
}

// ---- validator ----------------------------------------------------------------------------
// Normalised error: the largest absolute difference over the largest reference magnitude.
double norm_err(const float* got, const double* want, size_t n) {
  double diff = 0, mag = 1e-30;
  for (size_t i = 0; i < n; i++) {
    if (!std::isfinite(got[i])) return INFINITY;
    diff = std::max(diff, std::fabs(double(got[i]) - want[i]));
    mag = std::max(mag, std::fabs(want[i]));
  }
  return diff / mag;
}

// Bounds, from the input rounding of each dtype: fp32 keys and fp32 RoPE angles at
// positions below ~1,000 (~1e-5 relative), f16 (2^-11) and bf16 (2^-8) keys in logits of
// magnitude up to ~10, whose errors the softmax turns into relative weight errors.
// q8 against the reference on its own de-quantised K/V: as fp32 (the op reads exactly those
// values, in fp32).
double bound_for(KvDType dt) {
  return dt == KvDType::F32 || dt == KvDType::Q8 ? 2e-4 : dt == KvDType::F16 ? 6e-3 : 4e-2;
}
// q8 against the reference on the K/V before quantisation: a step of max|x| / 127 per block
// of 32, up to half a step of error per element, through the same logits as bf16. Measured
// 2026-12-04: 2.1e-2 worst output error over the random cases (bf16's own rounding: 1.3e-2).
constexpr double kQ8FormatBound = 5e-2;

struct Worst {
  double out = 0, shares = 0;
  double format_out = 0, format_shares = 0;  // q8: against the unquantised reference
};

// Output and share errors of the op against a reference.
struct Errors {
  double out, shares;
};

Errors compare(const Problem& P, const AttnPlan& plan, const RefOut& ref, const std::vector<float>& out,
               const std::vector<float>& seg, const std::vector<float>& keys, const std::string& what) {
  Errors e{norm_err(out.data(), ref.out.data(), out.size()), 0};
  // Shares are probabilities: absolute error.
  for (size_t r = 0; r < P.rows.size(); r++) {
    for (size_t s = 0; s < P.rows[r].view.size(); s++)
      e.shares = std::max(e.shares, std::fabs(double(seg[plan.rows[r].seg_begin + s]) - ref.shares[r][s]));
    CHECK(int(ref.keys[r].size()) ==
              (r + 1 < P.rows.size() ? plan.rows[r + 1].key_begin : plan.keys_total) - plan.rows[r].key_begin,
          "%s: row %zu key count", what.c_str(), r);
    for (size_t k = 0; k < ref.keys[r].size(); k++)
      e.shares = std::max(e.shares, std::fabs(double(keys[plan.rows[r].key_begin + k]) - ref.keys[r][k]));
  }
  if (!std::isfinite(e.shares)) e.shares = INFINITY;
  return e;
}

void run_case(const Problem& base, KvDType dt, std::mt19937& rng, const std::string& what, Worst& worst,
              bool token_major = false) {
  Problem P = base;
  Paged pg = make_pages(P, dt, rng, token_major);  // rounds K/V to the dtype: the reference sees the same values
  const RefOut ref = reference(P);
  AttnPlan plan = make_plan(P);
  hw::ModelConfig cfg;
  cfg.head_dim = P.hd;
  cfg.rope_theta = float(P.theta);
  hw::Rope rope(cfg);
  hw::RopeTable table;
  rope.extend(table, plan.max_position + 1);
  std::vector<float> q, out(size_t(plan.tokens) * P.heads * P.hd, NAN);
  for (const Row& r : P.rows) q.insert(q.end(), r.q.begin(), r.q.end());
  std::vector<float> seg(plan.segments.size(), NAN), keys(size_t(plan.keys_total), NAN);
  hw::cpu::AttnShares sh{seg.data(), keys.data()};
  hw::cpu::attention(plan, pg.kv, table, P.heads, 1.0f / std::sqrt(float(P.hd)), q.data(), out.data(), &sh);

  const Errors e = compare(P, plan, ref, out, seg, keys, what);
  worst.out = std::max(worst.out, e.out);
  worst.shares = std::max(worst.shares, e.shares);
  CHECK(e.out <= bound_for(dt), "%s: output normalised error %.3g > %.3g", what.c_str(), e.out, bound_for(dt));
  CHECK(e.shares <= bound_for(dt), "%s: shares absolute error %.3g > %.3g", what.c_str(), e.shares, bound_for(dt));
  if (dt == KvDType::Q8) {  // the format's own error: against the K/V before quantisation
    const Errors f = compare(base, plan, reference(base), out, seg, keys, what);
    worst.format_out = std::max(worst.format_out, f.out);
    worst.format_shares = std::max(worst.format_shares, f.shares);
    CHECK(f.out <= kQ8FormatBound, "%s: output error against unquantised K/V %.3g > %.3g", what.c_str(), f.out,
          kQ8FormatBound);
    CHECK(f.shares <= kQ8FormatBound, "%s: share error against unquantised K/V %.3g > %.3g", what.c_str(), f.shares,
          kQ8FormatBound);
  }
}

void test_random(const char* isa) {
  std::mt19937 rng(1234);
  const KvDType dts[] = {KvDType::F32, KvDType::F16, KvDType::BF16, KvDType::Q8};
  const Layout layouts[] = {Layout::Contiguous, Layout::Combined, Layout::Interleaved, Layout::Random};
  const int hds[] = {64, 128, 40, 8};
  const int pages[] = {32, 16, 7};
  Worst worst[4];
  int cases = 0;
  for (int c = 0; c < 32; c++) {
    const int hd = hds[c % 4];
    const int group = 1 + (c + c / 4) % 8, kv_heads = 1 + int(rng() % 3);
    const int workers = c < 8 ? 1 + c * 2 : 1 + int(rng() % 16);
    const Layout layout = layouts[(c / 4) % 4];
    const int pt = pages[c % 3];
    const int max_tokens = c % 5 == 0 ? 100 : 40;  // long rows cross query tiles
    const Problem P = make_problem(rng, hd, kv_heads, group, pt, workers, layout, max_tokens);
    const bool token_major = c % 7 == 3;  // keys as a GPU backend may lay them out
    for (int d = 0; d < 4; d++) {
      const bool tm = token_major && dts[d] != KvDType::Q8;  // q8 keys are dimension-major only
      char what[200];
      std::snprintf(what, sizeof what, "%s case %d (%s, hd %d, %d kv heads x %d, page %d, %s keys, W %d, %s)", isa, c,
                    layout_name(layout), hd, kv_heads, group, pt, tm ? "token-major" : "dim-major", workers,
                    hw::kv_dtype_name(dts[d]));
      run_case(P, dts[d], rng, what, worst[d], tm);
      cases++;
    }
  }
  for (int d = 0; d < 4; d++)
    std::printf("  %s %-4s: worst output error %.2e, worst share error %.2e (bound %.0e)\n", isa,
                hw::kv_dtype_name(dts[d]), worst[d].out, worst[d].shares, bound_for(dts[d]));
  std::printf("  %s q8 against unquantised K/V: worst output error %.2e, worst share error %.2e (bound %.0e)\n", isa,
              worst[3].format_out, worst[3].format_shares, kQ8FormatBound);
  std::printf("  %s: %d random cases\n", isa, cases);
}

// A long causal prefill row (one block, many query and key tiles, both diagonal and full).
void test_prefill(const char* isa) {
  std::mt19937 rng(99);
  Problem P{128, 2, 4, 32, 1000000.0, {}, {}};
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Block b;
  b.length = 300;
  b.k0.resize(size_t(b.length) * 2 * 128);
  b.v.resize(b.k0.size());
  for (float& x : b.k0) x = nd(rng);
  for (float& x : b.v) x = nd(rng);
  P.blocks.push_back(b);
  Row r;
  r.block = 0;
  r.tokens = 300;
  r.first_position = 0;
  r.view = {{0, 0}};
  r.q.resize(size_t(300) * 4 * 128);
  for (float& x : r.q) x = nd(rng);
  P.rows.push_back(r);
  Worst w;
  // Work items of every size: the op's own choice (0), one token, odd sizes, the largest.
  for (int rows : {0, 1, 6, 32, 100, 256, 1200}) {
    hw::cpu::set_attention_item_rows(rows);
    const std::string what = std::string(isa) + " prefill 300 tokens, item rows " + std::to_string(rows);
    run_case(P, KvDType::F32, rng, what + " f32", w);
    run_case(P, KvDType::BF16, rng, what + " bf16", w);
    run_case(P, KvDType::Q8, rng, what + " q8", w);
  }
  hw::cpu::set_attention_item_rows(0);
}

void test_errors() {
  std::mt19937 rng(5);
  Problem P = make_problem(rng, 64, 2, 2, 32, 2, Layout::Contiguous, 4);
  Paged pg = make_pages(P, KvDType::F32, rng);
  AttnPlan plan = make_plan(P);
  hw::ModelConfig cfg;
  cfg.head_dim = 64;
  cfg.rope_theta = 10000.0f;
  hw::Rope rope(cfg);
  hw::RopeTable table;
  rope.extend(table, plan.max_position);  // one position short
  std::vector<float> q(size_t(plan.tokens) * 4 * 64), out(q.size());
  auto throws = [&](int heads, const char* needle) {
    try {
      hw::cpu::attention(plan, pg.kv, table, heads, 0.125f, q.data(), out.data());
    } catch (const hw::EngineError& e) {
      return std::string(e.what()).find(needle) != std::string::npos;
    }
    return false;
  };
  CHECK(throws(4, "RoPE table covers"), "a short RoPE table is refused");
  rope.extend(table, plan.max_position + 1);
  CHECK(throws(3, "do not split"), "3 query heads over 2 KV heads are refused");
  pg.kv.dtype = KvDType::Q8;
  pg.kv.keys_token_major = true;
  CHECK(throws(4, "q8 keys must be dimension-major"), "q8 keys in the token-major layout are refused");
}

// ---- timer --------------------------------------------------------------------------------
// Best of `reps` runs, in wall-clock ms and in CPU ms of the whole process (all threads): on a
// shared machine the CPU time says what the op costs when it gets the cores.
struct Timing {
  double wall_ms, cpu_ms;
};
Timing time_ms(const std::function<void()>& fn, int reps) {
  fn();  // warm-up
  Timing best{1e30, 1e30};
  for (int i = 0; i < reps; i++) {
    timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const double wall = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    const double cpu = (c1.tv_sec - c0.tv_sec) * 1e3 + (c1.tv_nsec - c0.tv_nsec) / 1e6;
    best.wall_ms = std::min(best.wall_ms, wall);
    best.cpu_ms = std::min(best.cpu_ms, cpu);
  }
  return best;
}

// Not a test (timings on a shared machine are noise): prints what the op costs on two
// shapes, for each instruction set, so that regressions show up in the log.
void print_timings(const char* isa) {
  std::mt19937 rng(7);
  auto shape = [&](int tokens, int keys, int workers) {
    Problem P{128, 8, 16, 32, 1000000.0, {}, {}};
    std::normal_distribution<float> nd(0.0f, 1.0f);
    Block prompt;
    prompt.length = keys;
    prompt.k0.resize(size_t(keys) * 8 * 128);
    prompt.v.resize(prompt.k0.size());
    for (float& x : prompt.k0) x = nd(rng);
    for (float& x : prompt.v) x = nd(rng);
    P.blocks.push_back(prompt);
    for (int w = 0; w < workers; w++) {
      Row r;
      r.block = 0;
      r.tokens = tokens;
      r.first_position = keys - tokens;
      r.view = {{0, 0}};
      r.q.resize(size_t(tokens) * 16 * 128);
      for (float& x : r.q) x = nd(rng);
      P.rows.push_back(r);
    }
    return P;
  };
  struct Shape {
    const char* name;
    int tokens, keys, workers;
  } shapes[] = {{"prefill 1024 tokens (causal)", 1024, 1024, 1}, {"decode 8 workers x 2048 keys", 1, 2048, 8}};
  for (const Shape& s : shapes)
    for (KvDType dt : {KvDType::F32, KvDType::BF16, KvDType::Q8}) {
      Problem P = shape(s.tokens, s.keys, s.workers);
      Paged pg = make_pages(P, dt, rng);
      AttnPlan plan = make_plan(P);
      hw::ModelConfig cfg;
      cfg.head_dim = 128;
      cfg.rope_theta = 1e6f;
      hw::Rope rope(cfg);
      hw::RopeTable table;
      rope.extend(table, plan.max_position + 1);
      std::vector<float> q, out(size_t(plan.tokens) * 16 * 128);
      for (const Row& r : P.rows) q.insert(q.end(), r.q.begin(), r.q.end());
      const Timing t = time_ms([&] { hw::cpu::attention(plan, pg.kv, table, 16, 0.088f, q.data(), out.data()); }, 3);
      // 4 flops per (query head, visible key, dimension): q.k and p.v.
      double pairs = 0;
      for (const Row& r : P.rows)
        for (int i = 0; i < r.tokens; i++) pairs += r.first_position + i + 1;
      const double gflop = pairs * 16 * 128 * 4 / 1e9;
      std::printf(
          "  %s %-30s %-4s K/V %8.2f ms wall, %8.2f ms CPU: %6.1f GFLOP per CPU-second (16 heads, 8 KV heads, head_dim 128)\n",
          isa, s.name, hw::kv_dtype_name(dt), t.wall_ms, t.cpu_ms, gflop / t.cpu_ms * 1e3);
    }
}

}  // namespace

int main() {
  // Work items spread over 3 threads, as in the engine (parallel.h): the shares' atomic sums too.
  hw::par::Pool pool(3);
  hw::par::Use use(&pool);
  std::vector<const char*> isas = {"avx2"};
  if (hw::cpu::set_attention_isa("avx512")) isas.push_back("avx512");
  // bf16 K/V through bf16 dot products (queries and weights rounded to bf16): the same
  // reference and bounds.
  if (hw::cpu::set_attention_isa("avx512bf16"))
    isas.push_back("avx512bf16");
  else
    std::printf("  avx512bf16: this CPU has no AVX512-BF16, not tested here\n");
  // The same packing with AMX tile products (rows and head-dim pairs padded to 16).
  if (hw::cpu::set_attention_isa("amx"))
    isas.push_back("amx");
  else
    std::printf("  amx: this CPU (or kernel) has no AMX-BF16 tiles, not tested here\n");
  for (const char* isa : isas) {
    hw::cpu::set_attention_isa(isa);
    test_random(isa);
    test_prefill(isa);
    print_timings(isa);
  }
  test_errors();
  return test_summary("test_attention");
}
