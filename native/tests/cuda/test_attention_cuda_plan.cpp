// The CUDA attention kernel's plan and index arithmetic, checked without a GPU.
//
// Emulates attn_chunk_kernel and attn_merge_kernel on the CPU in fp32: one CTA at a time, reading
// nothing but the packed plan buffer (at the layout of capacities grown across cases, as
// HogwildAttention::plan grows them), with the kernel's own index functions from attention_work.h
// (tile entries, key addresses, row limits) and the kernel's split-K bookkeeping (per-chunk
// (m, l, o) partials, per-piece masses for the shares, the log-sum-exp merge). Short plans
// (HW_ATTN_SHORT) are emulated as attn_short_kernel computes them: chunk c is cluster rank c, the
// queries rotated through its per-(piece, token) limits and RoPE table (the kernel's index
// functions), the same log-sum-exp merge; their shape, tile flags and shared-memory layout are
// checked too. The tensor-core arithmetic itself is checked on the GPU by test_attention_cuda.
// Bounds against the double reference (fp32 emulation, no bf16 rounding of queries): relative
// L2 error <= 1e-4, shares within 1e-5.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "../../src/cuda/attention_work.h"
#include "../testing.h"
#include "attention_cases.h"

using namespace attn_cases;

namespace {

struct Emulated {
  std::vector<float> out, shares;
  AttnShape shape;
};

// The problem's distinct blocks in the plan's order (first appearance over the rows' views).
std::vector<int> plan_block_ids(const AttnProblem& p) {
  std::vector<int> ids;
  for (const AttnRow& r : p.rows)
    for (const AttnSegment& sg : r.view)
      if (std::find(ids.begin(), ids.end(), sg.block) == ids.end()) ids.push_back(sg.block);
  return ids;
}

// A short plan's shape: one q-tile, `cluster` chunks of at most short_tiles <= kAttnShortMaxTiles
// tiles, and shared memory that fits an sm_90 CTA (227 KB).
void check_short_shape(const AttnPlanHost& h, int cluster, int hd) {
  const AttnShape& s = h.shape;
  CHECK(s.chunks == cluster && s.cluster == cluster, "short plan: %d chunks, cluster %d (asked %d)", s.chunks,
        s.cluster, cluster);
  CHECK(s.qtiles == 1 && s.tokens <= kAttnShortMaxTokens && s.rows_q <= 32 * s.groups,
        "short plan: %d q-tiles, %d tokens", s.qtiles, s.tokens);
  CHECK(s.short_tiles <= kAttnShortMaxTiles, "short plan: %d tiles a CTA", s.short_tiles);
  int most = 0;
  for (int c = 0; c < s.chunks; c++) most = std::max(most, h.chunk_tile[c + 1] - h.chunk_tile[c]);
  CHECK(most == s.short_tiles, "short plan: most tiles a chunk %d, short_tiles %d", most, s.short_tiles);
  const int tiles = int(h.tile_piece.size());
  CHECK(most <= (tiles + cluster - 1) / cluster, "short plan: %d tiles in a chunk of %d over %d CTAs", most, tiles,
        cluster);
  const int bytes = attn_short_smem(hd, s.groups, s.short_tiles, s.tokens).total;
  CHECK(bytes <= 232448, "short plan: %d bytes of shared memory", bytes);
}

// The short kernel's shared-memory layout: regions in order, 16-byte aligned, each as large as what
// the kernel keeps there, the largest within an sm_90 CTA's 227 KB.
void check_short_smem() {
  for (int hd : {64, 128})
    for (int groups : {1, 2})
      for (int tiles = 0; tiles <= kAttnShortMaxTiles; tiles++)
        for (int tokens = 1; tokens <= kAttnShortMaxTokens; tokens++) {
          const AttnShortSmem m = attn_short_smem(hd, groups, tiles, tokens);
          const int rows = 32 * groups;
          const int at[] = {m.kv, m.wml, m.q, m.rows, m.tab, m.lim, m.dlt, m.fresh, m.rope, m.cml, m.part, m.total};
          const int need[] = {std::max(tiles * 2 * kAttnTileKeys * hd * 2, groups * 4 * 32 * hd * 4),
                              groups * 4 * 32 * 8,
                              rows * (hd + 8) * 2,
                              rows * 16,
                              tiles * int(sizeof(TileEntry)),
                              tiles * kAttnShortMaxTokens * 4,
                              tiles * kAttnShortMaxTokens * 4,
                              tiles * 4,
                              tiles * tokens * hd / 2 * 8,
                              rows * 8,
                              rows * hd * 4};
          for (int k = 0; k < 11; k++) {
            CHECK(at[k] % 16 == 0, "hd %d groups %d tiles %d: region %d at %d", hd, groups, tiles, k, at[k]);
            CHECK(at[k + 1] - at[k] >= need[k], "hd %d groups %d tiles %d tokens %d: region %d holds %d of %d bytes",
                  hd, groups, tiles, tokens, k, at[k + 1] - at[k], need[k]);
          }
          CHECK(m.total <= 232448, "hd %d groups %d tiles %d tokens %d: %d bytes", hd, groups, tiles, tokens, m.total);
        }
}

Emulated emulate(const Case& cs, const CaseData& cd, int wave1, int wave2, int min_chunk_tiles, int short_cluster,
                 AttnCaps& caps) {
  const AttnDims& d = cs.dims;
  const int HD = d.head_dim, KVH = d.kv_heads, group = d.heads / d.kv_heads, pt = d.page_tokens;
  const AttnPlanHost h = build_attn_plan(d, cd.b.problem, wave1, wave2, 0, min_chunk_tiles, short_cluster);
  const bool short_plan = h.shape.cluster > 0;
  CHECK(short_plan == (short_cluster > 0 && h.shape.qtiles == 1 && h.shape.tokens <= kAttnShortMaxTokens &&
                       int(h.tile_piece.size()) <= short_cluster * kAttnShortMaxTiles),
        "short plan %d for cluster %d, %d q-tiles, %d tokens, %zu tiles", int(short_plan), short_cluster,
        h.shape.qtiles, h.shape.tokens, h.tile_piece.size());
  if (short_plan) check_short_shape(h, short_cluster, HD);
  // Each tile's fresh flag: it holds a key at or after its block's first key written this forward.
  {
    const std::vector<int> ids = plan_block_ids(cd.b.problem);
    const std::vector<int>& ff = cd.b.problem.block_fresh_from;
    for (size_t k = 0; k < h.tile_piece.size(); k++) {
      const int id = ids[size_t(h.piece_blk[size_t(h.tile_piece[k])])];
      const int from = size_t(id) < ff.size() ? ff[size_t(id)] : 0;
      CHECK(h.tile_fresh[k] == (h.tile_key0[k] + h.tile_n[k] > from ? 1 : 0), "tile %zu of block %d: fresh %d", k, id,
            h.tile_fresh[k]);
    }
  }
  if (!attn_caps_cover(caps, h.needs())) caps = attn_caps_grow(caps, h.needs());
  CHECK(attn_caps_cover(caps, h.needs()), "grown capacities do not cover the plan");
  const AttnPlanLayout l = attn_plan_layout(caps);
  std::vector<int32_t> buf(size_t(l.total), 0x5a5a5a5a);
  h.pack(l, buf.data());
  const int* base = buf.data();

  const AttnShape& s = h.shape;
  const int n_tokens = base[l.hdr + kHdrTokens], n_rows = base[l.hdr + kHdrRows];
  const int n_blocks = base[l.hdr + kHdrBlocks], n_pieces = base[l.hdr + kHdrPieces];
  CHECK(n_tokens == s.tokens && n_rows == s.rows && n_blocks == s.blocks && n_pieces == s.pieces,
        "header counts differ from the plan");
  const int rows_q = n_tokens * group, cta_rows_max = 32 * s.groups;
  const int rows_padded = s.qtiles * cta_rows_max;
  const size_t page_elems = kv_page_elems(d);
  std::vector<const uint16_t*> page_ptr(size_t(cd.b.pages));
  for (int i = 0; i < cd.b.pages; i++) page_ptr[i] = cd.pages.data() + size_t(i) * page_elems;
  const size_t v_off = size_t(KVH) * pt * HD;
  const int pt_shift = attn_pt_shift(pt);
  const float scale_log2 = float(1.0 / std::sqrt(double(HD)) * 1.4426950408889634);

  std::vector<float> part_o(size_t(s.chunks) * KVH * rows_padded * HD, NAN);
  std::vector<float> part_m(size_t(s.chunks) * KVH * rows_padded, NAN), part_l(part_m.size(), NAN);
  std::vector<float> piece_m(size_t(std::max(1, n_pieces)) * KVH * rows_padded, 0.f), piece_d(piece_m.size(), 0.f);

  for (int qt = 0; qt < s.qtiles; qt++)
    for (int kvh = 0; kvh < KVH; kvh++)
      for (int chunk = 0; chunk < s.chunks; chunk++) {
        const int row0 = qt * cta_rows_max, cta_rows = std::min(cta_rows_max, rows_q - row0);
        const int tile0 = base[l.chunk_tile + chunk], n_tiles = base[l.chunk_tile + chunk + 1] - tile0;
        CHECK(n_tiles >= 0 && n_tiles <= kAttnMaxChunkTiles, "chunk %d holds %d tiles", chunk, n_tiles);
        const size_t head_off = (size_t(cd.layer) * 2 * KVH + kvh) * pt * HD;
        std::vector<TileEntry> tab(size_t(std::max(0, n_tiles)));
        for (int i = 0; i < n_tiles; i++)
          tab[i] = attn_tile_entry(base, l, tile0 + i, qt, n_blocks, pt, head_off, page_ptr.data());
        // Per CTA row: token, head, batch row, position; softmax state; the rotated query.
        std::vector<int> rt(cta_rows), rh(cta_rows), rr(cta_rows), rp(cta_rows), lim(cta_rows);
        for (int i = 0; i < cta_rows; i++) {
          const int qrow = row0 + i, t = qrow / group;
          rt[i] = t, rh[i] = kvh * group + qrow % group;
          rr[i] = base[l.tok_row + t], rp[i] = base[l.tok_pos + t];
        }
        // Short plans: the kernel's per-(piece, token) limits, distances and RoPE table of this CTA.
        const int piece0 = n_tiles > 0 ? tab[0].piece : 0;
        const int n_pc = n_tiles > 0 ? tab[size_t(n_tiles) - 1].piece - piece0 + 1 : 0;
        std::vector<int> slim, sdlt;
        std::vector<float> rope;
        if (short_plan) {
          CHECK(n_pc <= s.short_tiles, "chunk %d: %d pieces over %d tile slots", chunk, n_pc, s.short_tiles);
          slim.assign(size_t(s.short_tiles) * kAttnShortMaxTokens, -7);
          sdlt.assign(slim.size(), 0);
          rope.assign(size_t(s.short_tiles) * n_tokens * HD, NAN);  // (cos, sin) per (piece, token, pair)
          for (int pc = 0; pc < n_pc; pc++)
            for (int t = 0; t < n_tokens; t++) {
              const int u = base[l.piece_blk + piece0 + pc];
              int delta;
              slim[size_t(attn_short_pt(pc, t))] =
                  attn_row_limit(base, l, u, n_rows, base[l.tok_row + t], base[l.tok_pos + t], &delta);
              sdlt[size_t(attn_short_pt(pc, t))] = delta;
              for (int pr = 0; pr < HD / 2; pr++) {
                const size_t at = size_t(attn_short_rope(pc, t, pr, n_tokens, HD));
                CHECK(at * 2 + 1 < rope.size() && std::isnan(rope[at * 2]), "RoPE table slot %zu reused", at);
                if (at * 2 + 1 >= rope.size()) continue;
                const float ang = float(delta) * cd.inv[pr];
                rope[at * 2] = float(std::cos(double(ang))), rope[at * 2 + 1] = float(std::sin(double(ang)));
              }
            }
        }
        std::vector<float> m(cta_rows, -INFINITY), lsum(cta_rows, 0.f), lp(cta_rows, 0.f);
        std::vector<float> o(size_t(cta_rows) * HD, 0.f), qr(size_t(cta_rows) * HD, 0.f);
        auto flush = [&](int piece) {
          for (int i = 0; i < cta_rows; i++) {
            const size_t at = (size_t(piece) * KVH + kvh) * rows_padded + row0 + i;
            piece_m[at] = m[i], piece_d[at] = lp[i];
            lp[i] = 0.f;
          }
        };
        int cur_piece = -1;
        for (int k = 0; k < n_tiles; k++) {
          const TileEntry& e = tab[k];
          if (e.n == 0) continue;
          if (e.piece != cur_piece) {
            if (cs.shares && cur_piece >= 0) flush(cur_piece);
            cur_piece = e.piece;
            int prev_delta = 0;
            for (int i = 0; i < cta_rows; i++) {
              int delta;
              lim[i] = attn_row_limit(base, l, e.block, n_rows, rr[i], rp[i], &delta);
              // HW_ATTN_ROT_TOKEN rotates a token's rows with the limit and distance of its first row.
              if (i > 0 && rt[i] == rt[i - 1])
                CHECK(lim[i] == lim[i - 1] && (lim[i] == 0 || delta == prev_delta),
                      "rows %d and %d of token %d: limits or distances differ", i - 1, i, rt[i]);
              prev_delta = delta;
              const int pc = e.piece - piece0;
              if (short_plan)
                CHECK(slim[size_t(attn_short_pt(pc, rt[i]))] == lim[i] &&
                          (lim[i] == 0 || sdlt[size_t(attn_short_pt(pc, rt[i]))] == delta),
                      "row %d piece %d: the per-token limit or distance differs", i, pc);
              const float* q = cd.q.data() + (size_t(rt[i]) * d.heads + rh[i]) * HD;
              for (int pr = 0; pr < HD / 2; pr++) {
                const float ang = float(delta) * cd.inv[pr];
                float c = float(std::cos(double(ang))), sn = float(std::sin(double(ang)));
                if (short_plan) {  // through the table, as the kernel reads it
                  const size_t at = size_t(attn_short_rope(pc, rt[i], pr, n_tokens, HD));
                  c = rope[at * 2], sn = rope[at * 2 + 1];
                }
                qr[size_t(i) * HD + pr] = lim[i] > 0 ? q[pr] * c - q[pr + HD / 2] * sn : 0.f;
                qr[size_t(i) * HD + pr + HD / 2] = lim[i] > 0 ? q[pr + HD / 2] * c + q[pr] * sn : 0.f;
              }
            }
          }
          for (int key = 0; key < kAttnTileKeys && key < e.n; key++) {
            const uint16_t* ks = attn_key_src(e, key, pt, HD);
            if (pt_shift >= 0)  // the kernel's path for power-of-two pages
              CHECK(attn_key_src_pow2(e, key, pt_shift, HD) == ks, "shifted key address differs (key %d)", key);
            const uint16_t* vs = ks + v_off;
            const int j = e.key0 + key;
            for (int i = 0; i < cta_rows; i++) {
              if (j >= lim[i]) continue;
              float dot = 0.f;
              for (int x = 0; x < HD; x++) dot += qr[size_t(i) * HD + x] * bf16_to_float(ks[x]);
              const float sc = dot * scale_log2, m_new = std::max(m[i], sc);
              const float alpha = std::exp2(m[i] - m_new), p = std::exp2(sc - m_new);
              m[i] = m_new;
              lsum[i] = lsum[i] * alpha + p;
              lp[i] = lp[i] * alpha + p;
              for (int x = 0; x < HD; x++)
                o[size_t(i) * HD + x] = o[size_t(i) * HD + x] * alpha + p * bf16_to_float(vs[x]);
            }
          }
        }
        if (cs.shares && cur_piece >= 0) flush(cur_piece);
        for (int i = 0; i < cta_rows; i++) {
          const size_t at = (size_t(chunk) * KVH + kvh) * rows_padded + row0 + i;
          part_m[at] = m[i], part_l[at] = lsum[i];
          for (int x = 0; x < HD; x++) part_o[at * HD + x] = o[size_t(i) * HD + x];
        }
      }

  // The merge kernel: one (token, head) at a time.
  Emulated em;
  em.shape = s;
  em.out.assign(size_t(n_tokens) * d.heads * HD, NAN);
  em.shares.assign(size_t(s.segments), 0.f);
  const size_t stride = size_t(KVH) * rows_padded;
  for (int t = 0; t < n_tokens; t++)
    for (int head = 0; head < d.heads; head++) {
      const int kvh = head / group, qrow = t * group + head % group;
      const size_t b0 = size_t(kvh) * rows_padded + qrow;
      float mx = -INFINITY;
      for (int ch = 0; ch < s.chunks; ch++) mx = std::max(mx, part_m[b0 + ch * stride]);
      const float ref = mx == -INFINITY ? 0.f : mx;
      float total = 0.f;
      std::vector<float> acc(HD, 0.f);
      for (int ch = 0; ch < s.chunks; ch++) {
        const float lc = part_l[b0 + ch * stride];
        if (!(lc > 0.f)) continue;
        const float f = std::exp2(part_m[b0 + ch * stride] - ref);
        total += lc * f;
        for (int x = 0; x < HD; x++) acc[x] += part_o[(b0 + ch * stride) * HD + x] * f;
      }
      const float inv = total > 0.f ? 1.f / total : 0.f;
      for (int x = 0; x < HD; x++) em.out[(size_t(t) * d.heads + head) * HD + x] = acc[x] * inv;
      const int r = base[l.tok_row + t];
      if (!cs.shares || total <= 0.f || base[l.row_last + r] != t) continue;
      for (int p = 0; p < n_pieces; p++) {
        const int u = base[l.piece_blk + p];
        if (base[l.view_len + u * n_rows + r] <= 0) continue;
        const size_t at = b0 + size_t(p) * stride;
        if (piece_d[at] > 0.f)
          em.shares[base[l.view_seg + u * n_rows + r]] += piece_d[at] * std::exp2(piece_m[at] - ref) * inv / d.heads;
      }
    }
  return em;
}

}  // namespace

