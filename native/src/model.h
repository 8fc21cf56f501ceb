// A loaded model: config, mapped weights, the paged KV cache and the backend that runs it.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "backend.h"
#include "batch.h"
#include "config.h"
#include "cpu/parallel.h"
#include "kv_cache.h"
#include "weights.h"

namespace hw {

class Model {
 public:
  // Loads <dir> (config.json + safetensors). Throws EngineError naming the file and problem.
  // The weight files are read into memory here, with progress (unless they would not fit in
  // the memory available: then they are read as the first forwards touch them).
  static std::unique_ptr<Model> load(const std::string& dir, const BackendOptions& opt,
                                     const LoadProgress& progress = {});
  // A model of this shape with seeded random weights generated on the GPU (benchmarks).
  static std::unique_ptr<Model> random(const ModelConfig& cfg, const BackendOptions& opt);

  // Where it runs, for the model summary: the backend's description, or the CPU with the
  // reason when `auto` found no usable GPU.
  std::string device() const;

  const ModelConfig& config() const { return cfg_; }
  KvCache& cache() { return cache_; }
  const KvCache& cache() const { return cache_; }
  Backend& backend() { return *backend_; }
  // The CPU threads of this model (the CPU backend's kernels, sampling in the engine).
  par::Pool& pool() { return *pool_; }

  // The one forward entry: validates the batch, makes room in the cache, runs the backend,
  // and only then counts the new tokens as written (a failed forward leaves the cache as it was).
  void forward(const Batch& batch, ForwardOutput& out);

  // One long row fed in chunks of at most `chunk` tokens, so that memory stays bounded and
  // the caller gets control back between chunks: `after_chunk(done, total)` runs after each
  // (it may throw to end early; what was written stays written). Only the last chunk asks
  // for logits (as the row does). With `cancel` set, a chunk stops between layers and
  // Cancelled is thrown. With `report_s` > 0 the chunks are paced (PrefillPacer): small at
  // first, then as large as fits in report_s seconds. Same results as one forward of the row.
  void forward_chunked(const BatchRow& row, int chunk, ForwardOutput& out,
                       const std::function<void(int done, int total)>& after_chunk = {},
                       const std::atomic<bool>* cancel = nullptr, double report_s = 0);

  // Appends every token of `src` to the end of `dst`, keys rotated by dst's old length
  // (moves a finished step into a shared history once, O(step)).
  void append_block(int dst, int src);
  // A block sharing `src`'s tokens copy-on-write.
  int fork_block(int src) { return cache_.fork_block(src); }

  // Longest view position a forward may use (the config's, or a smaller limit set by the user).
  int max_context() const { return max_context_; }
  void set_max_context(int n);

 private:
  Model() = default;
  void make_backend(const BackendOptions& opt, const LoadProgress& progress = {});
  ModelConfig cfg_;
  ModelWeights weights_;
  KvCache cache_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<par::Pool> pool_;
  int max_context_ = 0;
  std::string device_note_;
};

}  // namespace hw
