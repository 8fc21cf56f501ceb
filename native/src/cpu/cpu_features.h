// What this x86-64 CPU can run, from CPUID (cheap: the compiler's cached feature bits; only the
// AMX permission, a system call, is asked once and kept): the matmul and attention kernels pick
// their instruction set from these (all false off x86-64 or without GCC / clang).
#pragma once

namespace hw::cpu {

bool has_avx512();      // AVX-512 F, BW, VL and DQ: the AVX-512 matmul and attention paths
bool has_avx512bf16();  // AVX512-BF16 (VDPBF16PS), on top of has_avx512()
bool has_amx();         // AMX-BF16 tiles, with Linux's permission for their state granted
bool is_amd();          // the vendor string "AuthenticAMD"

}  // namespace hw::cpu
