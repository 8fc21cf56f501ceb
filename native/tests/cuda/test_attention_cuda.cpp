// The CUDA Hogwild attention kernel against the CPU attention op (cpu/attention.h, fed the same
// bf16 pages) and against a double-precision reference on random block
// structures in every layout (contiguous, interleaved, combined with header blocks), W = 1..16,
// odd, empty and one-token blocks, multi-token rows and a prefill, head_dim 64 and 128, GQA 1..8.
//
// The reference follows the method literally, independent of the kernel's tricks: it takes the
// keys exactly as stored (bf16, rotated at their block-local index j), un-rotates them, rotates
// each to its view position offset + j, materialises every row's view and computes a plain
// softmax in double. Bounds (bf16 queries and probabilities on tensor cores, fp32 accumulation):
//   ||out - ref|| / ||ref|| <= 1e-2, max |out - ref| <= 2e-2 * max |ref|, shares within 5e-3.
// Against the CPU op (fp32 queries, the same bf16 K/V): the same output and share bounds.
// Outputs and shares are poisoned (NaN) before each run: every element must be written.
// With HW_ATTN_SHORT set, problems that fit take the short cluster kernel (attention_short.cuh; with
// shares, the chunk + merge kernels over its plan); the test counts them and fails if none did. The
// engine benchmark's 1k-context decode shapes are among the cases, and so are long-context cases
// (3k-12k keys, the 16k benchmark's QwQ-32B and Qwen3-8B head shapes: many tiles per chunk).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../src/attention_plan.h"
#include "../../src/config.h"
#include "../../src/cpu/attention.h"
#include "../../src/cpu/rope.h"
#include "../../src/cuda/attention.h"
#include "../../src/cuda/attention_work.h"
#include "../../src/error.h"
#include "../testing.h"
#include "attention_cases.h"
#include "../../src/cuda/cuda_ok.h"

using hw::EngineError;
using hw::ModelConfig;
using hw::Rope;
using hw::RopeScaling;
using namespace hw::cuda;