// The shared-memory tile layout: a bijection onto [0, 64 * HD), and each 8-row ldmatrix read
// (8 consecutive keys from a multiple of 8, one chunk column) free of bank conflicts.
void check_tile_swizzle() {
  for (int hd : {64, 128}) {
    std::vector<int> seen(size_t(kAttnTileKeys) * hd, 0);
    for (int key = 0; key < kAttnTileKeys; key++)
      for (int ch = 0; ch < hd / 8; ch++) {
        const int at = attn_kv_swz(key, ch, hd);
        CHECK(at >= 0 && at + 8 <= kAttnTileKeys * hd && at % 8 == 0, "hd %d key %d chunk %d -> %d", hd, key, ch, at);
        if (at >= 0 && at + 8 <= kAttnTileKeys * hd)
          for (int e = 0; e < 8; e++) seen[size_t(at) + e]++;
      }
    for (size_t i = 0; i < seen.size(); i++) CHECK(seen[i] == 1, "hd %d: element %zu covered %d times", hd, i, seen[i]);
    for (int key0 = 0; key0 < kAttnTileKeys; key0 += 8)
      for (int ch = 0; ch < hd / 8; ch++) {
        int groups = 0;  // 16-byte bank groups (of 8 in 128 bytes) hit by the 8 rows
        for (int r = 0; r < 8; r++) groups |= 1 << ((attn_kv_swz(key0 + r, ch, hd) * 2 / 16) % 8);
        CHECK(groups == 0xff, "hd %d keys %d.. chunk %d: bank groups %x", hd, key0, ch, groups);
      }
  }
}

