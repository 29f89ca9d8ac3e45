// The wasm view of a suspended thread (docs/design.md §1): what every engine
// produces when it stops at stable points and consumes when it resumes.
// Nothing here is a native address or host-endian word: functions are
// indices in the instance's function space, values carry their wasm type.
#pragma once

#include "runtime/value.h"
#include "wasm/module.h"
#include "wasm/types.h"

#include <cstdint>
#include <string_view>
#include <vector>

namespace tern::runtime {

class ModuleInstance;

// A typed value. References: funcref bits = function index + 1 in the
// instance's function index space (0 = null); externref bits must be 0
// (null) since host references cannot leave the process.
struct ViewValue {
  wasm::ValType type = wasm::ValType::I32;
  uint64_t bits = 0;
  bool operator==(const ViewValue&) const = default;
};

enum class FrameKind : uint8_t {
  FunctionEntry = 0, // before the first instruction; locals are the arguments and zeros
  LoopHeader = 1,    // at a loop header; the header's own poll has already been counted
  CallSite = 2,      // a wasm call in progress; the next frame is the callee
  HostCall = 3,      // a call to an import that is issued again on resume
  // blocked in memory.atomic.wait32/64, issued again on resume; whether it
  // still waits, was notified or is yet to start is the wait queues' record
  AtomicWait = 4,
};

// One activation. `wasm_offset` is the absolute module offset of the
// instruction (for FunctionEntry, of the body's first instruction).
// `stack` holds the operand stack at that point: for CallSite without the
// call's arguments (they are the callee's first locals), for HostCall with
// them (and, for call_indirect, with the table index on top).
struct ViewFrame {
  uint32_t func_index = 0;
  uint32_t wasm_offset = 0;
  FrameKind kind = FrameKind::FunctionEntry;
  std::vector<ViewValue> locals; // parameters first
  std::vector<ViewValue> stack;
  bool operator==(const ViewFrame&) const = default;
};

struct ViewThread {
  std::vector<ViewFrame> frames; // outermost first
  // Stable points (loop headers and function entries) executed so far, the
  // clock of `--checkpoint-at N`; every engine counts the same events.
  uint64_t stable_points = 0;
  bool operator==(const ViewThread&) const = default;
};

// Conversions between engine slots and the wasm view, in the index space of
// `inst`. `where` names the value in error messages ("global 3", "frame 2
// local 1"). Host (extern) references and functions of other instances
// cannot be saved and throw tern::Error, as do out-of-range indices.
uint32_t ref_to_index(const ModuleInstance& inst, wasm::ValType type, Slot bits,
                      std::string_view where);
Slot index_to_ref(const ModuleInstance& inst, wasm::ValType type, uint64_t ref,
                  std::string_view where);
ViewValue to_view(const ModuleInstance& inst, wasm::ValType type, Slot bits,
                  std::string_view where);
Slot from_view(const ModuleInstance& inst, const ViewValue& v, std::string_view where);

// The types of a defined function's locals, parameters first.
std::vector<wasm::ValType> local_types(const wasm::Module& module, uint32_t func_index);

} // namespace tern::runtime
