// CPU decode benchmark: how close the matmul kernels get to this machine's memory
// bandwidth when a decode step streams every weight of a model once.
//
//   bench_cpu [--threads N] [--steps S] [--isa all|default|avx2|avx512] [--bw-gib G]
//   (all, the default: every matmul path this CPU can run)
//   bench_cpu --model-only [--model DIR]   only the whole-model decode (DIR: a checkpoint
//                                          written by --write-checkpoint DIR)
//   bench_cpu --bandwidth-only             only the memory read bandwidth
//   bench_cpu --regions                    the cost of one parallel region (parallel.h)
//
// 1. Measures the memory read bandwidth in the same run (all threads sum a G GiB buffer,
//    with and without software prefetch, best of several passes).
// 2. Times the matmuls of one decode step of Qwen2.5-0.5B (random bf16 weights in one
//    anonymous mapping, like a mapped checkpoint): per layer q, k, v, o, gate, up, down,
//    then the tied lm_head, for n = 1, 2, 4 sequences (n = 4 must cost <= 1.3x n = 1).
//
// For the model-level benchmark: run_matmul_decode_bench() is the reusable entry, and
// time_steps() times any step function (e.g. a lambda around hw::Model::forward) the
// same way; print_row() formats a result against the measured bandwidth.
#include <sys/mman.h>
#include <unistd.h>
#include <immintrin.h>

#include <algorithm>
#include <initializer_list>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <string>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "model.h"
#include "bench_util.h"
#include "random_checkpoint.h"
#include "tensor.h"

namespace hw::cpu {
// Defined in kernels.cpp (not yet in kernels.h): choose / name the matmul path.
const char* matmul_isa();
bool set_matmul_isa(const char* name);
}  // namespace hw::cpu

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// An anonymous mapping (huge pages where the kernel allows), populated up front.
struct Mapping {
  void* p = nullptr;
  size_t bytes = 0;
  explicit Mapping(size_t n) : bytes(n) {
    p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      std::perror("mmap");
      std::exit(2);
    }
    madvise(p, n, MADV_HUGEPAGE);
  }
  ~Mapping() { munmap(p, bytes); }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  uint8_t* data() const { return static_cast<uint8_t*>(p); }
};

// The benchmark's threads (the engine's runtime, parallel.h), made once per thread count.
hw::par::Pool& bench_pool(int threads) {
  static std::vector<std::unique_ptr<hw::par::Pool>> pools;
  for (auto& p : pools)
    if (p->size() == threads) return *p;
  pools.push_back(std::make_unique<hw::par::Pool>(threads));
  return *pools.back();
}

