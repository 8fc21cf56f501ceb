// The attention op's tile loop with AMX: bf16 K/V go through AMX tile products (TDPBF16PS;
// attention_tiles.inc, HW_ATTN_AMX), with the packing of the bf16 dot-product path; fp32 and
// f16 K/V run as on AVX-512. Compiled for that target only and entered only after a CPUID
// check and the kernel's permission to use the tile registers (attention.cpp).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "attention_impl.h"

#if defined(__x86_64__) && defined(__GNUC__)
#if defined(__clang__)
#pragma clang attribute push( \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,amx-tile,amx-bf16"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,amx-tile,amx-bf16")
// GCC 12 false positives: the intrinsics' `_mm512_undefined_*` self-initialisation.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#define HW_ATTN_BF16_DOT 1
#define HW_ATTN_AMX 1

namespace hw::cpu {
namespace {

#include "attention_avx512_vec.inc"
#include "attention_tiles.inc"

}  // namespace

void attention_run_amx(const AttnJob& job) {
  run_job(job);
}

}  // namespace hw::cpu

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif

#else
namespace hw::cpu {
void attention_run_amx(const AttnJob& job) {
  attention_run_avx2(job);
}
}  // namespace hw::cpu
#endif
