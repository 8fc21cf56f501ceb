// Host planning of the Hogwild attention kernel (see attention.h for the method).
#include "attention_work.h"

#include <algorithm>
#include <string>

#include "../backend.h"
#include "../batch.h"
#include "../error.h"
#include "../kv_cache.h"

namespace hw {
namespace cuda {

void check_attn_dims(const AttnDims& d) {
  if (d.layers <= 0 || d.heads <= 0 || d.kv_heads <= 0 || d.page_tokens <= 0)
    fail("cuda attention", "layers, heads, kv_heads and page_tokens must be positive (got " + std::to_string(d.layers) +
                               ", " + std::to_string(d.heads) + ", " + std::to_string(d.kv_heads) + ", " +
                               std::to_string(d.page_tokens) + ")");
  if (d.page_tokens < kAttnMinPageTokens)
    fail("cuda attention", "page_tokens " + std::to_string(d.page_tokens) + " is below the supported minimum " +
                               std::to_string(kAttnMinPageTokens));
  if (d.heads % d.kv_heads != 0)
    fail("cuda attention",
         "heads (" + std::to_string(d.heads) + ") must be a multiple of kv_heads (" + std::to_string(d.kv_heads) + ")");
  if (d.head_dim != 64 && d.head_dim != 128)
    fail("cuda attention", "head_dim " + std::to_string(d.head_dim) + " is not supported (64 or 128)");
}

AttnPlanLayout attn_plan_layout(const AttnCaps& c) {
  AttnPlanLayout l;
  int at = 0;
  auto take = [&](int n) {
    int o = at;
    at += (n + 3) & ~3;
    return o;
  };  // 16-byte aligned arrays
  l.hdr = take(kHdrCount);
  l.tok_row = take(c.tokens);
  l.tok_pos = take(c.tokens);
  l.row_last = take(c.rows);
  l.blk_page0 = take(c.blocks);
  l.blk_len = take(c.blocks);
  l.page_ids = take(c.pages);
  l.piece_blk = take(c.pieces);
  l.tile_piece = take(c.tiles);
  l.tile_key0 = take(c.tiles);
  l.tile_n = take(c.tiles);
  l.tile_pidx = take(c.tiles);
  l.tile_fresh = take(c.tiles);
  l.chunk_tile = take(c.chunks + 1);
  l.view_off = take(c.blocks * c.rows);
  l.view_len = take(c.blocks * c.rows);
  l.view_seg = take(c.blocks * c.rows);
  l.qt_lim = take(c.qtiles * c.blocks);
  l.total = at;
  return l;
}

bool attn_caps_cover(const AttnCaps& h, const AttnCaps& n) {
  return n.tokens <= h.tokens && n.rows <= h.rows && n.blocks <= h.blocks && n.pages <= h.pages &&
         n.pieces <= h.pieces && n.tiles <= h.tiles && n.chunks <= h.chunks && n.qtiles <= h.qtiles;
}

AttnCaps attn_caps_grow(const AttnCaps& h, const AttnCaps& n) {
  auto grow = [](int have, int want) { return want <= have ? have : std::max(want + want / 2, 16); };
  AttnCaps c;  // by name: a positional list silently shifts when a field is added
  c.tokens = grow(h.tokens, n.tokens);
  c.rows = grow(h.rows, n.rows);
  c.blocks = grow(h.blocks, n.blocks);
  c.pages = grow(h.pages, n.pages);
  c.pieces = grow(h.pieces, n.pieces);
  c.tiles = grow(h.tiles, n.tiles);
  c.chunks = grow(h.chunks, n.chunks);
  c.qtiles = grow(h.qtiles, n.qtiles);
  return c;
}

AttnCaps AttnPlanHost::needs() const {
  AttnCaps c;
  c.tokens = shape.tokens;
  c.rows = shape.rows;
  c.blocks = shape.blocks;
  c.pages = int(page_ids.size());
  c.pieces = shape.pieces;
  c.tiles = int(tile_piece.size());
  c.chunks = shape.chunks;
  c.qtiles = shape.qtiles;
  return c;
}

void AttnPlanHost::pack(const AttnPlanLayout& l, int32_t* dst) const {
  std::fill(dst, dst + l.total, 0);
  dst[l.hdr + kHdrTokens] = shape.tokens;
  dst[l.hdr + kHdrRows] = shape.rows;
  dst[l.hdr + kHdrBlocks] = shape.blocks;
  dst[l.hdr + kHdrPieces] = shape.pieces;
  auto put = [&](int off, const std::vector<int>& v) { std::copy(v.begin(), v.end(), dst + off); };
  put(l.tok_row, tok_row);
  put(l.tok_pos, tok_pos);
  put(l.row_last, row_last);
  put(l.blk_page0, blk_page0);
  put(l.blk_len, blk_len);
  put(l.page_ids, page_ids);
  put(l.piece_blk, piece_blk);
  put(l.tile_piece, tile_piece);
  put(l.tile_key0, tile_key0);
  put(l.tile_n, tile_n);
  put(l.tile_pidx, tile_pidx);
  put(l.tile_fresh, tile_fresh);
  put(l.chunk_tile, chunk_tile);
  put(l.view_off, view_off);
  put(l.view_len, view_len);
  put(l.view_seg, view_seg);
  put(l.qt_lim, qt_lim);
}

AttnPlanHost build_attn_plan(const AttnDims& dims, const AttnProblem& p, int wave_g1, int wave_g2,
                             int single_chunk_tiles, int min_chunk_tiles, int short_cluster, int piece_cost) {
  check_attn_dims(dims);
  const int group = dims.heads / dims.kv_heads, pt = dims.page_tokens;
  AttnPlanHost h;
  AttnShape& s = h.shape;
  s.rows = int(p.rows.size());

  // Query tokens and rows.
  h.seg_begin.push_back(0);
  for (int r = 0; r < s.rows; r++) {
    const AttnRow& row = p.rows[r];
    auto where = [&] { return "cuda attention: row " + std::to_string(r); };
    if (row.tokens < 0) fail(where(), "negative token count " + std::to_string(row.tokens));
    if (row.first_position < 0) fail(where(), "negative first position " + std::to_string(row.first_position));
    for (int i = 0; i < row.tokens; i++) {
      h.tok_row.push_back(r);
      h.tok_pos.push_back(row.first_position + i);
    }
    h.row_last.push_back(row.tokens > 0 ? int(h.tok_row.size()) - 1 : -1);
    h.seg_begin.push_back(h.seg_begin.back() + int(row.view.size()));
  }
  s.tokens = int(h.tok_row.size());
  s.segments = h.seg_begin.back();
  s.rows_q = s.tokens * group;

  // Distinct blocks, in order of first appearance, each with the most keys any query sees.
  // Messages are built only on failure: this runs once per step, for up to W x (W + 6) segments.
  std::vector<int> index_of(p.block_pages.size(), -1);  // block id -> distinct index
  std::vector<int> seen_in_row(p.block_pages.size(), -1);
  std::vector<int> block_id;
  for (int r = 0; r < s.rows; r++) {
    const AttnRow& row = p.rows[r];
    for (size_t k = 0; k < row.view.size(); k++) {
      const AttnSegment& seg = row.view[k];
      auto where = [&] { return "cuda attention: row " + std::to_string(r) + ", view segment " + std::to_string(k); };
      if (seg.block < 0 || seg.block >= int(p.block_pages.size()))
        fail(where(), "block " + std::to_string(seg.block) + " has no page list (" +
                          std::to_string(p.block_pages.size()) + " given)");
      if (seg.offset < 0) fail(where(), "negative offset " + std::to_string(seg.offset));
      if (seg.length < 0) fail(where(), "negative length " + std::to_string(seg.length));
      if (size_t(seg.length) > p.block_pages[seg.block].size() * size_t(pt))
        fail(where(), "length " + std::to_string(seg.length) + " exceeds the " +
                          std::to_string(p.block_pages[seg.block].size()) + " pages of block " +
                          std::to_string(seg.block));
      if (seen_in_row[seg.block] == r)
        fail(where(), "block " + std::to_string(seg.block) + " appears twice in the view");
      seen_in_row[seg.block] = r;
      if (index_of[seg.block] < 0) {
        index_of[seg.block] = int(block_id.size());
        block_id.push_back(seg.block);
      }
    }
  }
  s.blocks = int(block_id.size());
  h.view_off.assign(size_t(s.blocks) * s.rows, 0);
  h.view_len.assign(size_t(s.blocks) * s.rows, -1);
  h.view_seg.assign(size_t(s.blocks) * s.rows, -1);
  h.blk_len.assign(s.blocks, 0);
  // Keys of block u a token at position pos of row r sees.
  auto visible = [&](int u, int r, int pos) {
    const int len = h.view_len[size_t(u) * s.rows + r];
    if (len <= 0) return 0;
    return std::max(0, std::min(len, pos - h.view_off[size_t(u) * s.rows + r] + 1));
  };
  for (int r = 0; r < s.rows; r++) {
    const AttnRow& row = p.rows[r];
    for (size_t k = 0; k < row.view.size(); k++) {
      const int u = index_of[row.view[k].block];
      h.view_off[size_t(u) * s.rows + r] = row.view[k].offset;
      h.view_len[size_t(u) * s.rows + r] = row.view[k].length;
      h.view_seg[size_t(u) * s.rows + r] = h.seg_begin[r] + int(k);
      if (row.tokens > 0) h.blk_len[u] = std::max(h.blk_len[u], visible(u, r, row.first_position + row.tokens - 1));
    }
  }
  for (int u = 0; u < s.blocks; u++) {
    const std::vector<int>& pages = p.block_pages[block_id[u]];
    h.blk_page0.push_back(int(h.page_ids.size()));
    const int used = (h.blk_len[u] + pt - 1) / pt;
    for (int i = 0; i < used; i++) {
      if (pages[i] < 0)
        fail("cuda attention", "block " + std::to_string(block_id[u]) + " page " + std::to_string(i) +
                                   " has negative id " + std::to_string(pages[i]));
      h.page_ids.push_back(pages[i]);
    }
  }

  // CTA shape and the most keys of each block any row of a q-tile sees (causal skipping).
  // wave_g2 <= 0: one-group CTAs only; wave_g1 <= 0: two-group (64-row) CTAs only.
  s.groups = wave_g1 <= 0 ? 2 : s.rows_q <= 32 || wave_g2 <= 0 ? 1 : 2;
  const int cta_rows = 32 * s.groups;
  s.qtiles = (s.rows_q + cta_rows - 1) / cta_rows;
  h.qt_lim.assign(size_t(s.qtiles) * s.blocks, 0);
  for (int qt = 0; qt < s.qtiles; qt++) {
    const int t0 = qt * cta_rows / group, t1 = (std::min(s.rows_q, (qt + 1) * cta_rows) - 1) / group;
    for (int t = t0; t <= t1; t++)
      for (int u = 0; u < s.blocks; u++) {
        int& lim = h.qt_lim[size_t(qt) * s.blocks + u];
        lim = std::max(lim, visible(u, h.tok_row[t], h.tok_pos[t]));
      }
  }

  // Split-K: the tile sequence of all blocks cut into `chunks` runs of about equal cost, so that
  // chunks x kv_heads x qtiles CTAs fill one wave whatever the block sizes.
  const int wave = s.groups == 1 ? wave_g1 : wave_g2;
  s.chunks = std::max(1, wave / std::max(1, dims.kv_heads * s.qtiles));
  constexpr int kTileOverhead = 16;  // a tile costs its keys plus a fixed part (sync, softmax)
  // Each block the sequence enters costs a piece (the query rotation and the view lookups): the
  // short blocks of the workers' current steps and headers are then spread over more chunks
  // instead of piling their rotations into the last few CTAs, which set the kernel's end.
  int n_tiles = 0;
  for (int u = 0; u < s.blocks; u++) n_tiles += (h.blk_len[u] + kAttnTileKeys - 1) / kAttnTileKeys;
  const int piece = piece_cost < 0 ? attn_piece_cost(s.tokens, n_tiles, s.chunks) : piece_cost;
  std::vector<int> tile_blk, tile_idx, tile_cost;
  long long total_cost = 0;
  for (int u = 0; u < s.blocks; u++)
    for (int t = 0; t * kAttnTileKeys < h.blk_len[u]; t++) {
      tile_blk.push_back(u);
      tile_idx.push_back(t);
      tile_cost.push_back(std::min(kAttnTileKeys, h.blk_len[u] - t * kAttnTileKeys) + kTileOverhead +
                          (t == 0 ? piece : 0));
      total_cost += tile_cost.back();
    }
  const int tiles = int(tile_blk.size());
  // Keys of each block that were written before this forward (all of it when not told).
  std::vector<int> fresh_from(s.blocks, 0);
  for (int u = 0; u < s.blocks; u++)
    if (size_t(block_id[u]) < p.block_fresh_from.size()) fresh_from[u] = std::max(0, p.block_fresh_from[block_id[u]]);
  // Appends tile `k` of the sequence to the chunk being filled (a new piece where the block changes).
  auto add_tile = [&](int k, bool first_of_chunk) {
    const int u = tile_blk[k];
    if (first_of_chunk || h.piece_blk.back() != u) h.piece_blk.push_back(u);
    const int key0 = tile_idx[k] * kAttnTileKeys, n = std::min(kAttnTileKeys, h.blk_len[u] - key0);
    h.tile_piece.push_back(int(h.piece_blk.size()) - 1);
    h.tile_key0.push_back(key0);
    h.tile_n.push_back(n);
    h.tile_pidx.push_back(h.blk_page0[u] + key0 / pt);
    h.tile_fresh.push_back(key0 + n > fresh_from[u] ? 1 : 0);
  };
  if (short_cluster > 0 && attn_short_fits(s, tiles, short_cluster)) {
    // Short plan: chunk c holds tiles [c * tiles / C, (c + 1) * tiles / C): at most
    // ceil(tiles / C) each, since a tile's cost here is mostly its fixed chain of latencies.
    s.chunks = s.cluster = short_cluster;
    for (int c = 0; c < s.chunks; c++) {
      h.chunk_tile.push_back(int(h.tile_piece.size()));
      const int first = int((long long)tiles * c / s.chunks), end = int((long long)tiles * (c + 1) / s.chunks);
      for (int k = first; k < end; k++) add_tile(k, k == first);
      s.short_tiles = std::max(s.short_tiles, end - first);
    }
    h.chunk_tile.push_back(int(h.tile_piece.size()));
    s.pieces = int(h.piece_blk.size());
    return h;
  }
  if (tiles <= single_chunk_tiles) s.chunks = 1;
  if (min_chunk_tiles > 1) s.chunks = std::min(s.chunks, std::max(1, (tiles + min_chunk_tiles - 1) / min_chunk_tiles));
  // Enough chunks that no chunk holds more tiles than a CTA's table.
  s.chunks = std::max(s.chunks, (tiles + kAttnMaxChunkTiles - 1) / kAttnMaxChunkTiles);
  s.chunks = std::min(s.chunks, std::max(1, tiles));
  for (;;) {  // one more chunk whenever a chunk would overflow its tile table
    h.chunk_tile.clear(), h.piece_blk.clear(), h.tile_piece.clear(), h.tile_key0.clear();
    h.tile_n.clear(), h.tile_pidx.clear(), h.tile_fresh.clear();
    long long acc = 0;
    int next = 0;  // first tile not yet in a chunk
    for (int c = 0; c < s.chunks; c++) {
      h.chunk_tile.push_back(int(h.tile_piece.size()));
      const long long goal = total_cost * (c + 1) / s.chunks;
      const int first = next;
      while (next < tiles && next - first < kAttnMaxChunkTiles &&
             (acc + tile_cost[next] / 2 <= goal || c == s.chunks - 1)) {
        add_tile(next, next == first);
        acc += tile_cost[next];
        next++;
      }
    }
    if (next == tiles) break;
    s.chunks++;
  }
  h.chunk_tile.push_back(int(h.tile_piece.size()));
  s.pieces = int(h.piece_blk.size());
  return h;
}

AttnProblem attn_problem_from_batch(const Batch& batch, const std::vector<RowPlan>& plans, const KvCache& cache) {
  if (plans.size() != batch.rows.size())
    fail("cuda attention",
         std::to_string(plans.size()) + " row plans for " + std::to_string(batch.rows.size()) + " batch rows");
  AttnProblem p;
  int max_block = -1;
  for (size_t r = 0; r < batch.rows.size(); r++) {
    const BatchRow& row = batch.rows[r];
    const RowPlan& plan = plans[r];
    if (plan.segment_lengths.size() != row.view.size())
      fail("cuda attention: row " + std::to_string(r), std::to_string(plan.segment_lengths.size()) +
                                                           " segment lengths for " + std::to_string(row.view.size()) +
                                                           " view segments");
    AttnRow ar;
    ar.first_position = plan.first_position;
    ar.tokens = int(row.tokens.size());
    // This forward writes the row's tokens at the end of its block: keys before them are final.
    if (ar.tokens > 0 && row.block >= 0) {
      if (size_t(row.block) >= p.block_fresh_from.size()) p.block_fresh_from.resize(size_t(row.block) + 1, 1 << 30);
      int& from = p.block_fresh_from[row.block];
      from = std::min(from, cache.length(row.block));
    }
    for (size_t s = 0; s < row.view.size(); s++) {
      ar.view.push_back({row.view[s].block, row.view[s].offset, plan.segment_lengths[s]});
      max_block = std::max(max_block, row.view[s].block);
    }
    p.rows.push_back(std::move(ar));
  }
  p.block_pages.resize(size_t(max_block + 1));
  // Blocks no row writes this forward are settled from their first key.
  if (p.block_fresh_from.size() < size_t(max_block + 1)) p.block_fresh_from.resize(size_t(max_block + 1), 1 << 30);
  for (const AttnRow& r : p.rows)
    for (const AttnSegment& s : r.view)
      if (s.block >= 0 && p.block_pages[s.block].empty()) p.block_pages[s.block] = cache.pages(s.block);
  return p;
}

}  // namespace cuda
}  // namespace hw
