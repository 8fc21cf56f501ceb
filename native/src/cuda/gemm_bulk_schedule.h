// The ring protocol of the bulk-copy decode GEMM (gemm_bulk.cuh) as arithmetic that the kernel
// and a GPU-free test (test_gemm_bulk_schedule) share: the pieces of K a stage holds and a lane
// multiplies, the stage warp 0 refills at each step, and the mbarrier phase parity of each wait.
// PTX semantics: mbarrier.try_wait.parity P passes once the phase of parity P has completed,
// i.e. while the barrier's count of completed phases is odd for P = 0 and even for P = 1; so a
// wait must never fall two phases behind its barrier (the test checks the protocol keeps that).
#pragma once
#include "gemm_split.h"

namespace hw::cuda {

// Stages of a CTA's K range at `per_stage` pieces each (the last may hold fewer).
HW_GEMM_HD inline int bulk_stage_count(PieceRange r, int per_stage) {
  return (r.end - r.begin + per_stage - 1) / per_stage;
}

// The first piece of stage st.
HW_GEMM_HD inline int bulk_stage_first(PieceRange r, int per_stage, int st) {
  return r.begin + st * per_stage;
}

// The piece that lane q of warp `warp` multiplies in its group u of the stage starting at `first`
// (each warp takes `groups` consecutive groups of 4 pieces); at or past the range's end: none.
HW_GEMM_HD inline int bulk_piece(int first, int warp, int groups, int u, int q) {
  return first + (warp * groups + u) * 4 + q;
}

// The stage warp 0 copies at the top of step st, into the slot of stage st - 1 once every warp has
// released that one; -1: none (stages 0 .. slots - 1 are asked for before the loop).
HW_GEMM_HD inline int bulk_refill(int st, int slots, int stages) {
  const int r = st - 1 + slots;
  return st >= 1 && r < stages ? r : -1;
}

// The parity a warp's wait for stage st's bytes uses: the slot's fill number st / slots completes
// phase st / slots of its "full" mbarrier.
HW_GEMM_HD inline unsigned bulk_full_parity(int st, int slots) {
  return unsigned(st / slots) & 1u;
}

// The parity the refill with stage r waits on: the release of stage r - slots by every warp,
// phase (r - slots) / slots of the slot's "empty" mbarrier.
HW_GEMM_HD inline unsigned bulk_empty_parity(int r, int slots) {
  return unsigned((r - slots) / slots) & 1u;
}

}  // namespace hw::cuda
