// LLVM's half of compilation after IR generation: target machines, the
// optimization pipeline, object emission, and linking an object into a
// self-contained shared object with lld (in-process).
#pragma once

#include "aot/compiler.h"

#include <llvm/IR/Module.h>
#include <llvm/Target/TargetMachine.h>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace tern::aot::llvmc {

// Registers the targets tern compiles for (x86, AArch64, SystemZ), once.
void initialize_llvm();

// The target machine for `target` ("native" CPU means this host's).
Compiled<std::unique_ptr<llvm::TargetMachine>> make_target_machine(const Target& target,
                                                                   unsigned opt_level);

// Runs LLVM's standard -O pipeline, with no C library assumed (compiled
// code must not call memset & co.: it references no external symbol).
// False if the optimized module cannot be emitted (an internal error).
bool optimize(llvm::Module& module, llvm::TargetMachine& machine, const CompileOptions& options);

// Generates IR for `wasm`, optimizes it and emits relocatable objects:
// one, or one per part of a large module compiled on all cores
// (partition.h).
Compiled<std::vector<std::vector<char>>> compile_objects(const wasm::Module& wasm,
                                                         const util::Sha256Digest& hash,
                                                         const CompileOptions& options);

// compile_objects' result as one relocatable object (the JIT's).
Compiled<std::vector<char>> compile_object(const wasm::Module& wasm, const util::Sha256Digest& hash,
                                           const CompileOptions& options);

// Links objects into a shared object whose ELF entry is the module's
// descriptor and which has no undefined symbols.
Compiled<std::vector<uint8_t>> link_shared_object(const std::vector<std::vector<char>>& objects);

} // namespace tern::aot::llvmc
