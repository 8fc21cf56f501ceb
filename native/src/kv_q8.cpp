#include "kv_q8.h"

#include <algorithm>
#include <cmath>

#include "tensor.h"

namespace hw {

uint16_t q8_quantize_block(const float* x, size_t xs, int n, int8_t* q, size_t qs) {
  float mx = 0.0f;
  for (int i = 0; i < n; i++) mx = std::max(mx, std::fabs(x[i * xs]));
  const uint16_t bits = f32_to_bf16(mx / 127.0f);
  const float s = bf16_to_f32(bits);
  // A zero block (or one whose scale underflows bf16) stores zeros; a non-finite one stores
  // zeros with its non-finite scale, which decodes to NaN as a bf16 cache would carry it.
  const bool usable = s > 0.0f && std::isfinite(s);
  for (int i = 0; i < n; i++) {
    const float r = usable && std::isfinite(x[i * xs]) ? std::nearbyint(x[i * xs] / s) : 0.0f;
    q[i * qs] = int8_t(std::clamp(r, -127.0f, 127.0f));
  }
  return bits;
}

void q8_quantize_row(const float* x, size_t xs, int head_dim, int8_t* q, size_t qs, uint16_t* scales, size_t ss) {
  for (int b = 0, d = 0; d < head_dim; b++, d += kQ8Block)
    scales[b * ss] = q8_quantize_block(x + d * xs, xs, std::min(kQ8Block, head_dim - d), q + d * qs, qs);
}

void q8_dequantize_row(const int8_t* q, size_t qs, const uint16_t* scales, size_t ss, int head_dim, float* x) {
  for (int d = 0; d < head_dim; d++) x[d] = float(q[d * qs]) * bf16_to_f32(scales[(d / kQ8Block) * ss]);
}

}  // namespace hw
