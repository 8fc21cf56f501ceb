// The CUDA backend: the CPU backend's forward pass on one NVIDIA GPU. Weights live on the
// device in the checkpoint's dtype (q/k/v and gate/up fused into one matrix each, so a
// decode step reads every weight once in few launches); KV pages in bf16 (fp32 for fp32
// checkpoints, so fp32 fixtures compute in fp32 end to end); activations in fp32.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../backend.h"
#include "../cpu/rope.h"
#include "../error.h"
#include "cublas_loader.h"
#include "cuda_check.h"
#include "gemm.h"
#include "kernels.h"
#include "sampling.h"
#include "view_attention.h"
#ifdef HW_HAVE_FAST_ATTENTION
#include "attention.h"
#endif

namespace hw {
namespace {

using namespace hw::cuda;

std::string gb(size_t bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f GB", double(bytes) / 1e9);
  return b;
}

std::string bytes_text(size_t bytes) {
  return std::to_string(bytes) + " bytes (" + gb(bytes) + ")";
}

// Picks the GPU and checks that this build can run on it; throws with the reason otherwise.
int pick_device(cudaDeviceProp& prop) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e == cudaErrorInsufficientDriver) {
    int drv = 0;
    cudaDriverGetVersion(&drv);
    cudaGetLastError();
    if (drv == 0) throw EngineError("CUDA unavailable: no NVIDIA driver found (libcuda.so.1)");
    throw EngineError("CUDA unavailable: the NVIDIA driver supports CUDA " + std::to_string(drv / 1000) + "." +
                      std::to_string(drv % 1000 / 10) + "; this build needs CUDA " +
                      std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10) +
                      " (a newer driver)");
  }
  if (e != cudaSuccess) {
    cudaGetLastError();
    throw EngineError(std::string("CUDA unavailable: ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
  }
  if (n == 0) throw EngineError("CUDA unavailable: no NVIDIA GPU found");
  int dev = 0;
  if (const char* d = std::getenv("HW_CUDA_DEVICE")) dev = std::atoi(d);
  if (dev < 0 || dev >= n)
    throw EngineError("HW_CUDA_DEVICE=" + std::to_string(dev) + " but " + std::to_string(n) + " GPU(s) found");
  check(cudaGetDeviceProperties(&prop, dev), "cudaGetDeviceProperties");
  if (prop.major < 8)
    throw EngineError(std::string("CUDA unavailable: ") + prop.name + " has compute capability " +
                      std::to_string(prop.major) + "." + std::to_string(prop.minor) +
                      "; this build needs 8.0 or newer");
  check(cudaSetDevice(dev), "cudaSetDevice");
  return dev;
}

// Owns device allocations; allocation checks free memory first so failures say how much.
class DeviceHeap {
 public:
  ~DeviceHeap() { release(); }
  void release() {
    for (void* p : ptrs_) cudaFree(p);
    ptrs_.clear();
  }
  void* alloc(size_t bytes, const std::string& what) {
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, std::max<size_t>(bytes, 16));
    if (e != cudaSuccess) {
      cudaGetLastError();
      size_t free = 0, total = 0;
      cudaMemGetInfo(&free, &total);
      throw EngineError("not enough GPU memory for " + what + ": needs " + bytes_text(bytes) + ", " + bytes_text(free) +
                        " free of " + gb(total));
    }
    ptrs_.push_back(p);
    return p;
  }
  void free(void* p) {
    auto it = std::find(ptrs_.begin(), ptrs_.end(), p);
    if (it != ptrs_.end()) {
      cudaFree(p);
      ptrs_.erase(it);
    }
  }

 private:
  std::vector<void*> ptrs_;
};

// A grow-only device buffer inside a heap.
struct Scratch {
  void* p = nullptr;
  size_t bytes = 0;
  // Zeroed on the backend's stream (a legacy-stream memset would not be ordered with it).
  void* need(DeviceHeap& heap, size_t n, const char* what, cudaStream_t s) {
    if (n <= bytes) return p;
    const size_t grown = std::max(n, bytes * 3 / 2);
    if (p) heap.free(p);
    p = nullptr;
    bytes = 0;
    p = heap.alloc(grown, what);
    check(cudaMemsetAsync(p, 0, grown, s), "cudaMemsetAsync");
    bytes = grown;
    return p;
  }
  template <typename T>
  T* as() const {
    return static_cast<T*>(p);
  }
};

// How a stacked matrix's rows are stored on the device (see gemm.h's gemm_swiglu and gemm_qkv).
enum class RowOrder {
  Plain,    // the parts' rows one after the other
  GateUp8,  // two parts (gate, up) in alternating runs of 8 rows
  PairK,    // [q | k | v] with each K head's rows in RoPE pairs (i, i + half)
};

struct DeviceLayer {
  DeviceMatrix wqkv, wo, wgu, wdown;
  bool gu_interleaved = false;  // wgu's gate and up rows in alternating runs of 8 (gemm_swiglu)
  bool k_paired = false;        // wqkv's (and bqkv's) K rows in RoPE pairs (gemm_qkv)
  const float *attn_norm = nullptr, *mlp_norm = nullptr, *q_norm = nullptr, *k_norm = nullptr, *bqkv = nullptr;
};

