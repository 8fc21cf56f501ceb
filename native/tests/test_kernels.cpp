// CPU kernels and RoPE against scalar references written here (double accumulation).
// Every matmul path the CPU can run (AVX2, and AVX-512 where present) is checked for all
// three weight dtypes, odd shapes and batch sizes, by normalised MSE and max abs diff.
// Plain executable: prints failures, exits nonzero if any.
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "config.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "cpu/rope.h"
#include "error.h"
#include "tensor.h"
#include "testing.h"

namespace hw::cpu {
// Defined in kernels.cpp (not yet in kernels.h): choose / name the matmul path.
const char* matmul_isa();
bool set_matmul_isa(const char* name);
}  // namespace hw::cpu

namespace {

using hw::DType;
using hw::Tensor;

// ---- reference conversions (bit manipulation only; independent of the kernels) ----------
float ref_bf16(uint16_t v) {
  uint32_t u = uint32_t(v) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t to_bf16(float f) {  // round to nearest even (finite inputs)
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
float ref_f16(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 0x1F, man = h & 0x3FF;
  double v;
  if (exp == 0)
    v = std::ldexp(double(man), -24);
  else if (exp == 31)
    v = man ? NAN : INFINITY;
  else
    v = std::ldexp(double(man | 0x400), exp - 25);
  return float(sign ? -v : v);
}
uint16_t to_f16(float f) {  // via the table of all halves: exact nearest, test-only speed is fine
  static std::vector<float> table;
  if (table.empty()) {
    table.resize(1 << 16);
    for (int i = 0; i < (1 << 16); ++i) table[i] = ref_f16(uint16_t(i));
  }
  // positive halves 0..0x7BFF are monotonic; binary search on |f|
  const float a = std::fabs(f);
  int lo = 0, hi = 0x7BFF;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (table[mid] < a)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo > 0 && (a - table[lo - 1]) <= (table[lo] - a)) --lo;
  return uint16_t(lo | (f < 0 ? 0x8000 : 0));
}

size_t esz(DType t) {
  return t == DType::F32 ? 4 : 2;
}
const char* dname(DType t) {
  return t == DType::F32 ? "f32" : t == DType::F16 ? "f16" : "bf16";
}

// Weight storage that ends exactly at a PROT_NONE guard page: any read past the last
// element faults, so tails must stay inside the tensor.
struct GuardedBuffer {
  uint8_t* base = nullptr;
  size_t map_bytes = 0;
  uint8_t* data = nullptr;
  explicit GuardedBuffer(size_t bytes) {
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    const size_t body = (bytes + page - 1) / page * page;
    map_bytes = body + page;
    void* p = mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      std::perror("mmap");
      std::exit(2);
    }
    base = static_cast<uint8_t*>(p);
    mprotect(base + body, page, PROT_NONE);
    data = base + body - bytes;
  }
  ~GuardedBuffer() { munmap(base, map_bytes); }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;
};

struct TestWeight {
  GuardedBuffer buf;
  std::vector<double> ref;  // widened values, row-major
  Tensor t;
  TestWeight(DType dt, int64_t out, int64_t in, std::mt19937& rng)
      : buf(size_t(out * in) * esz(dt)), ref(size_t(out * in)) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (int64_t i = 0; i < out * in; ++i) {
      float v = nd(rng);
      if (dt == DType::BF16) {
        uint16_t h = to_bf16(v);
        std::memcpy(buf.data + 2 * i, &h, 2);
        ref[i] = ref_bf16(h);
      } else if (dt == DType::F16) {
        uint16_t h = to_f16(v);
        std::memcpy(buf.data + 2 * i, &h, 2);
        ref[i] = ref_f16(h);
      } else {
        std::memcpy(buf.data + 4 * i, &v, 4);
        ref[i] = v;
      }
    }
    t.name = std::string("w_") + dname(dt);
    t.dtype = dt;
    t.shape = {out, in};
    t.data = buf.data;
  }
};

