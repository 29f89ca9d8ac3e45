#include "cli/engine_mode.h"

#include "aot/abi.h"
#include "aot/artifact.h"
#include "aot/background_compile.h"
#include "aot/cache.h"
#include "aot/engine.h"
#include "interp/engine.h"
#include "runtime/instance.h"
#include "runtime/tiering.h"
#include "tern/error.h"
#include "tern/internal_error.h"
#include "util/file.h"

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <map>

namespace tern::cli {
namespace {

std::string cache_dir_of(const EngineOptions& o) {
  return o.cache_dir.empty() ? aot::default_cache_dir() : o.cache_dir;
}

// An artifact given with --artifact must count stable points exactly when
// they are counted (--checkpoint-at, --stats-out): code that polls only
// before inner loops would stop elsewhere than every other engine.
std::shared_ptr<const aot::CodeImage> given_artifact(const EngineOptions& o,
                                                     const util::Sha256Digest& hash) {
  auto image = aot::load_artifact(util::read_file(o.artifact), hash, o.artifact);
  if (o.compile.exact_points && o.compile.stable_points &&
      !(image->info().flags & aot::kExactPoints))
    throw Error(fmt::format("{}: counting stable points (--checkpoint-at, --stats-out) needs code "
                            "compiled with `tern compile --exact-points`",
                            o.artifact));
  return image;
}

// Compiled code for `module` in aot mode: the given artifact, else the
// cached one, else compiled now (and cached).
std::shared_ptr<const aot::CodeImage> aot_code(const EngineOptions& o, const wasm::Module& module,
                                               const util::Sha256Digest& hash) {
  if (!o.artifact.empty()) return given_artifact(o, hash);
  std::string path;
  if (o.use_cache) {
    path = aot::cache_path(cache_dir_of(o), hash, o.compile, aot::CacheKind::Artifact);
    std::error_code ec; // a cache this user cannot read is an empty one
    if (std::filesystem::exists(path, ec)) {
      try {
        return aot::load_artifact(util::read_file(path), hash, path);
      } catch (const Error&) {
        if (!aot::compiler_available()) throw; // else: a stale entry, compiled again below
      }
    }
  }
  if (!aot::compiler_available())
    throw Error(fmt::format(
        "no compiled code for the module (sha-256 {}) in {}: this tern has no compiler; "
        "compile it with `tern compile --target {}` and pass --artifact or --cache-dir",
        util::to_hex(hash), o.use_cache ? cache_dir_of(o) : "memory", o.compile.target.name()));
  auto artifact = aot::compile_artifact(module, hash, o.compile).take("cannot compile the module");
  if (!path.empty()) {
    util::create_directories(cache_dir_of(o));
    util::write_file_atomic(path, artifact);
  }
  return aot::load_artifact(artifact, hash, "the compiled module");
}

std::shared_ptr<const aot::CodeImage> jit_code(const EngineOptions& o, const wasm::Module& module,
                                               const util::Sha256Digest& hash) {
  aot::CompileOptions options = o.compile;
  if (options.target.cpu.empty()) options.target.cpu = "native";
  return aot::jit_compile(module, hash, options, o.use_cache ? cache_dir_of(o) : std::string())
      .take("cannot compile the module");
}

// auto: the interpreter at once, compiled code (cached, else compiled in
// a child process) from the first stable point after it is ready
// (runtime/tiering.h). The code is the JIT's, under the same cache key, so
// `--mode jit` and `--mode auto` share it. The compiler starts once the
// program has run kCompileDelay (at once for --tier-up-at, which waits for
// it): a shorter program ends before compiling could pay off and never
// forks it, and the fork is not on the way to the first instruction.
constexpr std::chrono::milliseconds kCompileDelay{100};

std::unique_ptr<runtime::Engine> auto_engine(const EngineOptions& o) {
  // A build that cannot have a compiler (the static cross builds) has
  // nothing to move into: auto is the interpreter there, silently, as the
  // default mode must be.
  if (!aot::compiler_in_build()) return interp::make_engine();
  aot::CompileOptions options = o.compile;
  if (options.target.cpu.empty()) options.target.cpu = "native";
  const std::string cache_dir = o.use_cache ? cache_dir_of(o) : std::string();
  using Codes = std::map<const wasm::Module*, std::shared_ptr<aot::BackgroundCompile>>;
  auto codes = std::make_shared<Codes>();
  runtime::TieringParts parts;
  parts.first = interp::make_engine();
  parts.faster = aot::make_engine([codes](const wasm::Module& m, const util::Sha256Digest&) {
    auto it = codes->find(&m);
    if (it == codes->end()) throw InternalError("no compiled code was started");
    return it->second->code();
  });
  const auto delay = o.tier_up_at ? std::chrono::milliseconds(0) : kCompileDelay;
  parts.start = [codes, options, cache_dir, delay](const runtime::ModuleInstance& inst,
                                                   std::function<void()> ready) {
    auto code = std::make_shared<aot::BackgroundCompile>(inst.module_ptr(), options, cache_dir,
                                                         delay, std::move(ready));
    (*codes)[&inst.module()] = code;
    return code;
  };
  parts.switch_at = o.tier_up_at;
  return runtime::make_tiering_engine(std::move(parts));
}

} // namespace

const std::vector<std::string>& engine_modes() {
  // auto first: the default (docs/performance.md, "Tiering": it starts as
  // fast as the interpreter and runs as fast as the JIT once compiled).
  static const std::vector<std::string> modes = {"auto", "interp", "aot", "jit"};
  return modes;
}

void add_engine_options(CLI::App& cmd, EngineOptions& o) {
  cmd.add_option("--mode", o.mode,
                 "Execution engine: auto (starts in the interpreter, moves into compiled code "
                 "when it is ready), interp (interpreter), aot (compiled code from --artifact or "
                 "the cache, compiled first if missing), jit (compiled in-process)")
      ->check(CLI::IsMember(engine_modes()))
      ->capture_default_str();
  cmd.add_option("--tier-up-at", o.tier_up_at,
                 "auto: move into compiled code at the N-th stable point exactly, waiting for "
                 "the code if needed (for tests)")
      ->type_name("N")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--artifact", o.artifact, "Compiled code for the module (from `tern compile`)")
      ->type_name("FILE");
  cmd.add_option("--cache-dir", o.cache_dir,
                 "Where compiled code is kept between runs (default: $TERN_CACHE_DIR, "
                 "else ~/.cache/tern)")
      ->type_name("DIR")
      ->each([&o](const std::string&) { o.use_cache = true; });
  cmd.add_flag_callback(
      "--no-cache", [&o] { o.use_cache = false; },
      "Compile in memory; neither read nor write the cache");
}

std::unique_ptr<runtime::Engine> make_engine_for_mode(const std::string& mode) {
  EngineOptions o;
  o.mode = mode;
  return make_engine_for_mode(o);
}

std::unique_ptr<runtime::Engine> make_engine_for_mode(const EngineOptions& o) {
  if (o.tier_up_at && o.mode != "auto") throw Error("--tier-up-at needs --mode auto");
  if (o.mode == "interp") return interp::make_engine();
  if (o.mode == "auto") return auto_engine(o);
  if (o.mode == "aot")
    return aot::make_engine(
        [o](const wasm::Module& m, const util::Sha256Digest& h) { return aot_code(o, m, h); });
  if (o.mode == "jit")
    return aot::make_engine(
        [o](const wasm::Module& m, const util::Sha256Digest& h) { return jit_code(o, m, h); });
  throw Error(fmt::format("unknown execution mode '{}' (known: {})", o.mode,
                          fmt::join(engine_modes(), ", ")));
}

} // namespace tern::cli