// ---------------------------------------------------------------------------------------
// Memory read bandwidth: every thread sums its contiguous slice of a buffer (4
// independent AVX2 accumulators, so the loop is load-bound). Several ways of reading
// (plain, and software prefetch into L1 or L2 a few KiB ahead, which on some machines
// reads faster than the hardware prefetcher alone), best of `reps` passes each; the
// fastest is "the machine's bandwidth", so kernels are judged against the best a
// simple reader achieves, not a weak baseline. GB/s = 1e9 B/s.
template <int kPrefetch, int kHint>
double read_pass(const uint8_t* data, size_t bytes, int threads) {
  hw::par::Pool& pool = bench_pool(threads);
  std::vector<double> sums(size_t(pool.size()), 0.0);
  const auto t0 = Clock::now();
  pool.run([&](int id) {
    const int nt = pool.size();
    const size_t chunk = bytes / nt / 128 * 128;
    const float* b = reinterpret_cast<const float*>(data + chunk * id);
    const float* e = b + chunk / 4;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (; b < e; b += 32) {
      if (kPrefetch) {
        _mm_prefetch(reinterpret_cast<const char*>(b) + kPrefetch, _mm_hint(kHint));
        _mm_prefetch(reinterpret_cast<const char*>(b) + kPrefetch + 64, _mm_hint(kHint));
      }
      a0 = _mm256_add_ps(a0, _mm256_load_ps(b));
      a1 = _mm256_add_ps(a1, _mm256_load_ps(b + 8));
      a2 = _mm256_add_ps(a2, _mm256_load_ps(b + 16));
      a3 = _mm256_add_ps(a3, _mm256_load_ps(b + 24));
    }
    float v[8];
    _mm256_storeu_ps(v, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (float f : v) sums[size_t(id)] += f;
  });
  const double s = seconds_since(t0);
  double total = 0;
  for (double x : sums) total += x;
  if (total == 1.2345) std::printf(" ");  // keep the sums alive
  return s;
}

struct Bandwidth {
  double gbs = 0;        // best of all variants
  const char* how = "";  // which variant
  double plain_gbs = 0;  // plain loads only
};

Bandwidth measure_read_bandwidth(int threads, size_t bytes, int reps) {
  Mapping m(bytes);
  bench_pool(threads).parallel_for(int64_t(bytes / 4096), 256, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) std::memset(m.data() + i * 4096, int(i & 63), 4096);
  });
  struct Variant {
    const char* name;
    double (*fn)(const uint8_t*, size_t, int);
    double best;
  };
  Variant vs[] = {{"plain loads", read_pass<0, 0>, 1e30},
                  {"prefetch 8 KiB ahead into L2", read_pass<8192, _MM_HINT_T1>, 1e30},
                  {"prefetch 16 KiB ahead into L1", read_pass<16384, _MM_HINT_T0>, 1e30}};
  for (int r = 0; r < reps; ++r)
    for (Variant& v : vs) v.best = std::min(v.best, v.fn(m.data(), bytes, threads));
  Bandwidth bw;
  bw.plain_gbs = double(bytes) / vs[0].best / 1e9;
  for (const Variant& v : vs) {
    const double g = double(bytes) / v.best / 1e9;
    if (g > bw.gbs) {
      bw.gbs = g;
      bw.how = v.name;
    }
  }
  return bw;
}

// ---------------------------------------------------------------------------------------
struct StepTiming {
  int n = 0;             // sequences per step
  double ms_median = 0;  // per step
  double ms_best = 0;
  double weight_bytes = 0;  // weight bytes read per step
  double tokens_per_s() const { return n * 1000.0 / ms_median; }
  double gbps() const { return weight_bytes / (ms_median * 1e-3) / 1e9; }
};

// Times step(n) for every n in `ns`: `warmup` + `steps` rounds, each running every n once
// (interleaved, so the slow drifts of a shared machine hit every n alike), after
// `each_round` if given. Median and best wall time per step.
std::vector<StepTiming> time_steps(const std::function<void(int)>& step, const std::vector<int>& ns, int steps,
                                   int warmup, double weight_bytes, const std::function<void()>& each_round = {}) {
  std::vector<std::vector<double>> ms(ns.size());
  for (int round = 0; round < warmup + steps; ++round) {
    if (each_round) each_round();
    for (size_t i = 0; i < ns.size(); ++i) {
      const auto t0 = Clock::now();
      step(ns[i]);
      if (round >= warmup) ms[i].push_back(seconds_since(t0) * 1e3);
    }
  }
  std::vector<StepTiming> out;
  for (size_t i = 0; i < ns.size(); ++i) {
    std::sort(ms[i].begin(), ms[i].end());
    StepTiming t;
    t.n = ns[i];
    t.ms_median = ms[i][ms[i].size() / 2];
    t.ms_best = ms[i].front();
    t.weight_bytes = weight_bytes;
    out.push_back(t);
  }
  return out;
}

void print_header() {
  std::printf("  %-3s %10s %10s %10s %12s %9s %8s\n", "n", "ms/step", "best ms", "tok/s", "weights MB", "GB/s",
              "% of bw");
}
void print_row(const StepTiming& t, double bw_gbs) {
  std::printf("  %-3d %10.2f %10.2f %10.1f %12.1f %9.2f %7.1f%%\n", t.n, t.ms_median, t.ms_best, t.tokens_per_s(),
              t.weight_bytes / 1e6, t.gbps(), 100.0 * t.gbps() / bw_gbs);
}