void test_matmul_case(DType dt, int64_t out, int64_t in, int n, std::mt19937& rng) {
  TestWeight w(dt, out, in, rng);
  std::vector<float> x(size_t(n * in));
  std::uniform_real_distribution<float> ud(-1.0f, 1.0f);
  for (auto& v : x) v = ud(rng);
  std::vector<float> y(size_t(n * out), NAN);
  hw::cpu::matmul(w.t, x.data(), n, y.data());
  double err2 = 0, ref2 = 0, worst = 0;
  for (int j = 0; j < n; ++j) {
    for (int64_t o = 0; o < out; ++o) {
      double s = 0, sabs = 0;
      for (int64_t k = 0; k < in; ++k) {
        const double p = w.ref[o * in + k] * double(x[j * in + k]);
        s += p;
        sabs += std::fabs(p);
      }
      const double got = y[j * out + o];
      const double d = std::fabs(got - s);
      err2 += d * d;
      ref2 += s * s;
      // fp32 accumulation: error well under 1e-5 of the sum of |terms|
      const double rel = d / (sabs + 1e-30);
      if (!(rel <= worst)) worst = std::isnan(rel) ? INFINITY : rel;
    }
  }
  const double nmse = err2 / (ref2 + 1e-30);
  CHECK(nmse < 1e-11 && worst < 1e-5, "matmul[%s] %s out=%ld in=%ld n=%d: nmse=%.3g max|d|/sum|wx|=%.3g",
        hw::cpu::matmul_isa(), dname(dt), long(out), long(in), n, nmse, worst);
}

void test_matmul(std::mt19937& rng) {
  const DType dts[] = {DType::F32, DType::F16, DType::BF16};
  const int ns[] = {1, 2, 3, 4, 5, 8, 33};
  struct Shape {
    int64_t out, in;
  };
  // tiny, odd, vector-multiple, parallel (>= 64K MACs), k-blocked (in > 512); row counts
  // leave every remainder modulo the micro-kernels' 3 (AVX2) and 4 (AVX-512) rows
  const Shape shapes[] = {{13, 67},  {1, 1},    {3, 5},    {5, 67},   {7, 16},    {9, 33},
                          {14, 130}, {64, 128}, {37, 896}, {65, 896}, {301, 515}, {130, 1100}};
  for (DType dt : dts)
    for (const Shape& s : shapes)
      for (int n : ns) test_matmul_case(dt, s.out, s.in, n, rng);
  // many inputs: several input blocks and k blocks
  for (DType dt : dts) test_matmul_case(dt, 70, 1030, 130, rng);
}

void test_matmul_errors() {
  Tensor v;
  v.name = "vec";
  v.dtype = DType::F32;
  v.shape = {4};
  float data[4] = {1, 2, 3, 4}, x[4] = {1, 1, 1, 1}, y[4];
  v.data = data;
  bool threw = false;
  try {
    hw::cpu::matmul(v, x, 1, y);
  } catch (const hw::EngineError&) {
    threw = true;
  }
  CHECK(threw, "matmul of a 1-D tensor must throw");
  v.shape = {2, 2};
  y[0] = 42.0f;
  hw::cpu::matmul(v, x, 0, y);  // n = 0: nothing written
  CHECK(y[0] == 42.0f, "matmul with n=0 wrote output");
}

