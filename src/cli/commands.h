// Subcommands of `tern`. Each lives in its own file and registers itself
// with TERN_COMMAND; all report errors the same way (guarded()).
#pragma once

#include <functional>
#include <string_view>

// Declared only: CLI11 (header-only, several seconds of compile time per
// file) is included by the files that declare options.
namespace CLI {
class App;
}

namespace tern::cli {

// Adds the subcommands to `app`: only the one named `first_arg` (argv[1])
// when there is one, else all of them (help, unknown names).
void register_commands(CLI::App& app, std::string_view first_arg);

// The process exit code chosen by the subcommand that ran.
int exit_code();

// The exit status of a command stopped by a bug in tern (tern::InternalError),
// EX_SOFTWARE of sysexits.h: never 1, which means bad input.
inline constexpr int kInternalErrorExitCode = 70;

// Runs a subcommand body: its return value becomes the exit code; a
// tern::Error or other exception prints one "tern: error: ..." line on stderr
// and exits with 1 (bad input never crashes); a tern::InternalError prints
// one "tern: internal error: ..." line that asks for a bug report and exits
// with kInternalErrorExitCode.
void guarded(const std::function<int()>& body);

// Adds a subcommand to `app`; one per subcommand file, registered with
// TERN_COMMAND("name", function) at namespace scope in that file.
using CommandAdder = void (*)(CLI::App& app);
struct CommandRegistration {
  CommandRegistration(const char* name, CommandAdder add);
};
#define TERN_COMMAND(name, add)                                                                    \
  static const ::tern::cli::CommandRegistration kCommand_##add(name, add)

} // namespace tern::cli
