// The CPU runtime (src/cpu/parallel.h): every index is run exactly once whatever the pool
// size, grain and spin budget; regions nest and overlap safely; and the parallel matmul gives
// the same bits as the one-thread matmul (each row is computed by the same code either way).
#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "tensor.h"
#include "testing.h"

using hw::par::Pool;

namespace {

void test_cover(Pool& pool, int64_t n, int64_t grain) {
  std::vector<std::atomic<int>> hits(size_t(n > 0 ? n : 0));
  std::atomic<int> calls{0};
  pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
    calls++;
    CHECK(0 <= b && b < e && e <= n, "chunk [%ld, %ld) outside [0, %ld)", long(b), long(e), long(n));
    for (int64_t i = b; i < e; i++) hits[size_t(i)]++;
  });
  int bad = 0;
  for (auto& h : hits) bad += h.load() != 1;
  CHECK(bad == 0, "pool %d, n %ld, grain %ld: %d indices not run exactly once", pool.size(), long(n), long(grain), bad);
  CHECK(n > 0 || calls == 0, "an empty range made %d calls", calls.load());
}

void test_run_each_once(Pool& pool) {
  std::vector<std::atomic<int>> seen(size_t(pool.size()));
  std::vector<std::thread::id> who(size_t(pool.size()));
  for (int rep = 0; rep < 1000; rep++)
    pool.run([&](int i) {
      seen[size_t(i)]++;
      who[size_t(i)] = std::this_thread::get_id();
    });
  for (int i = 0; i < pool.size(); i++)
    CHECK(seen[size_t(i)] == 1000, "index %d ran %d times of 1000", i, seen[size_t(i)].load());
  CHECK(who[0] == std::this_thread::get_id(), "index 0 is not the caller");
  for (int i = 1; i < pool.size(); i++) CHECK(who[size_t(i)] != who[0], "index %d ran on the caller", i);
}

// A region inside a region runs inline (no deadlock), and two threads sharing one pool both
// finish with correct results (the second runs inline while the first holds the pool).
void test_nesting_and_sharing(Pool& pool) {
  std::atomic<int64_t> sum{0};
  pool.parallel_for(64, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++)
      pool.parallel_for(100, 7, [&](int64_t b2, int64_t e2) {
        for (int64_t j = b2; j < e2; j++) sum += j;
      });
  });
  CHECK(sum == 64 * 4950, "nested sum %ld, want %ld", long(sum.load()), long(64 * 4950));

  std::atomic<int64_t> a{0}, b{0};
  auto work = [&pool](std::atomic<int64_t>& acc) {
    for (int rep = 0; rep < 300; rep++)
      pool.parallel_for(1000, 10, [&](int64_t lo, int64_t hi) {
        int64_t s = 0;
        for (int64_t i = lo; i < hi; i++) s += i;
        acc += s;
      });
  };
  std::thread other([&] { work(b); });
  work(a);
  other.join();
  CHECK(a == 300 * 499500 && b == 300 * 499500, "shared pool sums %ld and %ld, want %ld", long(a.load()),
        long(b.load()), long(300 * 499500));
}

void test_matmul_bits(Pool& pool, std::mt19937& rng) {
  // 3000 x 700 bf16 = 4.2 MB: many 256 KiB chunks, and a row count not divisible by the pool.
  const int64_t out = 3000, in = 700;
  std::vector<uint16_t> w(size_t(out * in));
  std::uniform_int_distribution<int> mant(0, 127), sign(0, 1);
  for (auto& v : w) v = uint16_t((sign(rng) << 15) | (122 << 7) | mant(rng));
  hw::Tensor t;
  t.name = "w";
  t.dtype = hw::DType::BF16;
  t.shape = {out, in};
  t.data = w.data();
  for (int n : {1, 4, 19}) {
    std::vector<float> x(size_t(n * in)), y1(size_t(n * out)), yp(size_t(n * out), -1.0f);
    std::normal_distribution<float> nd;
    for (auto& v : x) v = nd(rng);
    hw::cpu::matmul(t, x.data(), n, y1.data());  // no pool: one thread
    {
      hw::par::Use use(&pool);
      hw::cpu::matmul(t, x.data(), n, yp.data());
    }
    CHECK(std::memcmp(y1.data(), yp.data(), y1.size() * sizeof(float)) == 0,
          "matmul n=%d on %d threads differs from one thread", n, pool.size());
  }
}

}  // namespace

int main() {
  std::mt19937 rng(7);
  for (int threads : {1, 2, 3, 5}) {
    Pool pool(threads);
    for (int64_t n : {0, 1, 2, 7, 100, 1001})
      for (int64_t grain : {1, 3, 64, 5000}) test_cover(pool, n, grain);
    test_run_each_once(pool);
    test_nesting_and_sharing(pool);
    test_matmul_bits(pool, rng);
  }
  std::printf("spin budget: %d us (HW_SPIN_US)\n", hw::par::spin_microseconds());
  return test_summary("test_parallel");
}