// ---- small kernels -----------------------------------------------------------------------
void test_vector_ops(std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 2.0f);
  const int sizes[] = {0, 1, 7, 8, 9, 31, 32, 33, 67, 896, 4864, 40000};
  for (int n : sizes) {
    std::vector<float> a(n), b(n), y(n), w(n);
    for (int i = 0; i < n; ++i) {
      a[i] = nd(rng);
      b[i] = nd(rng);
      w[i] = 1.0f + 0.1f * nd(rng);
    }
    // dot
    double s = 0, sabs = 0;
    for (int i = 0; i < n; ++i) {
      s += double(a[i]) * b[i];
      sabs += std::fabs(double(a[i]) * b[i]);
    }
    const float d = hw::cpu::dot(a.data(), b.data(), n);
    CHECK(std::fabs(d - s) <= 1e-6 * sabs + 1e-30, "dot n=%d: %.9g vs %.9g", n, d, s);
    // axpy
    y = b;
    hw::cpu::axpy(0.37f, a.data(), n, y.data());
    double worst = 0;
    for (int i = 0; i < n; ++i) {
      const double r = double(b[i]) + 0.37 * double(a[i]);
      worst = std::max(worst, std::fabs(y[i] - r) / (std::fabs(b[i]) + std::fabs(0.37 * a[i]) + 1e-30));
    }
    CHECK(worst <= 2e-7, "axpy n=%d: worst rel %.3g", n, worst);
    // rmsnorm
    if (n > 0) {
      const float eps = 1e-6f;
      hw::cpu::rmsnorm(a.data(), w.data(), n, eps, y.data());
      double ss = 0;
      for (int i = 0; i < n; ++i) ss += double(a[i]) * a[i];
      const double scale = 1.0 / std::sqrt(ss / n + eps);
      worst = 0;
      for (int i = 0; i < n; ++i) {
        const double r = double(w[i]) * (double(a[i]) * scale);
        worst = std::max(worst, std::fabs(y[i] - r) / (std::fabs(r) + 1e-30));
      }
      CHECK(worst <= 2e-6, "rmsnorm n=%d: worst rel %.3g", n, worst);
      // in place
      std::vector<float> z = a;
      hw::cpu::rmsnorm(z.data(), w.data(), n, eps, z.data());
      CHECK(z == y, "rmsnorm in place n=%d differs", n);
    }
    // swiglu, with gates over the whole useful range and beyond
    {
      std::vector<float> g(n);
      std::uniform_real_distribution<float> ug(-30.0f, 30.0f);
      for (int i = 0; i < n; ++i) g[i] = (i % 5 == 0) ? nd(rng) : ug(rng);
      const float specials[] = {0.0f, -0.0f, 88.0f, -87.0f, 100.0f, -100.0f, 1e-20f, -1e-20f, 5e-3f};
      for (int i = 0; i < n && i < 9; ++i) g[i] = specials[i];
      hw::cpu::swiglu(g.data(), b.data(), n, y.data());
      worst = 0;
      for (int i = 0; i < n; ++i) {
        const double gd = g[i];
        const double r = gd / (1.0 + std::exp(-gd)) * double(b[i]);
        const double err = std::fabs(y[i] - r);
        if (err > 2e-6 * std::fabs(r) + 1e-30) worst = std::max(worst, err / (std::fabs(r) + 1e-30));
        if (std::isnan(y[i])) worst = INFINITY;
      }
      CHECK(worst == 0, "swiglu n=%d: worst rel %.3g", n, worst);
    }
  }
}

void test_embed_row(std::mt19937& rng) {
  const DType dts[] = {DType::F32, DType::F16, DType::BF16};
  for (DType dt : dts) {
    for (int64_t cols : {1, 7, 8, 67, 896}) {
      const int64_t rows = 5;
      TestWeight w(dt, rows, cols, rng);
      std::vector<float> out(cols);
      bool same = true;
      for (int64_t r = 0; r < rows; ++r) {
        hw::cpu::embed_row(w.t, r, out.data());
        for (int64_t c = 0; c < cols; ++c) same = same && double(out[c]) == w.ref[r * cols + c];
      }
      CHECK(same, "embed_row %s cols=%ld differs from the reference", dname(dt), long(cols));
      bool threw = false;
      try {
        hw::cpu::embed_row(w.t, rows, out.data());
      } catch (const hw::EngineError&) {
        threw = true;
      }
      CHECK(threw, "embed_row %s: row == rows must throw", dname(dt));
      threw = false;
      try {
        hw::cpu::embed_row(w.t, -1, out.data());
      } catch (const hw::EngineError&) {
        threw = true;
      }
      CHECK(threw, "embed_row %s: row -1 must throw", dname(dt));
    }
  }
}

