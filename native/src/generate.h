// Plain generation (one sequence, no Hogwild) with the thread model of a Hogwild run: the loop
// runs on an engine thread of its own, and new ids leave through the sink in batches (at most
// one every 30 ms, and at the end), never one call per token.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model.h"
#include "sampler.h"

namespace hw {

struct GenerateRequest {
  std::vector<int32_t> prompt;  // prefilled in chunks of at most prefill_chunk tokens
  std::vector<int32_t> stop;    // generation ends after any of these (it is kept)
  int max_tokens = 0;
  SamplingParams sampling;
  uint64_t seed = 0;
  int prefill_chunk = 128;        // the largest chunk
  double prefill_report_s = 1.0;  // paced chunks (PrefillPacer); 0 = every chunk prefill_chunk
};

struct GenerateResult {
  std::vector<int32_t> ids;
  double prompt_ms = 0;  // prefill, up to the first sampled token
  double decode_ms = 0;  // the tokens after the first
  std::string error;     // empty when it went well
};

// Called on the engine thread. `tokens` gets batches of new ids; `progress` (optional) the
// prefill's progress (done, total, tokens per second); `done` comes last, exactly once.
struct GenerateSink {
  std::function<void(std::vector<int32_t>)> tokens;
  std::function<void(int, int, double)> progress;
  std::function<void(GenerateResult)> done;
};

// Checks the request (throws EngineError on bad input), then generates on a new thread and
// returns at once. The model must stay alive and unused by others until `done`.
void start_generation(Model& model, GenerateRequest request, GenerateSink sink);

// The loop itself, on the calling thread (the engine thread runs this); errors land in
// GenerateResult::error.
GenerateResult generate(Model& model, const GenerateRequest& request, const GenerateSink& sink);

}  // namespace hw
