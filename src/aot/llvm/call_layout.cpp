// After every call, stable-point code loads VmThread::unwinding and
// branches (stable_points.cpp, emit_unwind_check), so the call's block
// ends in a conditional branch. LLVM's code generator tail-duplicates a
// small block only into predecessors that end in an unconditional branch
// (TailDuplicator::canTailDuplicate): the small blocks that code without
// stable points gets copied behind a call (a loop's latch, a return) stay
// shared, and every return from a call takes one or two more taken
// branches to reach them (Ackermann's function ran 1.37x slower). Here those blocks are copied at
// IR level onto the check's fast edge, and block placement is then free to let the return fall
// through: `jne unwind; decl; jne loop` and on to the return.
//
// The tail merging that block placement does after it has laid out the
// blocks would merge a copied return back into the block it was copied
// from (identical blocks): it is turned off (the tail merging before
// placement, which keeps the cold paths small, stays). Block placement's
// -force-loop-cold-block would also move a loop's cold blocks (the poll's
// slow path, rewinding's edges) from between its latch and its exit, so
// that Ackermann's return falls through the copied return too, but it
// made other kernels slower (sieve, matmul): left at its default.
#include "aot/llvm/call_layout.h"

#include "aot/llvm/codegen.h"

#include <llvm/ADT/StringMap.h>
#include <llvm/Analysis/LoopInfo.h>
#include <llvm/IR/CFG.h>
#include <llvm/IR/Dominators.h>
#include <llvm/IR/Instructions.h>
#include <llvm/Support/CommandLine.h>
#include <llvm/Transforms/Utils/SSAUpdater.h>
#include <llvm/Transforms/Utils/ValueMapper.h>
#include <vector>