// The warpgroup-MMA kernel's swizzled layout: every element of a 64 x HD matrix once, 16-byte
// chunks 16-byte aligned, each 64-column half in its own 64 x 128-byte block (the wgmma descriptors
// step 8192 bytes between halves), and the token rotation's shortcut (row 0's offset XOR (row & 7)
// << 3, plus row x 64) equal to the layout's own offset for every row and pair.
void check_wg_swizzle() {
  for (int hd : {64, 128}) {
    std::vector<int> seen(size_t(64) * hd, 0);
    for (int row = 0; row < 64; row++)
      for (int part = 0; part < hd / 8; part++) {
        const int at = attn_wg_swz(row, part, 64);
        CHECK(at % 8 == 0 && at / 4096 == part / 8, "hd %d row %d part %d -> %d", hd, row, part, at);
        if (at >= 0 && at + 8 <= 64 * hd)
          for (int e = 0; e < 8; e++) seen[size_t(at) + e]++;
      }
    for (size_t i = 0; i < seen.size(); i++) CHECK(seen[i] == 1, "hd %d: element %zu covered %d times", hd, i, seen[i]);
    for (int row = 0; row < 64; row++)
      for (int pr = 0; pr < hd; pr++) {
        const int at0 = attn_wg_swz(0, pr >> 3, 64) + (pr & 7);
        CHECK(row * 64 + (at0 ^ ((row & 7) << 3)) == attn_wg_swz(row, pr >> 3, 64) + (pr & 7), "hd %d row %d pair %d",
              hd, row, pr);
      }
  }
}

