#include "runtime/trap.h"

namespace tern::runtime {

std::string_view trap_message(TrapKind k) {
  switch (k) {
  case TrapKind::Unreachable:
    return "unreachable";
  case TrapKind::MemoryOutOfBounds:
    return "out of bounds memory access";
  case TrapKind::TableOutOfBounds:
    return "out of bounds table access";
  case TrapKind::IndirectCallNull:
    return "uninitialized element";
  case TrapKind::IndirectCallOutOfRange:
    return "undefined element";
  case TrapKind::IndirectCallTypeMismatch:
    return "indirect call type mismatch";
  case TrapKind::IntegerDivideByZero:
    return "integer divide by zero";
  case TrapKind::IntegerOverflow:
    return "integer overflow";
  case TrapKind::InvalidConversion:
    return "invalid conversion to integer";
  case TrapKind::CallStackExhausted:
    return "call stack exhausted";
  case TrapKind::NullReference:
    return "null reference";
  case TrapKind::Host:
    return "host trap";
  case TrapKind::UnalignedAtomic:
    return "unaligned atomic";
  case TrapKind::ExpectedSharedMemory:
    return "expected shared memory";
  }
  return "trap";
}

} // namespace tern::runtime
