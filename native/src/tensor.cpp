#include "tensor.h"

#include <cstring>

#include "error.h"

namespace hw {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32:
      return 4;
    case DType::F16:
      return 2;
    case DType::BF16:
      return 2;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "F32";
    case DType::F16:
      return "F16";
    case DType::BF16:
      return "BF16";
  }
  return "?";
}

int64_t Tensor::numel() const {
  // A default Tensor (no shape, no data) holds nothing; a bound scalar has shape [] and 1 element.
  if (shape.empty()) return data ? 1 : 0;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {
uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float bits_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t load_u16(const void* base, int64_t i) {
  uint16_t v;
  std::memcpy(&v, static_cast<const char*>(base) + i * 2, 2);  // mapped data may be unaligned
  return v;
}
}  // namespace

float bf16_to_f32(uint16_t v) {
  return bits_f32(uint32_t(v) << 16);
}

uint16_t f32_to_bf16(float v) {
  uint32_t u = f32_bits(v);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((u >> 16) | 0x0040u);  // NaN stays NaN (quiet)
  // Round to nearest, ties to even: add just under half an ulp, plus one when the kept lsb is odd.
  u += 0x7FFFu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t man = h & 0x3FFu;
  if (exp == 0) {
    // Zero or subnormal: man * 2^-24 is exact in fp32.
    float f = float(man) * (1.0f / 16777216.0f);
    return sign ? -f : f;
  }
  if (exp == 31) return bits_f32(sign | 0x7F800000u | (man << 13));  // inf / NaN
  return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t f32_to_f16(float v) {
  uint32_t u = f32_bits(v);
  uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return uint16_t(sign | 0x7E00u | ((a >> 13) & 0x3FFu));  // NaN (quiet)
  if (a >= 0x477FF000u) return uint16_t(sign | 0x7C00u);                        // >= 65520 rounds past 65504: inf
  if (a >= 0x38800000u) {
    // Normal: rebias the exponent (127 -> 15), then round the 13 dropped bits to nearest even.
    uint32_t r = a - 0x38000000u;
    r += 0xFFFu + ((r >> 13) & 1u);
    return uint16_t(sign | (r >> 13));
  }
  if (a <= 0x33000000u) return sign;  // <= 2^-25: half the smallest subnormal or less, ties to 0
  // Subnormal: count units of 2^-24, rounding to nearest even.
  uint32_t e = a >> 23;
  uint32_t m = (a & 0x7FFFFFu) | 0x800000u;
  uint32_t shift = 126 - e;  // 14..24
  uint32_t q = m >> shift;
  uint32_t rem = m & ((1u << shift) - 1);
  uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1u))) ++q;
  return uint16_t(sign | q);
}

float tensor_get(const Tensor& t, int64_t i) {
  switch (t.dtype) {
    case DType::F32: {
      float f;
      std::memcpy(&f, static_cast<const char*>(t.data) + i * 4, 4);
      return f;
    }
    case DType::F16:
      return f16_to_f32(load_u16(t.data, i));
    case DType::BF16:
      return bf16_to_f32(load_u16(t.data, i));
  }
  return 0.0f;
}

void tensor_to_f32(const Tensor& t, int64_t first_row, int64_t n_rows, float* out) {
  int64_t rows = t.shape.empty() ? 1 : t.shape[0];
  if (first_row < 0 || n_rows < 0 || first_row + n_rows > rows)
    fail(t.name, "rows [" + std::to_string(first_row) + ", " + std::to_string(first_row + n_rows) +
                     ") are outside the tensor's " + std::to_string(rows) + " rows");
  int64_t width = rows ? t.numel() / rows : 0;  // elements per row, whatever the rank
  int64_t begin = first_row * width, n = n_rows * width;
  switch (t.dtype) {
    case DType::F32:
      std::memcpy(out, static_cast<const char*>(t.data) + begin * 4, size_t(n) * 4);
      break;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(load_u16(t.data, begin + i));
      break;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(load_u16(t.data, begin + i));
      break;
  }
}

}  // namespace hw
