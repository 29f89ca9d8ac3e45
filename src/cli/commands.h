// Subcommands of `tern`. Each lives in its own file and registers itself
// from register_commands(); all report errors the same way (guarded()).
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace tern::cli {

void register_commands(CLI::App& app);

// The process exit code chosen by the subcommand that ran.
int exit_code();

// Runs a subcommand body: its return value becomes the exit code; a
// tern::Error or other exception prints one "tern: error: ..." line on stderr
// and exits with 1 (bad input never crashes).
void guarded(const std::function<int()>& body);

// One per subcommand file.
void add_validate_command(CLI::App& app);
void add_wast_command(CLI::App& app);
void add_disasm_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_inspect_command(CLI::App& app);

} // namespace tern::cli
