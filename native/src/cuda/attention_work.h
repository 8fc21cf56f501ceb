// The host half of the Hogwild attention kernel: turns rows, views and block page lists into a
// flat int32 work plan (what each CTA reads), with no CUDA dependency so it is testable on any
// machine. attention.cu uploads the buffer and launches over it. The index arithmetic that the
// kernel applies to the plan (tile entries, key addresses, row limits) is here too, compiled for
// both sides, so that tests/cuda/test_attention_cuda_plan.cpp checks it without a GPU.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#ifdef __CUDACC__
#define HW_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define HW_HOST_DEVICE inline
#endif

#include "attention.h"

namespace hw {
namespace cuda {

constexpr int kAttnTileKeys = 64;  // keys per K/V tile: 4 warps x 16 keys each
// What entering a block costs a chunk CTA, in keys, for the split-K planner (build_attn_plan). An H200
// profile at 16k keys (bench/attention-cuda-notes.md, 2026-12-04) put one piece's rotation and view
// lookups at ~3-4 full tiles of QK / softmax / PV.
constexpr int kAttnPieceCost = 192;
// A piece's rotation grows with the query tokens: on long problems (at least 4 tiles a chunk) the
// planner charges kAttnPieceCost + 32 keys a token above 4, up to kAttnPieceCostMax (an H200 A/B of
// the warpgroup-MMA kernel at 16k, 2026-12-04: 320 took W = 8-16 to 0.88-0.96x of 192's time and
// W = 1-4 to 1.02-1.06x; at 1k-4k, about a tile a chunk, it did not help).
constexpr int kAttnPieceCostMax = 320;
inline int attn_piece_cost(int tokens, int tiles, int chunks) {
  if (tiles < 4 * chunks || tokens <= 4) return kAttnPieceCost;
  const int c = kAttnPieceCost + 32 * (tokens - 4);
  return c < kAttnPieceCostMax ? c : kAttnPieceCostMax;
}
// Tiles per chunk: a CTA holds its chunk's tile table in shared memory (64: two CTAs fit per SM).
constexpr int kAttnMaxChunkTiles = 64;
constexpr int kAttnMaxTilePages = 5;  // pages one 64-key tile can touch with page_tokens >= 16
constexpr int kAttnMinPageTokens = 16;
// The short-context decode path (HW_ATTN_SHORT, sm_90): one thread-block cluster per KV head, each
// CTA holding all of its (at most kAttnShortMaxTiles) tiles in shared memory at once; the CTAs
// merge their partials through distributed shared memory, so no merge kernel runs.
constexpr int kAttnShortMaxTiles = 4;     // tiles per CTA (all loaded together, no stage ring)
constexpr int kAttnShortMaxTokens = 16;   // query tokens of the problem (its RoPE table per CTA)
constexpr int kAttnShortMaxCluster = 16;  // CTAs per cluster (above 8: a non-portable size)

// Offsets (in int32 elements) of the plan's arrays inside the device buffer. Fixed while the
// capacities do not change, so kernels captured in a CUDA graph keep valid addresses.
struct AttnPlanLayout {
  // header: counts the kernels read from device memory (they change from step to step)
  int hdr = 0;         // [kHdrCount]
  int tok_row = 0;     // [cap_tokens]  batch row of each query token
  int tok_pos = 0;     // [cap_tokens]  view position of each query token
  int row_last = 0;    // [cap_rows]    last token of each row (-1: row without tokens)
  int blk_page0 = 0;   // [cap_blocks]  first entry of the block's pages in page_ids
  int blk_len = 0;     // [cap_blocks]  keys of the block any query may see
  int page_ids = 0;    // [cap_pages]
  int piece_blk = 0;   // [cap_pieces]  pieces: a run of tiles of one block inside one chunk
  int tile_piece = 0;  // [cap_tiles]   tiles, chunk after chunk: piece,
  int tile_key0 = 0;   // [cap_tiles]   first block-local key,
  int tile_n = 0;      // [cap_tiles]   keys (1..64),
  int tile_pidx = 0;   // [cap_tiles]   index in page_ids of the page holding tile_key0,
  int tile_fresh = 0;  // [cap_tiles]   1: holds a key this forward writes (read after the PDL wait)
  int chunk_tile = 0;  // [cap_chunks + 1]
  int view_off = 0;    // [cap_blocks * cap_rows]  block u in row r's view: offset,
  int view_len = 0;    //                          visible length (-1: not in the view),
  int view_seg = 0;    //                          global segment index (for shares)
  int qt_lim = 0;      // [cap_qtiles * cap_blocks] most keys of block u any row of the q-tile sees
  int total = 0;       // ints in the buffer
};

enum AttnHdr { kHdrTokens, kHdrRows, kHdrBlocks, kHdrPieces, kHdrCount };

struct AttnCaps {
  int tokens = 0, rows = 0, blocks = 0, pages = 0, pieces = 0, tiles = 0, chunks = 0, qtiles = 0;
};

AttnPlanLayout attn_plan_layout(const AttnCaps& caps);
// Whether `have` holds `need` in every array.
bool attn_caps_cover(const AttnCaps& have, const AttnCaps& need);
// Capacities for `need`, grown with headroom from `have` so that a growing cache does not
// reallocate the device plan at every step.
AttnCaps attn_caps_grow(const AttnCaps& have, const AttnCaps& need);

// One tile of a CTA's chunk as the kernel resolves it once, at the CTA's start.
struct TileEntry {
  int piece, block, key0, n;                // n = 0: no row of this q-tile sees the tile
  const uint16_t* page[kAttnMaxTilePages];  // bf16 K of (layer, kv head) in each page touched
};

// The entry of plan tile `gt` for q-tile `qt`: its keys clipped to those some row of the q-tile
// sees. head_off: element offset of (layer, K, kv head) inside a page.
HW_HOST_DEVICE TileEntry attn_tile_entry(const int* base, const AttnPlanLayout& l, int gt, int qt, int n_blocks,
                                         int page_tokens, size_t head_off, const uint16_t* const* pages) {
  TileEntry e;
  e.piece = base[l.tile_piece + gt];
  e.key0 = base[l.tile_key0 + gt];
  const int pidx = base[l.tile_pidx + gt];
  e.block = base[l.piece_blk + e.piece];
  const int lim = base[l.qt_lim + qt * n_blocks + e.block];
  int n = base[l.tile_n + gt];
  n = lim - e.key0 < n ? lim - e.key0 : n;
  e.n = n > 0 ? n : 0;
  const int used = e.n > 0 ? (e.key0 + e.n - 1) / page_tokens - e.key0 / page_tokens + 1 : 0;
  for (int k = 0; k < kAttnMaxTilePages; k++)
    e.page[k] = k < used ? pages[base[l.page_ids + pidx + k]] + head_off : nullptr;
  return e;
}

// Address of key `key` (0 .. n-1) of a tile's K; its V is v_off elements further.
HW_HOST_DEVICE const uint16_t* attn_key_src(const TileEntry& e, int key, int page_tokens, int head_dim) {
  const int j = e.key0 + key;
  return e.page[j / page_tokens - e.key0 / page_tokens] + size_t(j % page_tokens) * head_dim;
}

// The same address with page_tokens = 1 << pt_shift: shifts and masks instead of divisions
// (the kernel's per-key path when page_tokens is a power of two).
HW_HOST_DEVICE const uint16_t* attn_key_src_pow2(const TileEntry& e, int key, int pt_shift, int head_dim) {
  const int j = e.key0 + key;
  return e.page[(j >> pt_shift) - (e.key0 >> pt_shift)] + size_t(j & ((1 << pt_shift) - 1)) * head_dim;
}

// Element offset of 16-byte chunk `chunk` (8 bf16) of key row `key` inside a K or V tile in shared
// memory: rows unpadded, chunks permuted by key & 7 so that the 8 rows one ldmatrix reads (8
// consecutive keys, one chunk column) fall in 8 different 16-byte bank groups.
HW_HOST_DEVICE int attn_kv_swz(int key, int chunk, int head_dim) {
  return key * head_dim + ((chunk ^ (key & 7)) << 3);
}

// The warpgroup-MMA kernel's layout (attention_wgmma.cuh; the wgmma "128-byte swizzle"): element
// offset of 16-byte chunk `part` of row `row` in a rows x HD matrix stored as HD / 64 column halves
// of `rows` 128-byte rows, each row's 8 chunks permuted by row & 7 (the XOR the hardware applies to
// address bits [4:6] ^ [7:9] of a 1024-byte-aligned half).
HW_HOST_DEVICE int attn_wg_swz(int row, int part, int rows) {
  return (part >> 3) * rows * 64 + row * 64 + (((part & 7) ^ (row & 7)) << 3);
}

// log2(page_tokens) when it is a power of two, else -1.
inline int attn_pt_shift(int page_tokens) {
  for (int s = 0; s < 30; s++)
    if ((1 << s) == page_tokens) return s;
  return -1;
}

// Keys of block u a query of batch row r at view position pos sees (0: none), and the distance
// p - offset its query is rotated by for that block.
HW_HOST_DEVICE int attn_row_limit(const int* base, const AttnPlanLayout& l, int u, int n_rows, int r, int pos,
                                  int* delta) {
  const int vlen = base[l.view_len + u * n_rows + r];
  *delta = pos - base[l.view_off + u * n_rows + r];
  if (vlen <= 0) return 0;
  const int lim = vlen < *delta + 1 ? vlen : *delta + 1;
  return lim > 0 ? lim : 0;
}

// Tokens of a CTA's query rows [row0, row0 + cta_rows) (query row = token x group + head in group).
HW_HOST_DEVICE int attn_cta_tokens(int row0, int cta_rows, int group) {
  return cta_rows > 0 ? (row0 + cta_rows - 1) / group - row0 / group + 1 : 0;
}

// The k-th of those tokens and its CTA-local rows [*i0, *i1): they share the token's batch row and
// position, so one key limit and one rotation distance (HW_ATTN_ROT_TOKEN rotates them together).
HW_HOST_DEVICE int attn_token_rows(int row0, int cta_rows, int group, int k, int* i0, int* i1) {
  const int t = row0 / group + k, first = t * group - row0, end = first + group;
  *i0 = first > 0 ? first : 0;
  *i1 = end < cta_rows ? end : cta_rows;
  return t;
}

// HW_ATTN_ROT_TOKEN's threads a (token, pair): 1, or where tokens x half pairs leave threads of
// the block idle (W = 1 decode), up to `group`, each taking a share of the token's rows.
HW_HOST_DEVICE int attn_rot_splits(int tokens, int half, int group, int threads) {
  const int items = tokens * half, fill = items > 0 ? threads / items : 1;
  const int s = fill < group ? fill : group;
  return s > 1 ? s : 1;
}

// Share k of a token's rows [i0, i1) split `splits` ways: rows [*r0, *r1), possibly empty.
HW_HOST_DEVICE void attn_split_rows(int i0, int i1, int splits, int k, int* r0, int* r1) {
  const int per = (i1 - i0 + splits - 1) / splits;
  *r0 = i0 + k * per;
  *r1 = *r0 + per < i1 ? *r0 + per : i1;
}

// The launch shape: grid (chunks, kv_heads, qtiles) of CTAs holding `groups` x 32 query rows.
// A short plan (cluster > 0) has one q-tile and chunks == cluster: the short kernel runs one cluster
// per KV head, CTA rank c over chunk c (and the chunk + merge kernels over the same plan when the
// shares are asked for).
struct AttnShape {
  int tokens = 0;       // T
  int rows_q = 0;       // R = T * group: query rows (token, head of the group) per KV head
  int groups = 1;       // 32-row warp groups per CTA (1 or 2)
  int qtiles = 0;       // ceil(R / (32 * groups))
  int chunks = 0;       // split-K factor over the tile sequence
  int pieces = 0;       // pieces over all chunks
  int blocks = 0;       // distinct blocks viewed
  int rows = 0;         // batch rows
  int segments = 0;     // view segments of all rows
  int cluster = 0;      // short plan: CTAs per cluster (== chunks); 0: chunk + merge kernels
  int short_tiles = 0;  // short plan: the most tiles of any chunk (sizes the shared memory)
  bool operator==(const AttnShape& o) const {
    return tokens == o.tokens && groups == o.groups && qtiles == o.qtiles && chunks == o.chunks &&
           cluster == o.cluster && short_tiles == o.short_tiles;
  }
};

// Everything plan() decides, on the host.
struct AttnPlanHost {
  AttnShape shape;
  std::vector<int> seg_begin;  // per row: its first global segment index (size rows + 1)
  // The plan's arrays, unpadded (packed into the device layout by pack()).
  std::vector<int> tok_row, tok_pos, row_last, blk_page0, blk_len, page_ids;
  std::vector<int> piece_blk, tile_piece, tile_key0, tile_n, tile_pidx, tile_fresh, chunk_tile;
  std::vector<int> view_off, view_len, view_seg;  // [blocks][rows]
  std::vector<int> qt_lim;                        // [qtiles][blocks]

