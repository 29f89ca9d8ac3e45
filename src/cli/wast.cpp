// `tern wast FILE.wast...`: runs WebAssembly spec test scripts and reports
// per file and in total "N passed, M failed[, K skipped]". Scripts are
// converted with wast2json (the threads proposal's thread and wait commands
// by tern itself, cli/wast_threads.h); `--json FILE.json` runs an already converted
// one (so a cross-built tern under qemu needs no wast2json of its own).
#include "cli/commands.h"
#include "cli/engine_mode.h"
#include "cli/wast_convert.h"
#include "cli/wast_script.h"
#include "cli/wast_threads.h"
#include "tern/error.h"
#include "util/file.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tern::cli {
namespace {

struct WastOptions {
  std::vector<std::string> wast_files;
  std::vector<std::string> json_files;
  std::string convert_to; // only convert the scripts into this directory
  EngineOptions engine;
};

nlohmann::json read_command_list(const std::string& json_path) {
  auto bytes = util::read_file(json_path);
  try {
    return nlohmann::json::parse(bytes.begin(), bytes.end());
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: not a wast2json command list: {}", json_path, e.what()));
  }
}

// Runs one converted script; names it by the .wast it came from when the
// command list says so (wast2json records "source_filename").
WastTally run_json(const std::string& json_path, const std::string& fallback_name,
                   const EngineOptions& engine) {
  nlohmann::json commands = read_command_list(json_path);
  WastScript script;
  script.name =
      commands.is_object() ? commands.value("source_filename", fallback_name) : fallback_name;
  script.wasm_dir = std::filesystem::path(json_path).parent_path().string();
  if (script.wasm_dir.empty()) script.wasm_dir = ".";
  WastTally tally = run_wast_script(script, commands, engine);
  fmt::print("{}: {}\n", script.name, format_tally(tally));
  return tally;
}

WastTally run_wast(const std::string& wast_path, const EngineOptions& engine) {
  TempDir dir;
  return run_json(convert_script(wast_path, dir.path()), wast_path, engine);
}

// --convert-to DIR: each script's command list and modules, for a later
// `tern wast --json DIR/STEM.json` (by a cross-built tern under qemu).
int convert_all(const WastOptions& options) {
  if (options.wast_files.empty()) throw Error("no scripts given: pass FILE.wast");
  std::filesystem::create_directories(options.convert_to);
  for (const auto& path : options.wast_files)
    fmt::print("{}\n", convert_script(path, options.convert_to));
  return 0;
}

int run_all(const WastOptions& options) {
  if (!options.convert_to.empty()) return convert_all(options);
  if (options.wast_files.empty() && options.json_files.empty())
    throw Error("no scripts given: pass FILE.wast or --json FILE.json");
  WastTally total;
  int unreadable = 0;
  auto run_one = [&](const auto& run) {
    try {
      total += run();
    } catch (const Error& e) {
      std::fflush(stdout); // keep the error after the lines printed before it
      fmt::print(stderr, "tern: error: {}\n", e.what());
      ++unreadable;
    }
  };
  for (const auto& path : options.wast_files)
    run_one([&] { return run_wast(path, options.engine); });
  for (const auto& path : options.json_files)
    run_one([&] { return run_json(path, path, options.engine); });
  fmt::print("{}\n", format_tally(total));
  return total.failed > 0 || unreadable > 0 ? 1 : 0;
}

} // namespace

void add_wast_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("wast", "Run WebAssembly spec test scripts (.wast)");
  auto options = std::make_shared<WastOptions>();
  // Spec modules are compiled in memory unless a cache is named (cross
  // runs find artifacts compiled for their target there).
  options->engine.use_cache = false;
  cmd->add_option("FILE", options->wast_files,
                  "Spec scripts (.wast), converted with wabt's wast2json");
  cmd->add_option("--json", options->json_files,
                  "Scripts already converted by wast2json (their .wasm files next to them)");
  cmd->add_option("--convert-to", options->convert_to,
                  "Only convert the scripts (thread commands included) into DIR and print "
                  "each command list's path");
  add_engine_options(*cmd, options->engine);
  cmd->callback([options] { guarded([&] { return run_all(*options); }); });
}

TERN_COMMAND("wast", add_wast_command);

} // namespace tern::cli
