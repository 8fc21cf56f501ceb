// Time of cuda::sample_rows on random logits: rows 1, 4, 8 of a Qwen-sized vocabulary, greedy
// and the extension's default settings (temperature 0.6, top_k 20, top_p 0.95), on the default
// (fast) path and on the general path alone (sampling_force_slow). Each case queues `launches`
// calls, captured into a CUDA graph as the decode step is (so launch overheads of the host do
// not hide the GPU time), replays it after a warmup, and prints one JSON line:
//   {"kind":"sampling","rows":4,"mode":"t0.6k20p0.95","path":"fast","us":...,"stream_us":...}
// us: per call inside the graph; stream_us: per call launched directly on a stream.
// Greedy ids of both paths must agree (exit code 1 otherwise).
//
//   bench_sampling [--rows 1,4,8] [--vocab 151936] [--launches 200] [--warmup 20]
#include <cuda_runtime.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "../bench_util.h"
#include "cuda/sampling.h"
#include "error.h"
#include "../../src/cuda/cuda_ok.h"

using namespace hw;

struct Mode {
  const char* name;
  float t;
  int k;
  float p;
};

int main(int argc, char** argv) {
  std::string rows_arg = "1,4,8";
  int vocab = 151936, launches = 200, warmup = 20;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    auto next = [&] { return flag_value(argc, argv, i, "bench_sampling"); };
    if (a == "--rows")
      rows_arg = next();
    else if (a == "--vocab")
      vocab = std::max(1, std::atoi(next()));
    else if (a == "--launches")
      launches = std::max(1, std::atoi(next()));
    else if (a == "--warmup")
      warmup = std::max(0, std::atoi(next()));
    else {
      std::fprintf(stderr, "usage: bench_sampling [--rows 1,4,8] [--vocab V] [--launches N] [--warmup N]\n");
      return 2;
    }
  }
  const Mode modes[] = {{"greedy", 0.0f, 0, 1.0f}, {"t0.6k20p0.95", 0.6f, 20, 0.95f}};
  bool agree = true;
  try {
    cudaStream_t s;
    CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    cudaEvent_t e0, e1;
    CUDA_OK(cudaEventCreate(&e0));
    CUDA_OK(cudaEventCreate(&e1));
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 3.0f);
    for (const std::string& r : split_list(rows_arg)) {
      const int n = std::stoi(r);
      std::vector<float> l(size_t(n) * vocab);
      for (float& x : l) x = nd(rng);
      float* dl = nullptr;
      CUDA_OK(cudaMalloc(&dl, l.size() * sizeof(float)));
      CUDA_OK(cudaMemcpy(dl, l.data(), l.size() * sizeof(float), cudaMemcpyHostToDevice));
      cuda::SampleWorkspace ws;
      ws.capacity = cuda::sample_workspace_entries(n, vocab);
      CUDA_OK(cudaMalloc(&ws.cand, ws.capacity * sizeof(unsigned long long)));
      cuda::RowSampling* dq = nullptr;
      int* dout = nullptr;
      CUDA_OK(cudaMalloc(&dq, size_t(n) * sizeof(cuda::RowSampling)));
      CUDA_OK(cudaMalloc(&dout, size_t(n) * sizeof(int)));
      for (const Mode& m : modes) {
        std::vector<cuda::RowSampling> q(n);
        for (int i = 0; i < n; i++) q[i] = {i, m.t, m.k, m.p, float((i + 0.5) / n)};
        CUDA_OK(cudaMemcpy(dq, q.data(), q.size() * sizeof(q[0]), cudaMemcpyHostToDevice));
        std::vector<int> ids[2];
        for (int slow = 0; slow < 2; slow++) {
          cuda::sampling_force_slow(slow != 0);
          auto call = [&] { cuda::sample_rows(dl, n, vocab, dq, dout, ws, s); };
          for (int i = 0; i < warmup; i++) call();
          CUDA_OK(cudaStreamSynchronize(s));
          ids[slow].resize(n);
          CUDA_OK(cudaMemcpy(ids[slow].data(), dout, n * sizeof(int), cudaMemcpyDeviceToHost));
          // Directly on the stream.
          CUDA_OK(cudaEventRecord(e0, s));
          for (int i = 0; i < launches; i++) call();
          CUDA_OK(cudaEventRecord(e1, s));
          CUDA_OK(cudaEventSynchronize(e1));
          float stream_ms = 0;
          CUDA_OK(cudaEventElapsedTime(&stream_ms, e0, e1));
          // Inside a graph.
          cudaGraph_t g = nullptr;
          cudaGraphExec_t ge = nullptr;
          CUDA_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
          for (int i = 0; i < launches; i++) call();
          CUDA_OK(cudaStreamEndCapture(s, &g));
          CUDA_OK(cudaGraphInstantiate(&ge, g, 0));
          CUDA_OK(cudaGraphLaunch(ge, s));
          CUDA_OK(cudaStreamSynchronize(s));
          CUDA_OK(cudaEventRecord(e0, s));
          CUDA_OK(cudaGraphLaunch(ge, s));
          CUDA_OK(cudaEventRecord(e1, s));
          CUDA_OK(cudaEventSynchronize(e1));
          float graph_ms = 0;
          CUDA_OK(cudaEventElapsedTime(&graph_ms, e0, e1));
          cudaGraphExecDestroy(ge);
          cudaGraphDestroy(g);
          std::printf(
              "{\"kind\":\"sampling\",\"rows\":%d,\"vocab\":%d,\"mode\":\"%s\",\"path\":\"%s\",\"us\":%.2f,"
              "\"stream_us\":%.2f}\n",
              n, vocab, m.name, slow ? "general" : "fast", 1e3 * graph_ms / launches, 1e3 * stream_ms / launches);
        }
        if (m.t <= 0.0f && ids[0] != ids[1]) {
          agree = false;
          std::fprintf(stderr, "bench_sampling: rows %d greedy: the fast and general paths picked other ids\n", n);
        }
      }
      cuda::sampling_force_slow(false);
      cudaFree(dl);
      cudaFree(ws.cand);
      cudaFree(dq);
      cudaFree(dout);
    }
  } catch (const EngineError& e) {
    std::fprintf(stderr, "bench_sampling: %s\n", e.what());
    return 1;
  }
  return agree ? 0 : 1;
}