  AttnCaps needs() const;
  // Writes the arrays into `dst` (layout.total ints) at the layout's offsets.
  void pack(const AttnPlanLayout& layout, int32_t* dst) const;
};

// Checks the problem and builds the plan. wave_g1 / wave_g2: SMs x CTAs per SM of the kernel
// with 1 / 2 warp groups (wave_g2 <= 0: 1-group CTAs only; wave_g1 <= 0: 2-group, 64-row CTAs
// only, as the warpgroup-MMA kernel takes them); the chunk count fills one wave for all q-tiles
// and KV heads. single_chunk_tiles > 0: a problem of at most that many tiles gets
// one chunk (each CTA walks every tile; no merge launch when no shares are asked for).
// min_chunk_tiles > 1: at most tiles / min_chunk_tiles chunks (rounded up), so a short context has
// fewer CTAs with a few tiles each and fewer partials to merge.
// short_cluster > 0 (2..kAttnShortMaxCluster): a problem that fits the short kernel (one q-tile, at
// most kAttnShortMaxTokens tokens, at most short_cluster x kAttnShortMaxTiles tiles) gets a short
// plan: short_cluster chunks of equal tile counts (attn_short_fits says when).
// piece_cost: what a piece (a block's run of tiles inside a chunk) costs its CTA on top of its
// tiles, in keys (a full tile costs kAttnTileKeys + 16); < 0: attn_piece_cost's.
AttnPlanHost build_attn_plan(const AttnDims& dims, const AttnProblem& p, int wave_g1, int wave_g2,
                             int single_chunk_tiles = 0, int min_chunk_tiles = 1, int short_cluster = 0,
                             int piece_cost = -1);

// Whether a problem of this shape (qtiles and tokens as planned) and `tiles` tiles fits a cluster of
// `cluster` CTAs of the short kernel.
inline bool attn_short_fits(const AttnShape& s, int tiles, int cluster) {
  return cluster >= 2 && cluster <= kAttnShortMaxCluster && s.qtiles == 1 && s.tokens <= kAttnShortMaxTokens &&
         tiles <= cluster * kAttnShortMaxTiles;
}

// Index of (piece pc of the CTA, token t) in the short kernel's per-(piece, token) arrays (the keys of
// the piece's block the token sees, its rotation distance).
HW_HOST_DEVICE int attn_short_pt(int pc, int t) {
  return pc * kAttnShortMaxTokens + t;
}
// Index of pair pr (of hd / 2) of (piece pc, token t) in the short kernel's RoPE table.
HW_HOST_DEVICE int attn_short_rope(int pc, int t, int pr, int tokens, int hd) {
  return (pc * tokens + t) * (hd / 2) + pr;
}

// Byte offsets of the short kernel's shared memory (attention.cu's attn_short_kernel), for hd,
// `groups` 32-row warp groups, `tiles` tiles per CTA and `tokens` query tokens. The K/V tiles and,
// after the loop, the warps' partials share `kv`; the unrotated fp32 queries and, after the loop,
// the CTA's merged partial (read by the other CTAs of the cluster) share `part`.
struct AttnShortSmem {
  int kv, wml, q, rows, tab, lim, dlt, fresh, rope, cml, part, total;
};
HW_HOST_DEVICE int attn_align16(int bytes) {
  return (bytes + 15) & ~15;
}
HW_HOST_DEVICE AttnShortSmem attn_short_smem(int hd, int groups, int tiles, int tokens) {
  AttnShortSmem s;
  const int rows = 32 * groups;
  const int kv_bytes = tiles * 2 * kAttnTileKeys * hd * 2;  // bf16 K and V of every tile
  const int warp_bytes = groups * 4 * 32 * hd * 4;          // fp32 o of each warp's 32 rows
  int at = 0;
  auto take = [&](int bytes) {
    const int o = at;
    at += attn_align16(bytes);
    return o;
  };
  s.kv = take(kv_bytes > warp_bytes ? kv_bytes : warp_bytes);
  s.wml = take(groups * 4 * 32 * 8);  // float2 (m, l) per warp and row
  s.q = take(rows * (hd + 8) * 2);    // bf16 rotated queries, rows padded by 16 bytes
  s.rows = take(rows * 16);           // int4 per row: token, head, batch row, position
  s.tab = take(tiles * int(sizeof(TileEntry)));
  s.lim = take(tiles * kAttnShortMaxTokens * 4);  // per (piece, token): keys of the block it sees
  s.dlt = take(tiles * kAttnShortMaxTokens * 4);  // per (piece, token): rotation distance p - offset
  s.fresh = take(tiles * 4);                      // per tile: read after the PDL wait
  s.rope = take(tiles * tokens * (hd / 2) * 8);   // float2 (cos, sin) per (piece, token, pair)
  s.cml = take(rows * 8);                         // float2 (m, l) of the CTA's partial per row
  s.part = take(rows * hd * 4);                   // fp32 queries, then the CTA's partial o
  s.total = at;
  return s;
}

// Checks dims (heads divisible, head_dim supported); throws EngineError otherwise.
void check_attn_dims(const AttnDims& dims);

}  // namespace cuda
}  // namespace hw