// HW_ATTN_ROT_TOKEN's row grouping: the items of attn_token_rows cover a CTA's rows once each, every
// row under its own token, no item empty (the kernel reads the token's limit at its first row).
void check_token_rows() {
  for (int group = 1; group <= 16; group++)
    for (int rows_max : {32, 64})
      for (int qt = 0; qt < 8; qt++)
        for (int cta_rows = 1; cta_rows <= rows_max; cta_rows++) {
          const int row0 = qt * rows_max;
          std::vector<int> seen(size_t(cta_rows), 0);
          const int n = attn_cta_tokens(row0, cta_rows, group);
          bool ok = n >= 1;
          for (int k = 0; k < n; k++) {
            int i0 = -1, i1 = -1;
            const int t = attn_token_rows(row0, cta_rows, group, k, &i0, &i1);
            ok = ok && i0 >= 0 && i0 < i1 && i1 <= cta_rows;
            for (int i = std::max(i0, 0); i < std::min(i1, cta_rows); i++) {
              seen[size_t(i)]++;
              ok = ok && (row0 + i) / group == t;
            }
          }
          for (int v : seen) ok = ok && v == 1;
          CHECK(ok, "group %d row0 %d cta_rows %d: token items do not cover the rows once", group, row0, cta_rows);
          // The kernel's split of each token's rows over threads (W = 1): the shares cover them once,
          // and the items never outnumber the block unless there is one thread a (token, pair).
          for (int half : {32, 64}) {
            const int splits = attn_rot_splits(n, half, group, 128);
            bool split_ok = splits >= 1 && splits <= std::max(group, 1) && (splits == 1 || n * half * splits <= 128);
            for (int k = 0; k < n; k++) {
              int i0 = 0, i1 = 0;
              attn_token_rows(row0, cta_rows, group, k, &i0, &i1);
              int next = i0;
              for (int sp = 0; sp < splits; sp++) {
                int r0 = 0, r1 = 0;
                attn_split_rows(i0, i1, splits, sp, &r0, &r1);
                if (r0 >= r1) continue;
                split_ok = split_ok && r0 == next;
                next = r1;
              }
              split_ok = split_ok && next == i1;
            }
            CHECK(split_ok, "group %d row0 %d cta_rows %d half %d: %d-way split of the token rows is wrong", group,
                  row0, cta_rows, half, splits);
          }
        }
}

