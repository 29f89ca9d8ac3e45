// The AOT/JIT compiler's interface, free of LLVM: aot/compiler.cpp loads
// the compiler plugin (aot/llvm/, aot/compiler_plugin.h) on first use, or,
// in builds without it (cross builds), says that it cannot compile. Errors
// come back as values; the compiler never throws through LLVM code.
#pragma once

#include "aot/code_image.h"
#include "aot/target.h"
#include "tern/error.h"
#include "tern/internal_error.h"
#include "util/sha256.h"
#include "wasm/module.h"

#include <fmt/format.h>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tern::aot {

struct CompileOptions {
  Target target = host_target();
  unsigned opt_level = 2;     // 0..3, as -O
  bool stable_points = true;  // checkpointable code (polls, unwind, rewind)
  bool bounds_checks = false; // explicit memory bounds checks instead of guard pages
  // Every loop header and function entry polls, so that stable points can
  // be counted (--checkpoint-at) exactly as the interpreter counts them.
  // Without, tight inner loops poll once before they start, and vectorize.
  bool exact_points = false;
  // An address computed by i32.add is summed in 64 bits from its zero-
  // extended operands (LLVM can then reason about strides and adjacency);
  // the engine gives such code mirrored memories (runtime/memory.h), where
  // that reads what the wrapped sum would. Not with bounds_checks.
  // Off by default: measured, it gains about 1% (geomean of the
  // benchmark kernels, docs/performance.md) but makes a background
  // checkpoint copy the memory in the pause.
  bool wide_addresses = false;
  // Where the compiled parts of a module compiled in parts are kept until
  // its artifact is (the JIT's cache), so that a compile cut short (auto's,
  // when the program ends first) continues from them; "" keeps none. Not
  // part of any cache key: it changes where work is kept, not the code.
  std::string parts_dir;
};

// The compiler's answer: a value, or the reason there is none.
template <typename T>
struct Compiled {
  T value{};
  std::string error; // empty on success
  // The reason is a bug in the compiler (it generated invalid IR), not a
  // module, target or option it cannot compile.
  bool internal = false;
  bool ok() const { return error.empty(); }

  // The value; else throws the reason: tern::InternalError when internal,
  // else tern::Error("CONTEXT: reason").
  T take(std::string_view context) && {
    if (internal) throw InternalError(error);
    if (!ok()) throw Error(fmt::format("{}: {}", context, error));
    return std::move(value);
  }
};

// Whether this tern can compile: loads the compiler plugin (tens of
// milliseconds) on first use.
bool compiler_available();

// Whether this build has a compiler plugin to load at all (false for the
// static cross builds); costs nothing, loads nothing.
bool compiler_in_build();

// A complete artifact (aot/artifact.h) for a validated module whose sha-256
// is `hash`: native code for options.target, linked into a self-contained
// shared object.
Compiled<std::vector<uint8_t>> compile_artifact(const wasm::Module& module,
                                                const util::Sha256Digest& hash,
                                                const CompileOptions& options);

// Code for the host, compiled in-process. With a non-empty `cache_dir` it
// is kept there as an artifact keyed by module hash, tern version, options
// and the host CPU's identity, and the next run loads it without the
// compiler; without one it is linked in memory with ORC.
Compiled<std::shared_ptr<const CodeImage>> jit_compile(const wasm::Module& module,
                                                       const util::Sha256Digest& hash,
                                                       const CompileOptions& options,
                                                       const std::string& cache_dir);

// The two halves of jit_compile with a cache, for code made elsewhere
// than where it runs (aot/background_compile.h): the cached code for this
// host, or null; and a fresh artifact for this host, also written to the
// cache when `cache_dir` is not empty.
std::shared_ptr<const CodeImage> jit_cached(const util::Sha256Digest& hash,
                                            const CompileOptions& options,
                                            const std::string& cache_dir);
Compiled<std::vector<uint8_t>> jit_artifact(const wasm::Module& module,
                                            const util::Sha256Digest& hash,
                                            const CompileOptions& options,
                                            const std::string& cache_dir);

} // namespace tern::aot
