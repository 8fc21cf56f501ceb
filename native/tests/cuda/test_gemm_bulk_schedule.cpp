// The bulk-copy decode GEMM's ring protocol (gemm_bulk_schedule.h, used by gemm_bulk.cuh), checked
// without a GPU: one CTA's 8 warps and its bulk copies emulated in random interleavings, with
// mbarriers of PTX semantics (a phase completes when its arrivals are in and its transaction bytes
// have landed; try_wait.parity P passes once the phase of parity P has completed). Each stage's
// copy is one copy per weight row (32), landing one by one in random order, at any later time.
// Checks, for K ranges from the split-K arithmetic, 3 and 4 slots, 1 and 2 groups a warp: the
// launch ends (no deadlock), a warp reads a slot only when all of its stage's bytes have landed
// and none of a later stage's, no copy lands in a slot before every warp has read the stage it
// replaces, and every piece of the range is multiplied by exactly one lane. A deliberately wrong
// parity for the refill's wait (one phase late) must be caught, so the emulation is not vacuous.
#include <cstdio>
#include <random>
#include <vector>

#include "../../src/cuda/gemm_bulk_schedule.h"
#include "../testing.h"

using namespace hw::cuda;

namespace {

constexpr int kWarpsEmu = kGemmWarps, kRows = 32;

struct Barrier {
  int completed = 0;  // phases completed so far
  int count = 0, pending = 0;
  long tx = 0;
  void init(int n) {
    count = pending = n;
    completed = 0;
    tx = 0;
  }
  void settle() {
    if (pending == 0 && tx == 0) completed++, pending = count;
  }
  void arrive() {
    pending--;
    settle();
  }
  void expect(long bytes) { tx += bytes; }
  void complete_tx(long bytes) {
    tx -= bytes;
    settle();
  }
  bool passes(unsigned parity) const { return unsigned(completed & 1) != parity; }
};

struct Copy {
  int slot, stage, bytes;
};

struct Outcome {
  bool finished = false;
  int stale_reads = 0, early_overwrites = 0, wrong_pieces = 0;
};

// One launch of one CTA over range r with `slots` slots, `groups` groups a warp; `late`: the refill
// waits one phase late (the broken protocol).
Outcome emulate(PieceRange r, int slots, int groups, bool late, std::mt19937& rng) {
  const int per_stage = 4 * kWarpsEmu * groups;
  const int stages = bulk_stage_count(r, per_stage);
  std::vector<Barrier> full(slots), empty(slots);
  for (int s = 0; s < slots; s++) full[s].init(1), empty[s].init(kWarpsEmu);
  std::vector<int> slot_stage(slots, -1), slot_bytes(slots, 0), slot_reads(slots, 0);
  std::vector<Copy> inflight;
  std::vector<int> reads(size_t(r.end), 0);
  Outcome out;
  auto stage_bytes = [&](int st) {
    const int first = bulk_stage_first(r, per_stage, st);
    return std::min(per_stage, r.end - first) * 16;
  };
  auto issue = [&](int st) {
    const int slot = st % slots, bytes = stage_bytes(st);
    full[slot].expect(long(bytes) * kRows);
    full[slot].arrive();
    for (int row = 0; row < kRows; row++) inflight.push_back({slot, st, bytes});
  };
  for (int st = 0; st < std::min(stages, slots); st++) issue(st);
  // Per warp: its step, and where in the step it is (0: warp 0's refill, 1: the wait and the read,
  // 2: the release).
  std::vector<int> step(kWarpsEmu, 0), at(kWarpsEmu, 0);
  auto done = [&](int w) { return step[w] >= stages; };
  // Tries to advance warp w by one action; false when it is blocked on a barrier.
  auto advance = [&](int w) {
    const int st = step[w], slot = st % slots;
    if (at[w] == 0) {
      const int rf = bulk_refill(st, slots, stages);
      if (w == 0 && rf >= 0) {
        const unsigned parity = late ? bulk_empty_parity(rf, slots) ^ 1u : bulk_empty_parity(rf, slots);
        if (!empty[rf % slots].passes(parity)) return false;
        issue(rf);
      }
      at[w] = 1;
      return true;
    }
    if (at[w] == 1) {
      if (!full[slot].passes(bulk_full_parity(st, slots))) return false;
      if (slot_stage[slot] != st || slot_bytes[slot] != stage_bytes(st) * kRows) out.stale_reads++;
      const int first = bulk_stage_first(r, per_stage, st);
      for (int u = 0; u < groups; u++)
        for (int q = 0; q < 4; q++) {
          const int p = bulk_piece(first, w, groups, u, q);
          if (p < r.end) {
            if (p < r.begin || p >= first + per_stage) out.wrong_pieces++;
            reads[size_t(p)]++;
          }
        }
      slot_reads[slot]++;
      at[w] = 2;
      return true;
    }
    empty[slot].arrive();
    step[w]++;
    at[w] = 0;
    return true;
  };
  for (long guard = 0; guard < 10000000; guard++) {
    bool all_done = true;
    for (int w = 0; w < kWarpsEmu; w++) all_done &= done(w);
    if (all_done && inflight.empty()) {
      out.finished = true;
      break;
    }
    // Random order over the warps and the landing copies; the first that can move does.
    std::vector<int> order;
    for (int w = 0; w < kWarpsEmu; w++)
      if (!done(w)) order.push_back(w);
    for (size_t c = 0; c < inflight.size(); c++) order.push_back(kWarpsEmu + int(c));
    std::shuffle(order.begin(), order.end(), rng);
    bool moved = false;
    for (int e : order) {
      if (e < kWarpsEmu) {
        if (advance(e)) {
          moved = true;
          break;
        }
        continue;
      }
      const Copy c = inflight[size_t(e - kWarpsEmu)];
      inflight.erase(inflight.begin() + (e - kWarpsEmu));
      if (slot_stage[c.slot] != c.stage) {  // the first row of a new stage lands: the old one is gone
        if (slot_stage[c.slot] >= 0 && slot_reads[c.slot] != kWarpsEmu) out.early_overwrites++;
        slot_stage[c.slot] = c.stage, slot_bytes[c.slot] = 0, slot_reads[c.slot] = 0;
      }
      slot_bytes[c.slot] += c.bytes;
      full[c.slot].complete_tx(c.bytes);
      moved = true;
      break;
    }
    if (!moved) break;  // nothing can move: deadlock
  }
  for (int p = r.begin; p < r.end; p++)
    if (reads[size_t(p)] != 1) out.wrong_pieces++;
  return out;
}

}  // namespace

