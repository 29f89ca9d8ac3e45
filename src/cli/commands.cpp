#include "cli/commands.h"

#include <cstdio>
#include <exception>

#include <fmt/format.h>

namespace tern::cli {
namespace {
int g_exit_code = 0;
}

int exit_code() { return g_exit_code; }

void guarded(const std::function<int()>& body) {
  try {
    g_exit_code = body();
  } catch (const std::exception& e) {
    fmt::print(stderr, "tern: error: {}\n", e.what());
    g_exit_code = 1;
  }
}

void register_commands(CLI::App& app) {
  add_validate_command(app);
  add_wast_command(app);
  add_disasm_command(app);
  add_run_command(app);
  add_inspect_command(app);
}

} // namespace tern::cli
