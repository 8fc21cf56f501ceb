#include "error.h"

namespace hw {

void fail(const std::string& where, const std::string& what) {
  throw EngineError(where.empty() ? what : where + ": " + what);
}

}  // namespace hw
