// libFuzzer: config.json of a model folder (either dialect) is accepted or refused with an
// EngineError; an accepted config must be self-consistent enough for the engine to size its
// buffers (the checks below are the ones the loader relies on).
#include <cstddef>
#include <cstdint>
#include <string>

#include "config.h"
#include "error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    hw::ModelConfig c = hw::parse_config(text, "fuzz/config.json");
    if (c.hidden <= 0 || c.layers <= 0 || c.heads <= 0 || c.kv_heads <= 0 || c.vocab <= 0 || c.head_dim <= 0)
      __builtin_trap();
    if (c.heads % c.kv_heads != 0) __builtin_trap();
  } catch (const hw::EngineError&) {
  }
  return 0;
}
