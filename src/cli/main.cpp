// The `tern` command: subcommands are registered from their own files.
#include "cli/commands.h"
#include "tern/version.h"
#include "util/trace_time.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

int main(int argc, char** argv) {
  tern::util::trace_time_start();
  CLI::App app{"tern: a WebAssembly runtime that checkpoints, restores and migrates programs",
               "tern"};
  app.set_version_flag("--version", fmt::format("tern {}", tern::kVersion));
  app.require_subcommand(1);
  tern::cli::register_commands(app, argc > 1 ? argv[1] : "");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return tern::cli::exit_code();
}
