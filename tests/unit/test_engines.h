// Test helper: an engine for each execution mode, with compiled code built
// in-process (no cache on disk but the JIT's, in a per-process temporary
// directory) and with exact stable points, so that every mode counts what
// the interpreter counts.
#pragma once

#include "aot/artifact.h"
#include "aot/compiler.h"
#include "aot/engine.h"
#include "interp/engine.h"
#include "runtime/engine.h"
#include "tern/error.h"

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

namespace tern::test {

inline aot::CompileOptions exact_options() {
  aot::CompileOptions o;
  o.exact_points = true; // counting mode must count what the interpreter counts
  return o;
}

// An AOT engine whose code for each module is compiled once and reused.
template <bool WideAddresses>
std::unique_ptr<runtime::Engine> make_aot_engine() {
  return aot::make_engine([](const wasm::Module& m, const util::Sha256Digest& hash) {
    static std::map<util::Sha256Digest, std::vector<uint8_t>> artifacts;
    auto& bytes = artifacts[hash];
    if (bytes.empty()) {
      aot::CompileOptions options = exact_options();
      options.wide_addresses = WideAddresses;
      auto compiled = aot::compile_artifact(m, hash, options);
      if (!compiled.ok()) throw Error(compiled.error);
      bytes = std::move(compiled.value);
    }
    return std::shared_ptr<const aot::CodeImage>(aot::load_artifact(bytes, hash, "test"));
  });
}

// Engines by mode: "interp", "aot", "aot-wide" (code with wide addresses, on
// mirrored memory), "jit".
inline std::unique_ptr<runtime::Engine> make_engine(const std::string& mode) {
  if (mode == "interp") return interp::make_engine();
  if (mode == "aot") return make_aot_engine<false>();
  if (mode == "aot-wide") return make_aot_engine<true>();
  return aot::make_engine([](const wasm::Module& m, const util::Sha256Digest& hash) {
    static const std::string cache =
        (std::filesystem::temp_directory_path() / ("tern-jit-test-" + std::to_string(::getpid())))
            .string();
    auto code = aot::jit_compile(m, hash, exact_options(), cache);
    if (!code.ok()) throw Error(code.error);
    return code.value;
  });
}

} // namespace tern::test
