// The `tern` command: subcommands are registered from their own files.
#include "cli/commands.h"
#include "program/signals.h"
#include "tern/version.h"
#include "util/trace_time.h"

#include <CLI/CLI.hpp>
#include <cstring>
#include <fmt/format.h>
#include <string>

namespace {

// The subcommand named on the command line, if it is one (for the hint).
std::string named_command(const CLI::App& app, int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') return {};
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    if (sub->get_name() == argv[1]) return sub->get_name();
  return {};
}

// "--name" of "--name=value".
std::string option_name(const std::string& arg) {
  return arg.substr(0, arg.find('='));
}

// A script may signal `tern run` or `tern restore` to checkpoint the moment
// it has started it: their signals wait until the command has installed its
// handlers (program/signals.h). Held before anything else happens, even
// before the libraries initialize: the dynamic loader calls the
// executable's .preinit_array first, with main's arguments.
void hold_signals_of_run_and_restore(int argc, char** argv, char**) {
  if (argc > 1 && (std::strcmp(argv[1], "run") == 0 || std::strcmp(argv[1], "restore") == 0))
    tern::program::hold_signals();
}
[[gnu::section(".preinit_array"),
  gnu::used]] void (*hold_signals_first)(int, char**, char**) = hold_signals_of_run_and_restore;

} // namespace

int main(int argc, char** argv) {
  tern::util::trace_time_start();
  CLI::App app{"tern: a WebAssembly runtime that checkpoints, restores and migrates programs",
               "tern"};
  app.set_version_flag("--version", fmt::format("tern {}", tern::kVersion));
  app.require_subcommand(1);
  tern::cli::register_commands(app, argc > 1 ? argv[1] : "");
  const std::string command = named_command(app, argc, argv);
  // Bad usage is bad input like any other: one "tern: error:" line and exit
  // status 1 (CLI11 would print two lines and exit with 105-114).
  if (argc > 1 && argv[1][0] != '-' && command.empty()) {
    fmt::print(stderr, "tern: error: unknown command '{}' (see tern --help)\n", argv[1]);
    return 1;
  }
  // Else CLI11 reports the missing subcommand rather than the option.
  if (argc > 1 && argv[1][0] == '-' && !app.get_option_no_throw(option_name(argv[1]))) {
    fmt::print(stderr, "tern: error: unknown option '{}' (see tern --help)\n", argv[1]);
    return 1;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success))
      return app.exit(e); // --help, --help-all, --version
    fmt::print(stderr, "tern: error: {} (see tern{}{} --help)\n", e.what(),
               command.empty() ? "" : " ", command);
    return 1;
  }
  return tern::cli::exit_code();
}
