// `tern validate MODULE`: decode and validate, report the first problem.
#include "cli/commands.h"
#include "cli/load.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace tern::cli {

void add_validate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("validate", "Check that a module is well-formed and valid");
  auto path = std::make_shared<std::string>();
  cmd->add_option("MODULE", *path, "WebAssembly binary (.wasm)")->required();
  cmd->callback([path] {
    guarded([&] {
      load_module(*path);
      fmt::print("{}: valid\n", *path);
      return 0;
    });
  });
}

TERN_COMMAND("validate", add_validate_command);

} // namespace tern::cli
