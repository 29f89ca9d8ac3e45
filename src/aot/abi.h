// The contract between compiled wasm code and the runtime that runs it
// (docs/aot.md): the structures generated code reads by fixed offsets, the
// runtime helpers it calls through a table, and the descriptor every
// compiled module exports. The compiler (aot/llvm/) and the runtime side
// (aot/engine.cpp, aot/helpers.cpp) both include this file; bump kAbiVersion
// whenever anything here or in the generated code's conventions changes, so
// that stale artifacts and cache entries are refused.
//
// Conventions of generated code:
// - Every wasm function is `R f(VmThread* t, void* ctx, P...)`, C calling
//   convention, with wasm types i32/i64/f32/f64 as such and references as
//   i64 (runtime::Slot: a FunctionInstance address or 0). Multiple results
//   come back as a struct. `ctx` is the VmInstance of the function's own
//   instance, or a HostImport for the host stubs.
// - A value in a Slot is numeric (runtime/value.h): i32 zero-extended, f32
//   as its bit pattern in the low 32 bits.
// - Traps, proc_exit and out-of-bounds faults leave compiled code by
//   siglongjmp to the engine's entry; nothing in between needs unwinding.
// - A linear memory is at most wasm::kMaxRuntimePages (4 GiB - 64 KiB), so
//   after an access at i32 address x did not trap, x + c does not wrap for
//   0 <= c <= 64 KiB: generated code relies on it (aot/llvm/access_nowrap.h).
#pragma once