// Qwen2.5-0.5B shapes.
struct DecodeShape {
  int hidden = 896, intermediate = 4864, layers = 24, heads = 14, kv_heads = 2, head_dim = 64;
  int vocab = 151936;  // lm_head tied to the embedding [vocab, hidden]
};

// The decode-step matmuls of a model with random bf16 weights, for n = each of `ns`.
// Prints one row per n and the n=4 / n=1 cost ratio; returns the timings.
std::vector<StepTiming> run_matmul_decode_bench(int threads, double bw_gbs, const std::vector<int>& ns = {1, 2, 4},
                                                int steps = 8, const DecodeShape& s = DecodeShape()) {
  hw::par::Use use(&bench_pool(threads));
  const int64_t H = s.hidden, I = s.intermediate, Q = int64_t(s.heads) * s.head_dim,
                KV = int64_t(s.kv_heads) * s.head_dim;
  struct Shape {
    const char* name;
    int64_t out, in;
  };
  const Shape per_layer[] = {{"q", Q, H},    {"k", KV, H}, {"v", KV, H},  {"o", H, Q},
                             {"gate", I, H}, {"up", I, H}, {"down", H, I}};
  size_t total = 0;
  for (const Shape& sh : per_layer) total += size_t(sh.out * sh.in) * 2 * s.layers;
  total += size_t(s.vocab) * H * 2;

  // One mapping holding every weight, filled with small random bf16 values.
  Mapping m(total);
  {
    const int64_t words = int64_t(total / 2);
    uint16_t* w = reinterpret_cast<uint16_t*>(m.data());
    hw::par::parallel_for(words, int64_t(1) << 20, [&](int64_t b, int64_t e) {
      uint64_t st = 0x9E3779B97F4A7C15ull * uint64_t(b / (int64_t(1) << 20) + 1);
      for (int64_t i = b; i < e; ++i) {
        st ^= st << 13;
        st ^= st >> 7;
        st ^= st << 17;
        // sign | exponent 2^-8..2^-5 | random mantissa: normal numbers ~ +-0.004..0.06
        w[i] = uint16_t(((st >> 20) & 0x8000) | ((119 + ((st >> 8) & 3)) << 7) | (st & 0x7F));
      }
    });
  }
  std::vector<std::vector<hw::Tensor>> layers(s.layers);
  size_t off = 0;
  for (int l = 0; l < s.layers; ++l) {
    for (const Shape& sh : per_layer) {
      hw::Tensor t;
      t.name = "layers." + std::to_string(l) + "." + sh.name;
      t.dtype = hw::DType::BF16;
      t.shape = {sh.out, sh.in};
      t.data = m.data() + off;
      off += size_t(sh.out * sh.in) * 2;
      layers[l].push_back(t);
    }
  }
  hw::Tensor lm_head;
  lm_head.name = "lm_head (tied embedding)";
  lm_head.dtype = hw::DType::BF16;
  lm_head.shape = {s.vocab, H};
  lm_head.data = m.data() + off;

  const int nmax = *std::max_element(ns.begin(), ns.end());
  std::vector<float> xh(size_t(nmax) * std::max(H, Q)), xi(size_t(nmax) * I);
  std::vector<float> yq(size_t(nmax) * Q), yk(size_t(nmax) * KV), yv(size_t(nmax) * KV), yh(size_t(nmax) * H),
      yg(size_t(nmax) * I), yu(size_t(nmax) * I), logits(size_t(nmax) * s.vocab);
  for (size_t i = 0; i < xh.size(); ++i) xh[i] = float((i * 7919) % 1000) * 1e-3f - 0.5f;
  for (size_t i = 0; i < xi.size(); ++i) xi[i] = float((i * 104729) % 1000) * 1e-3f - 0.5f;

  auto step = [&](int n) {
    for (int l = 0; l < s.layers; ++l) {
      const auto& L = layers[l];
      hw::cpu::matmul(L[0], xh.data(), n, yq.data());
      hw::cpu::matmul(L[1], xh.data(), n, yk.data());
      hw::cpu::matmul(L[2], xh.data(), n, yv.data());
      hw::cpu::matmul(L[3], xh.data(), n, yh.data());
      hw::cpu::matmul(L[4], xh.data(), n, yg.data());
      hw::cpu::matmul(L[5], xh.data(), n, yu.data());
      hw::cpu::matmul(L[6], xi.data(), n, yh.data());
    }
    hw::cpu::matmul(lm_head, xh.data(), n, logits.data());
  };

  std::printf(
      "decode matmuls, Qwen2.5-0.5B shapes (hidden %d, intermediate %d, %d layers, "
      "%d/%d heads x %d, vocab %d tied), bf16, %d threads, path %s\n",
      s.hidden, s.intermediate, s.layers, s.heads, s.kv_heads, s.head_dim, s.vocab, threads, hw::cpu::matmul_isa());
  std::printf("  weight bytes per step: %.1f MB (every weight read once per step)\n", total / 1e6);
  // Every round also reads the same weight bytes with the plain summing reader, so the
  // percentages compare like with like at the same moment; the reference bandwidth is
  // the best of that and the separately measured one.
  double read_best = 1e30;
  auto read_weights = [&] {
    read_best = std::min(
        {read_best, read_pass<0, 0>(m.data(), total, threads), read_pass<8192, _MM_HINT_T1>(m.data(), total, threads)});
  };
  std::vector<StepTiming> out = time_steps(step, ns, steps, 2, double(total), read_weights);
  const double bw_here = double(total) / read_best / 1e9;
  const double bw_ref = std::max(bw_gbs, bw_here);
  std::printf(
      "  reading the same weights with the summing reader, interleaved: %.2f GB/s; "
      "reference bandwidth %.2f GB/s\n",
      bw_here, bw_ref);
  print_header();
  for (const StepTiming& t : out) print_row(t, bw_ref);
  const StepTiming* t1 = nullptr;
  const StepTiming* t4 = nullptr;
  for (const auto& t : out) {
    if (t.n == 1) t1 = &t;
    if (t.n == 4) t4 = &t;
  }
  if (t1 && t4)
    std::printf(
        "  cost ratio n=4 / n=1: %.3f (target <= 1.3); n=1 reads weights at %.1f%% of "
        "the reference bandwidth (target >= 60%%)\n",
        t4->ms_median / t1->ms_median, 100.0 * t1->gbps() / bw_ref);

  // Prefill throughput, for reference: one pass with 64 sequences.
  {
    const int n = 64;
    std::vector<float> px(size_t(n) * I, 0.25f), py(size_t(n) * std::max<int64_t>(I, s.vocab));
    auto prefill = [&](int nn) {
      for (int l = 0; l < s.layers; ++l)
        for (int k = 0; k < 7; ++k) hw::cpu::matmul(layers[l][k], px.data(), nn, py.data());
      hw::cpu::matmul(lm_head, px.data(), nn, py.data());
    };
    const StepTiming t = time_steps(prefill, {n}, 2, 1, double(total)).front();
    std::printf("  prefill n=%d: %.1f ms per pass, %.1f tok/s, %.1f GFLOP/s\n", n, t.ms_median, t.tokens_per_s(),
                2.0 * double(total / 2) * n / (t.ms_median * 1e-3) / 1e9);
  }
  return out;
}

}  // namespace