namespace {

using namespace attn_cases;

int g_short_cases = 0;  // cases planned for the short kernel (HW_ATTN_SHORT)
int g_wg_cases = 0;     // cases planned for the warpgroup-MMA kernel (HW_ATTN_WG)

void run_case(const Case& cs) {
  const CaseData cd = make_case(cs);
  const AttnDims& d = cs.dims;
  const int HD = d.head_dim, pt = d.page_tokens;
  const Built& b = cd.b;
  const AttnProblem& p = b.problem;
  const ModelConfig& mc = cd.mc;
  const std::vector<float>& inv = cd.inv;
  const std::vector<uint16_t>& pages = cd.pages;
  const std::vector<float>& q = cd.q;
  const std::vector<double>& ref = cd.ref;
  const std::vector<double>& ref_sh = cd.ref_sh;
  const int T = cd.T, layer = cd.layer, segments = cd.segments;
  const size_t page_elems = kv_page_elems(d);

  // Device.
  HogwildAttention att(d);
  att.plan(p);
  const bool short_plan = att.launch_summary().rfind("short", 0) == 0;
  g_short_cases += short_plan;
  g_wg_cases += att.launch_summary().find("warpgroup-MMA") != std::string::npos;
  CHECK(att.tokens() == T, "tokens %d != %d", att.tokens(), T);
  CHECK(att.total_segments() == segments, "segments %d != %d", att.total_segments(), segments);
  uint16_t* pages_dev = nullptr;
  CUDA_OK(cudaMalloc(&pages_dev, pages.size() * 2));
  CUDA_OK(cudaMemcpy(pages_dev, pages.data(), pages.size() * 2, cudaMemcpyHostToDevice));
  std::vector<const void*> ptrs(b.pages);
  for (int i = 0; i < b.pages; i++) ptrs[i] = pages_dev + size_t(i) * page_elems;
  const void** ptrs_dev = nullptr;
  CUDA_OK(cudaMalloc(&ptrs_dev, ptrs.size() * sizeof(void*) + 8));
  CUDA_OK(cudaMemcpy(ptrs_dev, ptrs.data(), ptrs.size() * sizeof(void*), cudaMemcpyHostToDevice));
  float* inv_dev = nullptr;
  CUDA_OK(cudaMalloc(&inv_dev, inv.size() * 4));
  CUDA_OK(cudaMemcpy(inv_dev, inv.data(), inv.size() * 4, cudaMemcpyHostToDevice));
  const size_t qn = q.size() + 1;
  void* q_dev = nullptr;
  void* out_dev = nullptr;
  float* sh_dev = nullptr;
  CUDA_OK(cudaMalloc(&q_dev, qn * 4));
  CUDA_OK(cudaMalloc(&out_dev, qn * 4));
  CUDA_OK(cudaMalloc(&sh_dev, (segments + 1) * 4));
  if (cs.q_bf16) {
    std::vector<uint16_t> qb(q.size());
    for (size_t i = 0; i < q.size(); i++) qb[i] = float_to_bf16(q[i]);
    CUDA_OK(cudaMemcpy(q_dev, qb.data(), qb.size() * 2, cudaMemcpyHostToDevice));
  } else {
    CUDA_OK(cudaMemcpy(q_dev, q.data(), q.size() * 4, cudaMemcpyHostToDevice));
  }
  CUDA_OK(cudaMemset(out_dev, 0xff, qn * 4));  // NaN in fp32 and bf16
  CUDA_OK(cudaMemset(sh_dev, 0xff, (segments + 1) * 4));
  att.upload(0);
  AttnLayerArgs a;
  a.q = q_dev, a.q_type = cs.q_bf16 ? AttnDType::BF16 : AttnDType::F32;
  a.out = out_dev, a.out_type = cs.out_bf16 ? AttnDType::BF16 : AttnDType::F32;
  a.pages = ptrs_dev, a.inv_freq = inv_dev, a.shares = cs.shares ? sh_dev : nullptr;
  att.run(layer, a, 0);
  CUDA_OK(cudaDeviceSynchronize());

  std::vector<float> out(q.size());
  if (cs.out_bf16) {
    std::vector<uint16_t> ob(q.size());
    CUDA_OK(cudaMemcpy(ob.data(), out_dev, ob.size() * 2, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < ob.size(); i++) out[i] = bf16_to_float(ob[i]);
  } else {
    CUDA_OK(cudaMemcpy(out.data(), out_dev, out.size() * 4, cudaMemcpyDeviceToHost));
  }
  std::vector<float> sh(segments + 1);
  CUDA_OK(cudaMemcpy(sh.data(), sh_dev, sh.size() * 4, cudaMemcpyDeviceToHost));
  {
    // A second launch over the same plan (the next layer of a step does this) gives the same
    // bytes: nothing a launch leaves behind (workspace, shares) changes the next one.
    std::vector<unsigned char> first(qn * 4), again(qn * 4);
    CUDA_OK(cudaMemcpy(first.data(), out_dev, first.size(), cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemset(out_dev, 0xff, qn * 4));
    att.run(layer, a, 0);
    CUDA_OK(cudaDeviceSynchronize());
    CUDA_OK(cudaMemcpy(again.data(), out_dev, again.size(), cudaMemcpyDeviceToHost));
    const size_t used = q.size() * (cs.out_bf16 ? 2 : 4);
    CHECK(std::equal(first.begin(), first.begin() + used, again.begin()),
          "case seed %u: a second launch over the same plan wrote different outputs", cs.seed);
  }

  // The CPU op on the same pages (keys token-major, as this kernel keeps them).
  std::vector<float> cpu_out(q.size(), NAN), cpu_sh(segments + 1, NAN);
  {
    hw::AttnPlan cp;              // the op takes rows with tokens only: rows without any are left out
    std::vector<int> cpu_seg_of;  // CPU op segment -> this test's segment index
    int s_all = 0;
    for (const AttnRow& r : p.rows) {
      if (r.tokens > 0) hw::plan_add_row(cp, r.tokens, r.first_position);
      for (const AttnSegment& sg : r.view) {
        if (r.tokens > 0) {
          hw::plan_add_segment(cp, p.block_pages[sg.block].data(), pt, sg.length, sg.offset);
          cpu_seg_of.push_back(s_all);
        }
        s_all++;
      }
    }
    std::vector<float> op_sh(cpu_seg_of.size() + 1, NAN);
    std::vector<const void*> host_ptrs(b.pages);
    for (int i = 0; i < b.pages; i++) host_ptrs[i] = pages.data() + size_t(i) * page_elems;
    hw::PagedKv kv{hw::KvDType::BF16,
                   pt,
                   d.kv_heads,
                   HD,
                   host_ptrs.data(),
                   kv_elem_offset(d, layer, 0, 0, 0),
                   kv_elem_offset(d, layer, 1, 0, 0),
                   true};
    hw::RopeTable table;
    Rope(mc).extend(table, cp.max_position + 1);
    hw::cpu::AttnShares cs_sh;
    cs_sh.segments = op_sh.data();
    hw::cpu::attention(cp, kv, table, d.heads, float(1.0 / std::sqrt(double(HD))), q.data(), cpu_out.data(), &cs_sh);
    std::fill(cpu_sh.begin(), cpu_sh.end(), 0.0f);  // rows without tokens: no shares (zeros, as the kernel)
    for (size_t k = 0; k < cpu_seg_of.size(); k++) cpu_sh[cpu_seg_of[k]] = op_sh[k];
  }

  double num = 0, den = 0, max_err = 0, max_ref = 0, cnum = 0, cden = 0, cmax_err = 0, cmax = 0;
  size_t bad = 0;
  for (size_t i = 0; i < out.size(); i++) {
    if (!std::isfinite(out[i])) bad++;
    num += (out[i] - ref[i]) * (out[i] - ref[i]);
    den += ref[i] * ref[i];
    max_err = std::max(max_err, std::fabs(out[i] - ref[i]));
    max_ref = std::max(max_ref, std::fabs(ref[i]));
    cnum += double(out[i] - cpu_out[i]) * (out[i] - cpu_out[i]);
    cden += double(cpu_out[i]) * cpu_out[i];
    cmax_err = std::max(cmax_err, double(std::fabs(out[i] - cpu_out[i])));
    cmax = std::max(cmax, double(std::fabs(cpu_out[i])));
  }
  const double crel = cden > 0 ? std::sqrt(cnum / cden) : std::sqrt(cnum);
  const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  double sh_err = 0, csh_err = 0;
  if (cs.shares)
    for (int s = 0; s < segments; s++) {
      if (!std::isfinite(sh[s])) bad++;
      sh_err = std::max(sh_err, std::fabs(sh[s] - ref_sh[s]));
      csh_err = std::max(csh_err, double(std::fabs(sh[s] - cpu_sh[s])));
    }
  const double out_tol = cs.out_bf16 ? 2e-2 : 1e-2;
  std::printf(
      "%-11s hd %3d heads %2d/%d pt %2d W %2d T %4d segs %3d | vs double: rel %.2e max %.2e shares %.2e"
      " | vs CPU op: rel %.2e max %.2e shares %.2e%s%s\n",
      layout_name(cs.layout), HD, d.heads, d.kv_heads, pt, cs.workers, T, segments, rel,
      max_ref > 0 ? max_err / max_ref : max_err, sh_err, crel, cmax > 0 ? cmax_err / cmax : cmax_err, csh_err,
      short_plan ? (cs.shares ? "  (short plan, chunk + merge for the shares)" : "  (short kernel)") : "",
      bad ? "  NON-FINITE" : "");
  CHECK(bad == 0, "%zu outputs or shares left unwritten or non-finite", bad);
  CHECK(rel <= out_tol, "relative L2 error %.3e > %.1e", rel, out_tol);
  CHECK(max_err <= 2e-2 * std::max(max_ref, 1e-3), "max error %.3e > 2e-2 * max |ref| %.3e", max_err, max_ref);
  CHECK(sh_err <= 5e-3, "share error %.3e > 5e-3", sh_err);
  CHECK(crel <= out_tol, "relative L2 difference to the CPU op %.3e > %.1e", crel, out_tol);
  CHECK(cmax_err <= 2e-2 * std::max(cmax, 1e-3), "max difference to the CPU op %.3e > 2e-2 * %.3e", cmax_err, cmax);
  CHECK(csh_err <= 5e-3, "share difference to the CPU op %.3e > 5e-3", csh_err);
  // Shares of each row's last token sum to 1 (every row sees at least its own token).
  if (cs.shares) {
    int s0 = 0;
    for (const AttnRow& r : p.rows) {
      double tot = 0;
      for (size_t s = 0; s < r.view.size(); s++) tot += sh[s0 + s];
      if (r.tokens > 0) CHECK(std::fabs(tot - 1.0) < 2e-3, "row shares sum to %.5f", tot);
      s0 += int(r.view.size());
    }
  }
  cudaFree(pages_dev), cudaFree(ptrs_dev), cudaFree(inv_dev), cudaFree(q_dev), cudaFree(out_dev), cudaFree(sh_dev);
}

// Bad problems are refused with a message that names the place.
void check_errors() {
  AttnDims d{2, 8, 2, 128, 32};
  auto expect = [&](const AttnProblem& p, const char* needle) {
    try {
      build_attn_plan(d, p, 132, 132);
      CHECK(false, "no error for '%s'", needle);
    } catch (const EngineError& e) {
      CHECK(std::string(e.what()).find(needle) != std::string::npos, "'%s' lacks '%s'", e.what(), needle);
    }
  };
  AttnProblem p;
  p.block_pages = {{0}, {1}};
  p.rows.push_back(AttnRow{0, 1, {{0, 0, 5}, {0, 5, 5}}});
  expect(p, "appears twice");
  p.rows[0].view = {{3, 0, 1}};
  expect(p, "block 3 has no page list");
  p.rows[0].view = {{1, 0, 40}};
  expect(p, "exceeds the 1 pages");
  AttnDims small_pages = d;
  small_pages.page_tokens = 8;
  try {
    check_attn_dims(small_pages);
    CHECK(false, "page_tokens 8 accepted");
  } catch (const EngineError& e) {
    CHECK(std::string(e.what()).find("page_tokens 8") != std::string::npos, "%s", e.what());
  }
  AttnDims bad = d;
  bad.head_dim = 80;
  try {
    check_attn_dims(bad);
    CHECK(false, "head_dim 80 accepted");
  } catch (const EngineError& e) {
    CHECK(std::string(e.what()).find("head_dim 80") != std::string::npos, "%s", e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  int dev = 0;
  if (cudaGetDeviceCount(&dev) != cudaSuccess || dev == 0) {
    std::printf("test_attention_cuda: no CUDA device, nothing run\n");
    return 77;  // "skipped": the caller must not count this as a pass
  }
  cudaDeviceProp prop;
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);
  check_errors();
  // --quick: a few cases (for compute-sanitizer); otherwise argv[1] may give the seed.
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  const unsigned seed0 = argc > 1 && !quick ? unsigned(std::atoi(argv[1])) : 1234u;
  std::mt19937 pick(seed0);
  unsigned seed = seed0;
  // Long contexts in the 16k benchmark's head shapes (combined layout, one decode token per worker
  // or a few): many tiles per chunk, 1- and 2-group CTAs (QwQ-32B W = 8: 40 rows), bf16 q / out.
  auto long_cases = [&](bool few) {
    const AttnDims qwq{2, 40, 8, 128, 32}, qwen3{2, 32, 8, 128, 32};
    run_case(Case{qwq, Layout::Combined, 8, 1, true, true, false, false, seed++, few ? 3000 : 12000});
    if (few) return;
    run_case(Case{qwq, Layout::Combined, 4, 1, false, false, false, false, seed++, 9000});
    run_case(Case{qwen3, Layout::Combined, 2, 3, true, false, true, false, seed++, 7000});
    run_case(Case{qwen3, Layout::Combined, 16, 1, false, true, false, true, seed++, 5000});
  };
  const int head_dims[] = {64, 128};
  const int groups[] = {1, 2, 3, 4, 5, 6, 7, 8};
  // Every layout x W in 1..16, with head_dim, GQA ratio, page size and dtypes drawn per case.
  for (Layout lay : {Layout::Contiguous, Layout::Interleaved, Layout::Combined})
    for (int W = 1; W <= 16; W += quick ? 7 : 1) {
      Case cs;
      cs.layout = lay;
      cs.workers = W;
      const int g = groups[pick() % 8];
      const int kvh = 1 + pick() % 3;
      cs.dims = AttnDims{2, g * kvh, kvh, head_dims[pick() % 2], (pick() % 3 == 0) ? 16 : 32};
      cs.max_new = (pick() % 3 == 0) ? (W > 8 ? 8 : 40) : 1;  // decode or multi-token rows (notes, first inputs)
      cs.q_bf16 = pick() % 4 == 0;
      cs.out_bf16 = pick() % 4 == 0;
      cs.llama3 = pick() % 4 == 0;
      cs.shares = pick() % 4 != 0;
      cs.seed = seed++;
      run_case(cs);
    }
  if (quick) {  // and one engine-benchmark decode (the short kernel's case under HW_ATTN_SHORT), one long context
    run_case(Case{AttnDims{2, 28, 4, 128, 32}, Layout::Contiguous, 4, 1, false, true, false, false, seed++, 1024});
    long_cases(true);
    return test_summary("test_attention_cuda --quick");
  }
  // Prefills: one long row, causal over the prompt it writes.
  for (int hd : head_dims)
    for (int g : {1, 5, 8}) {
      Case cs{AttnDims{1, 2 * g, 2, hd, 32}, Layout::Prefill, 1, 1, false, false, false, true, seed++};
      run_case(cs);
    }
  // The benchmark's shapes at W = 8.
  for (int heads : {40, 32}) {
    Case cs{AttnDims{2, heads, 8, 128, 32}, Layout::Combined, 8, 1, false, true, false, true, seed++};
    run_case(cs);
  }
  // The engine benchmark's decode at 1k context (bench_cuda: a prompt of 1024 keys, then every
  // worker's block), Qwen2.5-0.5B and -7B attention shapes, fp32 queries and bf16 outputs as the
  // engine passes them; one with shares (the chunk + merge kernels over a short plan).
  for (int W : {1, 4, 8})
    for (const AttnDims& dm : {AttnDims{2, 14, 2, 64, 32}, AttnDims{2, 28, 4, 128, 32}}) {
      Case cs{dm, Layout::Contiguous, W, 1, false, true, false, W == 4 && dm.head_dim == 64, seed++, 1024};
      run_case(cs);
    }
  long_cases(false);
  if (const char* env = std::getenv("HW_ATTN_SHORT")) {
    std::printf("HW_ATTN_SHORT=%s: %d cases planned for the short kernel\n", env, g_short_cases);
    if (std::string(env) != "0") CHECK(g_short_cases > 0, "HW_ATTN_SHORT=%s but no case took the short kernel", env);
  }
  if (const char* env = std::getenv("HW_ATTN_WG")) {  // a switch that silently fell back would test nothing
    std::printf("HW_ATTN_WG=%s: %d cases planned for the warpgroup-MMA kernel\n", env, g_wg_cases);
    if (std::string(env) != "0") CHECK(g_wg_cases > 0, "HW_ATTN_WG=%s but no case took the warpgroup-MMA kernel", env);
  }
  return test_summary("test_attention_cuda");
}
