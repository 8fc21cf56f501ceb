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
// Tiles per chunk: a CTA holds its chunk's tile table in shared memory (64: two CTAs fit per SM).
constexpr int kAttnMaxChunkTiles = 64;
constexpr int kAttnMaxTilePages = 5;  // pages one 64-key tile can touch with page_tokens >= 16
constexpr int kAttnMinPageTokens = 16;

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
  int tile_pidx = 0;   // [cap_tiles]   index in page_ids of the page holding tile_key0
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

// The launch shape: grid (chunks, kv_heads, qtiles) of CTAs holding `groups` x 32 query rows.
struct AttnShape {
  int tokens = 0;    // T
  int rows_q = 0;    // R = T * group: query rows (token, head of the group) per KV head
  int groups = 1;    // 32-row warp groups per CTA (1 or 2)
  int qtiles = 0;    // ceil(R / (32 * groups))
  int chunks = 0;    // split-K factor over the tile sequence
  int pieces = 0;    // pieces over all chunks
  int blocks = 0;    // distinct blocks viewed
  int rows = 0;      // batch rows
  int segments = 0;  // view segments of all rows
  bool operator==(const AttnShape& o) const {
    return tokens == o.tokens && groups == o.groups && qtiles == o.qtiles && chunks == o.chunks;
  }
};

// Everything plan() decides, on the host.
struct AttnPlanHost {
  AttnShape shape;
  std::vector<int> seg_begin;  // per row: its first global segment index (size rows + 1)
  // The plan's arrays, unpadded (packed into the device layout by pack()).
  std::vector<int> tok_row, tok_pos, row_last, blk_page0, blk_len, page_ids;
  std::vector<int> piece_blk, tile_piece, tile_key0, tile_n, tile_pidx, chunk_tile;
  std::vector<int> view_off, view_len, view_seg;  // [blocks][rows]
  std::vector<int> qt_lim;                        // [qtiles][blocks]

  AttnCaps needs() const;
  // Writes the arrays into `dst` (layout.total ints) at the layout's offsets.
  void pack(const AttnPlanLayout& layout, int32_t* dst) const;
};

// Checks the problem and builds the plan. wave_g1 / wave_g2: SMs x CTAs per SM of the kernel
// with 1 / 2 warp groups (wave_g2 <= 0: 1-group CTAs only); the chunk count fills one wave for
// all q-tiles and KV heads. single_chunk_tiles > 0: a problem of at most that many tiles gets
// one chunk (each CTA walks every tile; no merge launch when no shares are asked for).
// min_chunk_tiles > 1: at most tiles / min_chunk_tiles chunks (rounded up), so a short context has
// fewer CTAs with a few tiles each and fewer partials to merge.
AttnPlanHost build_attn_plan(const AttnDims& dims, const AttnProblem& p, int wave_g1, int wave_g2,
                             int single_chunk_tiles = 0, int min_chunk_tiles = 1);

// Checks dims (heads divisible, head_dim supported); throws EngineError otherwise.
void check_attn_dims(const AttnDims& dims);

}  // namespace cuda
}  // namespace hw
