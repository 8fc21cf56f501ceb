// The Hogwild attention's reads before its programmatic-dependent-launch (PDL) wait, on a GPU.
//
// In a decode step the kernel before the attention (the qkv GEMM) writes this forward's keys, and
// with PDL the attention starts while that kernel still runs. attn_short_kernel (HW_ATTN_SHORT)
// loads the tiles of settled keys (tile_fresh = 0) before its griddepcontrol.wait and the others
// after it. Here a slow writer runs in front of the attention: it lets its dependents launch at
// once, spins ~100 us, then writes every key of this forward, which were uploaded as NaN. The
// attention must match the double reference (it read no fresh key early), with the short kernel
// and with the chunk + merge kernels. The same launch with HW_ATTN_SHORT_EARLY=2 (every tile
// before the wait: a deliberate hazard) must go wrong, which shows that the test sees early reads.
// Needs an sm_90 device (PDL, clusters); elsewhere it reports a skip (exit code 77).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "../src/cuda/attention.h"
#include "../src/cuda/launch.cuh"
#include "cuda/attention_cases.h"
#include "cuda/cuda_testing.h"
#include "testing.h"

using namespace attn_cases;

namespace {

// Lets the next kernel launch at once (PDL), spins `spin` clock cycles, then copies runs[i] ..
// runs[i] + len - 1 from src to dst (bf16 elements) for every run.
__global__ void late_writer(const uint16_t* src, uint16_t* dst, const long long* runs, int n, int len, long long spin) {
  hw::cuda::pdl_begin();
  const long long t0 = clock64();
  while (clock64() - t0 < spin) {
  }
  for (int r = blockIdx.x; r < n; r += gridDim.x)
    for (int e = threadIdx.x; e < len; e += blockDim.x) dst[runs[r] + e] = src[runs[r] + e];
}

struct Variant {
  const char* name;
  const char* short_env;  // HW_ATTN_SHORT
  const char* early_env;  // HW_ATTN_SHORT_EARLY
  bool short_kernel;      // the plan must be a short one
  bool expect_right;      // false: the hazard, which must show
};

void run_variant(const Case& cs, const CaseData& cd, const Variant& v) {
  setenv("HW_ATTN_SHORT", v.short_env, 1);
  setenv("HW_ATTN_SHORT_EARLY", v.early_env, 1);
  const AttnDims& d = cs.dims;
  const int HD = d.head_dim, pt = d.page_tokens;
  const AttnProblem& p = cd.b.problem;
  const size_t page_elems = kv_page_elems(d);

  HogwildAttention att(d);
  att.plan(p);
  const bool short_plan = att.launch_summary().rfind("short", 0) == 0;
  if (v.short_kernel && !short_plan && std::string(v.short_env) != "1") {  // a size the device may refuse
    std::printf("%s: skipped (HW_ATTN_SHORT=%s not available here: %s)\n", v.name, v.short_env,
                att.launch_summary().c_str());
    return;
  }
  CHECK(short_plan == v.short_kernel, "%s: plan %s", v.name, att.launch_summary().c_str());

  // This forward's keys (every layer, K and V, every KV head): runs of head_dim elements, NaN on upload.
  std::vector<long long> runs;
  for (size_t blk = 0; blk < p.block_pages.size(); blk++)
    for (int j = p.block_fresh_from[blk]; j < cd.b.block_len[blk]; j++)
      for (int layer = 0; layer < d.layers; layer++)
        for (int which = 0; which < 2; which++)
          for (int kvh = 0; kvh < d.kv_heads; kvh++)
            runs.push_back((long long)(size_t(p.block_pages[blk][size_t(j / pt)]) * page_elems +
                                       kv_elem_offset(d, layer, which, kvh, j % pt)));
  CHECK(!runs.empty(), "%s: no key written this forward", v.name);
  std::vector<uint16_t> poisoned = cd.pages;
  for (long long r : runs)
    for (int e = 0; e < HD; e++) poisoned[size_t(r) + e] = 0x7fc0;  // bf16 NaN

  uint16_t *pages_dev = nullptr, *truth_dev = nullptr;
  long long* runs_dev = nullptr;
  const size_t bytes = cd.pages.size() * 2;
  CUDA_OK(cudaMalloc(&pages_dev, bytes));
  CUDA_OK(cudaMalloc(&truth_dev, bytes));
  CUDA_OK(cudaMalloc(&runs_dev, runs.size() * sizeof(long long)));
  CUDA_OK(cudaMemcpy(pages_dev, poisoned.data(), bytes, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(truth_dev, cd.pages.data(), bytes, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(runs_dev, runs.data(), runs.size() * sizeof(long long), cudaMemcpyHostToDevice));
  std::vector<const void*> ptrs(size_t(cd.b.pages));
  for (int i = 0; i < cd.b.pages; i++) ptrs[size_t(i)] = pages_dev + size_t(i) * page_elems;
  const void** ptrs_dev = nullptr;
  CUDA_OK(cudaMalloc(&ptrs_dev, ptrs.size() * sizeof(void*)));
  CUDA_OK(cudaMemcpy(ptrs_dev, ptrs.data(), ptrs.size() * sizeof(void*), cudaMemcpyHostToDevice));
  float *inv_dev = nullptr, *q_dev = nullptr, *out_dev = nullptr;
  CUDA_OK(cudaMalloc(&inv_dev, cd.inv.size() * 4));
  CUDA_OK(cudaMemcpy(inv_dev, cd.inv.data(), cd.inv.size() * 4, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMalloc(&q_dev, cd.q.size() * 4));
  CUDA_OK(cudaMemcpy(q_dev, cd.q.data(), cd.q.size() * 4, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMalloc(&out_dev, cd.q.size() * 4));
  CUDA_OK(cudaMemset(out_dev, 0xff, cd.q.size() * 4));

  cudaStream_t st;
  CUDA_OK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  att.upload(st);
  CUDA_OK(cudaStreamSynchronize(st));  // the plan is in place; the writer is the attention's predecessor
  late_writer<<<std::min<int>(int(runs.size()), 64), 128, 0, st>>>(truth_dev, pages_dev, runs_dev, int(runs.size()), HD,
                                                                   200000);
  CUDA_OK(cudaGetLastError());
  AttnLayerArgs a;
  a.q = q_dev, a.q_type = AttnDType::F32, a.out = out_dev, a.out_type = AttnDType::F32;
  a.pages = ptrs_dev, a.inv_freq = inv_dev;
  att.run(cd.layer, a, st);
  CUDA_OK(cudaStreamSynchronize(st));
  std::vector<float> out(cd.q.size());
  CUDA_OK(cudaMemcpy(out.data(), out_dev, out.size() * 4, cudaMemcpyDeviceToHost));

  double num = 0, den = 0;
  size_t bad = 0;
  for (size_t i = 0; i < out.size(); i++) {
    if (!std::isfinite(out[i])) bad++;
    num += (out[i] - cd.ref[i]) * (out[i] - cd.ref[i]);
    den += cd.ref[i] * cd.ref[i];
  }
  const double rel = std::sqrt(num / std::max(den, 1e-30));
  const bool right = bad == 0 && rel <= 1e-2;
  std::printf("hd %3d heads %2d/%d W %2d T %2d, %zu fresh runs | %-44s: %zu non-finite, rel %.2e%s\n", HD, d.heads,
              d.kv_heads, cs.workers, cd.T, runs.size(), v.name, bad, rel, right ? "" : " (wrong)");
  if (v.expect_right)
    CHECK(right, "%s: %zu non-finite outputs, relative error %.3e (an early read of this forward's keys?)", v.name, bad,
          rel);
  else
    CHECK(!right, "%s: the deliberate early read went unseen (the test cannot see the hazard)", v.name);
  cudaStreamDestroy(st);
  cudaFree(pages_dev), cudaFree(truth_dev), cudaFree(runs_dev), cudaFree(ptrs_dev);
  cudaFree(inv_dev), cudaFree(q_dev), cudaFree(out_dev);
}

}  // namespace

int main() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    std::printf("test_attention_pdl: no CUDA device, nothing run\n");
    return 77;
  }
  cudaDeviceProp prop;
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  if (prop.major < 9 || !hw::cuda::pdl_enabled()) {
    std::printf("test_attention_pdl: %s (sm_%d%d) or HW_CUDA_PDL=0: no PDL, nothing run\n", prop.name, prop.major,
                prop.minor);
    return 77;
  }
  std::printf("device: %s\n", prop.name);
  const Variant variants[] = {
      {"chunk + merge kernels", "0", "1", false, true},
      {"short kernel (settled tiles before the wait)", "1", "1", true, true},
      {"short kernel, 16-CTA clusters", "16", "1", true, true},
      {"short kernel, every tile after the wait", "1", "0", true, true},
      {"short kernel, every tile BEFORE the wait", "1", "2", true, false},
  };
  unsigned seed = 4242;
  // The engine benchmark's 1k-context decode, Qwen2.5-0.5B and -7B attention shapes (W = 1 and 4:
  // at most 28 tiles, a short plan for clusters of 8).
  for (int W : {1, 4})
    for (const AttnDims& d : {AttnDims{2, 14, 2, 64, 32}, AttnDims{2, 28, 4, 128, 32}}) {
      const Case cs{d, Layout::Contiguous, W, 1, false, false, false, false, seed++, 1024};
      const CaseData cd = make_case(cs);
      for (const Variant& v : variants) run_variant(cs, cd, v);
    }
  return test_summary("test_attention_pdl");
}