#include "runtime/function.h"
#include "runtime/global.h"
#include "runtime/memory.h"
#include "runtime/table.h"

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace tern::aot {

inline constexpr uint32_t kAbiVersion = 10;

// --- Per thread --------------------------------------------------------------

// The head of the engine's per-thread state, passed as `t`.
struct VmThread {
  // One word for the two things a function entry checks: below bit 56, the
  // lowest native stack address a function may start at; in the top byte,
  // the thread's mirror of the store's interrupt flag
  // (runtime::Interrupt::add_mirror, shifted by kFlagShift) and
  // kRewindingBit. An entry compares the stack pointer with the whole word
  // (any flag makes it larger than every address); polls elsewhere test the
  // top byte alone.
  std::atomic<uint64_t> limit_and_flags{0};
  // Non-zero while the stack unwinds for a checkpoint (read after calls).
  uint32_t unwinding = 0;
  // While rewinding: the point to reach in the current function (a
  // RewindKey, below) and its saved values (locals, then operands).
  uint32_t rewind_point = 0;
  const uint64_t* rewind_values = nullptr;
  // The stack limit alone (code compiled without stable points).
  uintptr_t stack_limit = 0;
  void* owner = nullptr; // the engine's thread record (runtime only)
};

// VmThread::rewind_point: the place in the current function that rewinding
// goes to, as the index of its stable point (FunctionInfo::stable_points)
// and whether it is a host call to issue again (else a call whose callee
// rewinds, a loop header or the entry). The runtime sets it (helpers.cpp);
// the compiled code's rewind dispatch switches on it.
struct RewindKey {
  uint32_t point = 0;
  bool host_call = false;
  constexpr uint32_t encode() const { return (point << 1) | (host_call ? 1u : 0u); }
  static constexpr RewindKey decode(uint32_t key) { return {key >> 1, (key & 1) != 0}; }
};
static_assert(RewindKey::decode(RewindKey{7, true}.encode()).point == 7);
static_assert(RewindKey::decode(RewindKey{7, true}.encode()).host_call);

inline constexpr unsigned kFlagShift = 56;
inline constexpr uint64_t kFlagMask = ~uint64_t(0) << kFlagShift;
// Set while rewinding: every poll takes its slow path, which leads the way
// to the saved point (aot/llvm/stable_points.cpp).
inline constexpr uint64_t kRewindingBit = uint64_t(1) << 63;

namespace offsets {
inline constexpr uint32_t kThreadLimitAndFlags = 0;
inline constexpr uint32_t kThreadUnwinding = 8;
inline constexpr uint32_t kThreadRewindPoint = 12;
inline constexpr uint32_t kThreadRewindValues = 16;
inline constexpr uint32_t kThreadStackLimit = 24;
// The byte holding the flags, by the target's byte order.
inline constexpr uint32_t flag_byte(bool big_endian) {
  return big_endian ? 0 : 7;
}
} // namespace offsets
static_assert(offsetof(VmThread, limit_and_flags) == offsets::kThreadLimitAndFlags);
static_assert(offsetof(VmThread, unwinding) == offsets::kThreadUnwinding);
static_assert(offsetof(VmThread, rewind_point) == offsets::kThreadRewindPoint);
static_assert(offsetof(VmThread, rewind_values) == offsets::kThreadRewindValues);
static_assert(offsetof(VmThread, stack_limit) == offsets::kThreadStackLimit);

// --- Per instance ------------------------------------------------------------

// A callable: native entry and the `ctx` it is called with.
struct VmFunc {
  const void* entry = nullptr;
  void* ctx = nullptr;
};

// What a module's compiled code knows of its instance, passed as `ctx`.
struct VmInstance {
  uint8_t* mem_base = nullptr;                           // memory 0 (guarded: never moves)
  const runtime::Memory::Bounds* mem = nullptr;          // memory 0's base and size
  runtime::GlobalCell* const* globals = nullptr;         // by global index
  const runtime::Table::Bounds* const* tables = nullptr; // by table index
  const VmFunc* funcs = nullptr;                         // by function index
  runtime::FunctionInstance* const* func_refs = nullptr; // by function index (ref.func)
  const uint32_t* type_ids = nullptr;                    // store-wide ids, by type index
  void* runtime = nullptr;                               // the engine's instance record
  uint8_t* mem_mirror = nullptr; // memory 0's mirror views (wide addresses; runtime/memory.h)
};

namespace offsets {
inline constexpr uint32_t kInstMemBase = 0;
inline constexpr uint32_t kInstMem = 8;
inline constexpr uint32_t kInstGlobals = 16;
inline constexpr uint32_t kInstTables = 24;
inline constexpr uint32_t kInstFuncs = 32;
inline constexpr uint32_t kInstFuncRefs = 40;
inline constexpr uint32_t kInstTypeIds = 48;
inline constexpr uint32_t kInstMemMirror = 64;
inline constexpr uint32_t kVmFuncSize = 16;
inline constexpr uint32_t kBoundsBase = 0; // Memory::Bounds and Table::Bounds
inline constexpr uint32_t kBoundsSize = 8;
inline constexpr uint32_t kFuncTypeId = 8; // FunctionInstance
inline constexpr uint32_t kFuncCode = 40;
inline constexpr uint32_t kGlobalValue = 0;
} // namespace offsets
static_assert(offsetof(VmInstance, mem_base) == offsets::kInstMemBase);
static_assert(offsetof(VmInstance, mem) == offsets::kInstMem);
static_assert(offsetof(VmInstance, globals) == offsets::kInstGlobals);
static_assert(offsetof(VmInstance, tables) == offsets::kInstTables);
static_assert(offsetof(VmInstance, funcs) == offsets::kInstFuncs);
static_assert(offsetof(VmInstance, func_refs) == offsets::kInstFuncRefs);
static_assert(offsetof(VmInstance, type_ids) == offsets::kInstTypeIds);
static_assert(offsetof(VmInstance, mem_mirror) == offsets::kInstMemMirror);
static_assert(sizeof(VmFunc) == offsets::kVmFuncSize);
static_assert(offsetof(runtime::Memory::Bounds, base) == offsets::kBoundsBase);
static_assert(offsetof(runtime::Memory::Bounds, size) == offsets::kBoundsSize);
static_assert(offsetof(runtime::Table::Bounds, data) == offsets::kBoundsBase);
static_assert(offsetof(runtime::Table::Bounds, size) == offsets::kBoundsSize);
static_assert(offsetof(runtime::FunctionInstance, type_id) == offsets::kFuncTypeId);
static_assert(offsetof(runtime::FunctionInstance, code) == offsets::kFuncCode);
static_assert(offsetof(runtime::GlobalCell, value) == offsets::kGlobalValue);

// --- Runtime helpers -----------------------------------------------------------

// Called through the module's helper table, which the loader fills. Each
// line: id, then the C signature the compiler declares (t = VmThread*,
// ctx = VmInstance*, u32 = uint32_t, u64 = uint64_t).
enum class Helper : uint32_t {
  Trap,         // void(t, u32 kind, u32 func_index, u32 wasm_offset, u32 detail), noreturn
  EntrySlow,    // u32(t, ctx, u32 func_index, u64 sp): a PollAction (traps if sp is too low)
  LoopSlow,     // u32(t, u32 point): a PollAction
  RewindFinish, // void(t, u32 skip_next_count): the innermost saved point is reached
  RewindCallee, // const VmFunc*(t): the callee of a call_indirect being rewound
  SaveFrame,    // u64*(t, ctx, u32 func_index, u32 point, u32 count): where to store values
  CallHost,     // void(t, HostImport*, u64* slots): args in, results out
  MemoryGrow,   // u32(t, ctx, u32 delta)
  MemoryFill,   // void(t, ctx, u32 dst, u32 value, u32 n)
  MemoryCopy,   // void(t, ctx, u32 dst, u32 src, u32 n)
  MemoryInit,   // void(t, ctx, u32 segment, u32 dst, u32 src, u32 n)
  DataDrop,     // void(t, ctx, u32 segment)
  TableGet,     // u64(t, ctx, u32 table, u32 index)
  TableSet,     // void(t, ctx, u32 table, u32 index, u64 value)
  TableGrow,    // u32(t, ctx, u32 table, u64 init, u32 delta)
  TableFill,    // void(t, ctx, u32 table, u32 index, u64 value, u32 n)
  TableCopy,    // void(t, ctx, u32 dst_table, u32 src_table, u32 dst, u32 src, u32 n)
  TableInit,    // void(t, ctx, u32 table, u32 segment, u32 dst, u32 src, u32 n)
  ElemDrop,     // void(t, ctx, u32 segment)
  AtomicWait,   // u32(t, ctx, u64 ea, u64 expected, u64 timeout_ns, u32 bytes): 0, 1 or 2
  AtomicNotify, // u32(t, ctx, u64 ea, u32 count): the number woken
  Count
};
inline constexpr uint32_t kNumHelpers = static_cast<uint32_t>(Helper::Count);

// What the slow path of a stable point tells compiled code to do.
enum class PollAction : uint32_t {
  Continue = 0, // run on
  Unwind = 1,   // save this frame and return (checkpoint)
  Rewind = 2,   // go towards VmThread::rewind_point
};

// The context of a host stub: which host function, called from where.
struct HostImport {
  runtime::FunctionInstance* func = nullptr;
  VmInstance* caller = nullptr;
};

// --- The compiled module ---------------------------------------------------------

inline constexpr uint64_t kModuleInfoMagic = 0x31544f4e52455454ull; // "TTERNOT1" little-endian

enum ModuleFlags : uint32_t {
  kStablePoints = 1,  // polls, unwind and rewind paths are compiled in
  kBoundsChecks = 2,  // memory accesses are checked explicitly (no guard pages needed)
  kExactPoints = 4,   // every stable point polls: counting mode gives the interpreter's counts
  kWideAddresses = 8, // i32.add feeding an address is summed in 64 bits: needs mirrored memory
};

// Exported by every compiled module (the ELF entry point of an artifact,
// the symbol `tern_module_info` in JIT code).
struct ModuleInfo {
  uint64_t magic = 0;
  uint32_t abi_version = 0;
  uint32_t flags = 0;
  uint32_t num_functions = 0; // defined functions
  uint32_t num_types = 0;
  uint8_t module_hash[32] = {};
  void** helpers = nullptr; // kNumHelpers entries, written by the loader
  uint32_t num_helpers = 0;
  uint32_t reserved = 0;
  const void* const* functions = nullptr;   // entries, by defined-function index
  const void* const* trampolines = nullptr; // by type index: void(t, ctx, entry, u64* slots)
  const void* const* host_stubs = nullptr;  // by type index: the wasm signature, ctx = HostImport*
};
inline constexpr const char* kModuleInfoSymbol = "tern_module_info";

// Calls `entry` with arguments from `slots` and writes its results back.
using Trampoline = void (*)(VmThread* t, void* ctx, const void* entry, uint64_t* slots);

// The helper table as the runtime provides it (aot/helpers.cpp).
void* const* helper_table();

} // namespace tern::aot
