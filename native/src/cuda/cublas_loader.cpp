#include "cublas_loader.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <vector>

#include "../error.h"

namespace hw::cuda {

namespace {

std::string g_error;
Cublas g_lib;

void load() {
  std::vector<std::string> names;
  if (const char* p = std::getenv("HW_CUBLAS")) names.push_back(p);
  for (const char* n : {"libcublas.so.13", "libcublas.so.12", "/usr/local/cuda/lib64/libcublas.so.13",
                        "/usr/local/cuda/lib64/libcublas.so.12", "libcublas.so"})
    names.push_back(n);
  void* h = nullptr;
  std::string tried;
  for (const std::string& n : names) {
    h = dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (h) {
      g_lib.path = n;
      break;
    }
    tried += (tried.empty() ? "" : ", ") + n;
  }
  if (!h) {
    g_error = "cuBLAS (libcublas.so.12 or .13, version >= 12.0) was not found (tried " + tried +
              "); install the CUDA toolkit's cuBLAS or set HW_CUBLAS to its path";
    return;
  }
  auto sym = [&](const char* name) {
    void* s = dlsym(h, name);
    if (!s && g_error.empty()) g_error = g_lib.path + " lacks " + name + " (cuBLAS >= 12.0 needed)";
    return s;
  };
  g_lib.create = reinterpret_cast<decltype(g_lib.create)>(sym("cublasCreate_v2"));
  g_lib.destroy = reinterpret_cast<decltype(g_lib.destroy)>(sym("cublasDestroy_v2"));
  g_lib.set_stream = reinterpret_cast<decltype(g_lib.set_stream)>(sym("cublasSetStream_v2"));
  g_lib.get_version = reinterpret_cast<decltype(g_lib.get_version)>(sym("cublasGetVersion_v2"));
  g_lib.set_workspace = reinterpret_cast<decltype(g_lib.set_workspace)>(sym("cublasSetWorkspace_v2"));
  g_lib.gemm_ex = reinterpret_cast<decltype(g_lib.gemm_ex)>(sym("cublasGemmEx"));
}

}  // namespace

const Cublas& cublas() {
  static std::once_flag once;
  std::call_once(once, load);
  if (!g_error.empty()) throw EngineError(g_error);
  return g_lib;
}

}  // namespace hw::cuda
