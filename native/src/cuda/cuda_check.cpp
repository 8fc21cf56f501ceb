#include "cuda_check.h"

#include <cstdlib>

namespace hw::cuda {

namespace {
thread_local const char* g_last = "none";
}

void throw_cuda(cudaError_t e, const std::string& what) {
  cudaGetLastError();  // clears a non-sticky error so the engine stays usable
  throw EngineError(std::string("CUDA error ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ") in " + what);
}

void note_launch(const char* kernel) {
  g_last = kernel;
}
const char* last_launch() {
  return g_last;
}

bool switch_on(const char* name) {
  const char* v = std::getenv(name);
  return !(v && std::string(v) == "0");
}

bool switch_set(const char* name) {
  const char* v = std::getenv(name);
  return v && std::string(v) == "1";
}

bool pdl_enabled() {
  static const bool on = [] {
    if (!switch_on("HW_CUDA_PDL")) return false;
    int dev = 0, major = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return major >= 9;
  }();
  return on;
}

bool sync_each_launch() {
  static const bool on = [] {
    const char* v = std::getenv("HW_CUDA_SYNC");
    return v && *v && *v != '0';
  }();
  return on;
}

}  // namespace hw::cuda
