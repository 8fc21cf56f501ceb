// The attention op's tile loop for AVX-512 (F, BW, VL, DQ), compiled for that target only
// and entered only after a CPUID check (attention.cpp). 16-bit K/V take the fused loop
// (attention_fused.inc, HW_ATTN_FUSED_SOFTMAX) with fp32 FMAs.
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
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq")
// GCC 12 false positives: the intrinsics' `_mm512_undefined_*` self-initialisation.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#define HW_ATTN_FUSED_SOFTMAX 1

namespace hw::cpu {
namespace {

#include "attention_avx512_vec.inc"
#include "attention_tiles.inc"

}  // namespace

void attention_run_avx512(const AttnJob& job) {
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
void attention_run_avx512(const AttnJob& job) {
  attention_run_avx2(job);
}
}  // namespace hw::cpu
#endif
