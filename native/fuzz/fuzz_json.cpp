// libFuzzer: the JSON reader must accept or refuse any bytes with an EngineError, never crash,
// and what it accepts must read back the same through every typed accessor.
#include <cstddef>
#include <cstdint>
#include <string>

#include "error.h"
#include "json.h"

namespace {
// Walks the whole value: every accessor of the right type must work (depth-bounded by the parser).
size_t walk(const hw::Json& j) {
  switch (j.type()) {
    case hw::Json::Type::Null:
      return 1;
    case hw::Json::Type::Bool:
      return j.as_bool() ? 1 : 2;
    case hw::Json::Type::Number:
      return j.is_int() ? size_t(j.as_int() & 1) : size_t(j.as_double() > 0);
    case hw::Json::Type::String:
      return j.as_string().size();
    case hw::Json::Type::Array: {
      size_t n = 0;
      for (const hw::Json& e : j.as_array()) n += walk(e);
      return n + j.size();
    }
    case hw::Json::Type::Object: {
      size_t n = 0;
      for (const hw::Json::Member& m : j.items()) {
        if (j.get(m.first) != &m.second) __builtin_trap();  // keys are unique: get finds this one
        n += walk(m.second);
      }
      return n;
    }
  }
  return 0;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    volatile size_t n = walk(hw::Json::parse(text, "fuzz"));
    (void)n;
  } catch (const hw::EngineError&) {
    // Refused with a message: fine.
  }
  return 0;
}