// What a parallel region costs the runtime (parallel.h), with the spin budget and without
// (0 us: every region wakes parked threads through the kernel, like OMP_WAIT_POLICY=passive).
// Back to back: regions as close as a decode step's; after a gap: the first region of a step.
void run_region_bench(int threads) {
  std::printf("parallel regions (%d threads): microseconds per empty region, median of 2000\n", threads);
  for (int spin : {0, hw::par::spin_microseconds()}) {
    hw::par::Pool pool(threads, spin);
    std::atomic<int> sink{0};
    auto time_regions = [&](int gap_us) {
      std::vector<double> us;
      for (int i = 0; i < 2000; i++) {
        if (gap_us > 0) {
          const auto until = Clock::now() + std::chrono::microseconds(gap_us);
          while (Clock::now() < until) {
          }
        }
        const auto t0 = Clock::now();
        pool.run([&](int id) { sink.fetch_add(id, std::memory_order_relaxed); });
        us.push_back(seconds_since(t0) * 1e6);
      }
      std::sort(us.begin(), us.end());
      return us[us.size() / 2];
    };
    const double b2b = time_regions(0), g50 = time_regions(50), g1000 = time_regions(1000);
    std::printf("  spin %4d us: back to back %7.2f | after 50 us %7.2f | after 1 ms %7.2f\n", spin, b2b, g50, g1000);
  }
}

