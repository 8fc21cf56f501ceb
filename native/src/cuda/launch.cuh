// Kernel launches with programmatic dependent launch (PDL) where it is turned on.
//
// A decode step is ~10 small kernels per layer; between two of them the GPU idles for the launch
// of the second (about a microsecond, even inside a CUDA graph). With PDL (sm_90; on by default
// since the H200 A/B of 2026-12-03: 0.5B W=4 steps 11% faster, 7B 4%; HW_CUDA_PDL=0 turns it
// off) every kernel waits for its predecessor to finish and
// flush (griddepcontrol.wait) before it touches memory, so the order of effects is that of a plain
// stream, and then lets its successor launch (griddepcontrol.launch_dependents): the successor's
// blocks become resident while this kernel runs and start the moment it ends. Both instructions
// are no-ops for a kernel launched without the attribute, so every kernel starts with pdl_begin()
// whichever way it is launched.
// The trigger comes after the wait: with it first (until 2026-12-02 evening), a waiting kernel
// already let its own successor launch, so a chain of not-yet-runnable kernels could fill the SMs'
// block slots ahead of the running one (H200, 05:01 UTC: 7B W=1/W=4 steps 1.76x slower with PDL).
#pragma once
#include <cuda_runtime.h>

#include <utility>

#include "cuda_check.h"

namespace hw::cuda {

__device__ __forceinline__ void pdl_begin() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// Whether launches use PDL: not HW_CUDA_PDL=0, and a device of compute capability 9.0 or newer.
bool pdl_enabled();

// kernel<<<grid, block, smem, s>>>(args...), with the PDL attribute when pdl_enabled().
template <typename... P, typename... A>
void launch_kernel(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, A&&... args) {
  if (pdl_enabled()) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = s;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    const cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, std::forward<A>(args)...);
    if (e != cudaSuccess) throw_cuda(e, "cudaLaunchKernelEx (programmatic dependent launch)");
  } else {
    kernel<<<grid, block, smem, s>>>(std::forward<A>(args)...);
  }
}

// The same launch as a grid of thread-block clusters of `cluster` CTAs (sm_90; a size above 8 needs
// cudaFuncAttributeNonPortableClusterSizeAllowed set on the kernel first), with PDL where it is on.
template <typename... P, typename... A>
void launch_cluster_kernel(void (*kernel)(P...), dim3 grid, dim3 block, dim3 cluster, size_t smem, cudaStream_t s,
                           A&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cudaLaunchAttribute attr[2];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = cluster.x;
  attr[0].val.clusterDim.y = cluster.y;
  attr[0].val.clusterDim.z = cluster.z;
  cfg.numAttrs = 1;
  if (pdl_enabled()) {
    attr[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[1].val.programmaticStreamSerializationAllowed = 1;
    cfg.numAttrs = 2;
  }
  cfg.attrs = attr;
  const cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, std::forward<A>(args)...);
  if (e != cudaSuccess) throw_cuda(e, "cudaLaunchKernelEx (thread-block clusters)");
}

}  // namespace hw::cuda
