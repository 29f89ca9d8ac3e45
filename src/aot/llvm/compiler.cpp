// aot/compiler.h with LLVM: artifacts (object → lld → shared object →
// artifact container) and the JIT (object → ORC), both with the same code
// generation, so that AOT and JIT code behave the same.
#include "aot/artifact.h"
#include "aot/cache.h"
#include "aot/llvm/backend.h"
#include "util/file.h"

#include <filesystem>
#include <fmt/format.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/TargetParser/Host.h>

namespace tern::aot {
namespace {

// JIT code: owned by its LLJIT instance.
class JitImage final : public CodeImage {
public:
  JitImage(std::unique_ptr<llvm::orc::LLJIT> jit, ModuleInfo* info) : jit_(std::move(jit)) {
    attach(info);
  }

private:
  std::unique_ptr<llvm::orc::LLJIT> jit_;
};

std::string llvm_message(llvm::Error error) {
  return llvm::toString(std::move(error));
}

// The object code for the JIT: from the cache, or compiled (and cached).
Compiled<std::vector<uint8_t>> jit_object(const wasm::Module& module,
                                          const util::Sha256Digest& hash,
                                          const CompileOptions& options,
                                          const std::string& cache_dir) {
  const std::string path = cache_dir.empty()
                               ? std::string()
                               : cache_path(cache_dir, hash, options, CacheKind::JitObject);
  if (!path.empty() && std::filesystem::exists(path)) {
    try {
      auto bytes = util::read_file(path);
      ArtifactView view = read_artifact(bytes, path);
      check_artifact(view.header, hash, path);
      return {std::vector<uint8_t>(view.image.begin(), view.image.end()), {}};
    } catch (const std::exception&) {
      // A stale or damaged entry is replaced below.
    }
  }
  auto object = llvmc::compile_object(module, hash, options);
  if (!object.ok()) return {{}, object.error};
  std::vector<uint8_t> bytes(object.value.begin(), object.value.end());
  if (!path.empty()) {
    try {
      std::filesystem::create_directories(cache_dir);
      util::write_file_atomic(
          path, make_artifact(current_header(options.target, module_flags(options), hash), bytes));
    } catch (const std::exception&) {
      // An unwritable cache only costs the next run a compilation.
    }
  }
  return {std::move(bytes), {}};
}

} // namespace

bool compiler_available() {
  return true;
}

Compiled<std::vector<uint8_t>> compile_artifact(const wasm::Module& module,
                                                const util::Sha256Digest& hash,
                                                const CompileOptions& options) {
  auto object = llvmc::compile_object(module, hash, options);
  if (!object.ok()) return {{}, object.error};
  auto shared = llvmc::link_shared_object(object.value);
  if (!shared.ok()) return {{}, shared.error};
  return {make_artifact(current_header(options.target, module_flags(options), hash), shared.value),
          {}};
}

Compiled<std::shared_ptr<const CodeImage>> jit_compile(const wasm::Module& module,
                                                       const util::Sha256Digest& hash,
                                                       const CompileOptions& requested,
                                                       const std::string& cache_dir) {
  CompileOptions options = requested;
  if (options.target.arch != host_target().arch) return {{}, "the JIT compiles for this host only"};
  if (options.target.cpu == "native") options.target.cpu = llvm::sys::getHostCPUName().str();
  llvmc::initialize_llvm();
  auto object = jit_object(module, hash, options, cache_dir);
  if (!object.ok()) return {{}, object.error};
  auto jit = llvm::orc::LLJITBuilder().create();
  if (!jit) return {{}, "cannot start the JIT: " + llvm_message(jit.takeError())};
  llvm::StringRef bytes(reinterpret_cast<const char*>(object.value.data()), object.value.size());
  if (auto err = (*jit)->addObjectFile(llvm::MemoryBuffer::getMemBufferCopy(bytes, "wasm")))
    return {{}, "the JIT cannot link the compiled module: " + llvm_message(std::move(err))};
  auto symbol = (*jit)->lookup(kModuleInfoSymbol);
  if (!symbol)
    return {{}, "the JIT cannot find the module descriptor: " + llvm_message(symbol.takeError())};
  auto* info = symbol->toPtr<ModuleInfo*>();
  try {
    return {std::make_shared<JitImage>(std::move(*jit), info), {}};
  } catch (const std::exception& e) {
    return {{}, e.what()};
  }
}

} // namespace tern::aot
