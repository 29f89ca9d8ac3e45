// The layout of the fast path after a call in stable-point code
// (docs/aot.md, "Stable points"): see call_layout.cpp.
#pragma once

#include <llvm/IR/Function.h>

namespace tern::aot::llvmc {

// Copies the small blocks that follow each post-call unwinding check
// (kUnwindCheck) onto its fast edge, so that a call's return falls through
// them as it does in code without stable points. Runs after the
// optimization pipeline.
void straighten_after_calls(llvm::Function& f);

// Sets, once per process, the code generator's option this layout relies
// on (no tail merging after block placement).
void configure_codegen_layout();

} // namespace tern::aot::llvmc
