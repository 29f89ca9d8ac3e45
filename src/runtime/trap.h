// Traps: the ways wasm execution stops abnormally, with the spec's messages.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tern::runtime {

enum class TrapKind : uint8_t {
  Unreachable,
  MemoryOutOfBounds,
  TableOutOfBounds,
  IndirectCallNull,       // "uninitialized element"
  IndirectCallOutOfRange, // "undefined element"
  IndirectCallTypeMismatch,
  IntegerDivideByZero,
  IntegerOverflow,
  InvalidConversion,
  CallStackExhausted,
  NullReference,
  Host, // raised by a host function, message supplied
  // Threads proposal. Compiled code passes kinds as numbers: append only.
  UnalignedAtomic,      // an atomic access at an address not a multiple of its size
  ExpectedSharedMemory, // memory.atomic.wait on an unshared memory
};

std::string_view trap_message(TrapKind k);

// One wasm frame of a trap's backtrace.
struct BacktraceFrame {
  uint32_t func_index = 0;
  uint32_t wasm_offset = 0; // absolute module offset of the instruction
  std::string func_name;
};

struct Trap {
  TrapKind kind = TrapKind::Unreachable;
  std::string message;                   // the spec message, or the host's
  std::vector<BacktraceFrame> backtrace; // innermost first
};

} // namespace tern::runtime
