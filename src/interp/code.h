// The interpreter's internal code form (docs/architecture.md, "Interpreter").
//
// Each wasm function is translated once, on its first call, into a vector
// of 64-bit words:
// a handler address (threaded dispatch: every handler ends by jumping to the
// next one) followed by its operands. Operands name frame slots by byte
// offset from the frame pointer; branch targets are resolved to addresses.
// A frame is [locals | operand stack], one 64-bit slot per value, and the
// value at operand height h always lives in slot (num_locals + h) at every
// stable point, so the wasm view of a frame is a plain read of its slots.
#pragma once

#include "wasm/module.h"

#include <cstdint>
#include <memory>
#include <vector>

namespace tern::interp {

enum class Handler : uint16_t {
#define HANDLER(name) name,
#include "interp/handlers.def"
#undef HANDLER
  Count
};

union Word {
  const void* handler;
  const Word* target;
  uint64_t u64;
};
static_assert(sizeof(Word) == 8);

inline uint64_t pack(uint32_t lo, uint32_t hi) {
  return uint64_t(lo) | (uint64_t(hi) << 32);
}

// A stable point in translated code.
struct CodePoint {
  uint32_t wasm_offset = 0;
  wasm::StablePointKind kind = wasm::StablePointKind::FunctionEntry;
  uint32_t code_index = 0;   // Entry / Poll / Call instruction
  uint32_t resume_index = 0; // calls: the instruction after the call
  uint32_t stack_height = 0; // operands live across the point (calls: below the arguments)
  uint32_t args_slot = 0;    // calls: slot index of the first argument
};

class CompiledModule;

struct CompiledFunction {
  std::vector<Word> code; // empty until translated
  uint32_t func_index = 0;
  uint32_t num_params = 0;
  uint32_t num_locals = 0; // including parameters
  uint32_t frame_slots = 0;
  // (code index, wasm offset) at the start of each translated instruction,
  // sorted by code index: traps and backtraces report wasm offsets.
  std::vector<std::pair<uint32_t, uint32_t>> offsets;
  std::vector<CodePoint> points; // sorted by code_index
  // Where a call jumps: the code, or until the first call translates it, the
  // module's one-word Translate stub.
  const Word* entry_point = nullptr;
  const CompiledModule* owner = nullptr;

  bool translated() const { return !code.empty(); }
  const Word* entry() const { return entry_point; }
  uint32_t index_of(const Word* p) const { return static_cast<uint32_t>(p - code.data()); }
  uint32_t wasm_offset_at(uint32_t code_index) const;
  const CodePoint* point_at_code(uint32_t code_index) const;
  const CodePoint* point_resuming_at(uint32_t resume_index) const;
  const CodePoint* point_at_wasm(uint32_t wasm_offset, wasm::StablePointKind kind) const;
};

// The code of a module's defined functions, for one instance (type ids are
// its store's). A function is translated when it is first called (the
// Translate stub) or a frame of it is restored, not when the module is
// instantiated: a large program calls few of its functions early, and
// translating all of them made the time to its first instruction grow with
// the module (docs/performance.md, "Time to first instruction"). Every
// function was validated before the module runs, so translating one cannot
// fail. Not thread-safe: one instance's code is run by one thread (each
// wasi-thread has an instance of its own).
class CompiledModule {
public:
  // `module` must outlive this; `type_ids` maps the module's type indices to
  // the store's canonical ids (call_indirect).
  CompiledModule(const wasm::Module& module, std::vector<uint32_t> type_ids);
  CompiledModule(const CompiledModule&) = delete;
  CompiledModule& operator=(const CompiledModule&) = delete;

  std::vector<CompiledFunction> funcs; // by defined-function index

private:
  friend const CompiledFunction& translated(const CompiledFunction& f);
  const wasm::Module& module_;
  std::vector<uint32_t> type_ids_;
  Word stub_{}; // the Translate handler
};

// `f`, translated now if it was not yet.
const CompiledFunction& translated(const CompiledFunction& f);

// Handler addresses, owned by the dispatch loop (interpreter.cpp).
const void* const* handler_table();

} // namespace tern::interp
