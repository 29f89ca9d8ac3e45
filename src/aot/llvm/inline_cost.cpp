#include "aot/llvm/inline_cost.h"

#include "aot/llvm/codegen.h"

#include <llvm/ADT/SetVector.h>
#include <llvm/ADT/SmallPtrSet.h>
#include <llvm/Analysis/InlineCost.h>
#include <llvm/Analysis/TargetTransformInfo.h>
#include <llvm/IR/Instructions.h>
#include <string>
#include <vector>

namespace tern::aot::llvmc {
namespace {

// LLVM's string attributes for adjusting the inline cost model: on a call
// in a callee, a bonus to the threshold when the analyzer meets it; on a
// call site, the threshold that site is held to.
constexpr const char* kBonus = "call-threshold-bonus";
constexpr const char* kThreshold = "function-inline-threshold";

bool starts_slow_path(const llvm::BasicBlock& bb, unsigned kind) {
  for (const llvm::Instruction& inst : bb)
    if (llvm::isa<llvm::CallBase>(inst) && inst.getMetadata(kind)) return true;
  return false;
}

using BlockSet = llvm::SmallPtrSet<llvm::BasicBlock*, 32>;

// The blocks some path from the entry reaches without a slow path's call.
BlockSet fast_blocks(llvm::Function& f, unsigned kind) {
  BlockSet fast;
  std::vector<llvm::BasicBlock*> work = {&f.getEntryBlock()};
  while (!work.empty()) {
    llvm::BasicBlock* bb = work.back();
    work.pop_back();
    if (starts_slow_path(*bb, kind) || !fast.insert(bb).second) continue;
    for (llvm::BasicBlock* succ : llvm::successors(bb)) work.push_back(succ);
  }
  return fast;
}

// What the inline cost analyzer (llvm/lib/Analysis/InlineCost.cpp) adds
// for a switch it cannot fold: one instruction, plus the table or the
// compares its lowering is expected to need.
int switch_cost(const llvm::SwitchInst& sw, const llvm::TargetTransformInfo& tti) {
  const int instr = llvm::InlineConstants::getInstrCost();
  unsigned table = 0;
  const int clusters = int(tti.getEstimatedNumberOfCaseClusters(sw, table, nullptr, nullptr));
  const int default_unreachable = sw.defaultDestUndefined() ? 1 : 0;
  if (table) return instr + (default_unreachable ? 0 : 2 * instr) + (int(table) + 2) * instr;
  if (clusters <= 3) return instr + (clusters - default_unreachable) * 2 * instr;
  return instr + (3 * clusters / 2 - 1) * 2 * instr;
}

// An instruction's cost in the analyzer's model, where nothing folds.
int instruction_cost(const llvm::Instruction& inst, const llvm::TargetTransformInfo& tti) {
  const int instr = llvm::InlineConstants::getInstrCost();
  // An indirect call (a helper's, through the table) has no call penalty.
  if (auto* call = llvm::dyn_cast<llvm::CallBase>(&inst))
    return call->isIndirectCall() ? int(call->arg_size() + 1) * instr
                                  : llvm::getCallsiteCost(tti, *call, inst.getDataLayout());
  if (auto* sw = llvm::dyn_cast<llvm::SwitchInst>(&inst)) return switch_cost(*sw, tti);
  if (auto* br = llvm::dyn_cast<llvm::BranchInst>(&inst)) return br->isConditional() ? instr : 0;
  if (llvm::isa<llvm::PHINode>(inst) || llvm::isa<llvm::UnreachableInst>(inst)) return 0;
  const llvm::InstructionCost cost =
      tti.getInstructionCost(&inst, llvm::TargetTransformInfo::TCK_SizeAndLatency);
  return cost == llvm::TargetTransformInfo::TCC_Free ? 0 : instr;
}

// The first slow-path call in the order the analyzer visits blocks
// (breadth first from the entry): it stops once the cost passes the
// threshold, so the bonus must come before the slow paths' costs do.
llvm::CallBase* first_slow_call(llvm::Function& f, unsigned kind) {
  llvm::SetVector<llvm::BasicBlock*> order;
  order.insert(&f.getEntryBlock());
  for (size_t i = 0; i < order.size(); ++i) {
    for (llvm::Instruction& inst : *order[i])
      if (auto* call = llvm::dyn_cast<llvm::CallBase>(&inst); call && inst.getMetadata(kind))
        return call;
    for (llvm::BasicBlock* succ : llvm::successors(order[i])) order.insert(succ);
  }
  return nullptr;
}

// Whether `call`'s block ends in `unreachable` once the unwind checks are
// looked through (their fast edges followed): `call $exit` then wasm's
// `unreachable`, a trap. Without stable points such a call ends a block
// in `unreachable`, and the inliner allows no growth there
// (CallAnalyzer::allowSizeGrowth); the check hid that, and every call on
// a failed allocation's path to exit was inlined.
bool only_traps_after(const llvm::CallBase& call, unsigned unwind_kind) {
  const llvm::BasicBlock* bb = call.getParent();
  for (int hops = 0; hops < 8; ++hops) {
    const llvm::Instruction* term = bb->getTerminator();
    if (llvm::isa<llvm::UnreachableInst>(term)) return true;
    auto* br = llvm::dyn_cast<llvm::BranchInst>(term);
    if (br && br->isUnconditional())
      bb = br->getSuccessor(0);
    else if (br && br->getMetadata(unwind_kind))
      bb = fast_successor(*br);
    else
      return false;
  }
  return false;
}

// The blocks outside `fast` that this function's own slow-path calls lead
// to (not those of inlined callees, which carry their function's node).
BlockSet own_slow_blocks(llvm::Function& f, const BlockSet& fast, unsigned kind) {
  BlockSet slow;
  llvm::MDNode* own = f.getMetadata(kind);
  if (!own) return slow;
  std::vector<llvm::BasicBlock*> work;
  for (llvm::BasicBlock& bb : f)
    if (!fast.contains(&bb))
      for (llvm::Instruction& inst : bb)
        if (llvm::isa<llvm::CallBase>(inst) && inst.getMetadata(kind) == own) {
          work.push_back(&bb);
          break;
        }
  while (!work.empty()) {
    llvm::BasicBlock* bb = work.back();
    work.pop_back();
    if (fast.contains(bb) || !slow.insert(bb).second) continue;
    for (llvm::BasicBlock* succ : llvm::successors(bb)) work.push_back(succ);
  }
  return slow;
}

// The bonus, on the first slow-path call, for the blocks only this
// function's own slow paths reach. Inlined callees' slow blocks count in
// full: with them discounted too, a chain of small functions was inlined
// level after level, each copy carrying its cold blocks (a module of tiny
// functions compiled 1.5x slower, its code 1.8x larger).
void set_bonus(llvm::Function& f, const BlockSet& fast, unsigned slow_kind,
               const llvm::TargetTransformInfo& tti) {
  for (llvm::BasicBlock& bb : f)
    for (llvm::Instruction& inst : bb)
      if (auto* call = llvm::dyn_cast<llvm::CallBase>(&inst)) call->removeFnAttr(kBonus);
  int cost = 0;
  for (llvm::BasicBlock* bb : own_slow_blocks(f, fast, slow_kind))
    for (llvm::Instruction& inst : *bb) cost += instruction_cost(inst, tti);
  if (llvm::CallBase* carrier = first_slow_call(f, slow_kind); carrier && cost > 0)
    carrier->addFnAttr(llvm::Attribute::get(f.getContext(), kBonus, std::to_string(cost)));
}

// Threshold 0 for the inlinable calls that only traps follow.
void hold_calls_before_traps(llvm::Function& f, const BlockSet& fast) {
  const unsigned unwind_kind = f.getContext().getMDKindID(kUnwindCheck);
  for (llvm::BasicBlock* bb : fast)
    for (llvm::Instruction& inst : *bb) {
      auto* call = llvm::dyn_cast<llvm::CallBase>(&inst);
      const llvm::Function* callee = call ? call->getCalledFunction() : nullptr;
      if (callee && !callee->isDeclaration() && only_traps_after(*call, unwind_kind))
        call->addFnAttr(llvm::Attribute::get(f.getContext(), kThreshold, "0"));
    }
}

} // namespace

llvm::PreservedAnalyses DiscountSlowPaths::run(llvm::Function& f,
                                               llvm::FunctionAnalysisManager& fam) {
  const unsigned slow_kind = f.getContext().getMDKindID(kSlowPath);
  set_bonus(f, fast_blocks(f, slow_kind), slow_kind, fam.getResult<llvm::TargetIRAnalysis>(f));
  return llvm::PreservedAnalyses::all();
}

llvm::PreservedAnalyses HoldCallsBeforeTraps::run(llvm::Function& f,
                                                  llvm::FunctionAnalysisManager&) {
  hold_calls_before_traps(f, fast_blocks(f, f.getContext().getMDKindID(kSlowPath)));
  return llvm::PreservedAnalyses::all();
}

} // namespace tern::aot::llvmc