// Anonymous (non-file) resident memory of this process, from /proc/self/status.
double rss_anon_mb() {
  FILE* f = std::fopen("/proc/self/status", "r");
  char line[256];
  double kb = 0;
  while (f && std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "RssAnon: %lf kB", &kb) == 1) break;
  if (f) std::fclose(f);
  return kb / 1024.0;
}

// The whole decode step through the engine's one forward entry, on a mapped checkpoint:
// weights read in place, n sequences each with its own KV block.
// `model_dir` reuses a checkpoint written by --write-checkpoint (else one is written and removed).
void run_model_decode_bench(double bw_gbs, int steps, int threads, const std::string& model_dir) {
  const std::string dir = model_dir.empty() ? "/tmp/hw-bench-cpu-" + std::to_string(::getpid()) : model_dir;
  std::printf("model decode: hw::Model::forward on a mapped random Qwen2.5-0.5B checkpoint (bf16), %d threads\n",
              threads);
  if (model_dir.empty()) write_random_checkpoint(qwen25_05b(), dir);
  const double anon0 = rss_anon_mb();
  hw::BackendOptions opt;
  opt.threads = threads;
  auto model = hw::Model::load(dir, opt);
  const double anon_loaded = rss_anon_mb();
  std::FILE* f = std::fopen((dir + "/model.safetensors").c_str(), "rb");
  std::fseek(f, 0, SEEK_END);
  const double file_bytes = double(std::ftell(f));
  std::fclose(f);
  // Per step every weight is read once; the embedding doubles as the tied lm_head.
  const double weight_bytes = file_bytes;

  std::vector<int> seqs;
  for (int i = 0; i < 4; ++i) {
    seqs.push_back(model->cache().create_block());
    hw::Batch b;
    b.rows.push_back({std::vector<int32_t>(32, 1000 + i), seqs.back(), {{seqs.back(), 0}}, false});
    hw::ForwardOutput out;
    model->forward(b, out);
  }
  const size_t kv32 = model->backend().kv_bytes();
  auto step = [&](int n) {
    hw::Batch b;
    for (int i = 0; i < n; ++i) b.rows.push_back({{7}, seqs[i], {{seqs[i], 0}}, true});
    hw::ForwardOutput out;
    model->forward(b, out);
    for (int i = 0; i < n; ++i) model->cache().truncate(seqs[i], 32);  // same context every step
  };
  std::vector<StepTiming> t = time_steps(step, {1, 2, 4}, steps, 2, weight_bytes);
  print_header();
  for (const StepTiming& x : t) print_row(x, bw_gbs);
  std::printf("  n=4 costs %.2fx n=1 (target <= 1.3x); n=1 reads weights at %.1f%% of the bandwidth (target >= 60%%)\n",
              t[2].ms_median / t[0].ms_median, 100.0 * t[0].gbps() / bw_gbs);
  // One machine-readable line for scripts (scripts/bench-product.mjs).
  std::printf(
      "  json: {\"bandwidthGBs\": %.3f, \"weightBytes\": %.0f, \"msPerStep\": {\"1\": %.3f, \"2\": %.3f, \"4\": %.3f}}\n",
      bw_gbs, weight_bytes, t[0].ms_median, t[1].ms_median, t[2].ms_median);
  // Memory: the weights stay in the file mapping; the KV cache grows with the context used.
  for (int i = 0; i < 15; ++i) {
    hw::Batch b;
    b.rows.push_back({std::vector<int32_t>(32, 5), seqs[0], {{seqs[0], 0}}, false});
    hw::ForwardOutput out;
    model->forward(b, out);
  }
  std::printf("  weights: %.0f MB mapped from the file; anonymous memory grew %.1f MB at load (no weight copy)\n",
              file_bytes / 1e6, anon_loaded - anon0);
  std::printf("  KV cache: %.2f MB for 4 x 32 tokens, %.2f MB after one sequence grew to %d tokens\n\n", kv32 / 1e6,
              model->backend().kv_bytes() / 1e6, model->cache().length(seqs[0]));
  model.reset();
  if (model_dir.empty()) std::system(("rm -rf '" + dir + "'").c_str());
}

