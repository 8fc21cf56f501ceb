// Builds without CUDA (HW_CUDA=OFF, or no nvcc found): `cuda` fails with the reason and
// `auto` falls back to the CPU.
#include "../backend.h"
#include "../error.h"

namespace hw {

std::unique_ptr<Backend> make_cuda_backend(const ModelConfig&, const ModelWeights&, const BackendOptions&,
                                           const LoadProgress&) {
  throw EngineError(
      "CUDA unavailable: this build of the engine has no CUDA backend (built with HW_CUDA=OFF or without nvcc)");
}

void cuda_fill_kv_random(Backend&, uint64_t) {
  throw EngineError("cuda_fill_kv_random: this build has no CUDA backend");
}

int64_t cuda_graph_launches(const Backend&) {
  return 0;
}

void cuda_time_steps(Backend&, bool) {
  throw EngineError("cuda_time_steps: this build has no CUDA backend");
}

double cuda_last_step_device_ms(const Backend&) {
  return -1;
}

}  // namespace hw
