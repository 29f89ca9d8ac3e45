// One wasm function body → LLVM IR (docs/aot.md, "Code generation" and
// "Stable points"), split by concern:
//   function_codegen.cpp  the walk over the body and the dispatch on each
//                         instruction, prologue, traps, runtime helpers
//   control.cpp           blocks, loops, if/else, branches
//   numeric.cpp           numeric instructions
//   memory.cpp            loads, stores, memory and table instructions
//   calls.cpp             call and call_indirect
//   stable_points.cpp     polls, unwinding and rewinding, behind the hooks
//                         below (function entry, loop header, around a call)
//
// Locals live in allocas (mem2reg makes them SSA); the operand stack is a
// compile-time stack of SSA values; blocks and ifs merge their results in
// phis at their continuation, loops at their header.
#pragma once

#include "aot/llvm/codegen.h"
#include "runtime/trap.h"
#include "wasm/liveness.h"

#include <functional>
#include <memory>
#include <vector>

namespace tern::aot::llvmc {

class FunctionCodegen {
public:
  FunctionCodegen(ModuleCodegen& mc, uint32_t func_index)
      : mc_(mc), ctx_(mc.context()), wasm_(mc.wasm()), func_index_(func_index),
        fn_(wasm_.defined_func(func_index)), type_(wasm_.func_type(func_index)),
        f_(mc.defined_function(func_index)), b_(ctx_), stable_points_(mc.options().stable_points) {}

  void run();

private:
  using Op = wasm::Op;
  using StablePointKind = wasm::StablePointKind;
  using TrapKind = runtime::TrapKind;
  using ValType = wasm::ValType;

  enum class CtrlKind : uint8_t { Block, Loop, If, Body };
  struct Ctrl {
    CtrlKind kind = CtrlKind::Block;
    size_t base = 0; // stack height below the parameters
    std::vector<llvm::Type*> params, results;
    llvm::BasicBlock* end = nullptr; // Block, If, Body: the continuation
    // Phis at `end` for the stack from `phi_base` (see merged_from) up to
    // the results.
    size_t phi_base = 0;
    std::vector<llvm::PHINode*> end_phis;
    std::vector<llvm::Value*> entry_stack;  // If: the stack below, for `else`
    int loop = -1;                          // Loop: index in loops_
    llvm::BasicBlock* else_block = nullptr; // If: the false edge, until `else`
    std::vector<llvm::Value*> if_params;
  };
  // A loop header: branch target with one phi per stack entry from
  // `phi_base` (see merged_from).
  struct Loop {
    llvm::BasicBlock* header = nullptr;
    size_t phi_base = 0;
    std::vector<llvm::PHINode*> phis;
    llvm::BasicBlock* hop = nullptr; // its poll's rewind path: switch on the point
    uint32_t point = 0;              // validator index of the header's point
    // A header without a poll (code without exact points, a call on every
    // iteration) has instead this phi: true on the edges that rewinding
    // enters the header by, which go on to `hop`.
    bool polls = true;
    llvm::PHINode* rewinding = nullptr;
    std::vector<llvm::BasicBlock*> rewind_edges;
  };
  // A place rewinding can reach: `restore` reloads and continues there.
  struct Point {
    uint32_t key = 0;                    // VmThread::rewind_point (RewindKey)
    llvm::BasicBlock* restore = nullptr; // reloads the values, goes on from the point
    std::vector<int> loops;              // enclosing loops, outermost first
  };
  // The values a call site with stable points merges at its call block,
  // entered normally and by rewinding, in this order.
  struct CallLayout {
    size_t below = 0;  // the operands under the arguments, live across the call
    size_t args = 0;   // the arguments
    size_t callee = 0; // what names the callee (call_indirect: index, entry, context)
    size_t saved = 0;  // how many, from the first, an unwinding frame saves
    size_t size() const { return below + args + callee; }
  };
  struct CallSite {
    CallLayout layout;
    std::vector<llvm::PHINode*> phis;  // in layout order
    llvm::BasicBlock* block = nullptr; // the call block: merge, call, unwind check
    llvm::BasicBlock* cont = nullptr;  // after the call, not unwinding
    llvm::Value* result = nullptr;
    std::vector<llvm::Value*> below() const { return {phis.begin(), phis.begin() + layout.below}; }
    std::vector<llvm::Value*> args() const {
      return {phis.begin() + layout.below, phis.begin() + layout.below + layout.args};
    }
    llvm::Value* callee(size_t i) const { return phis[layout.below + layout.args + i]; }
  };

