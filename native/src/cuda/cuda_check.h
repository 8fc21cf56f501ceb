// Error checks for CUDA calls and kernel launches. Every failure becomes an EngineError that
// names the CUDA error and the call or kernel that raised it, so a run fails with a message
// instead of a hang or a silent exit.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "../error.h"

namespace hw::cuda {

// Throws EngineError("CUDA error <name> (<text>) in <what>").
[[noreturn]] void throw_cuda(cudaError_t e, const std::string& what);

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw_cuda(e, what);
}

// The last kernel launched: asynchronous faults are reported at the next synchronisation,
// and the message names this kernel (HW_CUDA_SYNC=1 synchronises after every launch to pin it).
void note_launch(const char* kernel);
const char* last_launch();
bool sync_each_launch();

// A measured speed switch that is on by default: off only when the variable NAME is "0"
// (kept so that an A/B run, or a user who meets a fault in a fused path, can turn it off).
bool switch_on(const char* name);

// A switch that is off by default (a benchmark variant, or one measured and left off): on only
// when the variable NAME is "1".
bool switch_set(const char* name);

// After a launch: launch errors now; with HW_CUDA_SYNC=1 also faults inside the kernel.
inline void check_launch(const char* kernel) {
  note_launch(kernel);
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess && sync_each_launch()) e = cudaDeviceSynchronize();
  if (e != cudaSuccess) throw_cuda(e, std::string("kernel ") + kernel);
}

// At a synchronisation point: a fault raised by an earlier kernel names the last one launched.
inline void check_sync(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw_cuda(e, std::string(what) + " (after kernel " + last_launch() + ")");
}

}  // namespace hw::cuda
