#include "cli/commands.h"

#include "tern/error.h"
#include "tern/internal_error.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <fmt/format.h>

namespace tern::cli {
namespace {
int g_exit_code = 0;
}

int exit_code() {
  return g_exit_code;
}

void guarded(const std::function<int()>& body) {
  try {
    g_exit_code = body();
  } catch (const InternalError& e) {
    fmt::print(stderr,
               "tern: internal error: {} (a bug in tern: please report it with the "
               "command that caused it)\n",
               e.what());
    g_exit_code = kInternalErrorExitCode;
  } catch (const std::exception& e) {
    fmt::print(stderr, "tern: error: {}\n", e.what());
    g_exit_code = 1;
  }
}

namespace {
// Filled by static initializers of the subcommand files (all linked into the
// executable); sorted by name so `tern --help` lists them alphabetically.
std::vector<std::pair<std::string, CommandAdder>>& registry() {
  static std::vector<std::pair<std::string, CommandAdder>> commands;
  return commands;
}
} // namespace

CommandRegistration::CommandRegistration(const char* name, CommandAdder add) {
  registry().emplace_back(name, add);
}

void register_commands(CLI::App& app, std::string_view first_arg) {
  auto commands = registry();
  std::sort(commands.begin(), commands.end());
  // Building every subcommand's options costs about half a millisecond: a
  // command line that names one gets only that one (startup time).
  for (const auto& [name, add] : commands) {
    if (name == first_arg) {
      add(app);
      return;
    }
  }
  for (const auto& [name, add] : commands) add(app);
}

} // namespace tern::cli