int main(int argc, char** argv) {
  int threads = int(std::max(1u, std::thread::hardware_concurrency()));
  std::string model_dir, write_dir;
  bool bandwidth_only = false;
  int steps = 8;
  double bw_gib = 1.0;
  std::string isa = "all";
  bool model_only = false;  // skip the matmul-only tables
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return flag_value(argc, argv, i, "bench_cpu"); };
    if (a == "--threads")
      threads = std::atoi(next());
    else if (a == "--steps")
      steps = std::max(1, std::atoi(next()));
    else if (a == "--isa")
      isa = next();
    else if (a == "--bw-gib")
      bw_gib = std::atof(next());
    else if (a == "--model-only")
      model_only = true;
    else if (a == "--model")
      model_dir = next();
    else if (a == "--write-checkpoint")
      write_dir = next();
    else if (a == "--bandwidth-only")
      bandwidth_only = true;
    else if (a == "--regions") {
      run_region_bench(threads);
      return 0;
    } else {
      std::fprintf(stderr,
                   "usage: bench_cpu [--threads N] [--steps S] [--isa all|default|avx2|avx512] [--bw-gib G] "
                   "[--model-only [--model DIR]] [--bandwidth-only] [--write-checkpoint DIR] [--regions]\n");
      return 2;
    }
  }
  if (threads < 1) threads = 1;
  if (!write_dir.empty()) {  // for scripts/bench-product.mjs: the same checkpoint for every path
    write_random_checkpoint(qwen25_05b(), write_dir);
    std::printf("wrote a random Qwen2.5-0.5B checkpoint (bf16) to %s\n", write_dir.c_str());
    return 0;
  }
  const auto t0 = Clock::now();
  std::printf("bench_cpu: %d threads (of %u hardware), default matmul path %s\n", threads,
              std::thread::hardware_concurrency(), hw::cpu::matmul_isa());

  const Bandwidth mbw = measure_read_bandwidth(threads, size_t(bw_gib * (1 << 30)), 5);
  const double bw = mbw.gbs;
  std::printf(
      "memory read bandwidth (%.1f GiB, %d threads, best of 5 passes): %.2f GB/s (%s; "
      "plain loads %.2f GB/s)\n\n",
      bw_gib, threads, bw, mbw.how, mbw.plain_gbs);
  if (bandwidth_only) {
    std::printf("json: {\"bandwidthGBs\": %.3f}\n", bw);
    return 0;
  }

  std::vector<std::string> paths;
  if (isa == "all")
    paths = {"avx2", "avx512"};
  else if (isa != "default")
    paths = {isa};
  else
    paths = {hw::cpu::matmul_isa()};
  for (const std::string& p : paths) {
    if (model_only) break;
    if (!hw::cpu::set_matmul_isa(p.c_str())) {
      std::printf("matmul path %s: not available on this CPU\n\n", p.c_str());
      continue;
    }
    run_matmul_decode_bench(threads, bw, {1, 2, 4}, steps);
    std::printf("\n");
  }
  hw::cpu::set_matmul_isa(paths.empty() ? hw::cpu::matmul_isa() : paths.back().c_str());
  run_model_decode_bench(bw, steps, threads, model_dir);
  std::printf("total %.1f s\n", seconds_since(t0));
  return 0;
}
