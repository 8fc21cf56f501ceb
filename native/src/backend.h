// The seam between the model and the hardware. A backend holds the KV page storage and
// runs the whole forward pass; the CPU backend is the reference every other one is
// checked against.
#pragma once
#include <cstdint>
#include <functional>
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
  int first_position = 0;            // view position of the row's first new token
  std::vector<Slot> write_slots;     // where each new token's K/V goes
  std::vector<int> segment_lengths;  // visible length of each view segment, after this step's writes
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
  // True when forward() samples rows that ask for it (BatchRow::sample) on the device.
  virtual bool samples() const { return false; }
  // True when a step that asks for per-key attention (Batch::key_attention) runs much slower than
  // one that does not (the CUDA backend's shared-KV kernel gives the shares per segment, but per
  // key only its generic kernel does); the Hogwild engine then records it only when asked.
  virtual bool key_attention_costly() const { return false; }
  // One line for the model summary: device, GPU name, weight and KV memory.
  virtual std::string describe() const { return name(); }
  // Bytes free for more KV pages where the backend keeps them in its own memory (a GPU's);
  // -1 = host memory (the run's default KV budget then reads the system's).
  virtual double kv_memory_free() const { return -1; }
  // Bytes one token's K/V takes (all layers); 16-bit where the checkpoint is 16-bit.
  virtual size_t kv_bytes_per_token() const = 0;
  // "f32", "bf16" or "f16": the element type of the K/V storage.
  virtual std::string kv_dtype() const = 0;
};

struct BackendOptions {
  std::string device = "cpu";  // "cpu", "cuda" or "auto"
  int threads = 0;             // CPU threads; 0 = all cores
  // Benchmarks: weights are not read but generated on the device from this seed (CUDA only;
  // the ModelWeights passed then carry shapes and no data).
  uint64_t random_weights_seed = 0;
  // K/V element type: "auto" = the checkpoint's (bf16 / f16 weights give 16-bit K/V, as
  // transformers does; fp32 stays fp32), or "f32", "bf16", "f16".
  std::string kv_dtype = "auto";
};

// Progress of a model load: `phase` ("read": the weight files brought into memory; "upload":
// the weights copied to the GPU), bytes done of `total`. Called on the loading thread.
using LoadProgress = std::function<void(const char* phase, double done, double total)>;

std::unique_ptr<Backend> make_cpu_backend(const ModelConfig& cfg, const ModelWeights& w, const BackendOptions& opt);
// Benchmarks: random K/V in every page a CUDA backend holds (a long context without its prefill).
void cuda_fill_kv_random(Backend& backend, uint64_t seed);
// Tests: how many forwards a CUDA backend ran as a replayed CUDA graph.
int64_t cuda_graph_launches(const Backend& backend);
// Benchmarks: time each forward's kernels on the device (two events, from the first launch to
// the sampled ids); the last forward's milliseconds, or -1 when not timed (or not a CUDA backend).
void cuda_time_steps(Backend& backend, bool on);
double cuda_last_step_device_ms(const Backend& backend);
// Throws EngineError when no usable GPU, driver or cuBLAS is found (or the build has no CUDA).
// `progress` follows the weights' copy to the GPU (phase "upload", bytes of the device weights).
std::unique_ptr<Backend> make_cuda_backend(const ModelConfig& cfg, const ModelWeights& w, const BackendOptions& opt,
                                           const LoadProgress& progress = {});

}  // namespace hw
