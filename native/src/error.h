// The engine's one error type: every message says what went wrong and where.
#pragma once
#include <stdexcept>
#include <string>

namespace hw {

struct EngineError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws EngineError("<where>: <what>").
[[noreturn]] void fail(const std::string& where, const std::string& what);

}  // namespace hw
