// The q8 K/V format (KvDType::Q8, opt-in): int8 values in blocks of kQ8Block elements along
// head_dim, each block of one (token, KV head, K or V) row with its own scale, stored as bf16:
// x ~ q * scale. The scale is max|x| / 127 of the block, rounded to bf16 first, and q is x /
// scale rounded to nearest: so the stored pair decodes to exactly q * scale in fp32 (8-bit by
// 8-bit significands), the error per element is at most half a step, and re-quantising
// de-quantised values gives the same bytes. bf16 rather than f16 scales: the range of fp32,
// so blocks of small values keep their precision.
#pragma once
#include <cstddef>
#include <cstdint>

namespace hw {

constexpr int kQ8Block = 32;
inline int q8_blocks(int head_dim) {
  return (head_dim + kQ8Block - 1) / kQ8Block;
}

// Quantises n <= kQ8Block values x[i * xs] into q[i * qs]; returns the block's scale (bf16 bits).
uint16_t q8_quantize_block(const float* x, size_t xs, int n, int8_t* q, size_t qs);
// Quantises a row of head_dim values x[d * xs]: q[d * qs], scales[b * ss] for each block b.
void q8_quantize_row(const float* x, size_t xs, int head_dim, int8_t* q, size_t qs, uint16_t* scales, size_t ss);
// The inverse: x[d] = q[d * qs] * scale of d's block.
void q8_dequantize_row(const int8_t* q, size_t qs, const uint16_t* scales, size_t ss, int head_dim, float* x);

}  // namespace hw