class CudaBackend final : public Backend {
 public:
  CudaBackend(const ModelConfig& cfg, const ModelWeights& w, const BackendOptions& opt, const LoadProgress& progress)
      : cfg_(cfg), progress_(progress) {
    // Before any GPU work: the same answer with or without a GPU.
    if (opt.kv_dtype == "q8") throw EngineError("K/V type q8 is CPU-only; use bf16 on cuda (or q8 with device cpu)");
    dev_ = pick_device(prop_);
    cublas();  // fails here, naming the library, when cuBLAS is missing or too old
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    try {
      upload(w, opt);
#ifdef HW_HAVE_FAST_ATTENTION
      // The shared-KV tensor-core kernel where it applies (bf16 pages, head_dim 64 or 128);
      // the generic kernel otherwise, and for batches that ask for attention shares per key.
      if (kv_ == DType::BF16 && (cfg_.head_dim == 64 || cfg_.head_dim == 128) &&
          !std::getenv("HW_CUDA_GENERIC_ATTENTION")) {
        AttnDims d;
        d.layers = cfg_.layers;
        d.heads = cfg_.heads;
        d.kv_heads = cfg_.kv_heads;
        d.head_dim = cfg_.head_dim;
        d.page_tokens = page_tokens_;
        fast_ = std::make_unique<HogwildAttention>(d, dev_);
      }
#endif
    } catch (...) {
      heap_.release();
      cudaStreamDestroy(stream_);
      throw;
    }
  }

  ~CudaBackend() override {
    cudaStreamSynchronize(stream_);
    if (graph_) cudaGraphExecDestroy(graph_);
    if (step_begin_) cudaEventDestroy(step_begin_), cudaEventDestroy(step_end_);
    heap_.release();
    for (void* p : slabs_) cudaFree(p);
    cudaStreamDestroy(stream_);
  }

  std::string name() const override {
    return "cuda";
  }
  bool samples() const override {
    return true;
  }
  // Per-key attention takes the generic kernel (no CUDA graph, every row reads its own keys).
  bool key_attention_costly() const override {
#ifdef HW_HAVE_FAST_ATTENTION
    return fast_ != nullptr;
#else
    return false;
#endif
  }

  std::string describe() const override {
    char b[320];
    std::snprintf(b, sizeof b, "cuda: %s (sm_%d%d, %.1f GiB), weights %s %s, KV %s %.1f KB/token", prop_.name,
                  prop_.major, prop_.minor, double(prop_.totalGlobalMem) / (1u << 30), gb(weight_bytes_).c_str(),
                  dtype_name(wt_), dtype_name(kv_), double(kv_bytes_per_token()) / 1e3);
    return b;
  }

  std::string kv_dtype() const override {
    return kv_ == DType::F32 ? "f32" : kv_ == DType::F16 ? "f16" : "bf16";
  }

  size_t kv_bytes_per_token() const override {
    return size_t(cfg_.layers) * 2 * cfg_.kv_heads * cfg_.head_dim * dtype_size(kv_);
  }
  size_t page_bytes() const {
    return kv_bytes_per_token() * page_tokens_;
  }
  size_t kv_bytes() const override {
    return page_ptrs_.size() * page_bytes();
  }

