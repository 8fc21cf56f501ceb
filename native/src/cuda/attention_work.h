// The host half of the Hogwild attention kernel: turns rows, views and block page lists into a
// flat int32 work plan (what each CTA reads), with no CUDA dependency so it is testable on any
// machine. attention.cu uploads the buffer and launches over it.
#pragma once
#include <cstdint>
#include <vector>

#include "attention.h"

namespace hw {
namespace cuda {

constexpr int kAttnTileKeys = 64;  // keys per K/V tile: 4 warps x 16 keys each

// Offsets (in int32 elements) of the plan's arrays inside the device buffer. Fixed while the
// capacities do not change, so kernels captured in a CUDA graph keep valid addresses.
struct AttnPlanLayout {
  // header: counts the kernels read from device memory (they change from step to step)
  int hdr = 0;          // [kHdrCount]
  int tok_row = 0;      // [cap_tokens]  batch row of each query token
  int tok_pos = 0;      // [cap_tokens]  view position of each query token
  int row_last = 0;     // [cap_rows]    last token of each row (-1: row without tokens)
  int blk_page0 = 0;    // [cap_blocks]  first entry of the block's pages in page_ids
  int blk_len = 0;      // [cap_blocks]  keys of the block any query may see
  int page_ids = 0;     // [cap_pages]
  int piece_blk = 0;    // [cap_pieces]  pieces: a run of tiles of one block inside one chunk
  int piece_t0 = 0;     // [cap_pieces]
  int piece_t1 = 0;     // [cap_pieces]
  int chunk_piece = 0;  // [cap_chunks + 1]
  int view_off = 0;     // [cap_blocks * cap_rows]  block u in row r's view: offset,
  int view_len = 0;     //                          visible length (-1: not in the view),
  int view_seg = 0;     //                          global segment index (for shares)
  int qt_lim = 0;       // [cap_qtiles * cap_blocks] most keys of block u any row of the q-tile sees
  int total = 0;        // ints in the buffer
};

enum AttnHdr { kHdrTokens, kHdrRows, kHdrBlocks, kHdrPieces, kHdrCount };

struct AttnCaps {
  int tokens = 0, rows = 0, blocks = 0, pages = 0, pieces = 0, chunks = 0, qtiles = 0;
};

AttnPlanLayout attn_plan_layout(const AttnCaps& caps);

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
  std::vector<int> piece_blk, piece_t0, piece_t1, chunk_piece;
  std::vector<int> view_off, view_len, view_seg;  // [blocks][rows]
  std::vector<int> qt_lim;                        // [qtiles][blocks]

  AttnCaps needs() const;
  // Writes the arrays into `dst` (layout.total ints) at the layout's offsets.
  void pack(const AttnPlanLayout& layout, int32_t* dst) const;
};

// Checks the problem and builds the plan. wave_g1 / wave_g2: SMs x CTAs per SM of the kernel
// with 1 / 2 warp groups; the chunk count fills one wave for all q-tiles and KV heads.
AttnPlanHost build_attn_plan(const AttnDims& dims, const AttnProblem& p, int wave_g1, int wave_g2);

// Checks dims (heads divisible, head_dim supported); throws EngineError otherwise.
void check_attn_dims(const AttnDims& dims);

}  // namespace cuda
}  // namespace hw
