// Keeps the stable points' slow paths out of the inliner's decisions
// (docs/aot.md, "Stable points"): see inline_cost.cpp.
#pragma once

#include <llvm/IR/PassManager.h>

namespace tern::aot::llvmc {

// LLVM's inline cost counts every instruction a callee has, however cold:
// with stable points, a two-instruction wrapper around malloc carries an
// entry poll's slow path, its unwind and its rewind dispatch and is no
// longer inlined (cost 300 against a threshold of 225; 55 without them).
// This pass gives the first slow-path call the analyzer meets (a call
// marked kSlowPath) a `call-threshold-bonus`, LLVM's per-call threshold
// adjustment, worth what the blocks only slow paths reach cost in the
// analyzer's model: the inliner then judges a function by its fast path.
// Only the function's own slow paths are discounted (its slow-path calls
// carry the node of the function that made them, kSlowPath), not those of
// callees inlined into it: a chain of small functions is otherwise inlined
// level after level, every copy with its cold blocks. Runs at the end of
// each function's simplification, before its callers' inlining looks at
// it, and recomputes the bonus from scratch there.
struct DiscountSlowPaths : llvm::PassInfoMixin<DiscountSlowPaths> {
  llvm::PreservedAnalyses run(llvm::Function& f, llvm::FunctionAnalysisManager& fam);
};

// A call that only a trap follows, once unwind checks are looked through
// (`call $exit` then wasm's `unreachable`), gets the threshold 0 the
// inliner gives a call in a block ending in `unreachable`, which the check
// after the call hid. Runs before any inlining (after mem2reg) and again
// where DiscountSlowPaths does.
struct HoldCallsBeforeTraps : llvm::PassInfoMixin<HoldCallsBeforeTraps> {
  llvm::PreservedAnalyses run(llvm::Function& f, llvm::FunctionAnalysisManager& fam);
};

} // namespace tern::aot::llvmc
