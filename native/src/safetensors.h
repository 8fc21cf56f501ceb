// Memory-mapped safetensors files: one file, or the shards named by model.safetensors.index.json.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tensor.h"

namespace hw {

// One mapped .safetensors file. The header is checked in full when it opens:
// every tensor's byte range lies inside the file and matches its dtype and shape.
class SafeTensorsFile {
 public:
  explicit SafeTensorsFile(const std::string& path);  // throws EngineError naming the file
  ~SafeTensorsFile();
  SafeTensorsFile(const SafeTensorsFile&) = delete;
  SafeTensorsFile& operator=(const SafeTensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, Tensor>& tensors() const { return tensors_; }
  size_t mapped_bytes() const { return map_size_; }
  // Brings bytes [begin, end) of the mapping into memory (page cache or disk), page tables
  // included, so that later reads do not fault.
  void read_into_memory(size_t begin, size_t end) const;

  // Checks the header of `size` bytes of a safetensors file in full and returns its tensors
  // (pointing into `bytes`). Throws EngineError naming `path`. Public for the fuzzer.
  static std::map<std::string, Tensor> parse_header(const uint8_t* bytes, size_t size, const std::string& path);

 private:
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::map<std::string, Tensor> tensors_;
};

// Every tensor of a model folder, from model.safetensors or a sharded index.
class CheckpointFiles {
 public:
  explicit CheckpointFiles(const std::string& dir);  // throws EngineError naming file + problem
  // Finds a tensor; nullptr when absent.
  const Tensor* find(const std::string& name) const;
  // Finds a tensor and checks its shape; throws naming the tensor and its file when missing or wrong.
  const Tensor& require(const std::string& name, const std::vector<int64_t>& shape) const;
  // The file that holds a tensor (for error messages).
  std::string file_of(const std::string& name) const;
  size_t mapped_bytes() const;
  // Every file read into memory in slices; `progress(bytes done)` after each slice.
  void read_into_memory(const std::function<void(size_t done)>& progress) const;

 private:
  void add_file(const std::string& path);

  std::string dir_;     // the model folder, for "missing tensor" messages
  std::string source_;  // "model.safetensors" or the index file, for the same
  std::vector<std::unique_ptr<SafeTensorsFile>> files_;
  std::map<std::string, std::pair<const Tensor*, const SafeTensorsFile*>> index_;
};

}  // namespace hw
