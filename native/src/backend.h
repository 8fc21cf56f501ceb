// The seam between the model and the hardware. A backend holds the KV page storage and
// runs the whole forward pass; the CPU backend is the reference every other one is
// checked against.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "batch.h"
#include "config.h"
#include "kv_cache.h"
#include "weights.h"

namespace hw {

// What a forward needs to know about each row after the cache has made room for it.
struct RowPlan {
  int first_position = 0;              // view position of the row's first new token
  std::vector<Slot> write_slots;       // where each new token's K/V goes
  std::vector<int> segment_lengths;    // visible length of each view segment, after this step's writes
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // Grows page storage to hold `pages` pages.
  virtual void ensure_pages(int pages) = 0;
  // Copies tokens between slots; keys are rotated `delta` positions further (0 = plain copy).
  virtual void move_tokens(const std::vector<TokenMove>& moves, int delta) = 0;
  // The forward pass. All rows' K/V of a layer are written before any row attends in it
  // (instant visibility).
  virtual void forward(const Batch& batch, const std::vector<RowPlan>& plans, const KvCache& cache,
                       ForwardOutput& out) = 0;
  // Bytes of KV page storage held now.
  virtual size_t kv_bytes() const = 0;
  // Bytes one token's K/V takes (all layers); 16-bit where the checkpoint is 16-bit.
  virtual size_t kv_bytes_per_token() const = 0;
  // "f32", "bf16" or "f16": the element type of the K/V storage.
  virtual std::string kv_dtype() const = 0;
};

struct BackendOptions {
  std::string device = "cpu";  // "cpu", "cuda" or "auto"
  int threads = 0;             // CPU threads; 0 = all cores
  // K/V element type: "auto" = the checkpoint's (bf16 / f16 weights give 16-bit K/V, as
  // transformers does; fp32 stays fp32), or "f32", "bf16", "f16".
  std::string kv_dtype = "auto";
};

std::unique_ptr<Backend> make_cpu_backend(const ModelConfig& cfg, const ModelWeights& w,
                                          const BackendOptions& opt);

}  // namespace hw
