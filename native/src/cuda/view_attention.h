// Hogwild attention over paged K/V on the device: the batch's views flattened into arrays,
// and a generic kernel for every head_dim (<= 256) and KV dtype that also produces the
// attention shares. The fast shared-KV kernel (attention.h) takes over where it applies.
#pragma once
#include <cuda_runtime.h>

#include "kernels.h"

namespace hw::cuda {

// The views of one forward, as device arrays (the same for every layer).
struct ViewArrays {
  int T = 0, rows = 0;
  const int* tok_row = nullptr;     // [T] batch row of each token
  const int* tok_pos = nullptr;     // [T] view position of each token
  const int* row_seg = nullptr;     // [rows + 1] first segment of each row
  const int* row_last = nullptr;    // [rows] index of the row's last token
  const int* seg_offset = nullptr;  // [segments] view offset of the block
  const int* seg_len = nullptr;     // [segments] block length after this step's writes
  const int* seg_pages = nullptr;   // [segments] first entry of the block's pages in page_ids
  const int* page_ids = nullptr;    // page ids of every segment's block, in token order
  // With shares (null otherwise): per row, [layers][its segments] and its visible keys.
  float* shares = nullptr;
  const int* share_base = nullptr;  // [rows] first float of the row in shares
  float* key_att = nullptr;
  const int* key_base = nullptr;  // [rows] first float of the row in key_att
};

// out[t, h*HD..] = one softmax over every visible key of token t's view; q [T, ld_q] with
// head h at h*HD, unrotated (rotated here per segment by p - offset).
void view_attention(const float* q, int ld_q, int heads, const ViewArrays& v, const float* inv_freq, const KvLayout& kv,
                    int layer, float* out, cudaStream_t s);

}  // namespace hw::cuda
