// The interpreter's internal code form (docs/architecture.md, "Interpreter").
//
// Each wasm function is translated once into a vector of 64-bit words:
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

struct CompiledFunction {
  std::vector<Word> code;
  uint32_t func_index = 0;
  uint32_t num_params = 0;
  uint32_t num_locals = 0; // including parameters
  uint32_t frame_slots = 0;
  // (code index, wasm offset) at the start of each translated instruction,
  // sorted by code index: traps and backtraces report wasm offsets.
  std::vector<std::pair<uint32_t, uint32_t>> offsets;
  std::vector<CodePoint> points; // sorted by code_index

  const Word* entry() const { return code.data(); }
  uint32_t index_of(const Word* p) const { return static_cast<uint32_t>(p - code.data()); }
  uint32_t wasm_offset_at(uint32_t code_index) const;
  const CodePoint* point_at_code(uint32_t code_index) const;
  const CodePoint* point_resuming_at(uint32_t resume_index) const;
  const CodePoint* point_at_wasm(uint32_t wasm_offset, wasm::StablePointKind kind) const;
};

// The translated code of a module's defined functions.
struct CompiledModule {
  std::vector<CompiledFunction> funcs;
};

// Handler addresses, owned by the dispatch loop (interpreter.cpp).
const void* const* handler_table();

// Translates every defined function of a validated module. `type_ids` maps
// the module's type indices to the store's canonical ids (call_indirect).
std::shared_ptr<const CompiledModule> translate_module(const wasm::Module& module,
                                                       const std::vector<uint32_t>& type_ids);

} // namespace tern::interp
