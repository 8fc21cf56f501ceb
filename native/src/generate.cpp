#include "generate.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "error.h"

namespace hw {

namespace {
using Clock = std::chrono::steady_clock;
constexpr auto kFlushEvery = std::chrono::milliseconds(30);
}  // namespace

GenerateResult generate(Model& model, const GenerateRequest& req, const GenerateSink& sink) {
  GenerateResult res;
  auto progress = [&](int done, int total, double tps) {
    if (sink.progress) sink.progress(done, total, tps);
  };
  int block = -1;
  try {
    block = model.cache().create_block();
    Rng rng(req.seed);
    std::vector<int32_t> input = req.prompt, pending;
    auto last_flush = Clock::now();
    const auto t0 = Clock::now();
    auto t_first = t0;
    for (int i = 0; i < req.max_tokens; i++) {
      ForwardOutput out;
      if (i == 0) {
        progress(0, int(input.size()), 0.0);
        model.forward_chunked(
            {input, block, {{block, 0}}, true}, req.prefill_chunk, out,
            [&](int done, int total) {
              const double s = std::chrono::duration<double>(Clock::now() - t0).count();
              progress(done, total, s > 0 ? done / s : 0.0);
            },
            nullptr, req.prefill_report_s);
      } else {
        Batch batch;
        batch.rows.push_back({input, block, {{block, 0}}, true});
        model.forward(batch, out);
      }
      const int32_t next = sample_token(out.row_logits(0), out.vocab, req.sampling, rng);
      if (i == 0) t_first = Clock::now();
      res.ids.push_back(next);
      pending.push_back(next);
      const bool stop = std::find(req.stop.begin(), req.stop.end(), next) != req.stop.end();
      if (stop || Clock::now() - last_flush > kFlushEvery) {
        sink.tokens(std::move(pending));
        pending.clear();
        last_flush = Clock::now();
      }
      if (stop) break;
      input = {next};
    }
    if (!pending.empty()) sink.tokens(std::move(pending));
    res.prompt_ms = std::chrono::duration<double, std::milli>(t_first - t0).count();
    res.decode_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_first).count();
  } catch (const std::exception& e) {
    res.error = e.what();
  }
  if (block >= 0) model.cache().release_block(block);
  return res;
}

void start_generation(Model& model, GenerateRequest req, GenerateSink sink) {
  if (req.prompt.empty()) fail("generate", "the prompt is empty");
  if (req.max_tokens < 1) fail("generate", "maxTokens must be at least 1");
  if (req.prefill_chunk < 1) fail("generate", "prefillChunk must be at least 1");
  std::thread([&model, req = std::move(req), sink = std::move(sink)]() {
    GenerateResult res = generate(model, req, sink);
    sink.done(std::move(res));
  }).detach();
}

}  // namespace hw
