#include "parallel.h"

#include <immintrin.h>
#include <linux/futex.h>
#include <pthread.h>
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
// (No sched_yield in the loop: on a loaded machine every yield hands the core to another
// process for a whole time slice.)
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
  }
}

}  // namespace

// Each waiting thread's budget adapts: a wait the spin covered doubles it (up to the pool's
// budget), a wait that outlasted it halves it (down to kMinSpinUs). On an idle machine only
// the gap between decode steps outlasts the budget (about 1 wait in 200), so it stays full.
// When more threads want the cores than there are (other processes), the thread waited for
// is often descheduled, spins fail, and the budget falls to a few us: the threads then park
// almost at once, which is what the scheduler rewards (a woken thread runs soon, a spinning
// one has used up its share of the core).
template <class P>
bool Pool::SpinBudget::wait(P ready) {
  const bool ok = spin_until(ready, us);
  us = ok ? std::min(max_us, us * 2 + 1) : std::max(std::min(kMinSpinUs, max_us), us / 2);
  return ok;
}

namespace {}  // namespace

int spin_microseconds() {
  static const int us = read_spin_us();
  return us;
}

Pool::Pool(int threads, int spin_us) : size_(threads < 1 ? 1 : threads), cursors_(new Cursor[size_]) {
  // More threads than cores: a spinning thread would hold the core its peer needs.
  const unsigned cores = std::thread::hardware_concurrency();
  spin_us_ = spin_us >= 0 ? spin_us : (cores > 0 && unsigned(size_) > cores) ? 0 : spin_microseconds();
  caller_spin_ = SpinBudget(spin_us_);
  for (int i = 1; i < size_; i++) workers_.emplace_back([this, i] { worker_main(i); });
}

Pool::~Pool() {
  stop_ = true;
  epoch_.fetch_add(1, std::memory_order_seq_cst);
  futex_wake(&epoch_, INT_MAX);
  for (std::thread& t : workers_) t.join();
}

bool Pool::in_region() {
  return t_in_region;
}

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
  if (!caller_spin_.wait(all_done)) {
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
  SpinBudget spin(spin_us_);
  for (;;) {
    auto has_job = [&] { return epoch_.load(std::memory_order_acquire) != seen; };
    if (!spin.wait(has_job)) {
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

Pool* current() {
  return t_current;
}

Use::Use(Pool* pool) : prev_(t_current) {
  t_current = pool;
}
Use::~Use() {
  t_current = prev_;
}

}  // namespace hw::par