  // --- Types and values ---
  llvm::Type* ir(ValType t) const { return mc_.ir_type(t); }
  void block_signature(const wasm::BlockType& bt, std::vector<llvm::Type*>& params,
                       std::vector<llvm::Type*>& results) const;
  llvm::Value* pop() {
    llvm::Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  void push(llvm::Value* v) { stack_.push_back(v); }
  std::vector<llvm::Value*> pop_n(size_t n) {
    std::vector<llvm::Value*> out(stack_.end() - n, stack_.end());
    stack_.resize(stack_.size() - n);
    return out;
  }
  llvm::BasicBlock* block(const char* name) { return llvm::BasicBlock::Create(ctx_, name, f_); }
  llvm::Value* thread() const { return f_->getArg(0); }
  llvm::Value* instance() const { return f_->getArg(1); }

  // --- Prologue and runtime data ---
  void build_prologue();
  // An invariant load placed in the prologue (dominates everything).
  llvm::Value* prologue_load(llvm::Type* type, llvm::Value* base, uint64_t offset);
  llvm::Value* instance_field(uint64_t offset);
  llvm::Value* global_cell(uint32_t index);
  llvm::Value* memory_bounds() { return instance_field(offsets::kInstMem); }

  // --- Traps and helpers ---
  void trap_if(llvm::Value* cond, TrapKind kind, llvm::Value* detail = nullptr);
  llvm::CallInst* call_helper(Helper id, std::vector<llvm::Value*> args,
                              llvm::ArrayRef<llvm::OperandBundleDef> bundles = {});
  llvm::Value* u32(uint64_t v) { return b_.getInt32(static_cast<uint32_t>(v)); }
  void set_unlikely(llvm::BranchInst* br);
  void mark(llvm::Instruction* inst, const char* kind);
  llvm::MDNode* own_slow_path();

  // --- The walk and the dispatch (function_codegen.cpp) ---
  void step();
  void translate(const wasm::Instr& in);

  // --- Control (control.cpp) ---
  void skip(const wasm::Instr& in);
  // Where the phis of a block's end or a loop's header start, for a block
  // whose parameters start at stack height `base`: with stable points at
  // the stack's bottom, since the entries below may be rebound inside the
  // block (by a loop header that rewinding enters, or a loop's restore
  // clone) and rewinding enters a header without passing their
  // definitions; without, at `base`.
  size_t merged_from(size_t base) const { return stable_points_ ? 0 : base; }
  void make_end_phis(Ctrl& c, const char* name);
  void on_block(const wasm::Instr& in);
  void on_loop(const wasm::Instr& in);
  void open_loop(const wasm::Instr& in, bool restorable);
  void on_if(const wasm::Instr& in);
  void on_else();
  void on_end();
  void on_br(uint32_t depth);
  void on_br_if(uint32_t depth);
  void on_br_table(const wasm::Instr& in);
  Ctrl& label(uint32_t depth) { return ctrls_[ctrls_.size() - 1 - depth]; }
  // Adds the current block's edge into `target`'s phis (the stack is as it
  // is at the branch) and returns the block to branch to.
  llvm::BasicBlock* edge_to(Ctrl& target);
  void finish_return_block();
  // Scans of the body ahead of the current instruction.
  size_t matching_end(size_t begin) const;
  bool innermost_without_calls(size_t begin, size_t end) const;
  bool starts_with_call(size_t begin) const;

  // --- Numeric instructions (numeric.cpp) ---
  void numeric(const wasm::Instr& in);
  llvm::Value* trunc_checked(llvm::Value* x, llvm::Type* to, bool is_signed);
  // `v` unchanged, but hidden from the optimizer (an empty inline asm).
  llvm::Value* opaque(llvm::Value* v);
  // Constants that would let LLVM fold an operation away (x * 1 → x,
  // x - 0 → x, x / -1 → -x) — wrong for a signalling NaN x, whose wasm
  // result is quiet — are made opaque.
  llvm::Value* opaque_identity(llvm::Value* v);

  // --- Memory and tables (memory.cpp) ---
  void memory_access(const wasm::Instr& in);
  void on_memory_or_table(const wasm::Instr& in);
  llvm::Value* effective_pointer(llvm::Value* addr, uint64_t offset, unsigned size);
  llvm::Value* bswap_if_big_endian(llvm::Value* v);
  // Atomic accesses (threads proposal).
  void atomic_access(const wasm::Instr& in);
  llvm::Value* atomic_pointer(llvm::Value* addr, uint64_t offset, unsigned size);
  llvm::Value* big_endian_add_sub(llvm::AtomicRMWInst::BinOp op, llvm::Value* p, llvm::Value* v,
                                  unsigned bytes);

  // --- Calls (calls.cpp) ---
  void on_call(const wasm::Instr& in);
  void on_call_indirect(const wasm::Instr& in);
  void push_results(const wasm::FuncType& ft, llvm::Value* result);
  void continue_after_call(const CallSite& site, const wasm::FuncType& ft);

  // --- Stable points (stable_points.cpp) ---
  // The hooks: the only places where translating instructions asks for
  // stable-point code. Compiled without stable points, they emit the plain
  // form (a branch, nothing at a loop) and none of the rest below runs.
  // Before the first instruction: the liveness the unwind paths need.
  void prepare_stable_points();
  // The function entry, from the prologue to `body`: the entry poll, which
  // also checks the stack limit.
  void at_function_entry(llvm::BasicBlock* body);
  // A loop: whether it is emitted with a restore clone
  // (emit_loop_with_restore_clone); before its header (the poll before an
  // innermost loop, the restore block of its header's point); at its
  // header (the header poll); past its end.
  bool loop_needs_restore_clone() const;
  void before_loop_header(const wasm::Instr& in, Loop& loop, bool restorable);
  void at_loop_header(int loop); // an index in loops_
  void after_loop();
  // Around a call: the call block merging `merged` (laid out as `layout`)
  // from the normal path and from rewinding, the call `issue` makes from
  // the merged values, the unwind check after it, the unwind path and the
  // restore block (which reloads the operands below the arguments, passes
  // zero arguments and takes the callee's values from `rewind_callee`).
  // The caller adds a host call's restore path if it needs one, then goes
  // on with continue_after_call.
  CallSite around_call(uint32_t point, const CallLayout& layout,
                       const std::vector<llvm::Value*>& merged,
                       const std::function<llvm::Value*(const CallSite&)>& issue,
                       const std::function<std::vector<llvm::Value*>()>& rewind_callee);
  // After all instructions: the rewind dispatch.
  void finish_stable_points();

  uint32_t point_index(uint32_t offset, StablePointKind kind) const;
  // Branches from the current block to `at` and gives it one phi per value,
  // entered with that value from here.
  std::vector<llvm::PHINode*> merge_into(llvm::BasicBlock* at,
                                         const std::vector<llvm::Value*>& values);
  llvm::Value* poll_pending();
  void emit_entry_poll(llvm::BasicBlock* body);
  void enter_loop(uint32_t point, bool restorable, bool elidable);
  void emit_loop_with_restore_clone(const wasm::Instr& in, size_t end);
  void emit_header_poll(Loop& loop);
  // A new rewind target `key` inside `loops`: its restore block, where the
  // insert point is left for the reload.
  llvm::BasicBlock* begin_restore(uint32_t key, const char* name, std::vector<int> loops) {
    llvm::BasicBlock* restore = block(name);
    points_.push_back({key, restore, std::move(loops)});
    b_.SetInsertPoint(restore);
    return restore;
  }
  // After a call: to `unwind` if the callee unwound, else on to `cont`.
  void emit_unwind_check(llvm::Value* unwinding, llvm::BasicBlock* unwind, llvm::BasicBlock* cont);
  // Stores the live locals and `values` into a new saved frame and returns.
  void emit_unwind(uint32_t point, const std::vector<llvm::Value*>& values);
  void add_host_call_restore(uint32_t point, const std::vector<llvm::PHINode*>& phis,
                             llvm::BasicBlock* target);
  // Loads the live locals into their allocas, and `types.size()` operands.
  std::vector<llvm::Value*> emit_reload(uint32_t point, const std::vector<llvm::Type*>& types);
  void emit_return_undef();
  void build_dispatch();
  llvm::SwitchInst* dispatch_switch(llvm::BasicBlock* at);
  void add_case(llvm::SwitchInst* sw, uint32_t key, llvm::BasicBlock* target);

  ModuleCodegen& mc_;
  llvm::LLVMContext& ctx_;
  const wasm::Module& wasm_;
  const uint32_t func_index_;
  const wasm::Function& fn_;
  const wasm::FuncType& type_;
  llvm::Function* f_;
  llvm::IRBuilder<> b_;
  // Compiled with stable points (CompileOptions::stable_points): polls,
  // unwind and rewind paths.
  const bool stable_points_;
  const bool wide_addresses_ = mc_.options().wide_addresses && !mc_.options().bounds_checks;
  // Which locals a frame saves at each point (the others are zero in the
  // view and need not stay alive for it).
  std::unique_ptr<wasm::LocalLiveness> liveness_;

  std::vector<llvm::AllocaInst*> locals_;
  std::vector<llvm::Type*> local_types_;
  llvm::BasicBlock* prologue_ = nullptr;
  llvm::Value* entry_sp_ = nullptr; // the native stack pointer at entry
  llvm::Value* mem_base_ = nullptr;
  std::vector<llvm::Value*> instance_fields_ = std::vector<llvm::Value*>(8, nullptr);
  std::vector<llvm::Value*> global_cells_;

  std::vector<wasm::Instr> instrs_;
  size_t pc_ = 0;         // index of the instruction being translated
  bool in_clone_ = false; // translating a loop's restore clone
  std::vector<llvm::Value*> stack_;
  std::vector<Ctrl> ctrls_;
  bool dead_ = false;       // the rest of the current arm cannot run
  uint32_t skip_depth_ = 0; // blocks opened inside dead code
  const wasm::Instr* current_ = nullptr;
  const wasm::Instr* next_ = nullptr;

  std::vector<Loop> loops_;
  std::vector<int> loop_chain_; // loops enclosing the current position
  std::vector<Point> points_;
  llvm::BasicBlock* entry_dispatch_ = nullptr;
};

} // namespace tern::aot::llvmc
