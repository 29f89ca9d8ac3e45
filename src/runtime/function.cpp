#include "runtime/function.h"

#include "runtime/instance.h"

namespace tern::runtime {

Memory* CallContext::memory() const {
  return caller ? caller->memory0() : nullptr;
}

} // namespace tern::runtime