// One case through the emulation, against the double reference.
// The split-K planner's balance where a long history meets many short blocks (the workers' current
// steps and headers at 16k): every piece costs its CTA a query rotation, so the CTAs that would hold
// all the short blocks end the kernel late. Chunk costs as the planner models them (keys + 16 a tile,
// attn_piece_cost a piece) must stay within 25% of the mean; with no piece cost they do not.
void check_piece_balance() {
  const AttnDims d{2, 32, 8, 128, 32};
  AttnProblem p;
  std::vector<int> lens = {1024, 12000, 300, 250, 200};     // prompt, history, recent steps
  for (int w = 0; w < 8; w++) lens.push_back(61 + 33 * w);  // current steps
  lens.push_back(12), lens.push_back(9);                    // headers
  int page = 0, total = 0;
  for (int len : lens) {
    std::vector<int> pages;
    for (int k = 0; k < len; k += d.page_tokens) pages.push_back(page++);
    p.block_pages.push_back(pages);
    total += len;
  }
  for (int w = 0; w < 8; w++) {  // every worker sees every block, one new token each
    AttnRow row;
    row.tokens = 1;
    int off = 0;
    for (size_t b = 0; b < lens.size(); b++) {
      row.view.push_back(AttnSegment{int(b), off, lens[b]});
      off += lens[b];
    }
    row.first_position = total - 1;
    p.rows.push_back(row);
  }
  auto worst = [&](int piece_cost) {
    const AttnPlanHost h = build_attn_plan(d, p, 264, 132, 0, 1, 0, piece_cost);
    std::vector<double> cost;
    for (int c = 0; c < h.shape.chunks; c++) {
      double sum = 0;
      int last_piece = -1;
      for (int t = h.chunk_tile[c]; t < h.chunk_tile[c + 1]; t++) {
        sum += h.tile_n[t] + 16;
        if (h.tile_piece[t] != last_piece)
          sum += attn_piece_cost(h.shape.tokens, int(h.tile_n.size()), h.shape.chunks), last_piece = h.tile_piece[t];
      }
      cost.push_back(sum);
    }
    double mean = 0, mx = 0;
    for (double v : cost) mean += v / cost.size(), mx = std::max(mx, v);
    return mx / mean;
  };
  const double with = worst(-1), without = worst(0);
  std::printf("piece balance: the costliest chunk %.2fx the mean (%.2fx without piece costs)\n", with, without);
  CHECK(with <= 1.25, "costliest chunk %.2fx the mean > 1.25x", with);
  CHECK(without > with, "piece costs did not improve the balance (%.2fx vs %.2fx)", with, without);
}

