// aot/compiler.h on tern's side: the compiler itself is a plugin loaded on
// first use (aot/compiler_plugin.h); the JIT's cache and the binding of JIT
// code to this process's helpers live here. Builds without the plugin (the
// static cross builds, TERN_COMPILER_PLUGIN_PATH undefined) say that they
// cannot compile.
#include "aot/compiler.h"

#include "aot/artifact.h"
#include "aot/cache.h"
#include "aot/compiler_plugin.h"
#include "tern/version.h"
#include "util/file.h"

#include <filesystem>
#include <fmt/format.h>
#include <mutex>

#ifdef TERN_COMPILER_PLUGIN_PATH
#include <dlfcn.h>
#endif

namespace tern::aot {
namespace {

#ifdef TERN_COMPILER_PLUGIN_PATH
constexpr const char* kPluginFile = "libtern-compiler.so";

// Where the plugin may be: named by TERN_COMPILER_PLUGIN, next to tern,
// in ../lib/tern, or where this build put it.
std::vector<std::string> plugin_candidates() {
  std::vector<std::string> out;
  if (const char* env = std::getenv("TERN_COMPILER_PLUGIN"); env && *env) return {env};
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    out.push_back((exe.parent_path() / kPluginFile).string());
    out.push_back((exe.parent_path() / ".." / "lib" / "tern" / kPluginFile).string());
  }
  out.push_back(TERN_COMPILER_PLUGIN_PATH);
  return out;
}

struct Plugin {
  const CompilerPluginApi* api = nullptr;
  std::string error;
};

const Plugin& plugin() {
  static Plugin p = [] {
    Plugin r;
    std::string tried;
    for (const std::string& path : plugin_candidates()) {
      std::error_code ec; // unreadable counts as absent: the next candidate
      if (!std::filesystem::exists(path, ec)) {
        tried += (tried.empty() ? "" : ", ") + path;
        continue;
      }
      void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!handle) {
        r.error = fmt::format("cannot load the compiler plugin {}: {}", path, ::dlerror());
        return r;
      }
      auto entry =
          reinterpret_cast<decltype(&tern_compiler_plugin)>(::dlsym(handle, kCompilerPluginSymbol));
      const CompilerPluginApi* api = entry ? entry() : nullptr;
      if (!api || api->abi_version != kAbiVersion || std::string(api->tern_version) != kVersion) {
        r.error = fmt::format("the compiler plugin {} is not from this tern build", path);
        return r;
      }
      r.api = api;
      return r;
    }
    r.error =
        fmt::format("the compiler plugin {} is not installed (looked for {})", kPluginFile, tried);
    return r;
  }();
  return p;
}
#else
struct Plugin {
  const CompilerPluginApi* api = nullptr;
  std::string error =
      "this tern was built without the LLVM compiler; compile the module with a tern that has it "
      "(tern compile --target ...) and pass the artifact";
};
const Plugin& plugin() {
  static const Plugin p;
  return p;
}
#endif

// JIT code, bound to this process's helpers; released through the plugin.
class JitImage final : public CodeImage {
public:
  explicit JitImage(JitLinked linked) : owner_{linked.owner} { attach(linked.info); }

private:
  struct Owner {
    void* jit;
    ~Owner() { plugin().api->jit_release(jit); }
  };
  Owner owner_; // released even when attach() refuses the code
};

} // namespace

bool compiler_available() {
  return plugin().api != nullptr;
}

bool compiler_in_build() {
#ifdef TERN_COMPILER_PLUGIN_PATH
  return true;
#else
  return false;
#endif
}

Compiled<std::vector<uint8_t>> compile_artifact(const wasm::Module& module,
                                                const util::Sha256Digest& hash,
                                                const CompileOptions& options) {
  if (!plugin().api) return {{}, plugin().error};
  return plugin().api->compile_artifact(module, hash, options);
}

// With a cache, JIT code is a linked artifact like `tern compile`'s, kept
// under the host's CPU identity (host_cpu_id, found without LLVM): a run
// that finds it loads it with tern's own ELF loader and never loads the
// compiler plugin. Without a cache it is compiled and linked in-process.
namespace {

// The cache entry of code compiled with `options` for this host ("" with no cache).
std::string jit_cache_path(const util::Sha256Digest& hash, const CompileOptions& options,
                           const std::string& cache_dir) {
  if (cache_dir.empty()) return {};
  CompileOptions key = options;
  if (key.target.cpu == "native") key.target.cpu = host_cpu_id();
  return cache_path(cache_dir, hash, key, CacheKind::JitObject);
}

} // namespace

std::shared_ptr<const CodeImage> jit_cached(const util::Sha256Digest& hash,
                                            const CompileOptions& options,
                                            const std::string& cache_dir) {
  const std::string path = jit_cache_path(hash, options, cache_dir);
  std::error_code ec; // a cache this user cannot read is an empty one
  if (path.empty() || !std::filesystem::exists(path, ec)) return nullptr;
  try {
    return load_artifact(util::read_file(path), hash, path);
  } catch (const std::exception&) {
    return nullptr; // a stale or damaged entry, replaced when compiled again
  }
}

Compiled<std::vector<uint8_t>> jit_artifact(const wasm::Module& module,
                                            const util::Sha256Digest& hash,
                                            const CompileOptions& requested,
                                            const std::string& cache_dir) {
  if (requested.target.arch != host_target().arch)
    return {{}, "the JIT compiles for this host only"};
  if (!plugin().api) return {{}, plugin().error};
  CompileOptions options = requested;
  if (options.target.cpu == "native") options.target.cpu = plugin().api->host_cpu();
  const std::string path = jit_cache_path(hash, requested, cache_dir);
  if (!path.empty()) options.parts_dir = path + ".parts";
  auto artifact = plugin().api->compile_artifact(module, hash, options);
  if (!artifact.ok()) return artifact;
  if (!path.empty()) {
    try {
      util::create_directories(cache_dir);
      util::write_file_atomic(path, artifact.value);
      std::error_code ignored; // the parts are only worth keeping without the artifact
      std::filesystem::remove_all(options.parts_dir, ignored);
    } catch (const std::exception&) {
      // An unwritable cache only costs the next run a compilation.
    }
  }
  return artifact;
}

Compiled<std::shared_ptr<const CodeImage>> jit_compile(const wasm::Module& module,
                                                       const util::Sha256Digest& hash,
                                                       const CompileOptions& requested,
                                                       const std::string& cache_dir) {
  if (requested.target.arch != host_target().arch)
    return {{}, "the JIT compiles for this host only"};
  if (auto cached = jit_cached(hash, requested, cache_dir)) return {cached, {}};
  if (!plugin().api) return {{}, plugin().error};
  try {
    if (!cache_dir.empty()) {
      auto artifact = jit_artifact(module, hash, requested, cache_dir);
      if (!artifact.ok()) return {{}, artifact.error, artifact.internal};
      return {load_artifact(artifact.value, hash, "the compiled module"), {}};
    }
    CompileOptions options = requested;
    if (options.target.cpu == "native") options.target.cpu = plugin().api->host_cpu();
    auto object = plugin().api->compile_object(module, hash, options);
    if (!object.ok()) return {{}, object.error, object.internal};
    auto linked = plugin().api->jit_link(object.value);
    if (!linked.ok()) return {{}, linked.error, linked.internal};
    return {std::make_shared<JitImage>(linked.value), {}};
  } catch (const InternalError& e) {
    return {{}, e.what(), true};
  } catch (const std::exception& e) {
    return {{}, e.what()};
  }
}

} // namespace tern::aot
