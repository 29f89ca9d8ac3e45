// Loads and stores of linear memory, and the memory and table instructions
// that are runtime helper calls or reads of the runtime's bounds.
#include "aot/llvm/function_codegen.h"
#include "tern/error.h"

#include <fmt/format.h>
#include <llvm/IR/Intrinsics.h>

namespace tern::aot::llvmc {

namespace {

using wasm::Op;
using wasm::ValType;

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
  case Op::I32Load:
    return {4, ValType::I32, false, false};
  case Op::I64Load:
    return {8, ValType::I64, false, false};
  case Op::F32Load:
    return {4, ValType::F32, false, false};
  case Op::F64Load:
    return {8, ValType::F64, false, false};
  case Op::I32Load8S:
    return {1, ValType::I32, true, false};
  case Op::I32Load8U:
    return {1, ValType::I32, false, false};
  case Op::I32Load16S:
    return {2, ValType::I32, true, false};
  case Op::I32Load16U:
    return {2, ValType::I32, false, false};
  case Op::I64Load8S:
    return {1, ValType::I64, true, false};
  case Op::I64Load8U:
    return {1, ValType::I64, false, false};
  case Op::I64Load16S:
    return {2, ValType::I64, true, false};
  case Op::I64Load16U:
    return {2, ValType::I64, false, false};
  case Op::I64Load32S:
    return {4, ValType::I64, true, false};
  case Op::I64Load32U:
    return {4, ValType::I64, false, false};
  case Op::I32Store:
    return {4, ValType::I32, false, true};
  case Op::I64Store:
    return {8, ValType::I64, false, true};
  case Op::F32Store:
    return {4, ValType::F32, false, true};
  case Op::F64Store:
    return {8, ValType::F64, false, true};
  case Op::I32Store8:
    return {1, ValType::I32, false, true};
  case Op::I32Store16:
    return {2, ValType::I32, false, true};
  case Op::I64Store8:
    return {1, ValType::I64, false, true};
  case Op::I64Store16:
    return {2, ValType::I64, false, true};
  case Op::I64Store32:
    return {4, ValType::I64, false, true};
#define WASM_BINARY(n) case Op::n:
#define WASM_UNARY(n) case Op::n:
#define WASM_LOAD(n)
#define WASM_STORE(n)
#define WASM_ATOMIC(n) case Op::n:
#define WASM_OTHER(n) case Op::n:
#include "wasm/op_classes.def"
    break;
  }
  throw Error(fmt::format("compiler: {} is not a memory access", wasm::op_name(op)));
}

} // namespace

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

// --- Atomic accesses (threads proposal) -------------------------------------------

// An atomic access's pointer: the effective address must be a multiple of
// the access size ("unaligned atomic", checked first as the reference
// interpreter does), then it is an ordinary access's pointer.
llvm::Value* FunctionCodegen::atomic_pointer(llvm::Value* addr, uint64_t offset, unsigned size) {
  if (size > 1) {
    llvm::Value* ea = b_.CreateAdd(b_.CreateZExt(addr, b_.getInt64Ty()), b_.getInt64(offset));
    llvm::Value* misaligned = b_.CreateAnd(ea, b_.getInt64(size - 1));
    trap_if(b_.CreateICmpNE(misaligned, b_.getInt64(0)), TrapKind::UnalignedAtomic);
  }
  return effective_pointer(addr, offset, size);
}

// add and sub on a big-endian host: wasm memory is little-endian, so the
// arithmetic happens on the swapped value in a compare-and-swap loop.
// Returns the value before, in memory's byte order.
llvm::Value* FunctionCodegen::big_endian_add_sub(llvm::AtomicRMWInst::BinOp op, llvm::Value* p,
                                                 llvm::Value* v, unsigned bytes) {
  llvm::Type* type = v->getType();
  constexpr auto seq = llvm::AtomicOrdering::SequentiallyConsistent;
  llvm::LoadInst* first = b_.CreateAlignedLoad(type, p, llvm::Align(bytes));
  first->setAtomic(seq);
  first->setMetadata(llvm::LLVMContext::MD_tbaa, mc_.tags().memory);
  llvm::BasicBlock* before = b_.GetInsertBlock();
  llvm::BasicBlock* loop = block("atomic.cas");
  llvm::BasicBlock* done = block("atomic.done");
  b_.CreateBr(loop);
  b_.SetInsertPoint(loop);
  llvm::PHINode* old = b_.CreatePHI(type, 2);
  old->addIncoming(first, before);
  llvm::Value* value = bswap_if_big_endian(old);
  llvm::Value* next =
      op == llvm::AtomicRMWInst::Add ? b_.CreateAdd(value, v) : b_.CreateSub(value, v);
  llvm::AtomicCmpXchgInst* cas =
      b_.CreateAtomicCmpXchg(p, old, bswap_if_big_endian(next), llvm::MaybeAlign(bytes), seq, seq);
  llvm::Value* seen = b_.CreateExtractValue(cas, 0);
  old->addIncoming(seen, loop);
  b_.CreateCondBr(b_.CreateExtractValue(cas, 1), done, loop);
  b_.SetInsertPoint(done);
  return old;
}

