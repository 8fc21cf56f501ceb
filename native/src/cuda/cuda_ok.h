// CUDA_OK(call), for the CUDA tests and benchmarks only: a failed runtime call prints where it
// failed, the call and the runtime's message, and exits with status 2. The engine itself throws
// instead (cuda_check.h), since a failed run must leave the engine usable.
#pragma once
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

#define CUDA_OK(call)                                                                             \
  do {                                                                                            \
    cudaError_t e_ = (call);                                                                      \
    if (e_ != cudaSuccess) {                                                                      \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(2);                                                                               \
    }                                                                                             \
  } while (0)
