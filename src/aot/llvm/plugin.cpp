// The compiler plugin's entry (aot/compiler_plugin.h): artifacts (object →
// lld → shared object → artifact container), objects for the JIT, and
// in-process linking with ORC. Nothing here throws: errors are values.
#include "aot/artifact.h"
#include "aot/cache.h"
#include "aot/compiler_plugin.h"
#include "aot/llvm/backend.h"
#include "tern/version.h"

#include <fmt/format.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/TargetParser/Host.h>

namespace tern::aot {
namespace {

std::string llvm_message(llvm::Error error) {
  return llvm::toString(std::move(error));
}

Compiled<std::vector<uint8_t>> plugin_compile_artifact(const wasm::Module& module,
                                                       const util::Sha256Digest& hash,
                                                       const CompileOptions& options) {
  auto objects = llvmc::compile_objects(module, hash, options);
  if (!objects.ok()) return {{}, objects.error, objects.internal};
  auto shared = llvmc::link_shared_object(objects.value);
  if (!shared.ok()) return {{}, shared.error, shared.internal};
  try {
    return {
        make_artifact(current_header(options.target, module_flags(options), hash), shared.value),
        {}};
  } catch (const std::exception& e) {
    return {{}, e.what()};
  }
}

Compiled<std::vector<uint8_t>> plugin_compile_object(const wasm::Module& module,
                                                     const util::Sha256Digest& hash,
                                                     const CompileOptions& options) {
  auto object = llvmc::compile_object(module, hash, options);
  if (!object.ok()) return {{}, object.error, object.internal};
  return {std::vector<uint8_t>(object.value.begin(), object.value.end()), {}};
}

Compiled<JitLinked> plugin_jit_link(std::span<const uint8_t> object) {
  llvmc::initialize_llvm();
  auto jit = llvm::orc::LLJITBuilder().create();
  if (!jit) return {{}, "cannot start the JIT: " + llvm_message(jit.takeError())};
  llvm::StringRef bytes(reinterpret_cast<const char*>(object.data()), object.size());
  if (auto err = (*jit)->addObjectFile(llvm::MemoryBuffer::getMemBufferCopy(bytes, "wasm")))
    return {{}, "the JIT cannot link the compiled module: " + llvm_message(std::move(err))};
  auto symbol = (*jit)->lookup(kModuleInfoSymbol);
  if (!symbol)
    return {{}, "the JIT cannot find the module descriptor: " + llvm_message(symbol.takeError())};
  return {{symbol->toPtr<ModuleInfo*>(), jit->release()}, {}};
}

void plugin_jit_release(void* owner) {
  delete static_cast<llvm::orc::LLJIT*>(owner);
}

std::string plugin_host_cpu() {
  return llvm::sys::getHostCPUName().str();
}

} // namespace
} // namespace tern::aot

extern "C" __attribute__((visibility("default"))) const tern::aot::CompilerPluginApi*
tern_compiler_plugin() {
  static const tern::aot::CompilerPluginApi api = {
      tern::aot::kAbiVersion,
      tern::kVersion,
      &tern::aot::plugin_compile_artifact,
      &tern::aot::plugin_compile_object,
      &tern::aot::plugin_jit_link,
      &tern::aot::plugin_jit_release,
      &tern::aot::plugin_host_cpu,
  };
  return &api;
}
