// What the AOT engine keeps per instance and per thread, shared by the
// engine (engine.cpp), the helpers compiled code calls (helpers.cpp), the
// wasm view (frames.cpp) and the fault handler (signals.cpp).
#pragma once

#include "aot/abi.h"
#include "aot/code_image.h"
#include "runtime/engine.h"
#include "runtime/instance.h"
#include "runtime/thread.h"
#include "util/sha256.h"

#include <csetjmp>
#include <deque>
#include <memory>
#include <vector>

namespace tern::aot {

// A module instance as compiled code sees it.
struct InstanceRecord {
  VmInstance vm; // passed as `ctx`; vm.runtime points back here
  runtime::ModuleInstance* instance = nullptr;
  std::shared_ptr<const CodeImage> code;
  std::vector<const runtime::Table::Bounds*> tables;
  std::vector<VmFunc> funcs; // by function index; FunctionInstance::code points here
  std::vector<uint32_t> type_ids;
  std::deque<HostImport> host_imports;

  static InstanceRecord& of(const VmInstance* vm) {
    return *static_cast<InstanceRecord*>(vm->runtime);
  }
  const wasm::Module& module() const { return instance->module(); }
};

// A frame saved while unwinding, or to be rebuilt while rewinding. Its
// values are the function's locals (dead ones zero), then the operands
// live at the point (aot/llvm/stable_points.cpp says which).
struct SavedFrame {
  InstanceRecord* inst = nullptr;
  uint32_t func_index = 0;
  uint32_t point = 0; // index in the function's FunctionInfo::stable_points
  runtime::FrameKind kind = runtime::FrameKind::FunctionEntry;
  size_t first = 0; // in the value array
  uint32_t count = 0;
};

// Why compiled code was left by a jump to the engine's entry.
enum class Exit : uint8_t { None, Trap, Fault, ProcExit };

struct ThreadState {
  VmThread vm; // passed as `t`; vm.owner points back here
  runtime::Thread* thread = nullptr;

  // The innermost engine entry (nested when a host function calls wasm).
  sigjmp_buf* jump = nullptr;
  bool in_wasm = false; // executing compiled code, not a host function
  Exit exit = Exit::None;
  runtime::Trap trap;
  int32_t exit_code = 0;

  // Unwinding: frames saved innermost first.
  bool host_suspended = false; // the next frame saved is a host call site
  std::vector<SavedFrame> saved;
  std::vector<uint64_t> saved_values;

  // Rewinding: frames to rebuild, outermost first.
  bool rewinding = false;
  std::vector<SavedFrame> rewind;
  std::vector<uint64_t> rewind_values;
  size_t rewind_next = 0;
  // The next counted poll is the loop header just rewound to: the
  // interpreter counted it before the stop.
  bool skip_next_count = false;

  static ThreadState& of(VmThread* t) { return *static_cast<ThreadState*>(t->owner); }
};

// Leaves compiled code for the engine's entry, with ts.exit set.
[[noreturn]] void jump_out(ThreadState& ts);
// Records a trap (message from the kind, plus `detail` where the
// interpreter adds one) and leaves compiled code.
[[noreturn]] void raise_trap(ThreadState& ts, runtime::TrapKind kind, uint32_t func_index,
                             uint32_t wasm_offset, uint32_t detail);
// Ends rewinding: the innermost saved point is reached.
void finish_rewind(ThreadState& ts);

// The wasm view of the frames saved by unwinding (or, for a thread restored
// and not resumed yet, of the frames it will rewind), and back into frames
// to rewind (frames.cpp). Restore checks the view against the module and
// its code and throws tern::Error if it does not fit.
runtime::ViewThread capture_frames(const ThreadState& ts);
void restore_frames(ThreadState& ts, InstanceRecord& rec, const runtime::ViewThread& view);

// Fault handling (signals.cpp): installs the handler once, and gives the
// current OS thread an alternate signal stack and its native stack limit.
void install_fault_handler();
void prepare_os_thread(ThreadState& ts);
// Memory ranges whose faults are wasm out-of-bounds accesses.
void register_guard_region(const uint8_t* begin, uint64_t size);
// The thread executing compiled code on this OS thread, if any.
ThreadState*& current_thread();

} // namespace tern::aot
