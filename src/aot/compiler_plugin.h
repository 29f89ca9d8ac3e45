// The interface between tern and its compiler plugin, libtern-compiler.so
// (src/aot/llvm/), which tern loads with dlopen only when it has to compile:
// LLVM is large, and a run that finds its code in an artifact or the cache
// should not pay for loading it. Both sides come from the same build; the
// plugin checks the version and ABI before anything else.
#pragma once

#include "aot/compiler.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace tern::aot {

// JIT code linked in-process: the module's descriptor, and what keeps the
// code alive until released.
struct JitLinked {
  ModuleInfo* info = nullptr;
  void* owner = nullptr;
};

struct CompilerPluginApi {
  uint32_t abi_version = 0;
  const char* tern_version = nullptr;
  // A complete artifact (aot/artifact.h).
  Compiled<std::vector<uint8_t>> (*compile_artifact)(const wasm::Module&, const util::Sha256Digest&,
                                                     const CompileOptions&) = nullptr;
  // A relocatable object for the JIT.
  Compiled<std::vector<uint8_t>> (*compile_object)(const wasm::Module&, const util::Sha256Digest&,
                                                   const CompileOptions&) = nullptr;
  // Links an object in-process (ORC).
  Compiled<JitLinked> (*jit_link)(std::span<const uint8_t> object) = nullptr;
  void (*jit_release)(void* owner) = nullptr;
  // This host's CPU model, by LLVM's name.
  std::string (*host_cpu)() = nullptr;
};

} // namespace tern::aot

// The plugin's one exported symbol.
extern "C" const tern::aot::CompilerPluginApi* tern_compiler_plugin();
inline constexpr const char* kCompilerPluginSymbol = "tern_compiler_plugin";
