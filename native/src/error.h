// The engine's one error type: every message says what went wrong and where.
#pragma once
#include <stdexcept>
#include <string>

namespace hw {

struct EngineError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A forward or run ended early because it was asked to stop (not a failure).
struct Cancelled : EngineError {
  Cancelled() : EngineError("stopped") {}
};

// Throws EngineError("<where>: <what>").
[[noreturn]] void fail(const std::string& where, const std::string& what);

}  // namespace hw
