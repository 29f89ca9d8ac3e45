// Choosing the execution engine from a command-line mode name. The one place
// that knows which modes exist, so every command offers the same choice.
#pragma once

#include "aot/compiler.h"
#include "runtime/engine.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace tern::cli {

// Mode names accepted by --mode; the first is the default.
const std::vector<std::string>& engine_modes();

// How the aot and jit modes find compiled code.
struct EngineOptions {
  std::string mode = engine_modes().front();
  // aot: this artifact for the (single) module instead of the cache.
  std::string artifact;
  // aot and jit: where compiled code is kept between runs ("" = the
  // default cache directory, aot/cache.h); `use_cache` off compiles in
  // memory every time.
  std::string cache_dir;
  bool use_cache = true;
  // For code compiled on the fly (aot without an artifact, jit, auto).
  aot::CompileOptions compile;
  // auto: move into compiled code at this stable point exactly (tests).
  std::optional<uint64_t> tier_up_at;
};

// Adds --mode, --tier-up-at, --artifact, --cache-dir and --no-cache to a
// subcommand.
void add_engine_options(CLI::App& cmd, EngineOptions& options);

// The engine for `mode` with default options; throws tern::Error for an
// unknown mode.
std::unique_ptr<runtime::Engine> make_engine_for_mode(const std::string& mode);
std::unique_ptr<runtime::Engine> make_engine_for_mode(const EngineOptions& options);

} // namespace tern::cli
