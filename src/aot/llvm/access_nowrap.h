// Lets LLVM see that wasm address arithmetic next to a memory access does
// not wrap (docs/aot.md, "Code generation"): see access_nowrap.cpp.
#pragma once

#include <llvm/IR/PassManager.h>

namespace tern::aot::llvmc {

// Marks `add i32 x, c` as `nuw` (0 < c <= 64 KiB) where a linear-memory
// access at address x (by its TBAA tag) dominates it. Runs after mem2reg,
// when locals are values.
struct AccessNoWrap : llvm::PassInfoMixin<AccessNoWrap> {
  llvm::PreservedAnalyses run(llvm::Function& f, llvm::FunctionAnalysisManager& fam);
};

// In a loop, an address `iv + inv` (iv an induction variable stepping by
// 0 < c <= 64 KiB, inv loop-invariant) that an access uses on every
// iteration becomes an induction variable of its own, stepped by `add nuw`:
// its zero-extension is then an affine 64-bit recurrence, which the loop
// vectorizer needs. Runs before the vectorizer, on loops in simplified form.
struct AddressInductions : llvm::PassInfoMixin<AddressInductions> {
  llvm::PreservedAnalyses run(llvm::Function& f, llvm::FunctionAnalysisManager& fam);
};

} // namespace tern::aot::llvmc