  double kv_memory_free() const override {
    size_t free = 0, total = 0;
    if (cudaMemGetInfo(&free, &total) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    const size_t reserve = 512u << 20;  // activations, cuBLAS and the attention's workspace
    return free > reserve ? double(free - reserve) : 0.0;
  }

  void ensure_pages(int pages) override {
    const int have = int(page_ptrs_.size());
    if (pages <= have) return;
    const int need = pages - have;
    // Slabs of at least a quarter of what is held: few allocations as the cache grows.
    int count = std::max(need, have / 4);
    size_t free = 0, total = 0;
    cudaMemGetInfo(&free, &total);
    if (size_t(count) * page_bytes() > free) count = need;
    void* slab = nullptr;
    const size_t bytes = size_t(count) * page_bytes();
    if (cudaMalloc(&slab, bytes) != cudaSuccess) {
      cudaGetLastError();
      throw EngineError("not enough GPU memory for the KV cache: " + std::to_string(need) + " more pages need " +
                        bytes_text(size_t(need) * page_bytes()) + ", " + bytes_text(free) + " free on " + prop_.name +
                        " (" + bytes_text(kv_bytes()) + " already held by the cache)");
    }
    slabs_.push_back(slab);
    for (int i = 0; i < count; i++) page_ptrs_.push_back(static_cast<char*>(slab) + size_t(i) * page_bytes());
    void** table = page_table_.need<void*>(heap_, page_ptrs_.size(), "the KV page table", stream_);
    check(cudaMemcpyAsync(table, page_ptrs_.data(), page_ptrs_.size() * sizeof(void*), cudaMemcpyHostToDevice, stream_),
          "cudaMemcpy (KV page table)");
  }

  void move_tokens(const std::vector<TokenMove>& moves, int delta) override {
    if (moves.empty()) return;
    std::vector<int4> m(moves.size());
    for (size_t i = 0; i < moves.size(); i++)
      m[i] = make_int4(moves[i].src.page, moves[i].src.index, moves[i].dst.page, moves[i].dst.index);
    int4* d = move_buf_.need<int4>(heap_, m.size(), "token moves", stream_);
    check(cudaMemcpyAsync(d, m.data(), m.size() * sizeof(int4), cudaMemcpyHostToDevice, stream_), "cudaMemcpy (moves)");
    cuda::move_tokens(d, int(m.size()), delta, inv_freq_, kv_layout(), stream_);
  }

  void forward(const Batch& batch, const std::vector<RowPlan>& plans, const KvCache& cache,
               ForwardOutput& out) override;

  // Benchmarks: random K/V in every page held (a long context without its prefill).
  void fill_kv_random(uint64_t seed) {
    for (size_t p = 0; p < page_ptrs_.size(); p++)
      fill_random(page_ptrs_[p], kv_, page_bytes() / (kv_ == DType::F32 ? 4 : 2), seed + p, 1.0f, 0.0f, stream_);
    check_sync(cudaStreamSynchronize(stream_), "fill_kv_random");
  }

 private:
  struct Buf : Scratch {
    template <typename T>
    T* need(DeviceHeap& heap, size_t n, const char* what, cudaStream_t s) {
      return static_cast<T*>(Scratch::need(heap, n * sizeof(T), what, s));
    }
  };

  KvLayout kv_layout() const {
    KvLayout k;
    k.pages = static_cast<void* const*>(page_table_.p);
    k.kv = kv_;
    k.layers = cfg_.layers;
    k.kv_heads = cfg_.kv_heads;
    k.page_tokens = page_tokens_;
    k.head_dim = cfg_.head_dim;
    return k;
  }

  size_t esz(DType t) const {
    return dtype_size(t);
  }

  void upload(const ModelWeights& w, const BackendOptions& opt);
  DeviceMatrix matrix(const std::vector<const Tensor*>& parts, int cols, const std::string& what,
                      RowOrder order = RowOrder::Plain);
  const float* vector(const Tensor& t, int n, float fill_value);
  const float* vector_cat(const std::vector<const Tensor*>& parts, bool k_paired);

  const ModelConfig& cfg_;
  // The load's progress while the weights go to the GPU (only during the constructor).
  LoadProgress progress_;
  size_t uploaded_ = 0;  // weight bytes on the device so far
  void report_upload() {
    if (progress_) progress_("upload", double(uploaded_), double(weight_bytes_));
  }
  cudaDeviceProp prop_{};
  int dev_ = 0;
  cudaStream_t stream_ = nullptr;
  DeviceHeap heap_;
  DType wt_ = DType::BF16, kv_ = DType::BF16;
  bool random_ = false;
  // On unless HW_GEMM_SWIGLU=0 (read once, at load): gate/up uploaded interleaved, SwiGLU in the
  // GEMM's epilogue (H200, 2026-12-03: 0.5B W=4 steps 3-5% faster, 7B 1-2%).
  bool swiglu_epilogue_ = cuda::switch_on("HW_GEMM_SWIGLU");
  // On unless HW_GEMM_QKV=0 (read once, at load): K rows in RoPE pairs, qkv_post in the qkv GEMM's
  // epilogue (models without q/k norms; H200: 0.5B W=4 2-3% faster, 7B 2%).
  bool qkv_epilogue_ = cuda::switch_on("HW_GEMM_QKV");
  uint64_t seed_ = 0;
  size_t weight_bytes_ = 0;

  DeviceMatrix embed_, lm_head_;
  std::vector<DeviceLayer> layers_;
  const float* final_norm_ = nullptr;
  float* inv_freq_ = nullptr;

  int page_tokens_ = 32;
  std::vector<void*> page_ptrs_, slabs_;
#ifdef HW_HAVE_FAST_ATTENTION
  std::unique_ptr<HogwildAttention> fast_;
#endif
  Buf page_table_, move_buf_, q_, sample_params_, sample_ids_, sample_ws_;
  // Decode-step CUDA graph (HW_CUDA_GRAPH=0 turns it off).
  bool graphs_ = cuda::switch_on("HW_CUDA_GRAPH");
  cudaGraphExec_t graph_ = nullptr;

 public:
  int64_t graph_launches_ = 0;
  // Benchmarks (cuda_time_steps): events around each forward's kernels, from the first launch to
  // the sampled ids, so that the host's share of a step is the step's time less this.
  void time_steps(bool on) {
    if (on && !step_begin_) {
      check(cudaEventCreate(&step_begin_), "cudaEventCreate");
      check(cudaEventCreate(&step_end_), "cudaEventCreate");
    }
    timing_ = on;
    last_step_device_ms_ = -1;
  }
  double last_step_device_ms_ = -1;

 private:
  std::vector<const void*> graph_key_, last_key_;
  bool timing_ = false;
  cudaEvent_t step_begin_ = nullptr, step_end_ = nullptr;
  Buf x_, act_, mlp_act_, qkv_, att_, gu_, logits_, meta_, shares_, key_att_;
  Buf gemm_partials_, gemm_counters_;  // the decode GEMM's split-K workspace (gemm.h)
};

// ------------------------------------------------------------------ weights

void CudaBackend::upload(const ModelWeights& w, const BackendOptions& opt) {
  random_ = w.embed.empty();
  if (random_ && opt.random_weights_seed == 0)
    throw EngineError("CUDA backend: the weights carry no data and no random_weights_seed was given");
  seed_ = opt.random_weights_seed;
  wt_ = random_ ? DType::BF16 : w.embed.dtype;
  // K/V: "auto" keeps fp32 for fp32 checkpoints (so they compute in fp32 end to end) and
  // takes bf16 for 16-bit ones (the shared-KV attention kernel's format).
  if (opt.kv_dtype == "auto")
    kv_ = wt_ == DType::F32 ? DType::F32 : DType::BF16;
  else if (opt.kv_dtype == "f32")
    kv_ = DType::F32;
  else if (opt.kv_dtype == "bf16")
    kv_ = DType::BF16;
  else if (opt.kv_dtype == "f16")
    kv_ = DType::F16;
  else
    throw EngineError("kv dtype: '" + opt.kv_dtype + "' is not one of auto, f32, bf16, f16 (q8: CPU only)");

  // Everything is counted before anything is allocated: a model too large fails at once.
  const size_t H = cfg_.hidden, QD = cfg_.q_dim(), KD = cfg_.kv_dim(), I = cfg_.intermediate, V = cfg_.vocab;
  const bool tied = random_ ? cfg_.tied_embeddings : w.lm_head.data == w.embed.data;
  size_t elems = V * H * (tied ? 1 : 2) + cfg_.layers * ((QD + 2 * KD) * H + H * QD + 2 * I * H + H * I);
  weight_bytes_ = elems * esz(wt_);
  const size_t small = (size_t(cfg_.layers) * (2 * H + 2 * cfg_.head_dim + QD + 2 * KD) + H) * 4;
  size_t free = 0, total = 0;
  check(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
  const size_t reserve = 256u << 20;
  if (weight_bytes_ + small + reserve > free)
    throw EngineError("not enough GPU memory for the weights: they need " + bytes_text(weight_bytes_ + small) +
                      " (plus " + gb(reserve) + " of working memory), " + bytes_text(free) + " free of " + gb(total) +
                      " on " + prop_.name);

  report_upload();  // 0 of the total: the bar appears before the first (largest) copy

  const Rope rope(cfg_);
  const std::vector<float>& inv = rope.inv_freq();
  inv_freq_ = static_cast<float*>(heap_.alloc(inv.size() * 4, "RoPE table"));
  check(cudaMemcpy(inv_freq_, inv.data(), inv.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy (RoPE table)");

  embed_ = matrix({&w.embed}, int(H), "the embedding");
  lm_head_ = tied ? embed_ : matrix({&w.lm_head}, int(H), "lm_head");
  layers_.resize(cfg_.layers);
  for (int l = 0; l < cfg_.layers; l++) {
    const LayerWeights& lw = random_ ? LayerWeights{} : w.layers[l];
    DeviceLayer& d = layers_[l];
    const std::string at = "layer " + std::to_string(l);
    // By default (HW_GEMM_QKV=0 turns it off) K rows in RoPE pairs, so the decode GEMM does
    // qkv_post itself (gemm.h's gemm_qkv); models with q/k norms keep qkv_post (the norm needs the whole head).
    d.k_paired = qkv_epilogue_ && wt_ != DType::F32 && !cfg_.qk_norm && cfg_.head_dim % 8 == 0;
    d.wqkv = matrix({&lw.wq, &lw.wk, &lw.wv}, int(H), at + " q/k/v", d.k_paired ? RowOrder::PairK : RowOrder::Plain);
    d.wo = matrix({&lw.wo}, int(QD), at + " o_proj");
    // By default (HW_GEMM_SWIGLU=0 turns it off) gate and up rows interleaved in 8s, so the
    // decode GEMM writes the SwiGLU itself (gemm.h's gemm_swiglu). 16-bit weights only (fp32
    // ones never take the decode kernel).
    d.gu_interleaved = swiglu_epilogue_ && wt_ != DType::F32 && I % 8 == 0;
    d.wgu =
        matrix({&lw.w_gate, &lw.w_up}, int(H), at + " gate/up", d.gu_interleaved ? RowOrder::GateUp8 : RowOrder::Plain);
    d.wdown = matrix({&lw.w_down}, int(I), at + " down_proj");
    d.attn_norm = vector(lw.attn_norm, int(H), 1.0f);
    d.mlp_norm = vector(lw.mlp_norm, int(H), 1.0f);
    if (cfg_.qk_norm) {
      d.q_norm = vector(lw.q_norm, cfg_.head_dim, 1.0f);
      d.k_norm = vector(lw.k_norm, cfg_.head_dim, 1.0f);
    }
    if (cfg_.qkv_bias) d.bqkv = vector_cat({&lw.bq, &lw.bk, &lw.bv}, d.k_paired);
  }
  final_norm_ = vector(w.final_norm, int(H), 1.0f);
  check_sync(cudaStreamSynchronize(stream_), "weight upload");
  uploaded_ = weight_bytes_;
  report_upload();
  progress_ = nullptr;  // the loader's callback does not outlive the load
}

// Rows of several tensors stacked into one device matrix in the compute dtype. In random
// mode the parts are shape-less: rows come from the config.
DeviceMatrix CudaBackend::matrix(const std::vector<const Tensor*>& parts, int cols, const std::string& what,
                                 RowOrder order) {
  const size_t H = cfg_.hidden, QD = cfg_.q_dim(), KD = cfg_.kv_dim(), I = cfg_.intermediate;
  size_t rows = 0;
  if (random_) {
    // Which matrix this is follows from its name (the config gives every shape).
    if (what.find("q/k/v") != std::string::npos)
      rows = QD + 2 * KD;
    else if (what.find("o_proj") != std::string::npos)
      rows = H;
    else if (what.find("gate/up") != std::string::npos)
      rows = 2 * I;
    else if (what.find("down") != std::string::npos)
      rows = H;
    else
      rows = cfg_.vocab;
  } else {
    for (const Tensor* t : parts) rows += size_t(t->rows());
  }
  const size_t bytes = rows * size_t(cols) * esz(wt_);
  char* d = static_cast<char*>(heap_.alloc(bytes, what));
  if (random_) {
    fill_random(d, wt_, rows * cols, seed_ + std::hash<std::string>()(what), 1.0f / std::sqrt(float(cols)) * 1.7f, 0.0f,
                stream_);
    uploaded_ += bytes;  // generated on the device: counted as it is queued
    report_upload();
  } else {
    if (order == RowOrder::GateUp8 &&
        (parts.size() != 2 || parts[0]->rows() != parts[1]->rows() || parts[0]->rows() % 8 != 0))
      throw EngineError(what + ": interleaving needs two parts of equal rows, a multiple of 8");
    const int HD = cfg_.head_dim, half_hd = HD / 2;
    if (order == RowOrder::PairK && (parts.size() != 3 || parts[1]->rows() != int64_t(KD) || HD % 2 != 0))
      throw EngineError(what + ": RoPE pairs need [q, k, v] parts and an even head_dim");
    size_t off = 0;
    std::vector<float> f32;
    std::vector<uint16_t> half;
    const size_t row_bytes = size_t(cols) * esz(wt_);
    // Part p's rows to the device: contiguous after the previous part; GateUp8: its runs of 8
    // rows into every other 16-row slot, from row 8p (one strided copy); PairK's K part: each
    // head's first half of rows to the head's even rows, its second half to the odd rows.
    auto put = [&](size_t p, const void* src, size_t n) {
      const char* from = static_cast<const char*>(src);
      if (order == RowOrder::GateUp8) {
        const size_t runs = n / size_t(cols) / 8;
        check(cudaMemcpy2D(d + p * 8 * row_bytes, 16 * row_bytes, from, 8 * row_bytes, 8 * row_bytes, runs,
                           cudaMemcpyHostToDevice),
              "cudaMemcpy2D (interleaved weights)");
      } else if (order == RowOrder::PairK && p == 1) {
        for (int h = 0; h < cfg_.kv_heads; h++)
          for (int j = 0; j < 2; j++)
            check(cudaMemcpy2D(d + off + (size_t(h) * HD + j) * row_bytes, 2 * row_bytes,
                               from + (size_t(h) * HD + size_t(j) * half_hd) * row_bytes, row_bytes, row_bytes, half_hd,
                               cudaMemcpyHostToDevice),
                  "cudaMemcpy2D (K rows in RoPE pairs)");
      } else {
        check(cudaMemcpy(d + off, from, n * esz(wt_), cudaMemcpyHostToDevice), "cudaMemcpy (weights)");
      }
    };
    for (size_t p = 0; p < parts.size(); p++) {
      const Tensor* t = parts[p];
      const size_t n = size_t(t->numel());
      if (t->dtype == wt_) {
        put(p, t->data, n);
      } else {  // a tensor stored in another dtype than the embedding: converted once here
        f32.resize(n);
        tensor_to_f32(*t, 0, t->rows(), f32.data());
        if (wt_ == DType::F32) {
          put(p, f32.data(), n);
        } else {
          half.resize(n);
          for (size_t i = 0; i < n; i++) half[i] = wt_ == DType::BF16 ? f32_to_bf16(f32[i]) : f32_to_f16(f32[i]);
          put(p, half.data(), n);
        }
      }
      off += n * esz(wt_);
      uploaded_ += n * esz(wt_);
      report_upload();
    }
  }
  DeviceMatrix m;
  m.data = d;
  m.dtype = wt_;
  m.rows = int(rows);
  m.cols = cols;
  return m;
}

const float* CudaBackend::vector(const Tensor& t, int n, float fill_value) {
  float* d = static_cast<float*>(heap_.alloc(size_t(n) * 4, "norm weights"));
  std::vector<float> v(size_t(n), fill_value);
  if (!t.empty()) tensor_to_f32(t, 0, t.rows(), v.data());
  check(cudaMemcpy(d, v.data(), v.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy (norm weights)");
  return d;
}

const float* CudaBackend::vector_cat(const std::vector<const Tensor*>& parts, bool k_paired) {
  std::vector<float> v;
  const size_t sizes[3] = {size_t(cfg_.q_dim()), size_t(cfg_.kv_dim()), size_t(cfg_.kv_dim())};
  for (size_t i = 0; i < parts.size(); i++) {
    const size_t at = v.size();
    v.resize(at + sizes[i], 0.0f);
    if (!parts[i]->empty()) tensor_to_f32(*parts[i], 0, parts[i]->rows(), v.data() + at);
    if (i == 1 && k_paired) {  // the K bias in the order of the K rows (RowOrder::PairK)
      const int HD = cfg_.head_dim, hh = HD / 2;
      const std::vector<float> k(v.begin() + at, v.end());
      for (int h = 0; h < cfg_.kv_heads; h++)
        for (int e = 0; e < hh; e++) {
          v[at + size_t(h) * HD + 2 * e] = k[size_t(h) * HD + e];
          v[at + size_t(h) * HD + 2 * e + 1] = k[size_t(h) * HD + hh + e];
        }
    }
  }
  float* d = static_cast<float*>(heap_.alloc(v.size() * 4, "biases"));
  check(cudaMemcpy(d, v.data(), v.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy (biases)");
  return d;
}

// ------------------------------------------------------------------ forward

void CudaBackend::forward(const Batch& batch, const std::vector<RowPlan>& plans, const KvCache& cache,
                          ForwardOutput& out) {
  if (cache.page_tokens() != page_tokens_)
    throw EngineError("CUDA backend: the cache uses " + std::to_string(cache.page_tokens()) +
                      "-token pages; this backend was built for " + std::to_string(page_tokens_));
  check(cudaSetDevice(dev_), "cudaSetDevice");
  out.attention_ms = 0;
  const int H = cfg_.hidden, QD = cfg_.q_dim(), KD = cfg_.kv_dim(), I = cfg_.intermediate, V = cfg_.vocab;
  const int R = int(batch.rows.size());

  // Host side: the batch and its views flattened into one int array, uploaded once.
  std::vector<int> ids, tok_row, tok_pos, local, slot_page, slot_index, row_seg{0}, row_last, seg_offset, seg_len,
      seg_pages, page_ids, picked, share_base, key_base;
  out.logit_row.assign(R, -1);
  out.logit_count.assign(R, 0);
  int share_total = 0, key_total = 0;
  for (int r = 0; r < R; r++) {
    const BatchRow& row = batch.rows[r];
    const RowPlan& plan = plans[r];
    const int n = int(row.tokens.size()), first = int(ids.size()), len0 = cache.length(row.block);
    for (int i = 0; i < n; i++) {
      ids.push_back(row.tokens[i]);
      tok_row.push_back(r);
      tok_pos.push_back(plan.first_position + i);
      local.push_back(len0 + i);
      slot_page.push_back(plan.write_slots[i].page);
      slot_index.push_back(plan.write_slots[i].index);
    }
    row_last.push_back(first + n - 1);
    const int p_last = plan.first_position + n - 1;
    int keys = 0;
    for (size_t s = 0; s < row.view.size(); s++) {
      seg_offset.push_back(row.view[s].offset);
      seg_len.push_back(plan.segment_lengths[s]);
      seg_pages.push_back(int(page_ids.size()));
      for (int pg : cache.pages(row.view[s].block)) page_ids.push_back(pg);
      keys += std::max(0, std::min(plan.segment_lengths[s], p_last - row.view[s].offset + 1));
    }
    row_seg.push_back(int(seg_offset.size()));
    share_base.push_back(share_total);
    key_base.push_back(key_total);
    share_total += cfg_.layers * int(row.view.size());
    key_total += keys;
    const int from = row.all_logits ? first : (row.logits ? first + n - 1 : first + n);
    if (from < first + n) out.logit_row[r] = int(picked.size());
    for (int t = from; t < first + n; t++) picked.push_back(t);
    out.logit_count[r] = first + n - from;
  }
  const int T = int(ids.size()), P = int(picked.size());
  if (T == 0) return;

  // Sampling requests, known before anything runs (the step's kernels end with the draw).
  std::vector<RowSampling> rs;
  std::vector<int> rs_row;
  for (int r = 0; r < R; r++) {
    const BatchRow& row = batch.rows[r];
    if (!row.sample || out.logit_count[r] == 0) continue;
    RowSampling q;
    q.row = out.logit_row[r] + out.logit_count[r] - 1;
    q.temperature = row.temperature;
    q.top_k = row.top_k;
    q.top_p = row.top_p;
    // A double in [0, 1) can round up to 1.0f, and u = 1 would walk past every weight (the last
    // kept id, whatever its weight): the largest float below 1 instead.
    q.u = std::min(float(row.uniform), std::nextafter(1.0f, 0.0f));
    rs.push_back(q);
    rs_row.push_back(r);
  }

  // Arrays of a fixed size for a given (T, P, R) first, so a captured graph's kernels keep
  // their addresses from step to step; the views (generic attention only) after them.
  std::vector<int> meta;
  auto put = [&](const std::vector<int>& v) {
    const size_t at = meta.size();
    meta.insert(meta.end(), v.begin(), v.end());
    return at;
  };
  const size_t o_ids = put(ids), o_row = put(tok_row), o_pos = put(tok_pos), o_local = put(local),
               o_sp = put(slot_page), o_si = put(slot_index), o_pick = put(picked), o_last = put(row_last),
               o_rseg = put(row_seg), o_sb = put(share_base), o_kb = put(key_base), o_soff = put(seg_offset),
               o_slen = put(seg_len), o_spg = put(seg_pages), o_pids = put(page_ids);
  int* dm = meta_.need<int>(heap_, meta.size(), "forward metadata", stream_);
  check(cudaMemcpyAsync(dm, meta.data(), meta.size() * 4, cudaMemcpyHostToDevice, stream_), "cudaMemcpy (metadata)");

  const DType act = gemm_input_type(embed_);
  const int Tpad = std::max(T, kDecodeRows);
  float* x = x_.need<float>(heap_, size_t(T) * H, "activations", stream_);
  void* a = act_.need<char>(heap_, size_t(Tpad) * std::max({H, QD, I}) * esz(act), "activations", stream_);
  float* qkv = qkv_.need<float>(heap_, size_t(T) * (QD + 2 * KD), "activations", stream_);
  float* att = att_.need<float>(heap_, size_t(T) * QD, "activations", stream_);
  float* qbuf = q_.need<float>(heap_, size_t(T) * QD, "activations", stream_);
  float* gu = gu_.need<float>(heap_, size_t(T) * 2 * I, "MLP activations", stream_);
  // The down_proj's input when the gate/up GEMM writes the SwiGLU itself (it may not write `a`,
  // which its other blocks still read).
  const bool swiglu_fused = !layers_.empty() && layers_[0].gu_interleaved;
  void* mlp_a = swiglu_fused ? mlp_act_.need<char>(heap_, size_t(Tpad) * I * esz(act), "MLP activations", stream_) : a;
  float* logits = logits_.need<float>(heap_, size_t(std::max(P, 1)) * V, "logits", stream_);
  // The decode GEMM's split-K scratch: a fixed size, so allocated (and its counters zeroed) once.
  GemmWorkspace gws;
  gws.partials = gemm_partials_.need<float>(heap_, kGemmWorkspaceFloats, "GEMM split-K partials", stream_);
  gws.partial_floats = kGemmWorkspaceFloats;
  gws.counters = gemm_counters_.need<int>(heap_, kGemmWorkspaceCounters, "GEMM split-K counters", stream_);
  gws.counter_count = kGemmWorkspaceCounters;
  RowSampling* dq = nullptr;
  int* did = nullptr;
  SampleWorkspace sws;
  if (!rs.empty()) {
    dq = sample_params_.need<RowSampling>(heap_, rs.size(), "sampling", stream_);
    did = sample_ids_.need<int>(heap_, rs.size(), "sampling", stream_);
    sws.capacity = sample_workspace_entries(int(rs.size()), V);
    sws.cand = sample_ws_.need<unsigned long long>(heap_, sws.capacity, "sampling candidates", stream_);
    check(cudaMemcpyAsync(dq, rs.data(), rs.size() * sizeof(RowSampling), cudaMemcpyHostToDevice, stream_),
          "cudaMemcpy (sampling)");
  }

  ViewArrays va;
  va.T = T;
  va.rows = R;
  va.tok_row = dm + o_row;
  va.tok_pos = dm + o_pos;
  va.row_seg = dm + o_rseg;
  va.row_last = dm + o_last;
  va.seg_offset = dm + o_soff;
  va.seg_len = dm + o_slen;
  va.seg_pages = dm + o_spg;
  va.page_ids = dm + o_pids;
  const KvLayout kvl = kv_layout();
  const bool want_shares = batch.attention_shares, want_keys = want_shares && batch.key_attention;
  bool fast = false, plan_changed = true;
  // The shared-KV kernel also gives the shares per segment ([layers][the plan's segments]); only
  // the attention on every key needs the generic kernel.
  float* fast_shares = nullptr;
  int fast_segments = 0;
#ifdef HW_HAVE_FAST_ATTENTION
  if (fast_ && !want_keys) {
    plan_changed = fast_->plan(attn_problem_from_batch(batch, plans, cache));
    fast_->upload(stream_);
    fast = true;
    if (want_shares) {
      fast_segments = fast_->total_segments();
      fast_shares =
          shares_.need<float>(heap_, size_t(cfg_.layers) * std::max(fast_segments, 1), "attention shares", stream_);
    }
  }
#endif
  if (want_shares && !fast) {
    va.shares = shares_.need<float>(heap_, std::max(share_total, 1), "attention shares", stream_);
    va.key_att = key_att_.need<float>(heap_, std::max(key_total, 1), "attention shares", stream_);
    va.share_base = dm + o_sb;
    va.key_base = dm + o_kb;
    check(cudaMemsetAsync(va.shares, 0, size_t(share_total) * 4, stream_), "cudaMemset");
    check(cudaMemsetAsync(va.key_att, 0, size_t(key_total) * 4, stream_), "cudaMemset");
  }

  // The step's kernels, from the embedding to the sampled ids: launched directly, or
  // captured once into a CUDA graph and replayed (decode steps of an unchanged shape).
  bool capturing = false;
  auto launch_all = [&]() {
    embed(embed_.data, embed_.dtype, dm + o_ids, T, H, x, stream_);
    for (int l = 0; l < cfg_.layers; l++) {
      // A stop request ends a long prefill between layers (the cache is left as it was).
      if (!capturing && batch.cancel && batch.cancel->load(std::memory_order_relaxed)) throw Cancelled();
      const DeviceLayer& L = layers_[l];
      // Layers after the first get their input norm from the previous down_proj (below).
      QkvPost qp;
      qp.qkv = qkv;
      qp.q_out = qbuf;
      qp.T = T;
      qp.heads = cfg_.heads;
      qp.kv_heads = cfg_.kv_heads;
      qp.head_dim = cfg_.head_dim;
      qp.bias = L.bqkv;
      qp.q_norm = L.q_norm;
      qp.k_norm = L.k_norm;
      qp.eps = cfg_.rms_eps;
      qp.local = dm + o_local;
      qp.slot_page = dm + o_sp;
      qp.slot_index = dm + o_si;
      qp.inv_freq = inv_freq_;
      qp.layer = l;
      qp.k_paired = L.k_paired;
      if (l == 0) rmsnorm(x, nullptr, T, H, L.attn_norm, cfg_.rms_eps, a, act, stream_);
      if (L.k_paired) {  // bias, RoPE and the K/V write in the GEMM's epilogue (decode)
        gemm_qkv(L.wqkv, a, T, qp, kvl, stream_, &gws);
      } else {
        gemm(L.wqkv, a, T, qkv, false, stream_, &gws);
        qkv_post(qp, kvl, stream_);
      }
      // Every row's K/V of this layer is written: now attention (instant visibility).
      if (!fast) {
        view_attention(qbuf, QD, cfg_.heads, va, inv_freq_, kvl, l, att, stream_);
        convert(att, size_t(T) * QD, a, act, stream_);
      } else {
#ifdef HW_HAVE_FAST_ATTENTION
        AttnLayerArgs aa;
        aa.q = qbuf;
        aa.q_type = AttnDType::F32;
        aa.out = act == DType::BF16 ? a : static_cast<void*>(att);  // straight into the o_proj input
        aa.out_type = act == DType::BF16 ? AttnDType::BF16 : AttnDType::F32;
        aa.pages = static_cast<const void* const*>(page_table_.p);
        aa.inv_freq = inv_freq_;
        aa.shares = fast_shares ? fast_shares + size_t(l) * size_t(fast_segments) : nullptr;
        fast_->run(l, aa, stream_);
        if (act != DType::BF16) convert(att, size_t(T) * QD, a, act, stream_);
#endif
      }
      // The residual GEMMs are followed by the next norm (gemm.h's GemmNorm), whose output is the
      // next GEMM's input; the last layer's down_proj by none (the final norm reads picked rows).
      GemmNorm mlp_in{L.mlp_norm, cfg_.rms_eps, a, act};
      gemm(L.wo, a, T, x, true, stream_, &gws, &mlp_in);
      if (L.gu_interleaved) {
        gemm_swiglu(L.wgu, a, T, gu, mlp_a, stream_, &gws);
      } else {
        gemm(L.wgu, a, T, gu, false, stream_, &gws);
        swiglu(gu, T, I, a, act, stream_);
      }
      if (l + 1 < cfg_.layers) {
        GemmNorm next_in{layers_[l + 1].attn_norm, cfg_.rms_eps, a, act};
        gemm(L.wdown, mlp_a, T, x, true, stream_, &gws, &next_in);
      } else {
        gemm(L.wdown, mlp_a, T, x, true, stream_, &gws);
      }
    }
    if (P > 0) {
      rmsnorm(x, dm + o_pick, P, H, final_norm_, cfg_.rms_eps, a, act, stream_);
      gemm(lm_head_, a, P, logits, false, stream_, &gws);
      if (!rs.empty()) sample_rows(logits, int(rs.size()), V, dq, did, sws, stream_);
    }
  };

  // A graph holds only kernels whose inputs sit at fixed device addresses (uploaded above,
  // outside it) and only the project's own GEMM kernel (M <= 16, 16-bit weights), so the
  // same graph replays every decode step until a shape, a buffer or the attention plan's
  // launch shape changes. A key seen in two consecutive steps is captured.
  const bool sampled_only = batch.sampled_ids_only && !rs.empty() && int(rs.size()) == P;
  const std::vector<const void*> key = {reinterpret_cast<const void*>(intptr_t(T)),
                                        reinterpret_cast<const void*>(intptr_t(R)),
                                        reinterpret_cast<const void*>(intptr_t(P)), dm, x, a, mlp_a, qkv, att, qbuf, gu,
                                        logits, dq, did, sws.cand, page_table_.p, gws.partials, gws.counters,
                                        // run() zeroes the shares by the plan's segment count: a
                                        // size a captured graph holds
                                        fast_shares, reinterpret_cast<const void*>(intptr_t(fast_segments))};
  const bool graphable =
      graphs_ && fast && sampled_only && T <= kDecodeRows && act != DType::F32 && !sync_each_launch();
  bool launched = false;
  if (timing_) check(cudaEventRecord(step_begin_, stream_), "cudaEventRecord");
  if (fast && plan_changed && graph_) {  // the attention's launch shape or buffers moved: the graph is stale
    cudaGraphExecDestroy(graph_);
    graph_ = nullptr;
  }
  if (graphable && !plan_changed && key == last_key_) {
    if (!graph_ || key != graph_key_) {
      if (graph_) cudaGraphExecDestroy(graph_);
      graph_ = nullptr;
      cudaGraph_t g = nullptr;
      check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
      capturing = true;
      try {
        launch_all();
      } catch (const EngineError&) {
        cudaStreamEndCapture(stream_, &g);
        if (g) cudaGraphDestroy(g);
        g = nullptr;
      }
      if (g == nullptr && cudaStreamEndCapture(stream_, &g) != cudaSuccess) g = nullptr;
      if (g && cudaGraphInstantiate(&graph_, g, 0) != cudaSuccess) graph_ = nullptr;
      if (g) cudaGraphDestroy(g);
      cudaGetLastError();
      if (!graph_) {
        graphs_ = false;  // this step's kernels cannot be captured here: launch them directly from now on
        std::fprintf(stderr, "hogwild: CUDA graph capture failed; decode steps launch kernels directly\n");
      }
      graph_key_ = key;
    }
    capturing = false;
    if (graph_) {
      if (batch.cancel && batch.cancel->load(std::memory_order_relaxed)) throw Cancelled();
      note_launch("decode step (CUDA graph)");
      check(cudaGraphLaunch(graph_, stream_), "cudaGraphLaunch");
      launched = true;
      graph_launches_++;
    }
  }
  if (!launched) launch_all();
  last_key_ = graphable ? key : std::vector<const void*>{};
  if (timing_) check(cudaEventRecord(step_end_, stream_), "cudaEventRecord");

  out.vocab = V;
  out.sampled.assign(R, -1);
  if (!rs.empty()) {
    std::vector<int> got(rs.size());
    check_sync(cudaMemcpyAsync(got.data(), did, got.size() * 4, cudaMemcpyDeviceToHost, stream_),
               "cudaMemcpy (sampled ids)");
    check_sync(cudaStreamSynchronize(stream_), "forward");
    for (size_t i = 0; i < rs.size(); i++) out.sampled[rs_row[i]] = got[i];
  }
  if (sampled_only) {
    out.logits.clear();  // every logits row was sampled here: none needs the host
  } else {
    out.logits.resize(size_t(P) * V);
    if (P > 0)
      check_sync(cudaMemcpyAsync(out.logits.data(), logits, size_t(P) * V * 4, cudaMemcpyDeviceToHost, stream_),
                 "cudaMemcpy (logits)");
  }
  out.shares.clear();
  out.key_attention.clear();
  if (want_shares && fast) {
    std::vector<float> sh(size_t(cfg_.layers) * size_t(fast_segments));
    if (!sh.empty())
      check_sync(cudaMemcpyAsync(sh.data(), fast_shares, sh.size() * 4, cudaMemcpyDeviceToHost, stream_),
                 "cudaMemcpy (shares)");
    out.shares.resize(R);
#ifdef HW_HAVE_FAST_ATTENTION
    for (int r = 0; r < R; r++) {
      const int ns = int(batch.rows[r].view.size());
      out.shares[r].assign(size_t(cfg_.layers) * ns, 0.0f);
      for (int l = 0; l < cfg_.layers; l++)
        for (int s = 0; s < ns; s++)
          out.shares[r][size_t(l) * ns + s] = sh[size_t(l) * fast_segments + fast_->segment_index(r, s)];
    }
#endif
  } else if (want_shares) {
    std::vector<float> sh(share_total), ka(key_total);
    check_sync(cudaMemcpyAsync(sh.data(), va.shares, sh.size() * 4, cudaMemcpyDeviceToHost, stream_),
               "cudaMemcpy (shares)");
    check_sync(cudaMemcpyAsync(ka.data(), va.key_att, ka.size() * 4, cudaMemcpyDeviceToHost, stream_),
               "cudaMemcpy (shares)");
    out.shares.resize(R);
    if (want_keys) out.key_attention.resize(R);
    for (int r = 0; r < R; r++) {
      const int ns = cfg_.layers * int(batch.rows[r].view.size());
      out.shares[r].assign(sh.begin() + share_base[r], sh.begin() + share_base[r] + ns);
      const int nk = (r + 1 < R ? key_base[r + 1] : key_total) - key_base[r];
      if (want_keys) out.key_attention[r].assign(ka.begin() + key_base[r], ka.begin() + key_base[r] + nk);
    }
  }
  check_sync(cudaStreamSynchronize(stream_), "forward");
  if (timing_) {
    float ms = 0;
    check(cudaEventElapsedTime(&ms, step_begin_, step_end_), "cudaEventElapsedTime");
    last_step_device_ms_ = ms;
  }
}

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const ModelConfig& cfg, const ModelWeights& w, const BackendOptions& opt,
                                           const LoadProgress& progress) {
  return std::make_unique<CudaBackend>(cfg, w, opt, progress);
}

// Benchmarks only: random K/V in every page the backend holds.
void cuda_fill_kv_random(Backend& b, uint64_t seed) {
  auto* c = dynamic_cast<CudaBackend*>(&b);
  if (!c) throw EngineError("cuda_fill_kv_random: not a CUDA backend");
  c->fill_kv_random(seed);
}

int64_t cuda_graph_launches(const Backend& b) {
  auto* c = dynamic_cast<const CudaBackend*>(&b);
  return c ? c->graph_launches_ : 0;
}

void cuda_time_steps(Backend& b, bool on) {
  auto* c = dynamic_cast<CudaBackend*>(&b);
  if (!c) throw EngineError("cuda_time_steps: not a CUDA backend");
  c->time_steps(on);
}

double cuda_last_step_device_ms(const Backend& b) {
  auto* c = dynamic_cast<const CudaBackend*>(&b);
  return c ? c->last_step_device_ms_ : -1;
}

}  // namespace hw
