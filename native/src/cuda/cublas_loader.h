// cuBLAS, reached at run time through dlopen.
//
// Why this way: prefill GEMMs (many tokens) are compute-bound and need tensor-core kernels
// tuned per architecture; cuBLAS is the vendor's and is present wherever a CUDA toolkit or
// PyTorch is installed. Linking it would tie the addon to one cuBLAS major version and make
// the .node fail to load on machines without it, and CI has no cuBLAS headers. So the few
// entry points used are declared here (from the documented cuBLAS API) and resolved at run
// time; a missing or too old library fails `cuda` and lets `auto` fall back to the CPU with a
// message naming the library. Decode GEMMs (1..16 tokens, memory-bound) use the project's
// own kernel (gemm.cu), which reads each weight exactly once for all rows.
#pragma once
#include <cuda_runtime.h>
#include <library_types.h>

#include <string>

namespace hw::cuda {

using cublasHandle_t = struct cublasContext*;
using cublasStatus_t = int;
enum CublasOp : int { kOpN = 0, kOpT = 1 };
enum CublasCompute : int { kCompute32F = 68 };  // cublasComputeType_t CUBLAS_COMPUTE_32F
constexpr int kGemmDefault = -1;                // cublasGemmAlgo_t CUBLAS_GEMM_DEFAULT

struct Cublas {
  cublasStatus_t (*create)(cublasHandle_t*) = nullptr;
  cublasStatus_t (*destroy)(cublasHandle_t) = nullptr;
  cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t) = nullptr;
  cublasStatus_t (*get_version)(cublasHandle_t, int*) = nullptr;
  cublasStatus_t (*set_workspace)(cublasHandle_t, void*, size_t) = nullptr;
  cublasStatus_t (*gemm_ex)(cublasHandle_t, int transa, int transb, int m, int n, int k, const void* alpha,
                            const void* A, cudaDataType Atype, int lda, const void* B, cudaDataType Btype, int ldb,
                            const void* beta, void* C, cudaDataType Ctype, int ldc, int compute, int algo) = nullptr;
  std::string path;  // the file that was loaded
};

// Oldest cuBLAS accepted: 12.0 (bf16 GemmEx with CUBLAS_COMPUTE_32F on sm_80/sm_90).
constexpr int kMinCublasVersion = 120000;

// Loads libcublas once (HW_CUBLAS=<path> overrides the search). Throws EngineError naming
// the library and the version needed when it is missing or too old.
const Cublas& cublas();

}  // namespace hw::cuda
