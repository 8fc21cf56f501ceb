// Writes a safetensors file (8-byte little-endian header length, JSON header, 8-byte
// aligned data) for the tests and benchmarks that make their own checkpoints.
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
};

// write_data(i, out) streams the bytes of tensor i, in the order given.
inline void write_safetensors(const std::string& path, const std::vector<TensorSpec>& tensors,
                              const std::function<void(size_t, std::ofstream&)>& write_data) {
  std::string header = "{";
  uint64_t offset = 0;
  for (const TensorSpec& t : tensors) {
    uint64_t n = 1;
    for (int64_t d : t.shape) n *= uint64_t(d);
    if (header.size() > 1) header += ",";
    header += "\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); i++) header += (i ? "," : "") + std::to_string(t.shape[i]);
    header +=
        "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + n * t.element_size) + "]}";
    offset += n * t.element_size;
  }
  header += "}";
  while (header.size() % 8) header += ' ';
  std::ofstream f(path, std::ios::binary);
  const uint64_t hlen = header.size();
  f.write(reinterpret_cast<const char*>(&hlen), 8);
  f << header;
  for (size_t i = 0; i < tensors.size(); i++) write_data(i, f);
}
