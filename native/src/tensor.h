// A view of one weight tensor as it lies in a memory-mapped safetensors file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hw {

enum class DType { F32, F16, BF16 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);

struct Tensor {
  std::string name;            // name inside the checkpoint, for error messages
  DType dtype = DType::F32;    // element type as stored (never converted in place)
  std::vector<int64_t> shape;  // row-major; a linear layer's weight is [out, in]
  const void* data = nullptr;  // points into the mapping (or into owned storage)

  bool empty() const { return data == nullptr; }
  int64_t numel() const;
  int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
  int64_t cols() const { return shape.size() < 2 ? 1 : shape[1]; }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype); }
};

// Reads element i of any stored dtype as fp32 (for small vectors: norms, biases).
float tensor_get(const Tensor& t, int64_t i);
// Widens a whole tensor (or a slice of rows) to fp32.
void tensor_to_f32(const Tensor& t, int64_t first_row, int64_t n_rows, float* out);

float bf16_to_f32(uint16_t v);
uint16_t f32_to_bf16(float v);
float f16_to_f32(uint16_t v);
uint16_t f32_to_f16(float v);

}  // namespace hw
