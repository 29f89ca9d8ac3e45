// `tern compile MODULE -o OUT [--target ARCH] [--opt-level N]`: compiles a
// module ahead of time into an artifact (aot/artifact.h) that
// `tern run --mode aot --artifact OUT` loads without LLVM, on this host or,
// with --target, on an aarch64 or s390x host. With --cache-dir instead of
// -o, the artifact goes where `--mode aot` looks for it.
#include "aot/artifact.h"
#include "aot/cache.h"
#include "aot/compiler.h"
#include "cli/commands.h"
#include "cli/load.h"
#include "tern/error.h"
#include "util/file.h"

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fmt/format.h>

namespace tern::cli {
namespace {

struct CompileCommand {
  std::string module;
  std::string output;
  std::string cache_dir;
  std::string target = std::string(aot::arch_name(aot::host_target().arch));
  std::string cpu;
  unsigned opt_level = 2;
  bool no_stable_points = false;
  bool bounds_checks = false;
  bool exact_points = false;
  bool wide_addresses = false;
};

int compile(const CompileCommand& c) {
  if (c.output.empty() == c.cache_dir.empty())
    throw Error("say where the artifact goes: -o FILE or --cache-dir DIR");
  aot::CompileOptions options;
  auto arch = aot::parse_arch(c.target);
  if (!arch) throw Error(fmt::format("--target {}: expected x86_64, aarch64 or s390x", c.target));
  options.target = {*arch, c.cpu};
  options.opt_level = c.opt_level;
  options.stable_points = !c.no_stable_points;
  options.bounds_checks = c.bounds_checks;
  options.exact_points = c.exact_points;
  options.wide_addresses = c.wide_addresses;
  if (!aot::compiler_available()) {
    auto none = aot::compile_artifact(wasm::Module{}, {}, options);
    throw Error(none.error);
  }
  auto module = load_module(c.module);
  const util::Sha256Digest hash = util::sha256(module->bytes);
  auto artifact = aot::compile_artifact(*module, hash, options)
                      .take(fmt::format("{}: cannot compile", c.module));
  std::string path = c.output;
  if (path.empty()) {
    util::create_directories(c.cache_dir);
    path = aot::cache_path(c.cache_dir, hash, options, aot::CacheKind::Artifact);
  }
  // An artifact named with -o is an output like a compiler's (readable by
  // others unless the umask says otherwise); cache entries stay private.
  util::AtomicWriteOptions mode;
  if (!c.output.empty()) mode.mode = 0644;
  util::write_file_atomic(path, artifact, mode);
  return 0;
}

void add_compile_command(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("compile", "Compile a module ahead of time into a native artifact");
  auto c = std::make_shared<CompileCommand>();
  cmd->add_option("MODULE", c->module, "WebAssembly binary (.wasm)")->required();
  cmd->add_option("-o,--output", c->output, "The artifact to write")->type_name("FILE");
  cmd->add_option(
         "--cache-dir", c->cache_dir,
         "Put the artifact in this compiled-code cache instead (--mode aot finds it there)")
      ->type_name("DIR");
  cmd->add_option("--target", c->target, "Architecture to compile for: x86_64, aarch64 or s390x")
      ->capture_default_str();
  cmd->add_option(
      "--cpu", c->cpu,
      "CPU model (LLVM name, or native); default: x86-64-v2, generic (aarch64), z13 (s390x)");
  cmd->add_option("--opt-level", c->opt_level, "Optimization level 0-3")
      ->check(CLI::Range(0, 3))
      ->capture_default_str();
  cmd->add_flag("--no-stable-points", c->no_stable_points,
                "Leave out checkpoint support (polls, unwind and rewind paths): such code cannot "
                "be checkpointed or restored");
  cmd->add_flag("--exact-points", c->exact_points,
                "Poll at every loop header and function entry, so that `--checkpoint-at` and "
                "`--stats-out` count stable points as the interpreter does (tern run and restore "
                "compile such code themselves when counting; this is for artifacts)");
  cmd->add_flag("--wide-addresses", c->wide_addresses,
                "Sum address arithmetic in 64 bits over a mirrored memory (docs/aot.md): helps "
                "some loops vectorize, but a background checkpoint then copies the memory");
  cmd->add_flag("--bounds-checks", c->bounds_checks,
                "Check memory accesses explicitly instead of relying on guard pages");
  cmd->callback([c] { guarded([&] { return compile(*c); }); });
}

} // namespace

TERN_COMMAND("compile", add_compile_command);

} // namespace tern::cli
