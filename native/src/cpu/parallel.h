// The CPU backend's parallel runtime: a persistent pool of threads that is fast between the
// parallel regions of one forward step and polite between steps.
//
// - Fast: after a region, a worker spins (with `pause`) for a bounded *time* before it parks,
//   so the next region of the same step (most start < 20 us later) needs no futex wake-up.
//   The bound is in microseconds, not in spin iterations: `pause` takes ~10 cycles on some
//   CPUs and ~140 on others (Intel since Skylake), so an iteration count means different
//   times on Intel and AMD.
// - Polite: once the spin budget is spent the worker parks on a futex and takes no CPU until
//   the next region; the caller waiting for stragglers does the same. The budget adapts per
//   thread: waits that outlast it (the cores are shared with other busy processes) shrink it
//   towards parking at once, waits it covers grow it back.
// - Robust when a core is taken by another process: work is handed out in chunks; every
//   thread starts on its own contiguous range (streaming order, as a static split) and, when
//   done, takes the remaining chunks of the others, so a descheduled thread delays the step
//   by at most its current chunk.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <type_traits>
#include <vector>

namespace hw::par {

class Pool {
 public:
  // `threads` >= 1 threads in all: the caller of run() plus threads - 1 workers; `spin_us`
  // overrides spin_microseconds() (for benchmarks).
  explicit Pool(int threads, int spin_us = -1);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  int size() const { return size_; }

  // Calls fn(i) once for each i in [0, size()) at the same time, the caller taking i = 0, and
  // returns when every call has returned. Regions do not nest: a call from inside a region
  // (or while another thread runs one on this pool) runs every fn(i) on the calling thread.
  template <class F>
  void run(F&& fn) {
    if (!acquire()) {
      for (int i = 0; i < size_; i++) fn(i);
      return;
    }
    dispatch(&fn, [](void* f, int i) { (*static_cast<std::remove_reference_t<F>*>(f))(i); });
  }

  // Splits [0, n) into chunks of `grain` items and calls fn(begin, end) on each chunk, spread
  // over the pool as described above.
  template <class F>
  void parallel_for(int64_t n, int64_t grain, F&& fn) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    const int nt = int(std::min<int64_t>(size_, (n + grain - 1) / grain));
    if (nt <= 1 || !acquire()) {
      fn(int64_t(0), n);
      return;
    }
    // Range t is [n * t / nt, n * (t + 1) / nt); cursor t walks it chunk by chunk.
    for (int t = 0; t < nt; t++) cursors_[t].next.store(n * t / nt, std::memory_order_relaxed);
    auto body = [&](int id) {
      if (id >= nt) return;
      for (int k = 0; k < nt; k++) {
        const int t = (id + k) % nt;
        const int64_t end = n * (t + 1) / nt;
        for (;;) {
          const int64_t b = cursors_[t].next.fetch_add(grain, std::memory_order_relaxed);
          if (b >= end) break;
          fn(b, std::min(end, b + grain));
        }
      }
    };
    dispatch(&body, [](void* f, int i) { (*static_cast<decltype(body)*>(f))(i); });
  }

  // True on a thread while it runs inside a region of any pool.
  static bool in_region();

 private:
  struct alignas(64) Cursor {
    std::atomic<int64_t> next{0};
  };
  // A waiting thread's spin budget in microseconds, adapted to how waits end (parallel.cpp).
  static constexpr int kMinSpinUs = 4;
  struct SpinBudget {
    int max_us = 0, us = 0;
    SpinBudget() = default;
    explicit SpinBudget(int m) : max_us(m), us(m) {}
    template <class P>
    bool wait(P ready);  // spins up to `us`, then adapts it; true if ready() came true
  };
  // Takes the pool for one region; false inside a region or while another thread holds it.
  bool acquire();
  // Runs call(f, i) on every thread, then releases the pool.
  void dispatch(void* f, void (*call)(void*, int));
  void worker_main(int id);

  const int size_;
  int spin_us_ = 0;
  std::vector<std::thread> workers_;
  std::unique_ptr<Cursor[]> cursors_;
  std::atomic<bool> busy_{false};  // a region is running (regions from two threads serialise)
  // The current job; `epoch_` counts jobs and is the futex word the workers park on.
  alignas(64) std::atomic<uint32_t> epoch_{0};
  std::atomic<int> parked_{0};
  void* job_ = nullptr;
  void (*call_)(void*, int) = nullptr;
  bool stop_ = false;
  // Workers still inside the current job; `done_` is the futex word the caller parks on.
  alignas(64) std::atomic<int> pending_{0};
  std::atomic<uint32_t> done_{0};
  std::atomic<bool> caller_parked_{false};
  SpinBudget caller_spin_;  // the caller's (one caller at a time: busy_)
};

// Microseconds a waiting thread spins before it parks (HW_SPIN_US overrides; 0 = park at once).
int spin_microseconds();

// The pool the CPU kernels on this thread use, or nullptr (then they run on the calling thread).
Pool* current();

// Makes `pool` the current one of this thread for the scope's lifetime.
class Use {
 public:
  explicit Use(Pool* pool);
  ~Use();
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;

 private:
  Pool* prev_;
};

// Runs fn(begin, end) over [0, n) on the current pool (or inline when there is none).
template <class F>
void parallel_for(int64_t n, int64_t grain, F&& fn) {
  if (Pool* p = current())
    p->parallel_for(n, grain, fn);
  else if (n > 0)
    fn(int64_t(0), n);
}

// *p += v, safe against other threads adding to the same float.
inline void atomic_add(float* p, float v) {
  float old, want;
  __atomic_load(p, &old, __ATOMIC_RELAXED);
  do want = old + v;
  while (!__atomic_compare_exchange(p, &old, &want, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

// Threads the current pool has (1 without one).
inline int threads() {
  Pool* p = current();
  return p ? p->size() : 1;
}

}  // namespace hw::par
