// Writes a safetensors file (8-byte little-endian header length, JSON header with the
// "__metadata__" that PyTorch checkpoints carry, 8-byte aligned data): the one writer of the
// tests and benchmarks that make their own checkpoints.
#pragma once
#include <cstdint>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

struct TensorSpec {
  std::string name;
  std::string dtype;  // "F32", "BF16", ...
  std::vector<int64_t> shape;
  size_t element_size;
  uint64_t bytes = 0;  // the data's size when it is not shape x element_size (tests of bad files)
};

// write_data(i, out) streams the bytes of tensor i, in the order given.
inline void write_safetensors(const std::string& path, const std::vector<TensorSpec>& tensors,
                              const std::function<void(size_t, std::ofstream&)>& write_data) {
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
  uint64_t offset = 0;
  for (const TensorSpec& t : tensors) {
    uint64_t n = 1;
    for (int64_t d : t.shape) n *= uint64_t(d);
    const uint64_t bytes = t.bytes ? t.bytes : n * t.element_size;
    header += ",\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); i++) header += (i ? "," : "") + std::to_string(t.shape[i]);
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + bytes) + "]}";
    offset += bytes;
  }
  header += "}";
  while (header.size() % 8) header += ' ';
  std::ofstream f(path, std::ios::binary);
  const uint64_t hlen = header.size();
  f.write(reinterpret_cast<const char*>(&hlen), 8);
  f << header;
  for (size_t i = 0; i < tensors.size(); i++) write_data(i, f);
}
