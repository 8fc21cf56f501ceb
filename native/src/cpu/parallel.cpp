#include "parallel.h"

#include <immintrin.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <string>

namespace hw::par {
namespace {

thread_local bool t_in_region = false;
thread_local Pool* t_current = nullptr;

// Default spin budget. A decode step's regions are 20 us - 1 ms apart (the serial pieces
// between them are a few us), so 200 us keeps a step's regions on hot threads; the gap to the
// next step (sampling, events) may be longer, and then the threads park.
constexpr int kDefaultSpinUs = 200;

const bool kYield = [] {
  const char* s = std::getenv("HW_SPIN_YIELD");
  return !(s && s[0] == '0');
}();

int read_spin_us() {
  const char* s = std::getenv("HW_SPIN_US");
  if (s && *s) {
    char* end = nullptr;
    const long v = std::strtol(s, &end, 10);
    if (end && *end == '\0' && v >= 0 && v <= 1000000) return int(v);
  }
  return kDefaultSpinUs;
}

void futex_wait(std::atomic<uint32_t>* word, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}

void futex_wake(std::atomic<uint32_t>* word, int count) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, count, nullptr, nullptr, 0);
}

// Spins until ready() or until `us` microseconds have passed; returns ready()'s last value.
// Every few microseconds the spinner yields: when the thread it waits for is queued on this
// core (more runnable threads than cores: a compile beside the run), that thread runs now
// instead of after the spin budget; on an idle core sched_yield returns at once.
template <class P>
bool spin_until(P ready, int us) {
  if (ready()) return true;
  if (us <= 0) return false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  for (;;) {
    for (int i = 0; i < 32; i++) {
      if (ready()) return true;
      _mm_pause();
    }
    if (std::chrono::steady_clock::now() >= deadline) return ready();
    if (kYield) sched_yield();
  }
}

}  // namespace

int spin_microseconds() {
  static const int us = read_spin_us();
  return us;
}

Pool::Pool(int threads, int spin_us) : size_(threads < 1 ? 1 : threads), cursors_(new Cursor[size_]) {
  // More threads than cores: a spinning thread would hold the core its peer needs.
  const unsigned cores = std::thread::hardware_concurrency();
  spin_us_ = spin_us >= 0 ? spin_us : (cores > 0 && unsigned(size_) > cores) ? 0 : spin_microseconds();
  for (int i = 1; i < size_; i++) workers_.emplace_back([this, i] { worker_main(i); });
}

Pool::~Pool() {
  stop_ = true;
  epoch_.fetch_add(1, std::memory_order_seq_cst);
  futex_wake(&epoch_, INT_MAX);
  for (std::thread& t : workers_) t.join();
}

bool Pool::in_region() { return t_in_region; }

bool Pool::acquire() {
  if (t_in_region) return false;
  bool expected = false;
  return busy_.compare_exchange_strong(expected, true, std::memory_order_acquire);
}

void Pool::dispatch(void* f, void (*call)(void*, int)) {
  job_ = f;
  call_ = call;
  pending_.store(size_ - 1, std::memory_order_relaxed);
  epoch_.fetch_add(1, std::memory_order_seq_cst);  // publishes the job
  if (parked_.load(std::memory_order_seq_cst) > 0) futex_wake(&epoch_, INT_MAX);

  t_in_region = true;
  call(f, 0);
  t_in_region = false;

  // Wait for the others: spin a while, then park until the last one wakes us.
  auto all_done = [this] { return pending_.load(std::memory_order_acquire) == 0; };
  if (!spin_until(all_done, spin_us_)) {
    for (;;) {
      const uint32_t d = done_.load(std::memory_order_seq_cst);
      caller_parked_.store(true, std::memory_order_seq_cst);
      if (pending_.load(std::memory_order_seq_cst) == 0) break;
      futex_wait(&done_, d);
    }
    caller_parked_.store(false, std::memory_order_relaxed);
  }
  busy_.store(false, std::memory_order_release);
}

void Pool::worker_main(int id) {
  pthread_setname_np(pthread_self(), ("hw-cpu-" + std::to_string(id)).c_str());  // for top -H, perf
  t_in_region = true;  // a worker only ever runs inside regions: nested ones run inline
  uint32_t seen = 0;
  for (;;) {
    auto has_job = [&] { return epoch_.load(std::memory_order_acquire) != seen; };
    if (!spin_until(has_job, spin_us_)) {
      parked_.fetch_add(1, std::memory_order_seq_cst);
      while (epoch_.load(std::memory_order_seq_cst) == seen) futex_wait(&epoch_, seen);
      parked_.fetch_sub(1, std::memory_order_relaxed);
    }
    seen = epoch_.load(std::memory_order_acquire);
    if (stop_) return;
    call_(job_, id);
    if (pending_.fetch_sub(1, std::memory_order_seq_cst) == 1) {
      done_.fetch_add(1, std::memory_order_seq_cst);
      if (caller_parked_.load(std::memory_order_seq_cst)) futex_wake(&done_, 1);
    }
  }
}

Pool* current() { return t_current; }

Use::Use(Pool* pool) : prev_(t_current) { t_current = pool; }
Use::~Use() { t_current = prev_; }

}  // namespace hw::par
