// One wasm function body → LLVM IR: the walk over the body, the dispatch on
// each instruction, the prologue, traps and runtime helpers. The class and
// where each concern lives: function_codegen.h.
#include "aot/llvm/function_codegen.h"

#include "tern/error.h"

#include <fmt/format.h>
#include <llvm/IR/Intrinsics.h>

namespace tern::aot::llvmc {

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
  if (stable_points_) return; // the entry poll compares with the limit and the flags at once
  llvm::Value* limit =
      mc_.load_runtime(b_, b_.getInt64Ty(), thread(), offsets::kThreadStackLimit, false);
  trap_if(b_.CreateICmpULT(entry_sp_, limit), TrapKind::CallStackExhausted);
}

// --- Traps and helpers --------------------------------------------------------

void FunctionCodegen::set_unlikely(llvm::BranchInst* br) {
  br->setMetadata(llvm::LLVMContext::MD_prof,
                  llvm::MDBuilder(ctx_).createBranchWeights(1, 1 << 20));
}

llvm::CallInst* FunctionCodegen::call_helper(Helper id, std::vector<llvm::Value*> args,
                                             llvm::ArrayRef<llvm::OperandBundleDef> bundles) {
  const bool slow_path = id == Helper::Trap || id == Helper::EntrySlow || id == Helper::LoopSlow ||
                         id == Helper::RewindFinish || id == Helper::RewindCallee ||
                         id == Helper::SaveFrame;
  llvm::Function* thunk = slow_path && id != Helper::Trap ? mc_.preserving_thunk(id) : nullptr;
  llvm::CallInst* call =
      thunk ? b_.CreateCall(llvm::FunctionCallee(thunk), args, bundles)
            : b_.CreateCall(mc_.helper_type(id), mc_.helper(b_, id), args, bundles);
  if (thunk) call->setCallingConv(thunk->getCallingConv());
  // The helpers are C++ (aot/helpers.cpp). Some ABIs (s390x) leave the
  // extension of a 32-bit argument to 64 bits to the caller, and C++ code
  // relies on it: pass every i32 zero-extended, as uint32_t is.
  for (unsigned i = 0; i < args.size(); ++i)
    if (args[i]->getType()->isIntegerTy(32)) call->addParamAttr(i, llvm::Attribute::ZExt);
  // The stable points' slow paths: cold, so that the register allocator
  // and block placement keep them out of the fast code's way.
  if (slow_path) call->addFnAttr(llvm::Attribute::Cold);
  if (slow_path && id != Helper::Trap) call->setMetadata(kSlowPath, own_slow_path());
  return call;
}

// Names this function on its slow-path calls and on itself, so that
// DiscountSlowPaths tells them from inlined callees' (inline_cost.h).
llvm::MDNode* FunctionCodegen::own_slow_path() {
  llvm::MDNode* own = f_->getMetadata(kSlowPath);
  if (!own) {
    own = llvm::MDNode::get(ctx_, {llvm::ConstantAsMetadata::get(b_.getInt32(func_index_))});
    f_->setMetadata(kSlowPath, own);
  }
  return own;
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

void FunctionCodegen::mark(llvm::Instruction* inst, const char* kind) {
  inst->setMetadata(kind, llvm::MDNode::get(ctx_, {}));
}

// --- The walk and the dispatch ------------------------------------------------

void FunctionCodegen::run() {
  prepare_stable_points();
  wasm::ByteReader bytes(
      std::span<const uint8_t>(wasm_.bytes).subspan(fn_.body_begin, fn_.body_end - fn_.body_begin),
      fn_.body_begin);
  wasm::InstrReader reader(bytes);
  while (!reader.at_end()) reader.next(instrs_.emplace_back());

  build_prologue();
  llvm::BasicBlock* body = block("body");
  at_function_entry(body);
  b_.SetInsertPoint(body);

  Ctrl fc;
  fc.kind = CtrlKind::Body;
  for (ValType t : type_.results) fc.results.push_back(ir(t));
  fc.end = block("return");
  llvm::IRBuilder<> pb(fc.end);
  for (llvm::Type* t : fc.results) fc.end_phis.push_back(pb.CreatePHI(t, 2));
  ctrls_.push_back(std::move(fc));

  for (pc_ = 0; pc_ < instrs_.size() && !ctrls_.empty(); ++pc_) step();
  finish_stable_points();
}

void FunctionCodegen::step() {
  current_ = &instrs_[pc_];
  next_ = pc_ + 1 < instrs_.size() ? &instrs_[pc_ + 1] : nullptr;
  if (dead_)
    skip(*current_);
  else
    translate(*current_);
}

void FunctionCodegen::translate(const wasm::Instr& in) {
  // Every instruction, no default: one nobody handles does not compile.
  switch (in.op) {
#define WASM_BINARY(n)
#define WASM_UNARY(n)
#define WASM_LOAD(n) case Op::n:
#define WASM_STORE(n) case Op::n:
#define WASM_ATOMIC(n)
#define WASM_OTHER(n)
#include "wasm/op_classes.def"
    return memory_access(in);
#define WASM_BINARY(n)
#define WASM_UNARY(n)
#define WASM_LOAD(n)
#define WASM_STORE(n)
#define WASM_ATOMIC(n) case Op::n:
#define WASM_OTHER(n)
#include "wasm/op_classes.def"
    return atomic_access(in);
#define WASM_BINARY(n) case Op::n:
#define WASM_UNARY(n) case Op::n:
#define WASM_LOAD(n)
#define WASM_STORE(n)
#define WASM_ATOMIC(n)
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
  case Op::AtomicFence:
    b_.CreateFence(llvm::AtomicOrdering::SequentiallyConsistent);
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

void generate_function(ModuleCodegen& mc, uint32_t func_index) {
  FunctionCodegen(mc, func_index).run();
}

} // namespace tern::aot::llvmc
