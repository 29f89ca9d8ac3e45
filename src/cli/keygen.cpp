// `tern keygen FILE`: writes a new random key for `tern serve`, `tern
// migrate` and `tern gateway` (64 hex digits, mode 0600). Both ends of a
// migration must hold the same key file.
#include "cli/commands.h"
#include "migrate/channel.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace tern::cli {
namespace {

void add_keygen_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "keygen", "Write a new random key for tern serve / migrate / gateway (mode 0600)");
  auto path = std::make_shared<std::string>();
  cmd->add_option("FILE", *path, "The key file to create (never overwritten)")
      ->required()
      ->type_name("");
  cmd->callback([path] {
    guarded([&] {
      const migrate::Key key = migrate::Key::generate();
      key.save_new(*path);
      fmt::print("key {} written to {}\n", key.id(), *path);
      return 0;
    });
  });
}

} // namespace

TERN_COMMAND("keygen", add_keygen_command);

} // namespace tern::cli