namespace tern::aot::llvmc {
namespace {

// A block worth a copy: a few instructions (about what the code generator
// tail-duplicates), no call, a plain branch or a return.
constexpr unsigned kMaxInstructions = 6;
// Blocks copied along one call's fast path, and along a return path.
constexpr unsigned kMaxPath = 3;

bool small_block(const llvm::BasicBlock& bb) {
  if (bb.isEHPad() || bb.hasAddressTaken()) return false;
  const llvm::Instruction* term = bb.getTerminator();
  if (!llvm::isa<llvm::BranchInst>(term) && !llvm::isa<llvm::ReturnInst>(term)) return false;
  unsigned count = 0;
  for (const llvm::Instruction& inst : bb) {
    if (llvm::isa<llvm::PHINode>(inst) || inst.isDebugOrPseudoInst()) continue;
    if (llvm::isa<llvm::CallBase>(inst) || llvm::isa<llvm::AllocaInst>(inst)) return false;
    if (++count > kMaxInstructions) return false;
  }
  for (const llvm::BasicBlock* succ : llvm::successors(&bb))
    if (succ == &bb) return false;
  return true;
}

// Whether `bb` returns within a few small blocks without branching.
bool returns_soon(const llvm::BasicBlock* bb) {
  for (unsigned i = 0; i < kMaxPath && small_block(*bb); ++i) {
    if (llvm::isa<llvm::ReturnInst>(bb->getTerminator())) return true;
    bb = bb->getSingleSuccessor();
    if (!bb) return false;
  }
  return false;
}

// Gives the values defined in `bb` the definitions of its copy on the
// paths through the copy, with phis where the paths meet.
void repair_ssa(llvm::BasicBlock* bb, llvm::BasicBlock* copy, llvm::ValueToValueMapTy& map) {
  for (llvm::Instruction& inst : *bb) {
    std::vector<llvm::Use*> outside;
    for (llvm::Use& use : inst.uses()) {
      auto* user = llvm::cast<llvm::Instruction>(use.getUser());
      llvm::BasicBlock* at = user->getParent();
      if (auto* phi = llvm::dyn_cast<llvm::PHINode>(user)) at = phi->getIncomingBlock(use);
      if (at != bb && at != copy) outside.push_back(&use);
    }
    if (outside.empty()) continue;
    llvm::SSAUpdater ssa;
    ssa.Initialize(inst.getType(), inst.getName());
    ssa.AddAvailableValue(bb, &inst);
    ssa.AddAvailableValue(copy, map[&inst]);
    for (llvm::Use* use : outside) ssa.RewriteUse(*use);
  }
}

// A copy of `bb` that only `from` (one of its predecessors, by one edge)
// branches to; nullptr if `from` has two edges to `bb`.
llvm::BasicBlock* copy_onto_edge(llvm::BasicBlock* from, llvm::BasicBlock* bb) {
  llvm::Instruction* from_term = from->getTerminator();
  unsigned edges = 0;
  for (unsigned i = 0; i < from_term->getNumSuccessors(); ++i)
    edges += from_term->getSuccessor(i) == bb;
  if (edges != 1) return nullptr;

  llvm::BasicBlock* copy = llvm::BasicBlock::Create(bb->getContext(), bb->getName() + ".fast",
                                                    bb->getParent(), from->getNextNode());
  llvm::ValueToValueMapTy map;
  for (llvm::PHINode& phi : bb->phis()) map[&phi] = phi.getIncomingValueForBlock(from);
  for (llvm::Instruction& inst : *bb) {
    if (llvm::isa<llvm::PHINode>(inst)) continue;
    llvm::Instruction* clone = inst.clone();
    clone->setName(inst.getName());
    clone->insertInto(copy, copy->end());
    map[&inst] = clone;
    llvm::RemapInstruction(clone, map,
                           llvm::RF_NoModuleLevelChanges | llvm::RF_IgnoreMissingLocals);
  }
  from_term->replaceSuccessorWith(bb, copy);
  bb->removePredecessor(from, /*KeepOneInputPHIs=*/true);
  for (llvm::BasicBlock* succ : llvm::successors(copy))
    for (llvm::PHINode& phi : succ->phis()) {
      llvm::Value* v = phi.getIncomingValueForBlock(bb);
      if (auto it = map.find(v); it != map.end()) v = it->second;
      phi.addIncoming(v, copy);
    }
  repair_ssa(bb, copy, map);
  return copy;
}

// `bb` as reached from `from` alone: itself if that is its only
// predecessor, else a copy (nullptr if none can be made).
llvm::BasicBlock* own_copy(llvm::BasicBlock* from, llvm::BasicBlock* bb) {
  if (bb->getSinglePredecessor() == from) return bb;
  return copy_onto_edge(from, bb);
}

// Copies a path that returns soon, from `from` on, so the return falls
// through.
void straighten_return(llvm::BasicBlock* from, llvm::BasicBlock* bb) {
  if (!returns_soon(bb)) return;
  for (unsigned i = 0; i < kMaxPath && bb; ++i) {
    llvm::BasicBlock* own = own_copy(from, bb);
    if (!own) return;
    from = own;
    bb = own->getSingleSuccessor();
  }
}

void straighten(llvm::BranchInst* check, const llvm::LoopInfo& loops) {
  llvm::BasicBlock* from = check->getParent();
  llvm::BasicBlock* bb = fast_successor(*check);
  for (unsigned i = 0; i < kMaxPath; ++i) {
    if (bb == from || !small_block(*bb) || loops.isLoopHeader(bb)) return;
    llvm::BasicBlock* own = own_copy(from, bb);
    if (!own) return;
    auto* br = llvm::dyn_cast<llvm::BranchInst>(own->getTerminator());
    if (!br) return; // a return: straight already
    if (br->isUnconditional()) {
      from = own;
      bb = br->getSuccessor(0);
      continue;
    }
    // A branch (a loop's latch, say): its paths that return soon are
    // copied; which way it goes is not known.
    for (llvm::BasicBlock* succ : llvm::successors(own))
      if (!loops.isLoopHeader(succ)) straighten_return(own, succ);
    return;
  }
}

} // namespace

void straighten_after_calls(llvm::Function& f) {
  if (f.isDeclaration()) return;
  const unsigned kind = f.getContext().getMDKindID(kUnwindCheck);
  std::vector<llvm::BranchInst*> checks;
  for (llvm::BasicBlock& bb : f)
    if (auto* br = llvm::dyn_cast<llvm::BranchInst>(bb.getTerminator());
        br && br->isConditional() && br->getMetadata(kind))
      checks.push_back(br);
  if (checks.empty()) return;
  // Loop headers are left alone: copying one would rotate its loop.
  // Copies add no loops or headers, so one analysis serves all checks.
  llvm::DominatorTree dominators(f);
  llvm::LoopInfo loops(dominators);
  for (llvm::BranchInst* check : checks) straighten(check, loops);
}

void configure_codegen_layout() {
  auto& registered = llvm::cl::getRegisteredOptions();
  auto set = [&](const char* name, const char* value) {
    auto it = registered.find(name);
    if (it != registered.end()) it->second->addOccurrence(0, name, value);
  };
  set("branch-fold-placement", "false");
}

} // namespace tern::aot::llvmc
