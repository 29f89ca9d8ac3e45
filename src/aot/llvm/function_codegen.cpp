// One wasm function body → LLVM IR (docs/aot.md, "Code generation" and
// "Stable points").
//
// Locals live in allocas (mem2reg makes them SSA); the operand stack is a
// compile-time stack of SSA values; blocks and ifs merge their results in
// phis at their continuation, loops at their header.
//
// With stable points, three cold paths join the fast code:
// - poll: at the function entry and every loop header, one load of the
//   store's interrupt word and a branch. Its slow path asks the runtime
//   (EntrySlow / LoopSlow) whether to run on, unwind or rewind.
// - unwind: after every wasm call, a load of VmThread::unwinding and a
//   branch. When set (the callee saved its frame), and at a poll that says
//   so, the function stores its live locals and operands (SaveFrame) and
//   returns at once.
// - rewind: the entry's slow path, when rebuilding a thread, dispatches on
//   the saved point. To keep loops reducible it never jumps into a loop
//   body: it goes to the outermost enclosing loop's header, whose poll
//   (taken, since VmThread::flag has kRewindingBit set) goes on to the next
//   inner header, until the block of the point itself, which reloads the
//   values from VmThread::rewind_values and continues into the call (which
//   rewinds its callee), or enters the loop (for a loop header: its block
//   is just before the loop).
//
// Code compiled without exact points (the default; exact ones are for
// counting, --checkpoint-at) also polls before each innermost loop without
// calls, and may lose the polls inside those whose trip count is known on
// entry (backend.cpp, ElidePolls): such loops vectorize. Its loops that
// call a defined function first on every iteration do not poll at their
// header (the callee's entry does). The slow paths' helpers are called
// through preserve_most thunks (ModuleCodegen::preserving_thunk).
#include "aot/llvm/codegen.h"
#include "runtime/trap.h"
#include "tern/error.h"
#include "wasm/liveness.h"

#include <algorithm>
#include <fmt/format.h>
#include <llvm/IR/InlineAsm.h>
#include <llvm/IR/Intrinsics.h>

namespace tern::aot::llvmc {
namespace {

using runtime::TrapKind;
using wasm::Op;
using wasm::StablePointKind;
using wasm::ValType;

class FunctionCodegen {
public:
  FunctionCodegen(ModuleCodegen& mc, uint32_t func_index)
      : mc_(mc), ctx_(mc.context()), wasm_(mc.wasm()), func_index_(func_index),
        fn_(wasm_.defined_func(func_index)), type_(wasm_.func_type(func_index)),
        f_(mc.defined_function(func_index)), b_(ctx_), sp_(mc.options().stable_points) {}

  void run();

private:
  enum class CtrlKind : uint8_t { Block, Loop, If, Body };
  struct Ctrl {
    CtrlKind kind = CtrlKind::Block;
    size_t base = 0; // stack height below the parameters
    std::vector<llvm::Type*> params, results;
    llvm::BasicBlock* end = nullptr; // Block, If, Body: the continuation
    // Phis at `end` for the stack from `phi_base` (0 with stable points:
    // the entries below the block may be rebound inside it, by a loop
    // header that rewinding enters or a loop's restore clone) up to the
    // results.
    size_t phi_base = 0;
    std::vector<llvm::PHINode*> end_phis;
    std::vector<llvm::Value*> entry_stack;  // If: the stack below, for `else`
    int loop = -1;                          // Loop: index in loops_
    llvm::BasicBlock* else_block = nullptr; // If: the false edge, until `else`
    std::vector<llvm::Value*> if_params;
  };
  // A loop header: branch target with one phi per stack entry from
  // `phi_base` (0 with stable points: values below the loop must be phis
  // too, since rewinding enters the header without passing their
  // definitions).
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
    uint32_t key = 0;                    // VmThread::rewind_point
    llvm::BasicBlock* restore = nullptr; // reloads the values, goes on from the point
    std::vector<int> loops;              // enclosing loops, outermost first
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
  // A new rewind target `key` inside `loops`: its restore block, where the
  // insert point is left for the reload.
  llvm::BasicBlock* begin_restore(uint32_t key, const char* name, std::vector<int> loops) {
    llvm::BasicBlock* restore = block(name);
    points_.push_back({key, restore, std::move(loops)});
    b_.SetInsertPoint(restore);
    return restore;
  }
  llvm::Value* thread() const { return f_->getArg(0); }
  llvm::Value* instance() const { return f_->getArg(1); }

  // --- Prologue and runtime data ---
  void build_prologue();
  // An invariant load placed in the prologue (dominates everything).
  llvm::Value* prologue_load(llvm::Type* type, llvm::Value* base, uint64_t offset);
  llvm::Value* instance_field(uint64_t offset);
  llvm::Value* global_cell(uint32_t index);
  llvm::Value* memory_bounds() { return instance_field(offsets::kInstMem); }

  // --- Traps ---
  void trap_if(llvm::Value* cond, TrapKind kind, llvm::Value* detail = nullptr);
  llvm::CallInst* call_helper(Helper id, std::vector<llvm::Value*> args);
  llvm::Value* u32(uint64_t v) { return b_.getInt32(static_cast<uint32_t>(v)); }
  void set_unlikely(llvm::BranchInst* br);

  // --- Instructions ---
  void translate(const wasm::Instr& in);
  void skip(const wasm::Instr& in);
  void numeric(const wasm::Instr& in);
  void memory_access(const wasm::Instr& in);
  void make_end_phis(Ctrl& c, const char* name);
  void on_block(const wasm::Instr& in);
  void on_loop(const wasm::Instr& in);
  void on_if(const wasm::Instr& in);
  void on_else();
  void on_end();
  void on_br(uint32_t depth);
  void on_br_if(uint32_t depth);
  void on_br_table(const wasm::Instr& in);
  void on_call(const wasm::Instr& in);
  void on_call_indirect(const wasm::Instr& in);
  void on_memory_or_table(const wasm::Instr& in);
  Ctrl& label(uint32_t depth) { return ctrls_[ctrls_.size() - 1 - depth]; }
  // Adds the current block's edge into `target`'s phis (the stack is as it
  // is at the branch) and returns the block to branch to.
  llvm::BasicBlock* edge_to(Ctrl& target);
  void finish_return_block();
  llvm::Value* effective_pointer(llvm::Value* addr, uint64_t offset, unsigned size);
  llvm::Value* trunc_checked(llvm::Value* x, llvm::Type* to, bool is_signed);
  llvm::Value* bswap_if_big_endian(llvm::Value* v);
  // `v` unchanged, but hidden from the optimizer (an empty inline asm).
  llvm::Value* opaque(llvm::Value* v);
  // Constants that would let LLVM fold an operation away (x * 1 → x,
  // x - 0 → x, x / -1 → -x) — wrong for a signalling NaN x, whose wasm
  // result is quiet — are made opaque.
  llvm::Value* opaque_identity(llvm::Value* v);