void check_case(const Case& cs, int wave1, int wave2, int min_tiles, int short_cluster, AttnCaps& caps, int* shorts) {
  const CaseData cd = make_case(cs);
  const Emulated em = emulate(cs, cd, wave1, wave2, min_tiles, short_cluster, caps);
  if (em.shape.cluster > 0) ++*shorts;
  double num = 0, den = 0, sh_err = 0;
  size_t bad = 0;
  for (size_t i = 0; i < em.out.size(); i++) {
    if (!std::isfinite(em.out[i])) bad++;
    num += (em.out[i] - cd.ref[i]) * (em.out[i] - cd.ref[i]);
    den += cd.ref[i] * cd.ref[i];
  }
  if (cs.shares)
    for (int k = 0; k < cd.segments; k++) sh_err = std::max(sh_err, std::fabs(em.shares[k] - cd.ref_sh[k]));
  const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  std::printf(
      "%-11s hd %3d heads %2d/%d pt %2d W %2d T %4d | %3d chunks (>= %d tiles) x %d q-tiles, %3d pieces%s | rel %.2e "
      "shares %.2e\n",
      layout_name(cs.layout), cs.dims.head_dim, cs.dims.heads, cs.dims.kv_heads, cs.dims.page_tokens, cs.workers, cd.T,
      em.shape.chunks, min_tiles, em.shape.qtiles, em.shape.pieces, em.shape.cluster > 0 ? ", short" : "", rel, sh_err);
  CHECK(bad == 0, "%zu outputs not finite", bad);
  CHECK(rel <= 1e-4, "relative L2 error %.3e > 1e-4", rel);
  CHECK(sh_err <= 1e-5, "share error %.3e > 1e-5", sh_err);
}

