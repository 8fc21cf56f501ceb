// The long attention kernel's slot protocol (attention_long.cuh, HW_ATTN_LONG), checked without a GPU.
//
// Emulates one CTA: its warps as small state machines run in random interleavings, the slots'
// "full" and "empty" mbarriers with PTX's phase semantics (try_wait.parity P passes once the phase of
// parity P has completed, i.e. when the completed-phase count has the other parity: a waiter two
// phases behind its barrier is not told), and bulk copies that land at random later moments. The
// schedule comes from attention_work.h (attn_long_step), as the kernel uses it. Checks: no deadlock;
// every tile is computed once, by its set, from a slot that holds exactly that tile with every byte
// landed; no copy is issued into a slot a warp still reads. A configuration with stages % sets != 0
// (which the kernel's static_assert refuses) must be caught, so the emulation can see the hazard.
// Also checks the padded slot rows: the 8 rows one ldmatrix reads fall in 8 distinct bank groups.
#include <cstdio>
#include <random>
#include <vector>

#include "../../src/cuda/attention_work.h"
#include "../testing.h"

using namespace hw::cuda;

namespace {

struct Barrier {
  int count = 0, pending = 0, tx = 0, completed = 0;  // completed: phases done so far
  void arrive(int expect_tx = 0) {
    tx += expect_tx;
    pending--;
    settle();
  }
  void settle() {
    if (pending == 0 && tx == 0) completed++, pending = count;
  }
  bool passed(int parity) const { return (completed & 1) != parity; }
};

struct Copy {
  int slot, tile, bytes;
};

// One run of a CTA with `tiles` visible tiles; returns false on a detected hazard or deadlock (and
// counts it in *hazards) without CHECK, so that the bad configuration can expect a failure.
bool emulate(int tiles, int sets, int stages, int warps_per_set, std::mt19937& rng, int* hazards) {
  std::vector<Barrier> full(stages), empty(stages);
  for (auto& b : full) b.count = b.pending = 1;
  for (auto& b : empty) b.count = b.pending = warps_per_set;
  std::vector<int> tag(stages, -1), readers(stages, 0), landing(stages, 0), done(tiles, 0);
  std::vector<Copy> flying;
  auto issue = [&](int t, int s) {
    if (readers[s] > 0) ++*hazards;  // overwriting a slot still being read
    full[s].arrive(2);               // expect_tx before the copies (K and V: 1 "byte" each here)
    flying.push_back({s, t, 1}), flying.push_back({s, t, 1});
    landing[s] += 2;
  };
  for (int t = 0; t < tiles && t < stages; t++) issue(t, attn_long_step(t, sets, stages).slot);
  // Warp state: its next tile k, and phase 0 wait full, 1 reading, 2 refill wait (first warp only).
  struct Warp {
    int set, wg, k, phase;
  };
  std::vector<Warp> warps;
  for (int s = 0; s < sets; s++)
    for (int w = 0; w < warps_per_set; w++) warps.push_back({s, w, s, 0});
  bool ok = true;
  for (int steps = 0; steps < 1000000; steps++) {
    std::vector<int> runnable;
    for (int i = 0; i < int(warps.size()); i++) {
      const Warp& w = warps[i];
      if (w.k >= tiles) continue;
      const AttnLongStep st = attn_long_step(w.k, sets, stages);
      if (w.phase == 0 && !full[st.slot].passed(st.parity)) continue;
      if (w.phase == 2 && !empty[st.slot].passed(st.parity)) continue;
      runnable.push_back(i);
    }
    const int choices = int(runnable.size()) + int(flying.size());
    if (choices == 0) break;
    const int pick = std::uniform_int_distribution<int>(0, choices - 1)(rng);
    if (pick >= int(runnable.size())) {  // a copy lands
      const int f = pick - int(runnable.size());
      const Copy c = flying[f];
      flying.erase(flying.begin() + f);
      tag[c.slot] = c.tile;
      landing[c.slot]--;
      full[c.slot].tx -= c.bytes;
      full[c.slot].settle();
      continue;
    }
    Warp& w = warps[runnable[pick]];
    const AttnLongStep st = attn_long_step(w.k, sets, stages);
    if (st.set != w.set) ++*hazards, ok = false;
    if (w.phase == 0) {  // the wait passed: the slot must hold this tile, fully landed
      if (tag[st.slot] != w.k || landing[st.slot] != 0) ++*hazards, ok = false;
      readers[st.slot]++;
      w.phase = 1;
    } else if (w.phase == 1) {  // done reading: release; the first warp goes on to refill
      readers[st.slot]--;
      if (w.wg == 0) done[w.k]++;
      empty[st.slot].arrive();
      if (w.wg == 0 && w.k + stages < tiles) {
        w.phase = 2;
      } else {
        w.k += sets, w.phase = 0;
      }
    } else {  // the slot released by the whole set: tile k + stages into it
      issue(w.k + stages, st.slot);
      w.k += sets, w.phase = 0;
    }
  }
  for (const Warp& w : warps)
    if (w.k < tiles) ok = false, ++*hazards;  // deadlock (or the step bound)
  for (int t = 0; t < tiles; t++)
    if (done[t] != 1) ok = false, ++*hazards;
  return ok && *hazards == 0;
}

void check_padding() {
  for (int hd : {64, 128})
    for (int key0 = 0; key0 < 64; key0 += 8)
      for (int chunk = 0; chunk < hd / 8; chunk++) {
        unsigned groups = 0;  // 16-byte bank groups (8 per 128 bytes) of the 8 rows one ldmatrix reads
        for (int r = 0; r < 8; r++) groups |= 1u << ((attn_long_kv_index(key0 + r, chunk, hd) * 2 / 16) % 8);
        CHECK(groups == 0xffu, "hd %d rows %d.. chunk %d: bank groups %02x", hd, key0, chunk, groups);
        CHECK(attn_long_kv_index(key0, chunk, hd) * 2 % 16 == 0, "unaligned row");
      }
}

}  // namespace

int main() {
  check_padding();
  std::mt19937 rng(5);
  // The kernel's configurations (2 sets x 4 slots, 1 set x 5 slots) and a few others that keep
  // stages % sets == 0, over tile counts from 0 to several rings.
  const int configs[][3] = {{2, 4, 4}, {1, 5, 8}, {2, 2, 4}, {1, 1, 4}, {3, 6, 2}, {2, 6, 4}};
  int runs = 0;
  for (const auto& c : configs)
    for (int tiles : {0, 1, 2, 3, 4, 5, 7, 9, 16, 33, 64})
      for (int rep = 0; rep < 40; rep++) {
        int hazards = 0;
        const bool ok = emulate(tiles, c[0], c[1], c[2], rng, &hazards);
        CHECK(ok, "sets %d stages %d warps %d tiles %d: %d hazards", c[0], c[1], c[2], tiles, hazards);
        runs++;
      }
  // 2 sets over 5 slots: a set can wait on a slot whose other-set phase is still landing (seen as
  // its own earlier phase). The emulation must find it in some interleaving.
  int caught = 0;
  for (int rep = 0; rep < 400; rep++) {
    int hazards = 0;
    caught += !emulate(40, 2, 5, 4, rng, &hazards);
  }
  CHECK(caught > 0, "the 2-set, 5-slot hazard went unseen in 400 runs");
  std::printf("%d emulated CTAs; the stages %% sets != 0 hazard caught in %d of 400\n", runs, caught);
  return test_summary("test_attention_long_schedule");
}
