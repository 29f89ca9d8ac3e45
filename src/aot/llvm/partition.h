// Splitting a generated module into parts that are optimized and compiled
// on all cores (docs/aot.md, "Compiling in parallel").
//
// Each part owns a contiguous run of the module's functions, balanced by
// instruction count, and gets `available_externally` copies of the small
// functions its own call directly (and of theirs), so the inliner sees
// across the cut as it does in one module; the copies are dropped after
// inlining. Functions and globals of internal linkage become hidden
// external ones, so the parts' objects link into one shared object with
// nothing left for the dynamic loader but RELATIVE relocations. Each part
// is bitcode, read back in a context of its own: LLVM contexts are not
// shared between threads.
#pragma once

#include <llvm/ADT/SmallVector.h>
#include <llvm/IR/Module.h>
#include <vector>

namespace tern::aot::llvmc {

// How many parts a module is compiled in: one per ~kPartInstructions of
// IR, at most kMaxParts. A function of the module only (not of the host's
// core count), so the same module always gives the same artifact.
// TERN_COMPILE_PARTS=N forces N (tests split small modules with it).
unsigned part_count(const llvm::Module& module);

// Splits `module` (consumed: its linkage is changed) into `parts`
// modules, each as bitcode.
std::vector<llvm::SmallVector<char, 0>> split_module(llvm::Module& module, unsigned parts);

} // namespace tern::aot::llvmc