int main() {
  std::mt19937 rng(7);
  int runs = 0, broken_caught = 0, broken_runs = 0;
  const int Ks[] = {32, 64, 200, 1032, 3584, 4096, 18944};
  for (int K : Ks)
    for (int groups : {1, 2})
      for (int slots : {3, 4})
        for (int want : {1, 2, 3, 5}) {
          const int pieces = K / 8;
          const GemmSplit sp = make_split(pieces, want, groups);
          for (int s = 0; s < sp.splits; s++) {
            const PieceRange r = split_range(pieces, sp.len, s);
            const int reps = r.end - r.begin > 600 ? 2 : 6;
            for (int rep = 0; rep < reps; rep++) {
              const Outcome o = emulate(r, slots, groups, false, rng);
              runs++;
              CHECK(o.finished && o.stale_reads == 0 && o.early_overwrites == 0 && o.wrong_pieces == 0,
                    "K %d groups %d slots %d split %d/%d: finished %d, stale reads %d, early overwrites %d, "
                    "wrong pieces %d",
                    K, groups, slots, s, sp.splits, o.finished, o.stale_reads, o.early_overwrites, o.wrong_pieces);
            }
            // The broken refill parity, on ranges of more stages than slots (else no refill runs).
            if (bulk_stage_count(r, 4 * kGemmWarps * groups) > slots + 1) {
              const Outcome b = emulate(r, slots, groups, true, rng);
              broken_runs++;
              broken_caught += !b.finished || b.stale_reads || b.early_overwrites || b.wrong_pieces;
            }
          }
        }
  CHECK(broken_runs > 0 && broken_caught == broken_runs, "the late refill parity was caught in %d of %d runs",
        broken_caught, broken_runs);
  std::printf(
      "  bulk GEMM ring protocol: %d emulated launches clean; a one-phase-late refill wait caught in %d of %d\n", runs,
      broken_caught, broken_runs);
  return test_summary("test_gemm_bulk_schedule");
}
