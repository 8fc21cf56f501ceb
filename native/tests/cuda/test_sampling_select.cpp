// The fast GPU sampling path's selection logic (sampling_select.h), checked without a GPU.
//
// Emulates candidates_kernel and finish_fast block by block and thread by thread, with the
// kernels' own functions from sampling_select.h (loops stand in for the threads; the buffers
// filled by atomics are shuffled before ranking, since their order is arbitrary on the GPU), on
// rows placed 0..3 floats past a 16-byte boundary with poison around them. References come from
// sorting the row by (value desc, id asc; NaN last, -0 == +0): each slice's best k, the merge's
// threshold and candidate count (so the overflow to the general path is reported exactly when
// the count passes kMergeCap), the top-k (ids and order), and the draw for a grid of
// temperatures, top-p and u: the CPU sampler's rules in double (sampler.cpp: weights
// exp((l - max) / T), top-p's smallest prefix reaching p, inverse CDF best first, the last kept
// id when rounding leaves u past the end), NaN ids never kept. The kernels' shared memory,
// atomics and barriers are checked on the GPU by test_cuda_ops --sampling.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "../../src/cuda/sampling_select.h"
#include "../testing.h"

using namespace hw::cuda;
using Word = SampleWord;

namespace {

std::mt19937 rng(20261204);
const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();
const float kPoison = 1e30f;  // around the row: a load outside it would win every ranking

float randn(float scale) {
  static std::normal_distribution<float> nd(0.0f, 1.0f);
  return scale * nd(rng);
}

// Distinct random ids in [lo, hi).
std::vector<int> pick_ids(int lo, int hi, int n) {
  std::vector<int> a;
  for (int i = lo; i < hi; i++) a.push_back(i);
  std::shuffle(a.begin(), a.end(), rng);
  a.resize(size_t(std::min<int>(n, int(a.size()))));
  return a;
}

enum Kind {
  kRandom,
  kTiesAtKth,     // 12 ids at 7 and 60 at 6 (8 of them neighbours in one slice): cuts inside ties
  kTiedLevels,    // 64 ids at 8 levels in each of the first 63 slices: ties everywhere, big merges
  kAllEqual,      // every id at 0.5: the ranking is the ids' order
  kAscending,     // best ids last
  kDescending,    // best ids first
  kCrowded,       // the best 100 ids in one slice
  kSpecial,       // NaN, -inf, -0 and +0 (zeros best), negatives
  kMostlyNegInf,  // -inf but for 3 finite ids and a few NaN
  kAllNegInf,     // -inf but for one NaN: NaN weights, the draw falls to the last kept id
  kAllNaN,        // nothing kept: the best-ranked (lowest) id
  kMerge1024,     // k = 64: exactly kMergeCap candidates above the finisher's threshold
  kMerge1025,     // k = 64: one more (the merge overflows)
  kKinds
};
const char* kind_name[] = {"random",     "ties at k-th",     "tied levels",     "all equal",   "ascending",
                           "descending", "crowded",          "NaN/-inf/-0",     "mostly -inf", "all -inf",
                           "all NaN",    "merge count 1024", "merge count 1025"};

// A logits row of `kind`, or an empty one where the kind needs more slices than V gives.
std::vector<float> make_row(Kind kind, int V) {
  std::vector<float> l(static_cast<size_t>(V));
  switch (kind) {
    case kRandom:
      for (float& x : l) x = randn(3.0f);
      break;
    case kTiesAtKth: {
      for (float& x : l) x = std::min(randn(1.0f), 5.0f);
      std::vector<int> tie;
      for (int i = 0; i < 8 && V / 2 + i < V; i++) tie.push_back(V / 2 + i);
      for (int id : pick_ids(0, V, V))
        if (int(tie.size()) < std::min(72, V) && (id < V / 2 || id >= V / 2 + 8)) tie.push_back(id);
      std::shuffle(tie.begin(), tie.end(), rng);
      for (size_t i = 0; i < tie.size(); i++) l[tie[i]] = i < 12 ? 7.0f : 6.0f;
      break;
    }
    case kTiedLevels:
      for (float& x : l) x = std::min(randn(1.0f), 1.0f);
      for (int s = 0; s < 63 && s * 2048 < V; s++)
        for (int id : pick_ids(s * 2048, std::min(V, s * 2048 + 2048), 64)) l[id] = 10.0f + float(rng() % 8) / 8.0f;
      break;
    case kAllEqual:
      std::fill(l.begin(), l.end(), 0.5f);
      break;
    case kAscending:
    case kDescending:
      for (int i = 0; i < V; i++) l[i] = 1e-3f * float(kind == kAscending ? i : V - i);
      break;
    case kCrowded: {
      for (float& x : l) x = randn(1.0f);
      const int s = (V / 2) / 2048;
      const std::vector<int> ids = pick_ids(s * 2048, std::min(V, s * 2048 + 2048), 100);
      for (size_t i = 0; i < ids.size(); i++) l[ids[i]] = 10.0f + 0.01f * float(i);
      break;
    }
    case kSpecial:
      for (int i = 0; i < V; i++) {
        const int r = i % 7;
        l[i] = r == 0 ? kNaN : r == 3 ? -kInf : r == 5 ? -0.0f : r == 6 ? 0.0f : -0.1f - std::abs(randn(2.0f));
      }
      break;
    case kMostlyNegInf:
      std::fill(l.begin(), l.end(), -kInf);
      for (int id : pick_ids(0, V, 5)) l[id] = kNaN;
      for (int id : pick_ids(0, V, 3)) l[id] = randn(1.0f);
      break;
    case kAllNegInf:
      std::fill(l.begin(), l.end(), -kInf);
      if (V >= 3) l[V / 2] = kNaN;
      break;
    case kAllNaN:
      std::fill(l.begin(), l.end(), kNaN);
      break;
    case kMerge1024:
    case kMerge1025: {
      // Slice 0: 64 ids at 5 (its 64th is the threshold); slices 1..: at most 63 ids at 6 each
      // (their 64th falls below 5), 960 or 961 in all; the rest far below. Ids stay 4 away from
      // slice ends (any misalignment).
      if (slices_for(V) < 20) return {};
      for (float& x : l) x = -10.0f + randn(0.1f);
      for (int id : pick_ids(4, 2044, 64)) l[id] = 5.0f;
      const int above = kind == kMerge1024 ? 960 : 961;
      for (int s = 1, left = above; left > 0; s++) {
        const int n = std::min(left, 63);
        for (int id : pick_ids(s * 2048 + 4, s * 2048 + 2044, n)) l[id] = 6.0f;
        left -= n;
      }
      break;
    }
    default:
      break;
  }
  return l;
}

// The reference order: value desc, id asc; NaN after everything; -0 == +0 (float comparison).
std::vector<int> reference_order(const std::vector<float>& l) {
  std::vector<int> ids(l.size());
  for (size_t i = 0; i < ids.size(); i++) ids[i] = int(i);
  std::sort(ids.begin(), ids.end(), [&](int a, int b) {
    const bool na = std::isnan(l[a]), nb = std::isnan(l[b]);
    if (na != nb) return nb;
    if (!na && l[a] != l[b]) return l[a] > l[b];
    return a < b;
  });
  return ids;
}

// ---- Emulation of candidates_kernel for one row: the workspace's slice lists.
struct CandStats {
  int bad_loads = 0;      // float4 lanes outside the row, or scalar loads outside it
  int tau_writers = 0;    // slices where more than one thread wrote the threshold
  int most_passed = 0;    // the largest slice buffer (at most kSliceBuf)
  std::vector<int> seen;  // ids' loads (each exactly once)
};

std::vector<Word> emulate_candidates(const std::vector<float>& mem, int off, int V, int k, int slices, CandStats& st) {
  const Word kUnwritten = ~0ull;  // better than any candidate: a slot left unwritten shows
  std::vector<Word> ws(size_t(slices) * kFastTopK, kUnwritten);
  st.seen.assign(size_t(V), 0);
  const float* base = mem.data();  // the 16-byte boundary; the row starts at base + off
  const float* row = base + off;
  std::vector<Word> x(size_t(kCandThreads) * kCandItems), tops(kCandThreads), buf;
  for (int s = 0; s < slices; s++) {
    for (int t = 0; t < kCandThreads; t++) {
      Word best = 0;
      for (int j = 0; j < kCandVec; j++) {
        const int q = cand_vec(s, t, j);
        const int i0 = vec_first_id(q, off);
        float v[4];
        if (vec_whole(i0, V)) {
          for (int c = 0; c < 4; c++) {
            const long long at = 4ll * q + c;  // the float4's lane, from the boundary
            if (at < off || at >= off + V) st.bad_loads++;
            v[c] = base[at];
          }
        } else {
          for (int c = 0; c < 4; c++) v[c] = id_in_row(i0 + c, V) ? row[i0 + c] : 0.0f;
        }
        for (int c = 0; c < 4; c++) {
          if (id_in_row(i0 + c, V)) st.seen[size_t(i0 + c)]++;
          Word& w = x[size_t(t) * kCandItems + 4 * j + c];
          w = lane_word(v[c], i0 + c, V);
          best = std::max(best, w);
        }
      }
      tops[t] = best;
    }
    Word* dst = ws.data() + list_slot(s, 0);
    if (k == 1) {  // block_max
      dst[0] = *std::max_element(tops.begin(), tops.end());
      continue;
    }
    Word tau = 0;
    int writers = 0;
    for (int t = 0; t < kCandThreads; t++)
      if (is_kth_best(tops.data(), kCandThreads, tops[t], k)) tau = tops[t], writers++;
    st.tau_writers += writers > 1;
    buf.clear();
    for (int t = 0; t < kCandThreads; t++)
      for (int i = 0; i < kCandItems; i++)
        if (passes(x[size_t(t) * kCandItems + i], tau)) buf.push_back(x[size_t(t) * kCandItems + i]);
    st.most_passed = std::max(st.most_passed, int(buf.size()));
    if (int(buf.size()) > kSliceBuf) continue;  // the kernel would write past its buffer (reported)
    std::shuffle(buf.begin(), buf.end(), rng);
    const int m = int(buf.size());
    for (int c = 0; c < m; c++) {
      const int r = rank_in(buf.data(), m, buf[c]);
      if (r < k) dst[r] = buf[c];
    }
    for (int r = m; r < k; r++) dst[r] = 0;
  }
  return ws;
}

// ---- Emulation of finish_fast's merge.
struct Merge {
  int count = 0;  // candidates above the threshold
  bool overflow = false;
  int tau_writers = 0;
  std::vector<Word> top;  // ranks 0..n-1
  int n = 0;
};

Merge emulate_merge(const std::vector<Word>& ws, int slices, int k) {
  Merge g;
  std::vector<Word> heads(static_cast<size_t>(slices));
  Word kth = 0;
  for (int s = 0; s < slices; s++) {
    heads[s] = ws[list_slot(s, 0)];
    kth = std::max(kth, ws[list_slot(s, k - 1)]);
  }
  Word kth_head = 0;
  for (int s = 0; s < slices; s++)
    if (is_kth_best(heads.data(), slices, heads[s], k)) kth_head = heads[s], g.tau_writers++;
  const Word tau = merge_threshold(kth_head, kth);
  std::vector<Word> buf;
  for (int e = 0; e < slices * k; e++) {
    const Word y = ws[merge_slot(e, k)];
    if (passes(y, tau)) {
      if (g.count < kMergeCap) buf.push_back(y);
      g.count++;
    }
  }
  g.overflow = merge_overflows(g.count);
  if (g.overflow) return g;
  std::shuffle(buf.begin(), buf.end(), rng);
  const int m = g.count;
  g.top.assign(size_t(kFastTopK), ~0ull);
  for (int c = 0; c < m; c++) {
    const int r = rank_in(buf.data(), m, buf[c]);
    if (r < k) g.top[r] = buf[c];
  }
  g.n = std::min(m, k);
  return g;
}

// finish_fast's draw: the weights (one per thread on the GPU), then thread 0's draw_rank.
int emulate_draw(const Merge& g, float t, float top_p, float u) {
  if (t <= 0.0f) return g.n > 0 ? packed_id(g.top[0]) : 0;
  double w[kFastTopK];
  std::fill(w, w + kFastTopK, std::nan(""));  // slots past n are never written: poison
  const double mx = packed_value(g.top[0]), inv_t = 1.0 / double(t);
  for (int r = 0; r < g.n; r++) w[r] = draw_weight(packed_value(g.top[r]), mx, inv_t);
  const int r = draw_rank(g.top.data(), w, g.n, top_p, u);
  return r >= 0 ? packed_id(g.top[r]) : 0;
}

// ---- References from the sorted order.
// The merge's candidate count: each slice's best k from the order, the threshold the better of
// the k-th best head and the best k-th entry (none: everything passes), the entries at or above.
int reference_count(const std::vector<int>& order, int V, int off, int k, int slices,
                    std::vector<std::vector<int>>& lists) {
  lists.assign(size_t(slices), {});
  std::vector<int> pos(static_cast<size_t>(V));
  for (int i = 0; i < V; i++) pos[order[i]] = i;
  for (int id : order) {
    const int s = (id + off) / (4 * kSliceVecs);
    if (int(lists[s].size()) < k) lists[s].push_back(id);
  }
  std::vector<int> head_pos;
  int tau_pos = V;  // positions at or before it pass
  for (const auto& L : lists) {
    if (!L.empty()) head_pos.push_back(pos[L[0]]);
    if (int(L.size()) == k) tau_pos = std::min(tau_pos, pos[L[k - 1]]);
  }
  std::sort(head_pos.begin(), head_pos.end());
  if (int(head_pos.size()) >= k) tau_pos = std::min(tau_pos, head_pos[k - 1]);
  int count = 0;
  for (const auto& L : lists)
    for (int id : L) count += pos[id] <= tau_pos;
  return count;
}

// The CPU sampler's draw over the reference order (NaN ids never kept).
int reference_draw(const std::vector<float>& l, const std::vector<int>& order, int top_k, float t, float top_p,
                   float u) {
  const int V = int(l.size());
  if (t <= 0.0f) return order[0];
  const int limit = std::min(top_k, V);
  int kept = 0;
  while (kept < limit && !std::isnan(l[order[kept]])) kept++;
  if (kept == 0) return order[0];
  const double m = l[order[0]], inv_t = 1.0 / t;
  auto weight = [&](int i) { return std::exp((double(l[order[i]]) - m) * inv_t); };
  double all = 0.0;
  for (int i = 0; i < kept; i++) all += weight(i);
  int n = kept;
  if (top_p < 1.0f) {
    double cum = 0.0;
    int keep = 0;
    while (keep < kept && cum < top_p * all) cum += weight(keep++);
    n = std::max(keep, 1);
  }
  double total = 0.0;
  for (int i = 0; i < n; i++) total += weight(i);
  double x = double(u) * total;
  for (int i = 0; i < n; i++) {
    if (x < weight(i)) return order[i];
    x -= weight(i);
  }
  return order[n - 1];
}

std::string ids_text(const std::vector<int>& a, size_t n) {
  std::string s;
  for (size_t i = 0; i < std::min(n, a.size()); i++) s += (i ? "," : "") + std::to_string(a[i]);
  return s;
}

void check_row(Kind kind, int V, const std::vector<float>& l, const std::vector<int>& order, int off, int& overflows,
               int& merge_boundary) {
  const int slices = slices_for(V);
  // The row at `off` floats past a 16-byte boundary, poison around it.
  std::vector<float> mem(size_t(off + V + 8), kPoison);
  std::copy(l.begin(), l.end(), mem.begin() + off);
  CHECK((V - 1 + off) / (4 * kSliceVecs) < slices && slices <= (V + 2) / (4 * kSliceVecs) + 1,
        "V=%d off=%d: %d slices for the last id's slice %d", V, off, slices, (V - 1 + off) / (4 * kSliceVecs));
  const float ts[] = {0.0f, 0.25f, 0.7f, 1.0f, 2.0f};
  const float ps[] = {0.0f, 0.05f, 0.3f, 0.5f, 0.9f, 0.99f, 1.0f};
  std::vector<float> us;
  for (int j = 0; j < 64; j++) us.push_back(float((j + 0.5) / 64));
  us.push_back(0.0f);
  us.push_back(0.25f);  // exact boundaries between equal weights (all-equal rows)
  us.push_back(0.5f);
  us.push_back(std::nextafter(1.0f, 0.0f));
  std::map<int, Merge> merges;  // by k
  for (int top_k : {1, 2, 20, 63, 64}) {
    for (float t : ts) {
      const int k = fast_k(t, top_k, V);
      char what[160];
      std::snprintf(what, sizeof what, "%s V=%d off=%d top_k=%d k=%d", kind_name[kind], V, off, top_k, k);
      if (!merges.count(k)) {
        CandStats st;
        const std::vector<Word> ws = emulate_candidates(mem, off, V, k, slices, st);
        int wrong_loads = 0;
        for (int c : st.seen) wrong_loads += c != 1;
        CHECK(wrong_loads == 0 && st.bad_loads == 0, "%s: %d ids not loaded exactly once, %d float4 lanes off the row",
              what, wrong_loads, st.bad_loads);
        CHECK(st.tau_writers == 0 && st.most_passed <= kSliceBuf,
              "%s: %d slices with two thresholds; %d candidates passed a slice's threshold (buffer %d)", what,
              st.tau_writers, st.most_passed, kSliceBuf);
        // Each slice's list: its best k ids best first, then empty slots, all k written.
        std::vector<std::vector<int>> lists;
        const int count = reference_count(order, V, off, k, slices, lists);
        int bad_lists = 0, first_bad = -1;
        for (int s = 0; s < slices; s++) {
          bool ok = true;
          for (int r = 0; r < k; r++) {
            const Word y = ws[list_slot(s, r)];
            ok = ok && (r < int(lists[s].size()) ? y != 0 && y != ~0ull && packed_id(y) == lists[s][r] : y == 0);
          }
          if (!ok && first_bad < 0) first_bad = s;
          bad_lists += !ok;
        }
        CHECK(bad_lists == 0, "%s: %d slice lists differ from the slices' best k (first: slice %d)", what, bad_lists,
              first_bad);
        Merge g = emulate_merge(ws, slices, k);
        CHECK(g.tau_writers <= 1, "%s: %d heads wrote the merge threshold", what, g.tau_writers);
        CHECK(g.count == count && g.overflow == (count > kMergeCap),
              "%s: merge count %d (overflow %d), reference %d (cap %d)", what, g.count, int(g.overflow), count,
              kMergeCap);
        overflows += g.overflow;
        if (k == kFastTopK && (kind == kMerge1024 || kind == kMerge1025))
          merge_boundary += g.count == (kind == kMerge1024 ? kMergeCap : kMergeCap + 1);
        if (!g.overflow) {
          std::vector<int> got;
          for (int r = 0; r < g.n; r++) got.push_back(packed_id(g.top[r]));
          const std::vector<int> want(order.begin(), order.begin() + k);
          CHECK(got == want, "%s: top-k %s, reference %s", what, ids_text(got, 8).c_str(), ids_text(want, 8).c_str());
        }
        merges[k] = std::move(g);
      }
      const Merge& g = merges[k];
      if (g.overflow) continue;  // the general path draws (checked on the GPU)
      for (float p : ps) {
        int wrong = 0;
        float first_u = 0.0f;
        int first_got = 0, first_want = 0;
        for (float u : us) {
          const int got = emulate_draw(g, t, p, u), want = reference_draw(l, order, top_k, t, p, u);
          if (got != want && wrong++ == 0) first_u = u, first_got = got, first_want = want;
        }
        CHECK(wrong == 0, "%s T=%g p=%g: %d of %zu draws differ (u=%.9g: id %d, reference %d)", what, t, p, wrong,
              us.size(), first_u, first_got, first_want);
        if (t <= 0.0f) break;  // greedy: top-p and u do not matter
      }
    }
  }
}

void check_basics() {
  // Order keys follow the floats' order (-0 ties +0), keys map back, packed words rank by
  // value then lower id, NaN below -inf, no word of an id is the empty slot 0.
  const float fs[] = {-kInf, -3e38f, -1.5f, -1e-38f, -1e-45f, -0.0f, 0.0f, 1e-45f, 1.5f, 3e38f, kInf};
  int bad = 0;
  for (float a : fs)
    for (float b : fs) {
      bad += (order_key(a) < order_key(b)) != (a < b);
      bad += (order_key(a) == order_key(b)) != (a == b);
    }
  for (float a : fs) bad += key_value(order_key(a)) != a;
  CHECK(bad == 0, "order keys: %d comparisons differ from the floats'", bad);
  CHECK(order_key(bits_float(0xffffffffu)) != 0 && order_key(bits_float(0x7fffffffu)) != 0,
        "order keys: a NaN takes the empty slot's key 0");
  CHECK(pack(1.0f, 5) > pack(1.0f, 6) && pack(1.0f, 6) > pack(0.5f, 0) && pack(-kInf, 9) > pack(kNaN, 0) &&
            pack(kNaN, 0) > pack(-kNaN, 1) && pack(kNaN, 0x7ffffffe) != 0,
        "packed words: wrong order");
  CHECK(packed_id(pack(-2.5f, 151936)) == 151936 && packed_value(pack(-2.5f, 7)) == -2.5f &&
            packed_key(pack(kNaN, 3)) == 0,
        "packed words: id or value lost");
  // Which rows take the fast path, and with how many candidates.
  CHECK(fast_k(0.0f, 0, 10) == 1 && fast_k(-1.0f, 100, 10) == 1 && fast_k(1.0f, 0, 10) == 0 &&
            fast_k(1.0f, kFastTopK + 1, 1000) == 0 && fast_k(1.0f, kFastTopK, 1000) == kFastTopK &&
            fast_k(1.0f, 20, 3) == 3,
        "fast_k: wrong candidate counts");
  for (int off = 0; off < 4; off++)
    CHECK(row_misalignment(uintptr_t(0x7f0000001000ull) + 4u * unsigned(off)) == off, "row_misalignment(+%d floats)",
          off);
}

}  // namespace

int main() {
  check_basics();
  int overflows = 0, merge_boundary = 0, rows = 0;
  for (int V : {1, 3, 1000, 2047, 2048, 2049, 151936, 151937})
    for (int kind = 0; kind < kKinds; kind++) {
      const std::vector<float> l = make_row(Kind(kind), V);
      if (l.empty()) continue;
      const std::vector<int> order = reference_order(l);
      for (int off = 0; off < 4; off++) check_row(Kind(kind), V, l, order, off, overflows, merge_boundary);
      rows++;
    }
  // The boundary rows hit the cap exactly (1024 merged, 1025 overflowed) at both big V and all
  // misalignments, and the tied-levels rows overflow too: the fallback is exercised.
  CHECK(merge_boundary == 2 * 2 * 4, "merge boundary: %d of 16 rows at count 1024 / 1025", merge_boundary);
  CHECK(overflows > 8, "only %d merges overflowed", overflows);
  std::printf("  %d rows (V 1 .. 151937, %d kinds, misalignment 0..3), k 1/2/20/63/64: %d merges overflowed\n", rows,
              int(kKinds), overflows);
  return test_summary("test_sampling_select");
}