// ---- RoPE --------------------------------------------------------------------------------
hw::ModelConfig rope_cfg(int head_dim, float theta, bool llama3) {
  hw::ModelConfig c;
  c.hidden = head_dim * 4;
  c.heads = 4;
  c.kv_heads = 4;
  c.head_dim = head_dim;
  c.rope_theta = theta;
  if (llama3) {
    c.rope_scaling.llama3 = true;
    c.rope_scaling.factor = 8.0f;
    c.rope_scaling.low_freq_factor = 1.0f;
    c.rope_scaling.high_freq_factor = 4.0f;
    c.rope_scaling.original_max_position = 8192;
  }
  return c;
}

// Straightforward reimplementation (double): transformers' default + llama3 frequencies.
std::vector<double> ref_inv_freq(const hw::ModelConfig& c) {
  const int d = c.head_dim;
  std::vector<double> f(d / 2);
  for (int i = 0; i < d / 2; ++i) f[i] = 1.0 / std::pow(double(c.rope_theta), double(2 * i) / d);
  if (c.rope_scaling.llama3) {
    const auto& s = c.rope_scaling;
    const double low_wl = s.original_max_position / s.low_freq_factor;
    const double high_wl = s.original_max_position / s.high_freq_factor;
    for (double& v : f) {
      const double wl = 2 * M_PI / v;
      if (wl < high_wl) continue;
      if (wl > low_wl) {
        v = v / s.factor;
        continue;
      }
      const double smooth =
          (s.original_max_position / wl - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      v = (1 - smooth) * v / s.factor + smooth * v;
    }
  }
  return f;
}

// Rotation with the engine's rounding model: fp32 angle, cos/sin in double.
std::vector<float> ref_rotate(const std::vector<float>& x, const std::vector<float>& inv, int pos) {
  const int half = int(inv.size());
  std::vector<float> y(x.size());
  for (int i = 0; i < half; ++i) {
    const float ang = float(pos) * inv[i];
    const double c = std::cos(double(ang)), s = std::sin(double(ang));
    y[i] = float(x[i] * c - x[i + half] * s);
    y[i + half] = float(x[i + half] * c + x[i] * s);
  }
  return y;
}

double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0, n = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    e += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    n += double(b[i]) * b[i];
  }
  return std::sqrt(e / (n + 1e-300));
}