// Loads, stores, read-modify-writes and cmpxchg: sequentially consistent
// LLVM atomics on the little-endian bytes; wait and notify call the
// runtime's wait queues.
void FunctionCodegen::atomic_access(const wasm::Instr& in) {
  const wasm::OpInfo& info = wasm::op_info(in.op);
  const unsigned bytes = info.access_bytes;
  constexpr auto seq = llvm::AtomicOrdering::SequentiallyConsistent;
  if (in.op == Op::MemoryAtomicNotify || in.op == Op::MemoryAtomicWait32 ||
      in.op == Op::MemoryAtomicWait64) {
    auto ea = [&](llvm::Value* addr) {
      return b_.CreateAdd(b_.CreateZExt(addr, b_.getInt64Ty()), b_.getInt64(in.imm));
    };
    if (in.op == Op::MemoryAtomicNotify) {
      auto v = pop_n(2);
      push(call_helper(Helper::AtomicNotify, {thread(), instance(), ea(v[0]), v[1]}));
      return;
    }
    auto wait = [&](const std::vector<llvm::Value*>& v) {
      llvm::Value* expected = b_.CreateZExt(v[1], b_.getInt64Ty()); // i32 for wait32
      return call_helper(Helper::AtomicWait,
                         {thread(), instance(), ea(v[0]), expected, v[2], u32(bytes)});
    };
    if (!stable_points_) {
      push(wait(pop_n(3)));
      return;
    }
    // A stable point: a checkpoint request interrupts the wait, which then
    // unwinds like a suspended host call, saving every operand (its own
    // three on top), and is issued again when rewinding.
    const uint32_t point = point_index(in.offset, StablePointKind::AtomicWait);
    const std::vector<llvm::Value*> operands = stack_;
    llvm::BasicBlock* at = block("atomic_wait");
    std::vector<llvm::PHINode*> phis = merge_into(at, operands);
    llvm::Value* result = wait({phis.end() - 3, phis.end()});
    llvm::Value* unwinding =
        mc_.load_runtime(b_, b_.getInt32Ty(), thread(), offsets::kThreadUnwinding, false);
    llvm::BasicBlock* unwind = block("atomic_wait_unwind");
    llvm::BasicBlock* cont = block("atomic_wait_cont");
    emit_unwind_check(unwinding, unwind, cont);
    b_.SetInsertPoint(unwind);
    emit_unwind(point, std::vector<llvm::Value*>(phis.begin(), phis.end()));
    add_host_call_restore(point, phis, at);
    b_.SetInsertPoint(cont);
    stack_.assign(phis.begin(), phis.end() - 3);
    push(result);
    return;
  }
  // The value is an i64 for the i64.atomic instructions.
  const std::string_view prefix = info.text.substr(0, 3);
  llvm::Type* value_type = prefix == "i64" ? b_.getInt64Ty() : b_.getInt32Ty();
  llvm::Type* mem_type = b_.getIntNTy(bytes * 8);
  auto narrow = [&](llvm::Value* v) {
    return v->getType() == mem_type ? v : b_.CreateTrunc(v, mem_type);
  };
  auto widen = [&](llvm::Value* v) {
    return value_type == mem_type ? v : b_.CreateZExt(v, value_type);
  };
  auto tag = [&](llvm::Instruction* i) {
    i->setMetadata(llvm::LLVMContext::MD_tbaa, mc_.tags().memory);
    return i;
  };
  const std::string_view text = info.text;
  if (text.find(".load") != std::string_view::npos) {
    llvm::Value* p = atomic_pointer(pop(), in.imm, bytes);
    llvm::LoadInst* load = b_.CreateAlignedLoad(mem_type, p, llvm::Align(bytes));
    load->setAtomic(seq);
    tag(load);
    push(widen(bswap_if_big_endian(load)));
    return;
  }
  if (text.find(".store") != std::string_view::npos) {
    llvm::Value* v = narrow(pop());
    llvm::Value* p = atomic_pointer(pop(), in.imm, bytes);
    llvm::StoreInst* store = b_.CreateAlignedStore(bswap_if_big_endian(v), p, llvm::Align(bytes));
    store->setAtomic(seq);
    tag(store);
    return;
  }
  if (text.find(".cmpxchg") != std::string_view::npos) {
    auto v = pop_n(3);
    llvm::Value* p = atomic_pointer(v[0], in.imm, bytes);
    auto* cas = b_.CreateAtomicCmpXchg(p, bswap_if_big_endian(narrow(v[1])),
                                       bswap_if_big_endian(narrow(v[2])), llvm::MaybeAlign(bytes),
                                       seq, seq);
    tag(cas);
    push(widen(bswap_if_big_endian(b_.CreateExtractValue(cas, 0))));
    return;
  }
  // Read-modify-write: the operation is the name's last part ("rmw16.add_u").
  std::string_view name = text.substr(text.rfind('.') + 1);
  if (name.ends_with("_u")) name.remove_suffix(2);
  using B = llvm::AtomicRMWInst;
  B::BinOp op = name == "add"   ? B::Add
                : name == "sub" ? B::Sub
                : name == "and" ? B::And
                : name == "or"  ? B::Or
                : name == "xor" ? B::Xor
                                : B::Xchg;
  auto v = pop_n(2);
  llvm::Value* operand = narrow(v[1]);
  llvm::Value* p = atomic_pointer(v[0], in.imm, bytes);
  llvm::Value* old;
  if (mc_.options().target.big_endian() && bytes > 1 && (op == B::Add || op == B::Sub)) {
    old = big_endian_add_sub(op, p, operand, bytes);
  } else {
    llvm::AtomicRMWInst* rmw =
        b_.CreateAtomicRMW(op, p, bswap_if_big_endian(operand), llvm::MaybeAlign(bytes), seq);
    tag(rmw);
    old = rmw;
  }
  push(widen(bswap_if_big_endian(old)));
  return;
}

} // namespace tern::aot::llvmc
