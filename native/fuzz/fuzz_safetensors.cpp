// libFuzzer: a safetensors file (8-byte header length, JSON header, data) is accepted or
// refused with an EngineError; every tensor of an accepted header lies inside the data.
#include <cstddef>
#include <cstdint>
#include <string>

#include "error.h"
#include "safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto tensors = hw::SafeTensorsFile::parse_header(data, size, "fuzz.safetensors");
    for (const auto& [name, t] : tensors) {
      const auto* p = static_cast<const uint8_t*>(t.data);
      if (p < data + 8 || p + t.nbytes() > data + size) __builtin_trap();
      // Touch the first and last byte: ASan catches any range outside the input.
      if (t.nbytes() > 0) {
        volatile uint8_t a = p[0], b = p[t.nbytes() - 1];
        (void)a;
        (void)b;
      }
    }
  } catch (const hw::EngineError&) {
  }
  return 0;
}