  // --- Stable points ---
  uint32_t point_index(uint32_t offset, StablePointKind kind) const;
  llvm::Value* poll_pending();
  void emit_entry_poll(llvm::BasicBlock* body);
  void enter_loop(uint32_t point, bool restorable, bool elidable);
  void open_loop(const wasm::Instr& in, bool restorable);
  void emit_loop_with_restore_clone(const wasm::Instr& in, size_t end);
  void step();
  size_t matching_end(size_t begin) const;
  bool innermost_without_calls(size_t begin, size_t end) const;
  bool starts_with_call(size_t begin) const;
  void emit_header_poll(Loop& loop);
  void mark(llvm::Instruction* inst, const char* kind);
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
  const bool sp_; // stable points compiled in
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

// --- Types -------------------------------------------------------------------

void FunctionCodegen::block_signature(const wasm::BlockType& bt, std::vector<llvm::Type*>& params,
                                      std::vector<llvm::Type*>& results) const {
  params.clear();
  results.clear();
  switch (bt.kind) {
  case wasm::BlockType::Kind::Empty:
    return;
  case wasm::BlockType::Kind::Value:
    results.push_back(ir(bt.value));
    return;
  case wasm::BlockType::Kind::TypeIndex: {
    const wasm::FuncType& ft = wasm_.types[bt.type_index];
    for (ValType t : ft.params) params.push_back(ir(t));
    for (ValType t : ft.results) results.push_back(ir(t));
    return;
  }
  }
}

// --- Prologue ----------------------------------------------------------------

llvm::Value* FunctionCodegen::prologue_load(llvm::Type* type, llvm::Value* base, uint64_t offset) {
  llvm::IRBuilder<> pb(prologue_->getTerminator());
  return mc_.load_runtime(pb, type, base, offset, /*invariant=*/true);
}

llvm::Value* FunctionCodegen::instance_field(uint64_t offset) {
  llvm::Value*& v = instance_fields_[offset / 8];
  if (!v) v = prologue_load(b_.getPtrTy(), instance(), offset);
  return v;
}

llvm::Value* FunctionCodegen::global_cell(uint32_t index) {
  if (global_cells_.empty()) global_cells_.resize(wasm_.global_types.size(), nullptr);
  llvm::Value*& v = global_cells_[index];
  if (!v)
    v = prologue_load(b_.getPtrTy(), instance_field(offsets::kInstGlobals), uint64_t(index) * 8);
  return v;
}

void FunctionCodegen::build_prologue() {
  prologue_ = block("prologue");
  llvm::BasicBlock* check = block("stack_check");
  b_.SetInsertPoint(prologue_);
  for (ValType t : type_.params) local_types_.push_back(ir(t));
  for (ValType t : fn_.locals) local_types_.push_back(ir(t));
  for (llvm::Type* t : local_types_) locals_.push_back(b_.CreateAlloca(t));
  for (size_t i = 0; i < type_.params.size(); ++i)
    b_.CreateStore(f_->getArg(unsigned(i + 2)), locals_[i]);
  for (size_t i = type_.params.size(); i < locals_.size(); ++i)
    b_.CreateStore(llvm::Constant::getNullValue(local_types_[i]), locals_[i]);
  b_.CreateBr(check);
  if (!wasm_.memories.empty() && !mc_.options().bounds_checks)
    mem_base_ = instance_field(offsets::kInstMemBase);

  // Deep recursion becomes a trap, never a native stack overflow.
  b_.SetInsertPoint(check);
  const char* sp_name = "rsp";
  if (mc_.options().target.arch == Arch::AArch64) sp_name = "sp";
  if (mc_.options().target.arch == Arch::S390x) sp_name = "r15";
  llvm::Metadata* reg = llvm::MDString::get(ctx_, sp_name);
  entry_sp_ = b_.CreateIntrinsic(llvm::Intrinsic::read_register, {b_.getInt64Ty()},
                                 {llvm::MetadataAsValue::get(ctx_, llvm::MDNode::get(ctx_, reg))});
  if (sp_) return; // the entry poll compares with the limit and the flags at once
  llvm::Value* limit =
      mc_.load_runtime(b_, b_.getInt64Ty(), thread(), offsets::kThreadStackLimit, false);
  trap_if(b_.CreateICmpULT(entry_sp_, limit), TrapKind::CallStackExhausted);
}

// --- Traps and helpers --------------------------------------------------------

void FunctionCodegen::set_unlikely(llvm::BranchInst* br) {
  br->setMetadata(llvm::LLVMContext::MD_prof,
                  llvm::MDBuilder(ctx_).createBranchWeights(1, 1 << 20));
}

llvm::CallInst* FunctionCodegen::call_helper(Helper id, std::vector<llvm::Value*> args) {
  const bool slow_path = id == Helper::Trap || id == Helper::EntrySlow || id == Helper::LoopSlow ||
                         id == Helper::RewindFinish || id == Helper::RewindCallee ||
                         id == Helper::SaveFrame;
  llvm::Function* thunk = slow_path && id != Helper::Trap ? mc_.preserving_thunk(id) : nullptr;
  llvm::CallInst* call = thunk ? b_.CreateCall(thunk, args)
                               : b_.CreateCall(mc_.helper_type(id), mc_.helper(b_, id), args);
  if (thunk) call->setCallingConv(thunk->getCallingConv());
  // The helpers are C++ (aot/helpers.cpp). Some ABIs (s390x) leave the
  // extension of a 32-bit argument to 64 bits to the caller, and C++ code
  // relies on it: pass every i32 zero-extended, as uint32_t is.
  for (unsigned i = 0; i < args.size(); ++i)
    if (args[i]->getType()->isIntegerTy(32)) call->addParamAttr(i, llvm::Attribute::ZExt);
  // The stable points' slow paths: cold, so that the register allocator
  // and block placement keep them out of the fast code's way.
  if (slow_path) call->addFnAttr(llvm::Attribute::Cold);
  if (slow_path && id != Helper::Trap) mark(call, kSlowPath);
  return call;
}

void FunctionCodegen::emit_unwind_check(llvm::Value* unwinding, llvm::BasicBlock* unwind,
                                        llvm::BasicBlock* cont) {
  llvm::BranchInst* br = b_.CreateCondBr(b_.CreateICmpNE(unwinding, u32(0)), unwind, cont);
  set_unlikely(br);
  mark(br, kUnwindCheck);
}

void FunctionCodegen::trap_if(llvm::Value* cond, TrapKind kind, llvm::Value* detail) {
  llvm::BasicBlock* trap = block("trap");
  llvm::BasicBlock* cont = block("cont");
  set_unlikely(b_.CreateCondBr(cond, trap, cont));
  b_.SetInsertPoint(trap);
  uint32_t offset = current_ ? current_->offset : fn_.body_begin;
  llvm::CallInst* call = call_helper(Helper::Trap, {thread(), u32(uint32_t(kind)), u32(func_index_),
                                                    u32(offset), detail ? detail : u32(0)});
  call->setDoesNotReturn();
  call->addFnAttr(llvm::Attribute::Cold);
  b_.CreateUnreachable();
  b_.SetInsertPoint(cont);
}

// --- Function structure --------------------------------------------------------

void FunctionCodegen::run() {
  if (sp_) liveness_ = std::make_unique<wasm::LocalLiveness>(wasm_, func_index_);
  wasm::ByteReader bytes(
      std::span<const uint8_t>(wasm_.bytes).subspan(fn_.body_begin, fn_.body_end - fn_.body_begin),
      fn_.body_begin);
  wasm::InstrReader reader(bytes);
  while (!reader.at_end()) reader.next(instrs_.emplace_back());

  build_prologue();
  llvm::BasicBlock* body = block("body");
  if (sp_)
    emit_entry_poll(body);
  else
    b_.CreateBr(body);
  b_.SetInsertPoint(body);

  Ctrl fc;
  fc.kind = CtrlKind::Body;
  for (ValType t : type_.results) fc.results.push_back(ir(t));
  fc.end = block("return");
  llvm::IRBuilder<> pb(fc.end);
  for (llvm::Type* t : fc.results) fc.end_phis.push_back(pb.CreatePHI(t, 2));
  ctrls_.push_back(std::move(fc));

  for (pc_ = 0; pc_ < instrs_.size() && !ctrls_.empty(); ++pc_) step();
  if (sp_) build_dispatch();
}

void FunctionCodegen::step() {
  current_ = &instrs_[pc_];
  next_ = pc_ + 1 < instrs_.size() ? &instrs_[pc_ + 1] : nullptr;
  if (dead_)
    skip(*current_);
  else
    translate(*current_);
}

size_t FunctionCodegen::matching_end(size_t begin) const {
  size_t depth = 0;
  for (size_t i = begin + 1; i < instrs_.size(); ++i) {
    switch (instrs_[i].op) {
    case Op::Block:
    case Op::Loop:
    case Op::If:
      ++depth;
      break;
    case Op::End:
      if (depth-- == 0) return i;
      break;
    default:
      break;
    }
  }
  return instrs_.size() - 1;
}

bool FunctionCodegen::innermost_without_calls(size_t begin, size_t end) const {
  for (size_t i = begin + 1; i < end; ++i) {
    Op op = instrs_[i].op;
    if (op == Op::Loop || op == Op::Call || op == Op::CallIndirect) return false;
  }
  return true;
}

// Whether every iteration of the loop at `begin` calls a function defined
// in the module before it can branch: that function's entry polls, so the
// loop's header need not (a request waits one call at most).
bool FunctionCodegen::starts_with_call(size_t begin) const {
  for (size_t i = begin + 1; i < instrs_.size(); ++i) {
    switch (instrs_[i].op) {
    case Op::Call:
      return !wasm_.is_imported_func(instrs_[i].a);
    case Op::Unreachable:
    case Op::Block:
    case Op::Loop:
    case Op::If:
    case Op::Else:
    case Op::End:
    case Op::Br:
    case Op::BrIf:
    case Op::BrTable:
    case Op::Return:
    case Op::CallIndirect:
      return false;
    default:
      break;
    }
  }
  return false;
}

void FunctionCodegen::finish_return_block() {
  std::vector<llvm::Value*> results(stack_.end() - type_.results.size(), stack_.end());
  if (results.empty())
    b_.CreateRetVoid();
  else if (results.size() == 1)
    b_.CreateRet(results[0]);
  else
    b_.CreateAggregateRet(results.data(), unsigned(results.size()));
}

llvm::BasicBlock* FunctionCodegen::edge_to(Ctrl& target) {
  llvm::BasicBlock* from = b_.GetInsertBlock();
  if (target.kind == CtrlKind::Loop) {
    Loop& loop = loops_[size_t(target.loop)];
    // Entries below the loop are unchanged inside it: they are its phis.
    size_t n = target.params.size();
    size_t below = target.base - loop.phi_base;
    for (size_t i = 0; i < below; ++i) loop.phis[i]->addIncoming(stack_[loop.phi_base + i], from);
    for (size_t i = 0; i < n; ++i)
      loop.phis[below + i]->addIncoming(stack_[stack_.size() - n + i], from);
    return loop.header;
  }
  size_t n = target.results.size();
  size_t below = target.base - target.phi_base;
  for (size_t i = 0; i < below; ++i)
    target.end_phis[i]->addIncoming(stack_[target.phi_base + i], from);
  for (size_t i = 0; i < n; ++i)
    target.end_phis[below + i]->addIncoming(stack_[stack_.size() - n + i], from);
  return target.end;
}

void FunctionCodegen::skip(const wasm::Instr& in) {
  switch (in.op) {
  case Op::Block:
  case Op::Loop:
  case Op::If:
    ++skip_depth_;
    return;
  case Op::Else:
    if (skip_depth_ == 0) on_else();
    return;
  case Op::End:
    if (skip_depth_ == 0)
      on_end();
    else
      --skip_depth_;
    return;
  default:
    return;
  }
}

void FunctionCodegen::make_end_phis(Ctrl& c, const char* name) {
  c.end = block(name);
  c.phi_base = sp_ ? 0 : c.base;
  llvm::IRBuilder<> pb(c.end);
  for (size_t h = c.phi_base; h < c.base; ++h)
    c.end_phis.push_back(pb.CreatePHI(stack_[h]->getType(), 2));
  for (llvm::Type* t : c.results) c.end_phis.push_back(pb.CreatePHI(t, 2));
}

void FunctionCodegen::on_block(const wasm::Instr& in) {
  Ctrl c;
  c.kind = CtrlKind::Block;
  block_signature(in.block, c.params, c.results);
  c.base = stack_.size() - c.params.size();
  make_end_phis(c, "block_end");
  ctrls_.push_back(std::move(c));
}

void FunctionCodegen::on_loop(const wasm::Instr& in) {
  if (sp_ && !in_clone_) {
    const size_t end = matching_end(pc_);
    if (innermost_without_calls(pc_, end)) return emit_loop_with_restore_clone(in, end);
  }
  open_loop(in, /*restorable=*/sp_);
}

// An innermost loop without calls is emitted twice: the loop itself, which
// nothing but its preheader enters, so that its induction variables start
// from known values (trip counts, vectorization); and a clone that only
// rewinding to the loop's header enters, with the reloaded values. Both go
// on to the same code after the loop.
void FunctionCodegen::emit_loop_with_restore_clone(const wasm::Instr& in, size_t end) {
  const size_t begin = pc_;
  const std::vector<llvm::Value*> entry_stack = stack_;
  const std::vector<int> chain = loop_chain_;
  const uint32_t point = point_index(in.offset, StablePointKind::LoopHeader);

  open_loop(in, /*restorable=*/false);
  for (++pc_; pc_ <= end; ++pc_) step();
  struct Exit {
    bool live;
    llvm::BasicBlock* block;
    std::vector<llvm::Value*> stack;
  };
  Exit original{!dead_, b_.GetInsertBlock(), stack_};

  begin_restore(point << 1, "restore_loop", chain);
  std::vector<llvm::Type*> types;
  for (llvm::Value* v : entry_stack) types.push_back(v->getType());
  stack_ = emit_reload(point, types);
  call_helper(Helper::RewindFinish, {thread(), u32(1)}); // the clone's header poll is next
  dead_ = false;
  in_clone_ = true;
  pc_ = begin;
  open_loop(in, /*restorable=*/false);
  for (++pc_; pc_ <= end; ++pc_) step();
  in_clone_ = false;
  Exit clone{!dead_, b_.GetInsertBlock(), stack_};
  pc_ = end; // the caller's loop steps past the end

  if (!original.live && !clone.live) {
    dead_ = true;
    return;
  }
  if (!original.live || !clone.live) {
    const Exit& only = original.live ? original : clone;
    b_.SetInsertPoint(only.block);
    stack_ = only.stack;
    dead_ = false;
    return;
  }
  llvm::BasicBlock* join = block("loop_join");
  b_.SetInsertPoint(original.block);
  b_.CreateBr(join);
  b_.SetInsertPoint(clone.block);
  b_.CreateBr(join);
  b_.SetInsertPoint(join);
  stack_.clear();
  for (size_t i = 0; i < original.stack.size(); ++i) {
    llvm::PHINode* phi = b_.CreatePHI(original.stack[i]->getType(), 2);
    phi->addIncoming(original.stack[i], original.block);
    phi->addIncoming(clone.stack[i], clone.block);
    stack_.push_back(phi);
  }
  dead_ = false;
}

void FunctionCodegen::open_loop(const wasm::Instr& in, bool restorable) {
  Ctrl c;
  c.kind = CtrlKind::Loop;
  block_signature(in.block, c.params, c.results);
  c.base = stack_.size() - c.params.size();
  Loop loop;
  if (sp_) {
    loop.point = point_index(in.offset, StablePointKind::LoopHeader);
    enter_loop(loop.point, restorable, innermost_without_calls(pc_, matching_end(pc_)));
    loop.polls = mc_.options().exact_points || !starts_with_call(pc_);
  }
  loop.header = block("loop");
  loop.phi_base = sp_ ? 0 : c.base;
  llvm::IRBuilder<> pb(loop.header);
  for (size_t h = loop.phi_base; h < stack_.size(); ++h)
    loop.phis.push_back(pb.CreatePHI(stack_[h]->getType(), 2));
  c.loop = int(loops_.size());
  loops_.push_back(loop);
  Loop& l = loops_.back();
  // The entry edge: every phi'd entry from the current stack.
  llvm::BasicBlock* from = b_.GetInsertBlock();
  for (size_t i = 0; i < l.phis.size(); ++i) l.phis[i]->addIncoming(stack_[l.phi_base + i], from);
  b_.CreateBr(l.header);
  b_.SetInsertPoint(l.header);
  for (size_t i = 0; i < l.phis.size(); ++i) stack_[l.phi_base + i] = l.phis[i];
  ctrls_.push_back(std::move(c));
  if (sp_) {
    loop_chain_.push_back(ctrls_.back().loop);
    emit_header_poll(loops_[size_t(ctrls_.back().loop)]);
  }
}

void FunctionCodegen::on_if(const wasm::Instr& in) {
  llvm::Value* cond = b_.CreateICmpNE(pop(), u32(0));
  Ctrl c;
  c.kind = CtrlKind::If;
  block_signature(in.block, c.params, c.results);
  c.base = stack_.size() - c.params.size();
  c.if_params.assign(stack_.begin() + c.base, stack_.end());
  c.entry_stack.assign(stack_.begin(), stack_.begin() + c.base);
  make_end_phis(c, "if_end");
  llvm::BasicBlock* then_block = block("then");
  c.else_block = block("else");
  b_.CreateCondBr(cond, then_block, c.else_block);
  b_.SetInsertPoint(then_block);
  ctrls_.push_back(std::move(c));
}

void FunctionCodegen::on_else() {
  Ctrl& c = ctrls_.back();
  if (!dead_) b_.CreateBr(edge_to(c));
  b_.SetInsertPoint(c.else_block);
  c.else_block = nullptr;
  stack_ = c.entry_stack;
  stack_.insert(stack_.end(), c.if_params.begin(), c.if_params.end());
  dead_ = false;
}

void FunctionCodegen::on_end() {
  Ctrl& c = ctrls_.back();
  if (c.kind == CtrlKind::Loop) {
    // Only the fall-through reaches a loop's end: straight-line code goes on.
    if (sp_) loop_chain_.pop_back();
    ctrls_.pop_back();
    return;
  }
  if (!dead_) b_.CreateBr(edge_to(c));
  if (c.else_block) { // `if` without `else`: the parameters pass through
    b_.SetInsertPoint(c.else_block);
    stack_ = c.entry_stack;
    stack_.insert(stack_.end(), c.if_params.begin(), c.if_params.end());
    b_.CreateBr(edge_to(c));
  }
  llvm::BasicBlock* end = c.end;
  std::vector<llvm::PHINode*> phis = c.end_phis;
  size_t base = c.phi_base;
  bool body = c.kind == CtrlKind::Body;
  ctrls_.pop_back();
  stack_.resize(base);
  if (llvm::pred_empty(end)) {
    for (llvm::PHINode* phi : phis) phi->eraseFromParent();
    end->eraseFromParent();
    dead_ = true;
    return;
  }
  b_.SetInsertPoint(end);
  for (llvm::PHINode* phi : phis) push(phi);
  dead_ = false;
  if (body) finish_return_block();
}

void FunctionCodegen::on_br(uint32_t depth) {
  b_.CreateBr(edge_to(label(depth)));
  dead_ = true;
}

void FunctionCodegen::on_br_if(uint32_t depth) {
  llvm::Value* cond = b_.CreateICmpNE(pop(), u32(0));
  llvm::BasicBlock* target = edge_to(label(depth));
  llvm::BasicBlock* cont = block("br_if_cont");
  b_.CreateCondBr(cond, target, cont);
  b_.SetInsertPoint(cont);
}

void FunctionCodegen::on_br_table(const wasm::Instr& in) {
  llvm::Value* index = pop();
  // One block per distinct target, so that each target's phis see one edge.
  std::map<uint32_t, llvm::BasicBlock*> by_depth;
  for (uint32_t depth : in.targets) by_depth.emplace(depth, nullptr);
  llvm::BasicBlock* from = b_.GetInsertBlock();
  for (auto& [depth, bb] : by_depth) {
    bb = block("br_table_case");
    b_.SetInsertPoint(bb);
    b_.CreateBr(edge_to(label(depth)));
  }
  b_.SetInsertPoint(from);
  llvm::SwitchInst* sw =
      b_.CreateSwitch(index, by_depth[in.targets.back()], unsigned(in.targets.size() - 1));
  for (size_t i = 0; i + 1 < in.targets.size(); ++i)
    sw->addCase(b_.getInt32(uint32_t(i)), by_depth[in.targets[i]]);
  dead_ = true;
}

// --- Translation ------------------------------------------------------------------

void FunctionCodegen::translate(const wasm::Instr& in) {
  // Every instruction, no default: one nobody handles does not compile.
  switch (in.op) {
#define WASM_BINARY(n)
#define WASM_UNARY(n)
#define WASM_LOAD(n) case Op::n:
#define WASM_STORE(n) case Op::n:
#define WASM_OTHER(n)
#include "wasm/op_classes.def"
    return memory_access(in);
#define WASM_BINARY(n) case Op::n:
#define WASM_UNARY(n) case Op::n:
#define WASM_LOAD(n)
#define WASM_STORE(n)
#define WASM_OTHER(n)
#include "wasm/op_classes.def"
    return numeric(in);
  case Op::I32Const:
    push(b_.getInt32(uint32_t(in.imm)));
    return;
  case Op::I64Const:
    push(b_.getInt64(in.imm));
    return;
  case Op::F32Const:
    push(b_.CreateBitCast(b_.getInt32(uint32_t(in.imm)), b_.getFloatTy()));
    return;
  case Op::F64Const:
    push(b_.CreateBitCast(b_.getInt64(in.imm), b_.getDoubleTy()));
    return;
  case Op::Nop:
    return;
  case Op::Unreachable: {
    llvm::CallInst* call =
        call_helper(Helper::Trap, {thread(), u32(uint32_t(TrapKind::Unreachable)), u32(func_index_),
                                   u32(in.offset), u32(0)});
    call->setDoesNotReturn();
    b_.CreateUnreachable();
    dead_ = true;
    return;
  }
  case Op::Block:
    return on_block(in);
  case Op::Loop:
    return on_loop(in);
  case Op::If:
    return on_if(in);
  case Op::Else:
    return on_else();
  case Op::End:
    return on_end();
  case Op::Br:
    return on_br(in.a);
  case Op::BrIf:
    return on_br_if(in.a);
  case Op::BrTable:
    return on_br_table(in);
  case Op::Return:
    return on_br(uint32_t(ctrls_.size() - 1));
  case Op::Call:
    return on_call(in);
  case Op::CallIndirect:
    return on_call_indirect(in);
  case Op::Drop:
    pop();
    return;
  case Op::Select:
  case Op::SelectT: {
    llvm::Value* c = b_.CreateICmpNE(pop(), u32(0));
    llvm::Value* v2 = pop();
    llvm::Value* v1 = pop();
    push(b_.CreateSelect(c, v1, v2));
    return;
  }
  case Op::LocalGet:
    push(b_.CreateLoad(local_types_[in.a], locals_[in.a]));
    return;
  case Op::LocalSet:
    b_.CreateStore(pop(), locals_[in.a]);
    return;
  case Op::LocalTee:
    b_.CreateStore(stack_.back(), locals_[in.a]);
    return;
  case Op::GlobalGet: {
    const wasm::GlobalType& g = wasm_.global_types[in.a];
    llvm::LoadInst* load = b_.CreateLoad(b_.getInt64Ty(), global_cell(in.a));
    load->setMetadata(llvm::LLVMContext::MD_tbaa, mc_.tags().global);
    if (!g.mut)
      load->setMetadata(llvm::LLVMContext::MD_invariant_load, llvm::MDNode::get(ctx_, {}));
    push(mc_.from_slot(b_, load, ir(g.type)));
    return;
  }
  case Op::GlobalSet: {
    llvm::StoreInst* store = b_.CreateStore(mc_.to_slot(b_, pop()), global_cell(in.a));
    store->setMetadata(llvm::LLVMContext::MD_tbaa, mc_.tags().global);
    return;
  }
  case Op::RefNull:
    push(b_.getInt64(0));
    return;
  case Op::RefIsNull:
    push(b_.CreateZExt(b_.CreateICmpEQ(pop(), b_.getInt64(0)), b_.getInt32Ty()));
    return;
  case Op::RefFunc: {
    llvm::Value* f =
        prologue_load(b_.getPtrTy(), instance_field(offsets::kInstFuncRefs), uint64_t(in.a) * 8);
    push(b_.CreatePtrToInt(f, b_.getInt64Ty()));
    return;
  }
  case Op::MemorySize:
  case Op::MemoryGrow:
  case Op::MemoryFill:
  case Op::MemoryCopy:
  case Op::MemoryInit:
  case Op::DataDrop:
  case Op::TableGet:
  case Op::TableSet:
  case Op::TableSize:
  case Op::TableGrow:
  case Op::TableFill:
  case Op::TableCopy:
  case Op::TableInit:
  case Op::ElemDrop:
    return on_memory_or_table(in);
  }
  throw Error(fmt::format("compiler: instruction {} at offset 0x{:x} out of range",
                          static_cast<unsigned>(in.op), in.offset));
}

// Memory and table instructions that are not accesses: mostly helper calls.
void FunctionCodegen::on_memory_or_table(const wasm::Instr& in) {
  llvm::Value* t = thread();
  llvm::Value* c = instance();
  switch (in.op) {
  case Op::MemorySize: {
    llvm::Value* size =
        mc_.load_runtime(b_, b_.getInt64Ty(), memory_bounds(), offsets::kBoundsSize, false);
    push(b_.CreateTrunc(b_.CreateLShr(size, 16), b_.getInt32Ty()));
    return;
  }
  case Op::MemoryGrow:
    push(call_helper(Helper::MemoryGrow, {t, c, pop()}));
    return;
  case Op::MemoryFill: {
    auto v = pop_n(3);
    call_helper(Helper::MemoryFill, {t, c, v[0], v[1], v[2]});
    return;
  }
  case Op::MemoryCopy: {
    auto v = pop_n(3);
    call_helper(Helper::MemoryCopy, {t, c, v[0], v[1], v[2]});
    return;
  }
  case Op::MemoryInit: {
    auto v = pop_n(3);
    call_helper(Helper::MemoryInit, {t, c, u32(in.a), v[0], v[1], v[2]});
    return;
  }
  case Op::DataDrop:
    call_helper(Helper::DataDrop, {t, c, u32(in.a)});
    return;
  case Op::TableGet:
    push(call_helper(Helper::TableGet, {t, c, u32(in.a), pop()}));
    return;
  case Op::TableSet: {
    auto v = pop_n(2);
    call_helper(Helper::TableSet, {t, c, u32(in.a), v[0], v[1]});
    return;
  }
  case Op::TableSize: {
    llvm::Value* bounds =
        prologue_load(b_.getPtrTy(), instance_field(offsets::kInstTables), uint64_t(in.a) * 8);
    llvm::Value* size = mc_.load_runtime(b_, b_.getInt64Ty(), bounds, offsets::kBoundsSize, false);
    push(b_.CreateTrunc(size, b_.getInt32Ty()));
    return;
  }
  case Op::TableGrow: {
    auto v = pop_n(2);
    push(call_helper(Helper::TableGrow, {t, c, u32(in.a), v[0], v[1]}));
    return;
  }
  case Op::TableFill: {
    auto v = pop_n(3);
    call_helper(Helper::TableFill, {t, c, u32(in.a), v[0], v[1], v[2]});
    return;
  }
  case Op::TableCopy: {
    auto v = pop_n(3);
    call_helper(Helper::TableCopy, {t, c, u32(in.a), u32(in.b), v[0], v[1], v[2]});
    return;
  }
  case Op::TableInit: {
    auto v = pop_n(3);
    call_helper(Helper::TableInit, {t, c, u32(in.b), u32(in.a), v[0], v[1], v[2]});
    return;
  }
  case Op::ElemDrop:
    call_helper(Helper::ElemDrop, {t, c, u32(in.a)});
    return;
  default: // translate() sends nothing else here
    throw Error(fmt::format("compiler: {} at offset 0x{:x} is not a memory or table instruction",
                            wasm::op_name(in.op), in.offset));
  }
}

// --- Memory ----------------------------------------------------------------------

llvm::Value* FunctionCodegen::effective_pointer(llvm::Value* addr, uint64_t offset, unsigned size) {
  // At most 2^33 - 2: no wrap, and inside the guard reservation. With wide
  // addresses and no offset, an address that is a tree of i32.adds is
  // summed in 64 bits from its zero-extended terms: the mirrored memory's
  // views make that exact (runtime/memory.h). With an offset it would not
  // be: an out-of-bounds pointer plus the offset could land in a view.
  // With wide addresses, an access without offset is a candidate for
  // WidenAddresses (backend.cpp), once locals are values.
  llvm::Value* ea = b_.CreateZExt(addr, b_.getInt64Ty());
  if (wide_addresses_ && offset == 0 && llvm::isa<llvm::Instruction>(ea))
    mark(llvm::cast<llvm::Instruction>(ea), kWideAddress);
  if (offset) ea = b_.CreateAdd(ea, b_.getInt64(offset), "", /*HasNUW=*/true, /*HasNSW=*/true);
  llvm::Value* base = mem_base_;
  if (mc_.options().bounds_checks) {
    llvm::Value* bounds = memory_bounds();
    llvm::Value* mem_size =
        mc_.load_runtime(b_, b_.getInt64Ty(), bounds, offsets::kBoundsSize, false);
    llvm::Value* end = b_.CreateAdd(ea, b_.getInt64(size), "", true, true);
    trap_if(b_.CreateICmpUGT(end, mem_size), TrapKind::MemoryOutOfBounds);
    base = mc_.load_runtime(b_, b_.getPtrTy(), bounds, offsets::kBoundsBase, false);
  }
  return b_.CreateGEP(b_.getInt8Ty(), base, ea);
}

llvm::Value* FunctionCodegen::bswap_if_big_endian(llvm::Value* v) {
  if (!mc_.options().target.big_endian() || v->getType()->isIntegerTy(8)) return v;
  return b_.CreateUnaryIntrinsic(llvm::Intrinsic::bswap, v);
}

struct Access {
  unsigned bytes;
  ValType type; // of the value on the stack
  bool sign;
  bool store;
};

// Every load and store, no default: a new one does not compile until it is
// described here.
Access access_of(Op op) {
  switch (op) {
  case Op::I32Load: return {4, ValType::I32, false, false};
  case Op::I64Load: return {8, ValType::I64, false, false};
  case Op::F32Load: return {4, ValType::F32, false, false};
  case Op::F64Load: return {8, ValType::F64, false, false};
  case Op::I32Load8S: return {1, ValType::I32, true, false};
  case Op::I32Load8U: return {1, ValType::I32, false, false};
  case Op::I32Load16S: return {2, ValType::I32, true, false};
  case Op::I32Load16U: return {2, ValType::I32, false, false};
  case Op::I64Load8S: return {1, ValType::I64, true, false};
  case Op::I64Load8U: return {1, ValType::I64, false, false};
  case Op::I64Load16S: return {2, ValType::I64, true, false};
  case Op::I64Load16U: return {2, ValType::I64, false, false};
  case Op::I64Load32S: return {4, ValType::I64, true, false};
  case Op::I64Load32U: return {4, ValType::I64, false, false};
  case Op::I32Store: return {4, ValType::I32, false, true};
  case Op::I64Store: return {8, ValType::I64, false, true};
  case Op::F32Store: return {4, ValType::F32, false, true};
  case Op::F64Store: return {8, ValType::F64, false, true};
  case Op::I32Store8: return {1, ValType::I32, false, true};
  case Op::I32Store16: return {2, ValType::I32, false, true};
  case Op::I64Store8: return {1, ValType::I64, false, true};
  case Op::I64Store16: return {2, ValType::I64, false, true};
  case Op::I64Store32: return {4, ValType::I64, false, true};
#define WASM_BINARY(n) case Op::n:
#define WASM_UNARY(n) case Op::n:
#define WASM_LOAD(n)
#define WASM_STORE(n)
#define WASM_OTHER(n) case Op::n:
#include "wasm/op_classes.def"
    break;
  }
  throw Error(fmt::format("compiler: {} is not a memory access", wasm::op_name(op)));
}

void FunctionCodegen::memory_access(const wasm::Instr& in) {
  const Access access = access_of(in.op);
  const Access* a = &access;
  llvm::Type* mem_type = b_.getIntNTy(a->bytes * 8);
  llvm::Type* value_type = ir(a->type);
  if (a->store) {
    llvm::Value* v = pop();
    llvm::Value* p = effective_pointer(pop(), in.imm, a->bytes);
    if (!v->getType()->isIntegerTy()) v = b_.CreateBitCast(v, b_.getIntNTy(a->bytes * 8));
    if (v->getType() != mem_type) v = b_.CreateTrunc(v, mem_type);
    llvm::StoreInst* store = b_.CreateAlignedStore(bswap_if_big_endian(v), p, llvm::Align(1));
    store->setMetadata(llvm::LLVMContext::MD_tbaa, mc_.tags().memory);
    return;
  }
  llvm::Value* p = effective_pointer(pop(), in.imm, a->bytes);
  llvm::LoadInst* load = b_.CreateAlignedLoad(mem_type, p, llvm::Align(1));
  load->setMetadata(llvm::LLVMContext::MD_tbaa, mc_.tags().memory);
  // A dropped load must still trap when out of bounds; keep it.
  if (next_ && next_->op == Op::Drop) load->setVolatile(true);
  llvm::Value* v = bswap_if_big_endian(load);
  if (value_type->isFloatingPointTy())
    v = b_.CreateBitCast(v, value_type);
  else if (value_type != mem_type)
    v = a->sign ? b_.CreateSExt(v, value_type) : b_.CreateZExt(v, value_type);
  push(v);
}

// --- Numeric instructions --------------------------------------------------------------

llvm::Value* FunctionCodegen::opaque(llvm::Value* v) {
  llvm::Type* type = v->getType();
  llvm::Type* bits = b_.getIntNTy(type->getPrimitiveSizeInBits());
  auto* fn_type = llvm::FunctionType::get(bits, {bits}, false);
  llvm::InlineAsm* asm_ = llvm::InlineAsm::get(fn_type, "", "=r,0", /*hasSideEffects=*/false);
  return b_.CreateBitCast(b_.CreateCall(fn_type, asm_, {b_.CreateBitCast(v, bits)}), type);
}

llvm::Value* FunctionCodegen::opaque_identity(llvm::Value* v) {
  auto* c = llvm::dyn_cast<llvm::ConstantFP>(v);
  if (!c) return v;
  const llvm::APFloat& f = c->getValueAPF();
  llvm::APFloat one(f.getSemantics(), 1);
  bool identity = f.isZero() || llvm::APFloat(llvm::abs(f)).compare(one) == llvm::APFloat::cmpEqual;
  return identity ? opaque(v) : v;
}

llvm::Value* FunctionCodegen::trunc_checked(llvm::Value* x, llvm::Type* to, bool is_signed) {
  llvm::Type* ft = x->getType();
  trap_if(b_.CreateFCmpUNO(x, x), TrapKind::InvalidConversion);
  const unsigned bits = to->getIntegerBitWidth();
  const double two_n = std::ldexp(1.0, int(bits));
  llvm::Value* in_range;
  if (is_signed) {
    const double half = two_n / 2; // 2^(n-1)
    llvm::Value* hi = b_.CreateFCmpOLT(x, llvm::ConstantFP::get(ft, half));
    llvm::Value* lo;
    if (bits == 32 && ft->isDoubleTy()) // (-2^31-1, -2^31) truncates into range
      lo = b_.CreateFCmpOGT(x, llvm::ConstantFP::get(ft, -half - 1));
    else
      lo = b_.CreateFCmpOGE(x, llvm::ConstantFP::get(ft, -half));
    in_range = b_.CreateAnd(lo, hi);
  } else {
    in_range = b_.CreateAnd(b_.CreateFCmpOGT(x, llvm::ConstantFP::get(ft, -1.0)),
                            b_.CreateFCmpOLT(x, llvm::ConstantFP::get(ft, two_n)));
  }
  trap_if(b_.CreateNot(in_range), TrapKind::IntegerOverflow);
  return is_signed ? b_.CreateFPToSI(x, to) : b_.CreateFPToUI(x, to);
}

void FunctionCodegen::numeric(const wasm::Instr& in) {
  llvm::Type* i32 = b_.getInt32Ty();
  llvm::Type* i64 = b_.getInt64Ty();
  llvm::Type* f32 = b_.getFloatTy();
  llvm::Type* f64 = b_.getDoubleTy();
  auto bin = [&](auto fn) {
    llvm::Value* rhs = pop();
    llvm::Value* lhs = pop();
    push(fn(lhs, rhs));
  };
  auto un = [&](auto fn) {
    push(fn(pop()));
  };
  auto cmp = [&](llvm::CmpInst::Predicate p) {
    return bin(
        [&](llvm::Value* a, llvm::Value* c) { return b_.CreateZExt(b_.CreateCmp(p, a, c), i32); });
  };
  auto intrinsic1 = [&](llvm::Intrinsic::ID id) {
    return un([&](llvm::Value* a) { return b_.CreateUnaryIntrinsic(id, a); });
  };
  // min/max: a NaN operand gives an arithmetic (quiet) NaN, which
  // llvm.minimum does not promise for a signalling one.
  auto min_max = [&](llvm::Intrinsic::ID id) {
    return bin([&](llvm::Value* a, llvm::Value* c) {
      llvm::Value* r = b_.CreateBinaryIntrinsic(id, a, c);
      return b_.CreateSelect(b_.CreateFCmpUNO(a, c), b_.CreateFAdd(a, c), r);
    });
  };
  auto intrinsic2 = [&](llvm::Intrinsic::ID id) {
    return bin([&](llvm::Value* a, llvm::Value* c) { return b_.CreateBinaryIntrinsic(id, a, c); });
  };
  auto arith = [&](llvm::Instruction::BinaryOps op) {
    return bin([&](llvm::Value* a, llvm::Value* c) {
      return b_.CreateBinOp(op, opaque_identity(a), opaque_identity(c));
    });
  };
  auto bitcount = [&](llvm::Intrinsic::ID id) {
    return un([&](llvm::Value* a) -> llvm::Value* {
      if (id == llvm::Intrinsic::ctpop) return b_.CreateUnaryIntrinsic(id, a);
      return b_.CreateBinaryIntrinsic(id, a, b_.getFalse()); // defined for zero
    });
  };
  auto shift = [&](llvm::Instruction::BinaryOps op) {
    return bin([&](llvm::Value* a, llvm::Value* c) {
      unsigned w = a->getType()->getIntegerBitWidth();
      return b_.CreateBinOp(op, a, b_.CreateAnd(c, llvm::ConstantInt::get(a->getType(), w - 1)));
    });
  };
  auto rotate = [&](llvm::Intrinsic::ID id) {
    return bin([&](llvm::Value* a, llvm::Value* c) {
      return b_.CreateIntrinsic(id, {a->getType()}, {a, a, c});
    });
  };
  auto divide = [&](bool is_signed, bool rem) {
    return bin([&](llvm::Value* a, llvm::Value* c) -> llvm::Value* {
      llvm::Type* t = a->getType();
      trap_if(b_.CreateICmpEQ(c, llvm::ConstantInt::get(t, 0)), TrapKind::IntegerDivideByZero);
      if (!is_signed) return rem ? b_.CreateURem(a, c) : b_.CreateUDiv(a, c);
      llvm::Value* minus_one = b_.CreateICmpEQ(c, llvm::ConstantInt::getAllOnesValue(t));
      if (rem) // x % -1 is 0; keep the hardware away from INT_MIN % -1
        return b_.CreateSRem(a, b_.CreateSelect(minus_one, llvm::ConstantInt::get(t, 1), c));
      unsigned w = t->getIntegerBitWidth();
      llvm::Value* min = llvm::ConstantInt::get(t, llvm::APInt::getSignedMinValue(w));
      trap_if(b_.CreateAnd(minus_one, b_.CreateICmpEQ(a, min)), TrapKind::IntegerOverflow);
      return b_.CreateSDiv(a, c);
    });
  };
  auto cast = [&](llvm::Instruction::CastOps op, llvm::Type* to) {
    return un([&](llvm::Value* a) { return b_.CreateCast(op, a, to); });
  };
  auto extend_from = [&](unsigned bits) {
    return un([&](llvm::Value* a) {
      return b_.CreateSExt(b_.CreateTrunc(a, b_.getIntNTy(bits)), a->getType());
    });
  };
  auto trunc = [&](llvm::Type* to, bool is_signed) {
    return un([&](llvm::Value* a) { return trunc_checked(a, to, is_signed); });
  };
  auto trunc_sat = [&](llvm::Type* to, bool is_signed) {
    return un([&](llvm::Value* a) {
      return b_.CreateIntrinsic(is_signed ? llvm::Intrinsic::fptosi_sat
                                          : llvm::Intrinsic::fptoui_sat,
                                {to, a->getType()}, {a});
    });
  };
  using P = llvm::CmpInst::Predicate;
  namespace I = llvm::Intrinsic;
  // Every numeric instruction, no default: a new one does not compile until
  // it is handled here.
  switch (in.op) {
  case Op::I32Eqz:
  case Op::I64Eqz:
    return un([&](llvm::Value* a) {
      return b_.CreateZExt(b_.CreateICmpEQ(a, llvm::ConstantInt::get(a->getType(), 0)), i32);
    });
  case Op::I32Eq:
  case Op::I64Eq:
    return cmp(P::ICMP_EQ);
  case Op::I32Ne:
  case Op::I64Ne:
    return cmp(P::ICMP_NE);
  case Op::I32LtS:
  case Op::I64LtS:
    return cmp(P::ICMP_SLT);
  case Op::I32LtU:
  case Op::I64LtU:
    return cmp(P::ICMP_ULT);
  case Op::I32GtS:
  case Op::I64GtS:
    return cmp(P::ICMP_SGT);
  case Op::I32GtU:
  case Op::I64GtU:
    return cmp(P::ICMP_UGT);
  case Op::I32LeS:
  case Op::I64LeS:
    return cmp(P::ICMP_SLE);
  case Op::I32LeU:
  case Op::I64LeU:
    return cmp(P::ICMP_ULE);
  case Op::I32GeS:
  case Op::I64GeS:
    return cmp(P::ICMP_SGE);
  case Op::I32GeU:
  case Op::I64GeU:
    return cmp(P::ICMP_UGE);
  case Op::F32Eq:
  case Op::F64Eq:
    return cmp(P::FCMP_OEQ);
  case Op::F32Ne:
  case Op::F64Ne:
    return cmp(P::FCMP_UNE);
  case Op::F32Lt:
  case Op::F64Lt:
    return cmp(P::FCMP_OLT);
  case Op::F32Gt:
  case Op::F64Gt:
    return cmp(P::FCMP_OGT);
  case Op::F32Le:
  case Op::F64Le:
    return cmp(P::FCMP_OLE);
  case Op::F32Ge:
  case Op::F64Ge:
    return cmp(P::FCMP_OGE);
  case Op::I32Clz:
  case Op::I64Clz:
    return bitcount(I::ctlz);
  case Op::I32Ctz:
  case Op::I64Ctz:
    return bitcount(I::cttz);
  case Op::I32Popcnt:
  case Op::I64Popcnt:
    return bitcount(I::ctpop);
  case Op::I32Add:
  case Op::I64Add:
    return bin([&](auto a, auto c) { return b_.CreateAdd(a, c); });
  case Op::I32Sub:
  case Op::I64Sub:
    return bin([&](auto a, auto c) { return b_.CreateSub(a, c); });
  case Op::I32Mul:
  case Op::I64Mul:
    return bin([&](auto a, auto c) { return b_.CreateMul(a, c); });
  case Op::I32DivS:
  case Op::I64DivS:
    return divide(true, false);
  case Op::I32DivU:
  case Op::I64DivU:
    return divide(false, false);
  case Op::I32RemS:
  case Op::I64RemS:
    return divide(true, true);
  case Op::I32RemU:
  case Op::I64RemU:
    return divide(false, true);
  case Op::I32And:
  case Op::I64And:
    return bin([&](auto a, auto c) { return b_.CreateAnd(a, c); });
  case Op::I32Or:
  case Op::I64Or:
    return bin([&](auto a, auto c) { return b_.CreateOr(a, c); });
  case Op::I32Xor:
  case Op::I64Xor:
    return bin([&](auto a, auto c) { return b_.CreateXor(a, c); });
  case Op::I32Shl:
  case Op::I64Shl:
    return shift(llvm::Instruction::Shl);
  case Op::I32ShrS:
  case Op::I64ShrS:
    return shift(llvm::Instruction::AShr);
  case Op::I32ShrU:
  case Op::I64ShrU:
    return shift(llvm::Instruction::LShr);
  case Op::I32Rotl:
  case Op::I64Rotl:
    return rotate(I::fshl);
  case Op::I32Rotr:
  case Op::I64Rotr:
    return rotate(I::fshr);
  case Op::F32Abs:
  case Op::F64Abs:
    return intrinsic1(I::fabs);
  case Op::F32Neg:
  case Op::F64Neg:
    return un([&](llvm::Value* a) { return b_.CreateFNeg(a); });
  case Op::F32Ceil:
  case Op::F64Ceil:
    return intrinsic1(I::ceil);
  case Op::F32Floor:
  case Op::F64Floor:
    return intrinsic1(I::floor);
  case Op::F32Trunc:
  case Op::F64Trunc:
    return intrinsic1(I::trunc);
  case Op::F32Nearest:
  case Op::F64Nearest:
    return intrinsic1(I::roundeven);
  case Op::F32Sqrt:
  case Op::F64Sqrt:
    return intrinsic1(I::sqrt);
  case Op::F32Add:
  case Op::F64Add:
    return arith(llvm::Instruction::FAdd);
  case Op::F32Sub:
  case Op::F64Sub:
    return arith(llvm::Instruction::FSub);
  case Op::F32Mul:
  case Op::F64Mul:
    return arith(llvm::Instruction::FMul);
  case Op::F32Div:
  case Op::F64Div:
    return arith(llvm::Instruction::FDiv);
  case Op::F32Min:
  case Op::F64Min:
    return min_max(I::minimum);
  case Op::F32Max:
  case Op::F64Max:
    return min_max(I::maximum);
  case Op::F32Copysign:
  case Op::F64Copysign:
    return intrinsic2(I::copysign);
  case Op::I32WrapI64:
    return cast(llvm::Instruction::Trunc, i32);
  case Op::I32TruncF32S:
  case Op::I32TruncF64S:
    return trunc(i32, true);
  case Op::I32TruncF32U:
  case Op::I32TruncF64U:
    return trunc(i32, false);
  case Op::I64TruncF32S:
  case Op::I64TruncF64S:
    return trunc(i64, true);
  case Op::I64TruncF32U:
  case Op::I64TruncF64U:
    return trunc(i64, false);
  case Op::I32TruncSatF32S:
  case Op::I32TruncSatF64S:
    return trunc_sat(i32, true);
  case Op::I32TruncSatF32U:
  case Op::I32TruncSatF64U:
    return trunc_sat(i32, false);
  case Op::I64TruncSatF32S:
  case Op::I64TruncSatF64S:
    return trunc_sat(i64, true);
  case Op::I64TruncSatF32U:
  case Op::I64TruncSatF64U:
    return trunc_sat(i64, false);
  case Op::I64ExtendI32S:
    return cast(llvm::Instruction::SExt, i64);
  case Op::I64ExtendI32U:
    return cast(llvm::Instruction::ZExt, i64);
  case Op::F32ConvertI32S:
  case Op::F32ConvertI64S:
    return cast(llvm::Instruction::SIToFP, f32);
  case Op::F32ConvertI32U:
  case Op::F32ConvertI64U:
    return cast(llvm::Instruction::UIToFP, f32);
  case Op::F64ConvertI32S:
  case Op::F64ConvertI64S:
    return cast(llvm::Instruction::SIToFP, f64);
  case Op::F64ConvertI32U:
  case Op::F64ConvertI64U:
    return cast(llvm::Instruction::UIToFP, f64);
  case Op::F32DemoteF64: // demote(promote(x)) must still quiet a signalling x
    return un([&](llvm::Value* a) {
      if (llvm::isa<llvm::FPExtInst>(a)) a = opaque(a);
      return b_.CreateFPTrunc(a, f32);
    });
  case Op::F64PromoteF32:
    return cast(llvm::Instruction::FPExt, f64);
  case Op::I32ReinterpretF32:
    return cast(llvm::Instruction::BitCast, i32);
  case Op::I64ReinterpretF64:
    return cast(llvm::Instruction::BitCast, i64);
  case Op::F32ReinterpretI32:
    return cast(llvm::Instruction::BitCast, f32);
  case Op::F64ReinterpretI64:
    return cast(llvm::Instruction::BitCast, f64);
  case Op::I32Extend8S:
  case Op::I64Extend8S:
    return extend_from(8);
  case Op::I32Extend16S:
  case Op::I64Extend16S:
    return extend_from(16);
  case Op::I64Extend32S:
    return extend_from(32);
#define WASM_BINARY(n)
#define WASM_UNARY(n)
#define WASM_LOAD(n) case Op::n:
#define WASM_STORE(n) case Op::n:
#define WASM_OTHER(n) case Op::n:
#include "wasm/op_classes.def"
    break;
  }
  throw Error(fmt::format("compiler: {} at offset 0x{:x} is not a numeric instruction",
                          wasm::op_name(in.op), in.offset));
}

// --- Calls ------------------------------------------------------------------------------

void FunctionCodegen::on_call(const wasm::Instr& in) {
  const wasm::FuncType& ft = wasm_.func_type(in.a);
  const bool imported = wasm_.is_imported_func(in.a);
  std::vector<llvm::Value*> args = pop_n(ft.params.size());
  std::vector<llvm::Value*> below = stack_;
  const uint32_t point = sp_ ? point_index(in.offset, StablePointKind::CallSite) : 0;

  // The callee: direct for the module's own functions, else its VmFunc.
  auto callee_of = [&](llvm::Value*& entry, llvm::Value*& cctx) {
    llvm::Value* funcs = instance_field(offsets::kInstFuncs);
    entry = prologue_load(b_.getPtrTy(), funcs, uint64_t(in.a) * offsets::kVmFuncSize);
    cctx = prologue_load(b_.getPtrTy(), funcs, uint64_t(in.a) * offsets::kVmFuncSize + 8);
  };
  auto issue = [&](const std::vector<llvm::Value*>& call_args) -> llvm::Value* {
    std::vector<llvm::Value*> full = {thread(), instance()};
    if (imported) {
      llvm::Value *entry, *cctx;
      callee_of(entry, cctx);
      full[1] = cctx;
      full.insert(full.end(), call_args.begin(), call_args.end());
      return b_.CreateCall(mc_.function_type(ft), entry, full);
    }
    full.insert(full.end(), call_args.begin(), call_args.end());
    return b_.CreateCall(mc_.defined_function(in.a), full);
  };
  auto push_results = [&](llvm::Value* r) {
    if (ft.results.size() == 1) push(r);
    for (unsigned i = 0; ft.results.size() > 1 && i < ft.results.size(); ++i)
      push(b_.CreateExtractValue(r, {i}));
  };
  if (!sp_) {
    push_results(issue(args));
    return;
  }

  // P_call: phis for the operands below the arguments and the arguments,
  // entered normally and by rewinding (which passes zeros: the callee
  // rewinds itself and ignores them).
  std::vector<llvm::Value*> merged = below;
  merged.insert(merged.end(), args.begin(), args.end());
  // An imported callee may be a host function: a suspended host call is
  // re-issued with its saved arguments (restore_host).
  llvm::BasicBlock* call_block = block("call");
  llvm::BasicBlock* from = b_.GetInsertBlock();
  b_.CreateBr(call_block);
  b_.SetInsertPoint(call_block);
  std::vector<llvm::PHINode*> phis;
  for (llvm::Value* v : merged) {
    llvm::PHINode* phi = b_.CreatePHI(v->getType(), 3);
    phi->addIncoming(v, from);
    phis.push_back(phi);
  }
  std::vector<llvm::Value*> call_args(phis.begin() + below.size(), phis.end());
  llvm::Value* result = issue(call_args);
  llvm::Value* unwinding =
      mc_.load_runtime(b_, b_.getInt32Ty(), thread(), offsets::kThreadUnwinding, false);
  llvm::BasicBlock* unwind = block("call_unwind");
  llvm::BasicBlock* cont = block("call_cont");
  emit_unwind_check(unwinding, unwind, cont);

  b_.SetInsertPoint(unwind);
  std::vector<llvm::Value*> saved(phis.begin(), phis.begin() + below.size());
  if (imported) saved.insert(saved.end(), phis.begin() + below.size(), phis.end());
  emit_unwind(point, saved);

  // Rewinding to this call: reload the operands below the arguments.
  {
    llvm::BasicBlock* restore = begin_restore(point << 1, "restore_call", loop_chain_);
    std::vector<llvm::Type*> types;
    for (llvm::Value* v : below) types.push_back(v->getType());
    std::vector<llvm::Value*> values = emit_reload(point, types);
    for (llvm::Value* v : args) values.push_back(llvm::Constant::getNullValue(v->getType()));
    for (size_t i = 0; i < phis.size(); ++i) phis[i]->addIncoming(values[i], restore);
    b_.CreateBr(call_block);
  }
  if (imported) add_host_call_restore(point, phis, call_block);

  b_.SetInsertPoint(cont);
  stack_.assign(phis.begin(), phis.begin() + below.size());
  push_results(result);
}

void FunctionCodegen::on_call_indirect(const wasm::Instr& in) {
  const wasm::FuncType& ft = wasm_.types[in.a];
  llvm::Value* index = pop();
  std::vector<llvm::Value*> args = pop_n(ft.params.size());
  std::vector<llvm::Value*> below = stack_;
  const uint32_t point = sp_ ? point_index(in.offset, StablePointKind::CallSite) : 0;

  // With stable points the whole instruction can be re-entered (a host
  // call re-issued): `start` merges the operands, the arguments and the
  // index from the normal path and from restore_host.
  std::vector<llvm::PHINode*> start_phis;
  llvm::BasicBlock* start = nullptr;
  if (sp_) {
    std::vector<llvm::Value*> merged = below;
    merged.insert(merged.end(), args.begin(), args.end());
    merged.push_back(index);
    start = block("call_indirect");
    llvm::BasicBlock* from = b_.GetInsertBlock();
    b_.CreateBr(start);
    b_.SetInsertPoint(start);
    for (llvm::Value* v : merged) {
      llvm::PHINode* phi = b_.CreatePHI(v->getType(), 2);
      phi->addIncoming(v, from);
      start_phis.push_back(phi);
    }
    below.assign(start_phis.begin(), start_phis.begin() + below.size());
    args.assign(start_phis.begin() + below.size(), start_phis.end() - 1);
    index = start_phis.back();
  }

  // Table bounds, null, signature: the interpreter's checks and messages.
  llvm::Value* bounds =
      prologue_load(b_.getPtrTy(), instance_field(offsets::kInstTables), uint64_t(in.b) * 8);
  llvm::Value* size = mc_.load_runtime(b_, b_.getInt64Ty(), bounds, offsets::kBoundsSize, false);
  llvm::Value* index64 = b_.CreateZExt(index, b_.getInt64Ty());
  trap_if(b_.CreateICmpUGE(index64, size), TrapKind::IndirectCallOutOfRange, index);
  llvm::Value* data = mc_.load_runtime(b_, b_.getPtrTy(), bounds, offsets::kBoundsBase, false);
  llvm::LoadInst* elem =
      b_.CreateLoad(b_.getInt64Ty(), b_.CreateInBoundsGEP(b_.getInt64Ty(), data, index64));
  elem->setMetadata(llvm::LLVMContext::MD_tbaa, mc_.tags().table);
  trap_if(b_.CreateICmpEQ(elem, b_.getInt64(0)), TrapKind::IndirectCallNull, index);
  llvm::Value* func = b_.CreateIntToPtr(elem, b_.getPtrTy());
  llvm::Value* type_id = mc_.load_runtime(b_, b_.getInt32Ty(), func, offsets::kFuncTypeId, true);
  llvm::Value* expected =
      prologue_load(b_.getInt32Ty(), instance_field(offsets::kInstTypeIds), uint64_t(in.a) * 4);
  trap_if(b_.CreateICmpNE(type_id, expected), TrapKind::IndirectCallTypeMismatch);
  llvm::Value* vmfunc = mc_.load_runtime(b_, b_.getPtrTy(), func, offsets::kFuncCode, true);
  llvm::Value* entry = mc_.load_runtime(b_, b_.getPtrTy(), vmfunc, 0, true);
  llvm::Value* cctx = mc_.load_runtime(b_, b_.getPtrTy(), vmfunc, 8, true);

  auto push_results = [&](llvm::Value* r) {
    if (ft.results.size() == 1) push(r);
    for (unsigned i = 0; ft.results.size() > 1 && i < ft.results.size(); ++i)
      push(b_.CreateExtractValue(r, {i}));
  };
  if (!sp_) {
    std::vector<llvm::Value*> full = {thread(), cctx};
    full.insert(full.end(), args.begin(), args.end());
    push_results(b_.CreateCall(mc_.function_type(ft), entry, full));
    return;
  }

  // P_call: the callee and every operand, from the lookup or from rewinding
  // (the callee named by the saved frame below, zero arguments).
  std::vector<llvm::Value*> merged = below;
  merged.insert(merged.end(), args.begin(), args.end());
  merged.push_back(index);
  merged.push_back(entry);
  merged.push_back(cctx);
  llvm::BasicBlock* call_block = block("call");
  llvm::BasicBlock* from = b_.GetInsertBlock();
  b_.CreateBr(call_block);
  b_.SetInsertPoint(call_block);
  std::vector<llvm::PHINode*> phis;
  for (llvm::Value* v : merged) {
    llvm::PHINode* phi = b_.CreatePHI(v->getType(), 2);
    phi->addIncoming(v, from);
    phis.push_back(phi);
  }
  const size_t n_below = below.size();
  const size_t n_args = args.size();
  std::vector<llvm::Value*> full = {thread(), phis[n_below + n_args + 2]};
  full.insert(full.end(), phis.begin() + n_below, phis.begin() + n_below + n_args);
  llvm::Value* result = b_.CreateCall(mc_.function_type(ft), phis[n_below + n_args + 1], full);
  llvm::Value* unwinding =
      mc_.load_runtime(b_, b_.getInt32Ty(), thread(), offsets::kThreadUnwinding, false);
  llvm::BasicBlock* unwind = block("call_unwind");
  llvm::BasicBlock* cont = block("call_cont");
  emit_unwind_check(unwinding, unwind, cont);

  b_.SetInsertPoint(unwind);
  emit_unwind(point, std::vector<llvm::Value*>(phis.begin(), phis.begin() + n_below + n_args + 1));

  {
    llvm::BasicBlock* restore = begin_restore(point << 1, "restore_call", loop_chain_);
    std::vector<llvm::Type*> types;
    for (size_t i = 0; i < n_below; ++i) types.push_back(phis[i]->getType());
    std::vector<llvm::Value*> values = emit_reload(point, types);
    for (size_t i = 0; i < n_args; ++i)
      values.push_back(llvm::Constant::getNullValue(phis[n_below + i]->getType()));
    values.push_back(u32(0));
    llvm::Value* callee = call_helper(Helper::RewindCallee, {thread()});
    values.push_back(mc_.load_runtime(b_, b_.getPtrTy(), callee, 0, false));
    values.push_back(mc_.load_runtime(b_, b_.getPtrTy(), callee, 8, false));
    for (size_t i = 0; i < phis.size(); ++i) phis[i]->addIncoming(values[i], restore);
    b_.CreateBr(call_block);
  }
  add_host_call_restore(point, start_phis, start);

  b_.SetInsertPoint(cont);
  stack_.assign(phis.begin(), phis.begin() + n_below);
  push_results(result);
}

// --- Stable points ---------------------------------------------------------------------

uint32_t FunctionCodegen::point_index(uint32_t offset, StablePointKind kind) const {
  const wasm::StablePoint* p = fn_.info.find(offset, kind);
  if (!p)
    throw Error(fmt::format("compiler: no stable point recorded at offset 0x{:x} in {}", offset,
                            wasm_.func_name(func_index_)));
  return static_cast<uint32_t>(p - fn_.info.stable_points.data());
}

llvm::Value* FunctionCodegen::poll_pending() {
  // The flags byte of VmThread::limit_and_flags. Volatile rather than
  // atomic: every poll reads it afresh, and x86 folds the load into the
  // compare (byte loads are atomic everywhere).
  const uint32_t at = offsets::flag_byte(mc_.options().target.big_endian());
  llvm::LoadInst* flag =
      b_.CreateLoad(b_.getInt8Ty(), b_.CreateConstInBoundsGEP1_64(b_.getInt8Ty(), thread(), at));
  flag->setVolatile(true);
  flag->setMetadata(llvm::LLVMContext::MD_tbaa, mc_.tags().runtime);
  return b_.CreateICmpNE(flag, b_.getInt8(0));
}

void FunctionCodegen::emit_return_undef() {
  llvm::Type* r = f_->getReturnType();
  if (r->isVoidTy())
    b_.CreateRetVoid();
  else
    b_.CreateRet(llvm::UndefValue::get(r));
}

// Rewinding to a host call being re-issued: reload every operand of the
// call (arguments included) into `phis` and issue it again from `target`.
void FunctionCodegen::add_host_call_restore(uint32_t point, const std::vector<llvm::PHINode*>& phis,
                                            llvm::BasicBlock* target) {
  llvm::BasicBlock* restore = begin_restore((point << 1) | 1, "restore_host_call", loop_chain_);
  std::vector<llvm::Type*> types;
  for (llvm::PHINode* phi : phis) types.push_back(phi->getType());
  std::vector<llvm::Value*> values = emit_reload(point, types);
  call_helper(Helper::RewindFinish, {thread(), u32(0)});
  for (size_t i = 0; i < phis.size(); ++i) phis[i]->addIncoming(values[i], restore);
  b_.CreateBr(target);
}

void FunctionCodegen::emit_unwind(uint32_t point, const std::vector<llvm::Value*>& values) {
  const size_t n_locals = locals_.size();
  llvm::Value* count = u32(n_locals + values.size());
  llvm::Value* frame =
      call_helper(Helper::SaveFrame, {thread(), instance(), u32(func_index_), u32(point), count});
  auto store = [&](size_t i, llvm::Value* v) {
    llvm::StoreInst* s = b_.CreateStore(mc_.to_slot(b_, v),
                                        b_.CreateConstInBoundsGEP1_64(b_.getInt64Ty(), frame, i));
    s->setMetadata(llvm::LLVMContext::MD_tbaa, mc_.tags().runtime);
  };
  for (size_t i = 0; i < n_locals; ++i)
    if (liveness_->live(point, uint32_t(i))) store(i, b_.CreateLoad(local_types_[i], locals_[i]));
  for (size_t i = 0; i < values.size(); ++i) store(n_locals + i, values[i]);
  emit_return_undef();
}

std::vector<llvm::Value*> FunctionCodegen::emit_reload(uint32_t point,
                                                       const std::vector<llvm::Type*>& types) {
  llvm::LoadInst* frame =
      mc_.load_runtime(b_, b_.getPtrTy(), thread(), offsets::kThreadRewindValues, false);
  mark(frame, kRewindTarget);
  auto load = [&](size_t i, llvm::Type* t) {
    llvm::LoadInst* s =
        b_.CreateLoad(b_.getInt64Ty(), b_.CreateConstInBoundsGEP1_64(b_.getInt64Ty(), frame, i));
    s->setMetadata(llvm::LLVMContext::MD_tbaa, mc_.tags().runtime);
    return mc_.from_slot(b_, s, t);
  };
  const size_t n_locals = locals_.size();
  for (size_t i = 0; i < n_locals; ++i)
    if (liveness_->live(point, uint32_t(i))) b_.CreateStore(load(i, local_types_[i]), locals_[i]);
  std::vector<llvm::Value*> out;
  for (size_t i = 0; i < types.size(); ++i) out.push_back(load(n_locals + i, types[i]));
  return out;
}

// One compare for the stack limit and the flags (VmThread::limit_and_flags):
// the slow path tells deep recursion (a trap) from a poll.
void FunctionCodegen::emit_entry_poll(llvm::BasicBlock* body) {
  llvm::BasicBlock* slow = block("entry_slow");
  llvm::LoadInst* word = b_.CreateLoad(b_.getInt64Ty(), thread());
  word->setVolatile(true);
  word->setAlignment(llvm::Align(8));
  word->setMetadata(llvm::LLVMContext::MD_tbaa, mc_.tags().runtime);
  llvm::BranchInst* br = b_.CreateCondBr(b_.CreateICmpULT(entry_sp_, word), slow, body);
  set_unlikely(br);
  if (!mc_.options().exact_points) mark(br, kElidablePoll);
  b_.SetInsertPoint(slow);
  llvm::Value* action =
      call_helper(Helper::EntrySlow, {thread(), instance(), u32(func_index_), entry_sp_});
  llvm::BasicBlock* unwind = block("entry_unwind");
  entry_dispatch_ = block("entry_rewind");
  llvm::SwitchInst* sw = b_.CreateSwitch(action, body, 2);
  sw->addCase(b_.getInt32(uint32_t(PollAction::Unwind)), unwind);
  sw->addCase(b_.getInt32(uint32_t(PollAction::Rewind)), entry_dispatch_);
  const uint32_t point = point_index(fn_.body_begin, StablePointKind::FunctionEntry);
  b_.SetInsertPoint(unwind);
  emit_unwind(point, {});
  begin_restore(point << 1, "restore_entry", {});
  emit_reload(point, {});
  b_.CreateBr(body);
}

void FunctionCodegen::mark(llvm::Instruction* inst, const char* kind) {
  inst->setMetadata(kind, llvm::MDNode::get(ctx_, {}));
}

// Before a loop: in code without exact points, a poll that the header's
// may be dropped for (backend.cpp, ElidePolls); in all code, the block that
// rewinding to the loop header lands in. Both enter the loop from outside,
// so the loop keeps a single entry.
//
// Only innermost loops without calls (`elidable`) get the poll before them:
// every other loop holds a rewind target (a call's or an inner loop's
// restore block), so ElidePolls keeps its header's poll, which runs right
// after and would make this one redundant.
void FunctionCodegen::enter_loop(uint32_t point, bool restorable, bool elidable) {
  llvm::BasicBlock* entry = block("loop_entry");
  llvm::BasicBlock* from = b_.GetInsertBlock();
  std::vector<llvm::BasicBlock*> preds = {from};
  if (!mc_.options().exact_points && elidable) {
    llvm::BasicBlock* slow = block("preloop_slow");
    llvm::BranchInst* br = b_.CreateCondBr(poll_pending(), slow, entry);
    set_unlikely(br);
    mark(br, kPreloopPoll);
    b_.SetInsertPoint(slow);
    llvm::Value* action = call_helper(Helper::LoopSlow, {thread(), u32(point)});
    llvm::BasicBlock* unwind = block("preloop_unwind");
    llvm::SwitchInst* sw = b_.CreateSwitch(action, entry, 1);
    sw->addCase(b_.getInt32(uint32_t(PollAction::Unwind)), unwind);
    b_.SetInsertPoint(unwind);
    emit_unwind(point, stack_);
    preds.push_back(slow);
  } else {
    b_.CreateBr(entry);
  }
  if (!restorable) {
    b_.SetInsertPoint(entry);
    return;
  }

  llvm::BasicBlock* restore = begin_restore(point << 1, "restore_loop", loop_chain_);
  std::vector<llvm::Type*> types;
  for (llvm::Value* v : stack_) types.push_back(v->getType());
  std::vector<llvm::Value*> restored = emit_reload(point, types);
  // The header's poll comes next: it must not count this point again.
  call_helper(Helper::RewindFinish, {thread(), u32(1)});
  b_.CreateBr(entry);

  b_.SetInsertPoint(entry);
  for (size_t i = 0; i < stack_.size(); ++i) {
    llvm::PHINode* phi = b_.CreatePHI(stack_[i]->getType(), unsigned(preds.size() + 1));
    for (llvm::BasicBlock* pred : preds) phi->addIncoming(stack_[i], pred);
    phi->addIncoming(restored[i], restore);
    stack_[i] = phi;
  }
}

void FunctionCodegen::emit_header_poll(Loop& loop) {
  llvm::BasicBlock* cont = block("loop_body");
  if (!loop.polls) {
    // No poll: a register test that only rewinding's edges set.
    llvm::IRBuilder<> pb(loop.header, loop.header->begin());
    loop.rewinding = pb.CreatePHI(b_.getInt1Ty(), 2, "rewinding");
    loop.hop = block("loop_rewind");
    b_.CreateCondBr(loop.rewinding, loop.hop, cont);
    b_.SetInsertPoint(cont);
    return;
  }
  llvm::BasicBlock* slow = block("loop_slow");
  llvm::BranchInst* br = b_.CreateCondBr(poll_pending(), slow, cont);
  set_unlikely(br);
  if (!mc_.options().exact_points) mark(br, kElidablePoll);

  b_.SetInsertPoint(slow);
  llvm::Value* action = call_helper(Helper::LoopSlow, {thread(), u32(loop.point)});
  llvm::BasicBlock* unwind = block("loop_unwind");
  loop.hop = block("loop_rewind");
  llvm::SwitchInst* sw = b_.CreateSwitch(action, cont, 2);
  sw->addCase(b_.getInt32(uint32_t(PollAction::Unwind)), unwind);
  sw->addCase(b_.getInt32(uint32_t(PollAction::Rewind)), loop.hop);

  b_.SetInsertPoint(unwind);
  emit_unwind(loop.point, stack_);
  b_.SetInsertPoint(cont);
}

llvm::SwitchInst* FunctionCodegen::dispatch_switch(llvm::BasicBlock* at) {
  b_.SetInsertPoint(at);
  llvm::Value* key =
      mc_.load_runtime(b_, b_.getInt32Ty(), thread(), offsets::kThreadRewindPoint, false);
  llvm::BasicBlock* bad = block("rewind_bad_point");
  llvm::SwitchInst* sw = b_.CreateSwitch(key, bad);
  b_.SetInsertPoint(bad);
  llvm::CallInst* call = call_helper(Helper::Trap, {thread(), u32(uint32_t(TrapKind::Unreachable)),
                                                    u32(func_index_), u32(fn_.body_begin), u32(1)});
  call->setDoesNotReturn();
  b_.CreateUnreachable();
  return sw;
}

// Each case gets its own edge block, so that a target's phis see one edge
// per predecessor; edges into a loop header give its phis no value (the
// header's poll sends rewinding onwards before anything reads them).
void FunctionCodegen::add_case(llvm::SwitchInst* sw, uint32_t key, llvm::BasicBlock* target) {
  llvm::BasicBlock* edge = block("rewind_edge");
  b_.SetInsertPoint(edge);
  b_.CreateBr(target);
  for (llvm::PHINode& phi : target->phis())
    phi.addIncoming(llvm::UndefValue::get(phi.getType()), edge);
  sw->addCase(b_.getInt32(key), edge);
  for (Loop& loop : loops_) {
    if (loop.header != target || !loop.rewinding) continue;
    loop.rewinding->setIncomingValueForBlock(edge, b_.getTrue());
    loop.rewind_edges.push_back(edge);
  }
}

void FunctionCodegen::build_dispatch() {
  llvm::SwitchInst* entry = dispatch_switch(entry_dispatch_);
  std::vector<llvm::SwitchInst*> hops;
  for (Loop& loop : loops_) hops.push_back(dispatch_switch(loop.hop));
  for (const Point& p : points_) {
    // The first hop, then one per enclosing loop, then the point's block.
    auto target_after = [&](size_t k) -> llvm::BasicBlock* {
      if (k < p.loops.size()) return loops_[size_t(p.loops[k])].header;
      return p.restore;
    };
    add_case(entry, p.key, target_after(0));
    for (size_t k = 0; k < p.loops.size(); ++k)
      add_case(hops[size_t(p.loops[k])], p.key, target_after(k + 1));
  }
  // Every other edge into a header without a poll: not rewinding.
  for (Loop& loop : loops_) {
    if (!loop.rewinding) continue;
    for (llvm::BasicBlock* pred : llvm::predecessors(loop.header))
      if (std::find(loop.rewind_edges.begin(), loop.rewind_edges.end(), pred) ==
          loop.rewind_edges.end())
        loop.rewinding->addIncoming(b_.getFalse(), pred);
  }
}

} // namespace

void generate_function(ModuleCodegen& mc, uint32_t func_index) {
  FunctionCodegen(mc, func_index).run();
}

} // namespace tern::aot::llvmc
