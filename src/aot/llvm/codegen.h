// Wasm → LLVM IR (docs/aot.md, "Code generation"). ModuleCodegen owns the
// LLVM module and what all functions share (types, helper table, TBAA,
// declarations); FunctionCodegen translates one function body.
#pragma once

#include "aot/abi.h"
#include "aot/compiler.h"
#include "wasm/module.h"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/MDBuilder.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/ProfDataUtils.h>
#include <memory>
#include <vector>

namespace tern::aot::llvmc {

// Metadata kinds on generated instructions, for the passes in backend.cpp:
// a poll's branch that may be dropped, and the first load of a block that
// rewinding jumps to (a loop holding one must keep its polls, which lead
// the way there).
inline constexpr const char* kElidablePoll = "tern.poll";
// The poll before an innermost loop (enter_loop), which ElidePolls drops
// where an earlier poll runs just before it.
inline constexpr const char* kPreloopPoll = "tern.preloop_poll";
inline constexpr const char* kRewindTarget = "tern.rewind_target";
// The zero-extension of a memory access's address (no offset), which
// WidenAddresses may sum in 64 bits over the memory's mirror views.
inline constexpr const char* kWideAddress = "tern.wide_address";
// The branch on VmThread::unwinding after a call, whose fast successor
// straighten_after_calls may copy onto its edge (call_layout.cpp).
inline constexpr const char* kUnwindCheck = "tern.unwind_check";
// A call to a stable point's slow-path helper (a poll's, unwinding's,
// rewinding's): the blocks only such calls lead to are cold, and
// DiscountSlowPaths (inline_cost.h) keeps them out of the inliner's sums.
// Its node names the function whose code made the call ({i32 index}, the
// same node on that function), which stays on copies inlined elsewhere.
inline constexpr const char* kSlowPath = "tern.slow_path";

// The operand bundle on a SaveFrame call that carries the values an unwind
// stores (pairs: the slot's index, a constant, and the value), so that the
// optimizer sees one instruction where the stores would be many;
// expand_saved_values turns it into the stores after optimization.
inline constexpr const char* kSaveBundle = "tern.save";

// After optimization: the stores of every SaveFrame call's kSaveBundle;
// false if a slot index is no longer a constant (never expected: LLVM does
// not merge calls that differ in a bundle's operands).
bool expand_saved_values(llvm::Function& f);

// The successor of a stable point's branch (a poll's, an unwind check's)
// that its slow path starts at: the unlikely one, since the optimizer may
// have swapped the successors (and their weights).
inline llvm::BasicBlock* slow_successor(const llvm::BranchInst& br) {
  uint64_t first = 0, second = 0;
  if (llvm::extractBranchWeights(br, first, second) && first > second) return br.getSuccessor(1);
  return br.getSuccessor(0);
}
inline llvm::BasicBlock* fast_successor(const llvm::BranchInst& br) {
  llvm::BasicBlock* slow = slow_successor(br);
  return br.getSuccessor(br.getSuccessor(0) == slow ? 1 : 0);
}

// What the generated code's memory accesses are about, for alias analysis:
// linear memory never aliases the runtime's structures.
struct AliasTags {
  llvm::MDNode* memory = nullptr;  // linear memory
  llvm::MDNode* runtime = nullptr; // VmThread, VmInstance, bounds, function records
  llvm::MDNode* global = nullptr;  // global cells
  llvm::MDNode* table = nullptr;   // table elements
};
// The tags, the same nodes on every call for one context (metadata is
// uniqued): passes recognize linear-memory accesses by `memory`.
AliasTags alias_tags(llvm::LLVMContext& context);

class ModuleCodegen {
public:
  ModuleCodegen(llvm::LLVMContext& context, const wasm::Module& module,
                const util::Sha256Digest& hash, const CompileOptions& options,
                const llvm::DataLayout& layout, const std::string& triple);

  // Generates every function, trampoline, host stub and the descriptor.
  std::unique_ptr<llvm::Module> run();

  // For FunctionCodegen.
  llvm::LLVMContext& context() { return context_; }
  llvm::Module& module() { return *module_; }
  const wasm::Module& wasm() const { return wasm_; }
  const CompileOptions& options() const { return options_; }
  const AliasTags& tags() const { return tags_; }
  llvm::Type* ir_type(wasm::ValType t) const;
  llvm::FunctionType* function_type(const wasm::FuncType& type) const;
  llvm::Type* result_type(const wasm::FuncType& type) const;
  llvm::Function* defined_function(uint32_t func_index) const {
    return functions_[func_index - wasm_.num_imported_funcs];
  }
  // Loads a runtime helper's address from the helper table at `b`.
  llvm::Value* helper(llvm::IRBuilder<>& b, Helper id) const;
  llvm::FunctionType* helper_type(Helper id) const { return helper_types_[size_t(id)]; }
  // A stable point's slow-path helper called through a module-local thunk
  // that preserves (almost) all registers, on x86-64 (nullptr elsewhere):
  // values live across the cold call then
  // need no callee-saved register or spill on the fast path.
  llvm::Function* preserving_thunk(Helper id);

  // Slot (i64) ↔ typed value, numerically as runtime::Slot.
  llvm::Value* to_slot(llvm::IRBuilder<>& b, llvm::Value* v) const;
  llvm::Value* from_slot(llvm::IRBuilder<>& b, llvm::Value* slot, llvm::Type* type) const;
  // A load or store of the runtime's data, tagged for alias analysis.
  llvm::LoadInst* load_runtime(llvm::IRBuilder<>& b, llvm::Type* type, llvm::Value* base,
                               uint64_t offset, bool invariant) const;

private:
  void declare_helpers();
  void declare_functions();
  llvm::Function* make_trampoline(const wasm::FuncType& type, uint32_t type_index);
  llvm::Function* make_host_stub(const wasm::FuncType& type, uint32_t type_index);
  void make_descriptor(const std::vector<llvm::Function*>& trampolines,
                       const std::vector<llvm::Function*>& stubs);
  llvm::Constant* pointer_array(const std::vector<llvm::Function*>& fns, const char* name);

  llvm::LLVMContext& context_;
  const wasm::Module& wasm_;
  util::Sha256Digest hash_;
  CompileOptions options_;
  std::unique_ptr<llvm::Module> module_;
  AliasTags tags_;
  llvm::GlobalVariable* helper_table_ = nullptr;
  std::vector<llvm::FunctionType*> helper_types_;
  std::vector<llvm::Function*> thunks_ = std::vector<llvm::Function*>(kNumHelpers);
  std::vector<llvm::Function*> functions_; // defined functions
  std::string tune_cpu_;
};

// Translates one defined function into its (already declared) LLVM function.
void generate_function(ModuleCodegen& mc, uint32_t func_index);

} // namespace tern::aot::llvmc