void test_rope(std::mt19937& rng) {
  struct Case {
    int head_dim;
    float theta;
    bool llama3;
  };
  const Case cases[] = {{64, 1000000.0f, false}, {128, 1000000.0f, false}, {128, 500000.0f, true},
                        {80, 10000.0f, false},   {6, 10000.0f, false},     {96, 500000.0f, true}};
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (const Case& cs : cases) {
    const hw::ModelConfig cfg = rope_cfg(cs.head_dim, cs.theta, cs.llama3);
    hw::Rope rope(cfg);
    const int d = cs.head_dim, half = d / 2;
    CHECK(rope.head_dim() == d, "head_dim %d", rope.head_dim());

    // Recover inv_freq: rotating e_i by position 1 gives (cos f_i, sin f_i) in (i, i+half).
    const std::vector<double> ref = ref_inv_freq(cfg);
    std::vector<float> inv(half);
    double worst = 0;
    for (int i = 0; i < half; ++i) {
      std::vector<float> e(d, 0.0f), o(d);
      e[i] = 1.0f;
      rope.rotate(e.data(), o.data(), 1);
      inv[i] = float(std::atan2(double(o[i + half]), double(o[i])));
      worst = std::max(worst, std::fabs(inv[i] - ref[i]) / ref[i]);
    }
    CHECK(worst < 2e-6, "rope d=%d theta=%g llama3=%d: inv_freq worst rel %.3g", d, cs.theta, int(cs.llama3), worst);
    // The reference rotation needs fp32 frequencies: plain RoPE in fp32 exactly as
    // transformers computes them; llama3 from the double reimplementation (~6e-8 apart,
    // so only small positions compare tightly).
    for (int i = 0; i < half; ++i)
      inv[i] = cs.llama3 ? float(ref[i]) : 1.0f / std::pow(cs.theta, float(2 * i) / float(d));

    std::vector<float> x(d);
    for (auto& v : x) v = nd(rng);
    std::vector<float> y(d), z(d);

    rope.rotate(x.data(), y.data(), 0);
    CHECK(y == x, "rope d=%d: rotate(x, 0) != x", d);

    const int positions[] = {1, -1, 2, 17, -33, 100, 4095, 32767, -65536, 131071, 1000003, 2000000000};
    for (int p : positions) {
      rope.rotate(x.data(), y.data(), p);
      if (!cs.llama3 || std::abs(p) <= 100) {
        const double r = rel_diff(y, ref_rotate(x, inv, p));
        CHECK(r < (cs.llama3 ? 1e-5 : 3e-7), "rope d=%d pos=%d vs reference: rel %.3g", d, p, r);
      }
      // in place == out of place
      z = x;
      rope.rotate(z.data(), p);
      CHECK(z == y, "rope d=%d pos=%d: in-place result differs", d, p);
      // exact inverse
      rope.rotate(y.data(), z.data(), -p);
      CHECK(rel_diff(z, x) < 1e-6, "rope d=%d pos=%d: rotate(rotate(x,p),-p) != x (rel %.3g)", d, p, rel_diff(z, x));
      const double norm_ratio = std::sqrt([&] {
        double a = 0;
        for (float v : y) a += double(v) * v;
        return a;
      }() /
                                          [&] {
                                            double a = 0;
                                            for (float v : x) a += double(v) * v;
                                            return a;
                                          }());
      CHECK(std::fabs(norm_ratio - 1) < 1e-6, "rope d=%d pos=%d: norm changed by %.3g", d, p, norm_ratio - 1);
    }
    // composition: rotate(rotate(x,a),b) == rotate(x,a+b)
    const int pairs[][2] = {{3, 5}, {17, -9}, {-20, -30}, {40, 23}, {-63, 62}, {1, -1}, {0, 7}};
    for (const auto& pr : pairs) {
      rope.rotate(x.data(), y.data(), pr[0]);
      rope.rotate(y.data(), pr[1]);
      rope.rotate(x.data(), z.data(), pr[0] + pr[1]);
      const double r = rel_diff(y, z);
      CHECK(r < 1e-5, "rope d=%d: rotate(rotate(x,%d),%d) vs rotate(x,%d): rel %.3g", d, pr[0], pr[1], pr[0] + pr[1],
            r);
    }
  }
  bool threw = false;
  try {
    hw::Rope bad(rope_cfg(7, 10000.0f, false));
  } catch (const hw::EngineError&) {
    threw = true;
  }
  CHECK(threw, "odd head_dim must throw");
}

}  // namespace

int main() {
  std::mt19937 rng(1234);
  // The matmuls below run on 3 threads, as in the engine (parallel.h); odd on purpose.
  hw::par::Pool pool(3);
  hw::par::Use use(&pool);
  const char* initial = hw::cpu::matmul_isa();
  std::string tested;
  for (const char* isa : {"avx2", "avx512"}) {
    if (!hw::cpu::set_matmul_isa(isa)) {
      std::printf("matmul path %s: not available on this CPU, skipped\n", isa);
      continue;
    }
    const int before = g_failures;
    test_matmul(rng);
    std::printf("matmul path %s: %s\n", isa, g_failures == before ? "ok" : "FAILED");
    tested += std::string(tested.empty() ? "" : ", ") + isa;
  }
  hw::cpu::set_matmul_isa(initial);
  std::printf("default matmul path: %s (tested: %s)\n", initial, tested.c_str());
  test_matmul_errors();
  test_vector_ops(rng);
  test_embed_row(rng);
  test_rope(rng);
  std::printf("%d checks, %d failures\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
