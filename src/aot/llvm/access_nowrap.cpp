// Why this is needed: wasm addresses are i32 and wrap, so the code for
// `p[i]; p[i+1]` zero-extends `x` and `x + 8` separately, and LLVM cannot
// tell that the second is the first plus 8 (at x = 2^32 - 8 it is not).
// Loop strides then look unknown, and neither the loop vectorizer nor the
// SLP vectorizer can combine the accesses of a gemm or stencil loop.
//
// Why it is true: a memory is at most 4 GiB - 64 KiB (wasm::kMaxRuntimePages),
// so an access at x that did not trap had x < 2^32 - 2^16, and x + c for
// c <= 2^16 stays below 2^32. An access that is out of bounds traps (guard
// pages or an explicit check) and never reaches the code it dominates.
#include "aot/llvm/access_nowrap.h"

#include "aot/llvm/codegen.h"
#include "wasm/types.h"

#include <llvm/ADT/SetVector.h>
#include <llvm/Analysis/LoopInfo.h>
#include <llvm/IR/Dominators.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/PatternMatch.h>
#include <optional>

namespace tern::aot::llvmc {
namespace {

using namespace llvm::PatternMatch;

// The i32 address of a load or store of linear memory (its TBAA tag says
// so): its pointer is gep(base, zext x) or gep(base, add(zext x, offset))
// (FunctionCodegen::effective_pointer).
llvm::Value* wasm_address(llvm::Instruction& access, const llvm::MDNode* memory_tag) {
  if (access.getMetadata(llvm::LLVMContext::MD_tbaa) != memory_tag) return nullptr;
  llvm::Value* pointer = nullptr;
  if (auto* load = llvm::dyn_cast<llvm::LoadInst>(&access)) pointer = load->getPointerOperand();
  if (auto* store = llvm::dyn_cast<llvm::StoreInst>(&access)) pointer = store->getPointerOperand();
  auto* gep = llvm::dyn_cast_or_null<llvm::GetElementPtrInst>(pointer);
  if (!gep || gep->getNumIndices() != 1) return nullptr;
  llvm::Value* x = nullptr;
  llvm::Value* index = gep->getOperand(1);
  if (match(index, m_ZExt(m_Value(x))) || match(index, m_Add(m_ZExt(m_Value(x)), m_ConstantInt())))
    return x->getType()->isIntegerTy(32) ? x : nullptr;
  return nullptr;
}

// A step the bound above covers: 0 < c <= 64 KiB.
bool small_positive(const llvm::Value* v) {
  const auto* c = llvm::dyn_cast<llvm::ConstantInt>(v);
  return c && !c->isZero() && c->getZExtValue() <= wasm::kPageSize;
}

// x's other operand when x is `add i32 x, c` with a small positive c.
llvm::Value* small_step(llvm::Value* add, llvm::Value* x) {
  auto* sum = llvm::dyn_cast<llvm::BinaryOperator>(add);
  if (!sum || sum->getOpcode() != llvm::Instruction::Add) return nullptr;
  llvm::Value* other = sum->getOperand(0) == x ? sum->getOperand(1) : sum->getOperand(0);
  return small_positive(other) ? other : nullptr;
}

// An induction variable of `loop` as an i32, and its step: a header phi
// whose value from the latch is phi + c, or its truncation to i32 (loop
// passes widen i32 counters to i64).
struct Induction {
  llvm::Value* start = nullptr; // on entry from the preheader
  llvm::Value* step = nullptr;  // a small positive constant
  // (both of the phi's type: truncated to i32 where they are used)
};

std::optional<Induction> induction(llvm::Value* v, const llvm::Loop& loop) {
  if (auto* trunc = llvm::dyn_cast<llvm::TruncInst>(v)) v = trunc->getOperand(0);
  auto* phi = llvm::dyn_cast<llvm::PHINode>(v);
  if (!phi || phi->getParent() != loop.getHeader() || phi->getNumIncomingValues() != 2)
    return std::nullopt;
  llvm::Value* step = small_step(phi->getIncomingValueForBlock(loop.getLoopLatch()), phi);
  if (!step) return std::nullopt;
  return Induction{phi->getIncomingValueForBlock(loop.getLoopPreheader()), step};
}

// Rewrites the address `x = iv + inv` of an access that runs on every
// iteration as a phi of its own: [iv.start + inv, preheader], [x' + c, latch]
// with the latch's add nuw (x was accessed in that iteration, see above).
// x equals it on every iteration: both are iv.start + inv + k * c mod 2^32.
bool make_address_induction(llvm::Instruction* x, const llvm::Loop& loop) {
  auto* sum = llvm::dyn_cast<llvm::BinaryOperator>(x);
  if (!sum || sum->getOpcode() != llvm::Instruction::Add || !loop.contains(sum)) return false;
  // Its zero-extension is already the sum of its operands' (AccessNoWrap).
  if (sum->hasNoUnsignedWrap()) return false;
  llvm::Type* i32 = sum->getType();
  for (unsigned i = 0; i < 2; ++i) {
    auto iv = induction(sum->getOperand(i), loop);
    llvm::Value* inv = sum->getOperand(1 - i);
    if (!iv || !loop.isLoopInvariant(inv)) continue;
    llvm::BasicBlock* preheader = loop.getLoopPreheader();
    llvm::BasicBlock* latch = loop.getLoopLatch();
    llvm::IRBuilder<> pre(preheader->getTerminator());
    llvm::Value* start = pre.CreateAdd(pre.CreateTrunc(iv->start, i32), inv);
    llvm::IRBuilder<> head(&*loop.getHeader()->getFirstInsertionPt());
    llvm::PHINode* phi = head.CreatePHI(i32, 2);
    llvm::IRBuilder<> at_latch(latch->getTerminator());
    llvm::Value* step =
        llvm::ConstantInt::get(i32, llvm::cast<llvm::ConstantInt>(iv->step)->getZExtValue());
    phi->addIncoming(start, preheader);
    phi->addIncoming(at_latch.CreateAdd(phi, step, "", /*HasNUW=*/true), latch);
    sum->replaceAllUsesWith(phi);
    sum->eraseFromParent();
    return true;
  }
  return false;
}

// Why each address induction variable's accesses get their own copy of the
// memory base, opaque to LLVM (inttoptr of ptrtoint, folded away after the
// vectorizer): the loop vectorizer's dependence analysis works per
// underlying object. With one base for all of linear memory, `c[j] += k *
// b[j]` has an unknown distance between b and c, and LLVM then checks every
// pair of accesses at run time, including c[j] against c[j+1] of a loop
// unrolled by two, which always overlap: the vector loop never runs. With
// a base per induction, c[j] and c[j+1] are one object whose dependence is
// exact, and only b against c is checked at run time. The copies are the
// same address, so every alias query stays as conservative as before.
//
// Gives an i32 induction variable `p` that steps by `add nuw` (from
// make_address_induction, or AccessNoWrap) a 64-bit twin q = zext(p), and
// rewrites zext(p) as q and zext(p +nuw d) as q + d. Both are equal where p
// is not poison. SCEV takes an `add nuw` for a non-wrapping one only where
// poison would be undefined behaviour on every iteration (an access in the
// header); in 64 bits the adjacency of p and p + 8 is plain arithmetic,
// also when p starts at an outer loop's unflagged address.
bool widen_address_induction(llvm::PHINode* p, const llvm::Loop& loop) {
  if (!p->getType()->isIntegerTy(32) || p->getNumIncomingValues() != 2) return false;
  auto* next =
      llvm::dyn_cast<llvm::BinaryOperator>(p->getIncomingValueForBlock(loop.getLoopLatch()));
  uint64_t step = 0;
  if (!next || !match(next, m_NUWAdd(m_Specific(p), m_ConstantInt(step)))) return false;
  // The zexts to rewrite, with the constant each adds to q.
  std::vector<std::pair<llvm::ZExtInst*, uint64_t>> uses;
  auto collect = [&](llvm::Value* v, uint64_t offset) {
    for (llvm::User* user : v->users())
      if (auto* z = llvm::dyn_cast<llvm::ZExtInst>(user); z && z->getType()->isIntegerTy(64))
        uses.emplace_back(z, offset);
  };
  collect(p, 0);
  for (llvm::User* user : p->users()) {
    uint64_t d = 0;
    if (user != next && match(user, m_NUWAdd(m_Specific(p), m_ConstantInt(d)))) collect(user, d);
  }
  if (uses.empty()) return false;
  llvm::BasicBlock* preheader = loop.getLoopPreheader();
  llvm::BasicBlock* latch = loop.getLoopLatch();
  llvm::Type* i64 = llvm::Type::getInt64Ty(p->getContext());
  llvm::IRBuilder<> pre(preheader->getTerminator());
  llvm::Value* start = pre.CreateZExt(p->getIncomingValueForBlock(preheader), i64);
  llvm::IRBuilder<> head(&*loop.getHeader()->getFirstInsertionPt());
  llvm::PHINode* q = head.CreatePHI(i64, 2);
  llvm::IRBuilder<> at_latch(latch->getTerminator());
  q->addIncoming(start, preheader);
  q->addIncoming(at_latch.CreateAdd(q, llvm::ConstantInt::get(i64, step), "",
                                    /*HasNUW=*/true, /*HasNSW=*/true),
                 latch);
  // The accesses through q and q + d get a base of their own (see above).
  // One at a constant offset is one too: by now InstCombine has split its
  // gep(base, zext + offset) into gep(gep(base, zext), offset), and the
  // inner gep is rebased (axpy2_offset in tests/aot/address_arithmetic.wast).
  llvm::DenseMap<llvm::Value*, llvm::Value*> bases;
  auto own_base = [&](llvm::Value* memory) {
    auto [it, fresh] = bases.try_emplace(memory, nullptr);
    if (fresh) it->second = pre.CreateIntToPtr(pre.CreatePtrToInt(memory, i64), memory->getType());
    return it->second;
  };
  for (auto [z, offset] : uses) {
    for (llvm::User* user : z->users())
      if (auto* gep = llvm::dyn_cast<llvm::GetElementPtrInst>(user);
          gep && gep->getNumIndices() == 1 && gep->getOperand(1) == z &&
          loop.isLoopInvariant(gep->getPointerOperand()))
        gep->setOperand(0, own_base(gep->getPointerOperand()));
    llvm::IRBuilder<> at(z);
    z->replaceAllUsesWith(offset == 0 ? q
                                      : at.CreateAdd(q, llvm::ConstantInt::get(i64, offset), "",
                                                     /*HasNUW=*/true, /*HasNSW=*/true));
    z->eraseFromParent();
  }
  return true;
}

} // namespace

llvm::PreservedAnalyses AccessNoWrap::run(llvm::Function& f, llvm::FunctionAnalysisManager& fam) {
  const llvm::MDNode* memory_tag = alias_tags(f.getContext()).memory;
  llvm::DominatorTree* dt = nullptr;
  bool changed = false;
  for (llvm::BasicBlock& bb : f)
    for (llvm::Instruction& access : bb) {
      llvm::Value* x = wasm_address(access, memory_tag);
      if (!x) continue;
      for (llvm::User* user : x->users()) {
        auto* add = llvm::dyn_cast<llvm::BinaryOperator>(user);
        if (!add || add->hasNoUnsignedWrap() || !small_step(add, x)) continue;
        if (!dt) dt = &fam.getResult<llvm::DominatorTreeAnalysis>(f);
        if (!dt->dominates(&access, add)) continue;
        add->setHasNoUnsignedWrap(true);
        changed = true;
      }
    }
  if (!changed) return llvm::PreservedAnalyses::all();
  llvm::PreservedAnalyses kept;
  kept.preserveSet<llvm::CFGAnalyses>();
  return kept;
}

llvm::PreservedAnalyses AddressInductions::run(llvm::Function& f,
                                               llvm::FunctionAnalysisManager& fam) {
  const llvm::MDNode* memory_tag = alias_tags(f.getContext()).memory;
  auto& loops = fam.getResult<llvm::LoopAnalysis>(f);
  auto& dt = fam.getResult<llvm::DominatorTreeAnalysis>(f);
  bool changed = false;
  for (llvm::Loop* loop : loops.getLoopsInPreorder()) {
    if (!loop->isInnermost() || !loop->getLoopLatch() || !loop->getLoopPreheader()) continue;
    llvm::BasicBlock* latch = loop->getLoopLatch();
    llvm::SmallSetVector<llvm::Instruction*, 16> addresses; // one rewrite each
    for (llvm::BasicBlock* bb : loop->blocks()) {
      if (!dt.dominates(bb, latch)) continue; // runs on every iteration
      for (llvm::Instruction& access : *bb)
        if (auto* x = llvm::dyn_cast_or_null<llvm::Instruction>(wasm_address(access, memory_tag)))
          addresses.insert(x);
    }
    for (llvm::Instruction* x : addresses)
      if (make_address_induction(x, *loop)) changed = true;
    std::vector<llvm::PHINode*> phis;
    for (llvm::PHINode& phi : loop->getHeader()->phis()) phis.push_back(&phi);
    for (llvm::PHINode* phi : phis)
      if (widen_address_induction(phi, *loop)) changed = true;
  }
  if (!changed) return llvm::PreservedAnalyses::all();
  llvm::PreservedAnalyses kept;
  kept.preserveSet<llvm::CFGAnalyses>();
  return kept;
}

} // namespace tern::aot::llvmc