int main() {
  check_tile_swizzle();
  check_wg_swizzle();
  check_short_smem();
  check_token_rows();
  check_piece_balance();
  std::mt19937 pick(99);
  unsigned seed = 777;
  AttnCaps caps;  // grown across cases, as one HogwildAttention grows them step after step
  // wave2 0: 1-group CTAs only; wave1 0: 2-group (64-row) CTAs only, as under HW_ATTN_WG=1
  const int waves[][2] = {{132, 132}, {264, 132}, {8, 8}, {1000, 600}, {1, 1}, {264, 0}, {0, 264}};
  const int clusters[] = {8, 16, 4, 2};  // HW_ATTN_SHORT cluster sizes
  int n = 0, shorts = 0;
  for (Layout lay : {Layout::Contiguous, Layout::Interleaved, Layout::Combined, Layout::Prefill})
    for (int W = 1; W <= 16; W += (lay == Layout::Prefill ? 16 : 3)) {
      Case cs;
      cs.layout = lay;
      cs.workers = W;
      const int g = 1 + int(pick() % 8), kvh = 1 + int(pick() % 3);
      cs.dims = AttnDims{2, g * kvh, kvh, (pick() % 2) ? 128 : 64, (pick() % 3 == 0) ? 16 : 32};
      cs.max_new = (pick() % 3 == 0) ? (W > 8 ? 8 : 40) : 1;
      cs.q_bf16 = false, cs.out_bf16 = false, cs.llama3 = pick() % 4 == 0, cs.shares = true;
      cs.seed = seed++;
      const int* wv = waves[n % 7];
      const int min_tiles = 1 + (n / 2) % 4;  // HW_ATTN_CHUNK_TILES: 1 (the default) to 4
      check_case(cs, wv[0], wv[1], min_tiles, 0, caps, &shorts);
      // The same problem under HW_ATTN_SHORT (a short plan where it fits, the usual one otherwise).
      check_case(cs, wv[0], wv[1], 1, clusters[n % 4], caps, &shorts);
      n++;
    }
  // The engine benchmark's decode at 1k context (prompt of 1024 keys, then the workers' blocks) in
  // the Qwen2.5-0.5B and -7B attention shapes: the short kernel's own case.
  for (int W : {1, 4, 8})
    for (const AttnDims& d : {AttnDims{2, 14, 2, 64, 32}, AttnDims{2, 28, 4, 128, 32}}) {
      Case cs{d, Layout::Contiguous, W, 1, false, true, false, false, seed++, 1024};
      check_case(cs, 264, 132, 1, 0, caps, &shorts);
      for (int cl : {8, 16}) check_case(cs, 264, 132, 1, cl, caps, &shorts);
    }
  CHECK(shorts > 0, "no case took a short plan");
  std::printf("short plans: %d\n", shorts);
  return test_summary("test_attention_cuda_plan");
}
