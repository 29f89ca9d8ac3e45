// `tern migrate --control SOCKET --to HOST:PORT --key FILE [--mode M]
// [--max-rounds N] [--max-downtime MS] [--timeout DURATION]`: moves the
// program of a running `tern run/restore --control SOCKET` to `tern serve`
// on HOST:PORT. The program's own tern does the work (it holds the
// memory); this command asks it and prints the outcome:
// `migrated to HOST:PORT: R rounds, X MiB sent, downtime D ms`.
#include "cli/checkpoint_options.h"
#include "cli/commands.h"
#include "migrate/channel.h"
#include "migrate/source.h"
#include "program/control_socket.h"
#include "tern/error.h"

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fmt/format.h>

namespace tern::cli {
namespace {

struct MigrateCliOptions {
  std::string control;
  migrate::MigrateRequest request;
  uint64_t max_downtime_ms = 30;
  std::string timeout = "10s";
};

int migrate_program(MigrateCliOptions o) {
  migrate::MigrateRequest& r = o.request;
  // Checked here for a clear error; the program's tern reads it again,
  // from wherever it runs.
  migrate::Key::load(r.key_file);
  r.key_file = std::filesystem::absolute(r.key_file).string();
  r.max_downtime = std::chrono::milliseconds(o.max_downtime_ms);
  r.timeout = parse_duration(o.timeout, "--timeout");
  if (r.to.find(' ') != std::string::npos || r.mode.find(' ') != std::string::npos)
    throw Error(fmt::format("--to {} / --mode {}: no spaces allowed", r.to, r.mode));
  const std::string reply = program::control_request(o.control, r.to_request_line());
  if (reply.rfind("error ", 0) == 0) throw Error(reply.substr(6));
  if (reply.rfind("ok migrated to ", 0) != 0)
    throw Error(fmt::format("{}: unexpected reply to migrate: {:.200}", o.control, reply));
  fmt::print("{}\n", reply.substr(3));
  return 0;
}

void add_migrate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "migrate", "Move a running `tern run/restore --control SOCKET` program to `tern serve`");
  auto o = std::make_shared<MigrateCliOptions>();
  cmd->add_option("--control", o->control, "The program's control socket")
      ->required()
      ->type_name("SOCKET");
  cmd->add_option("--to", o->request.to, "Where `tern serve` listens")
      ->required()
      ->type_name("HOST:PORT");
  cmd->add_option("--key", o->request.key_file, "The key serve holds too (from tern keygen)")
      ->required()
      ->type_name("FILE");
  cmd->add_option(
         "--mode", o->request.mode,
         "Execution engine on the target: auto, interp, aot or jit (default: serve's --mode)")
      ->type_name("M");
  cmd->add_option("--max-rounds", o->request.max_rounds,
                  "Pre-copy rounds while the program runs, at most; then it stops and the rest "
                  "goes (0: stop-and-copy)")
      ->capture_default_str()
      ->type_name("N");
  // Bounded (a day): a uint64_t option takes "-5" as 2^64-5, which the
  // program's tern read as a negative duration.
  cmd->add_option("--max-downtime", o->max_downtime_ms,
                  "Stop the program once what is left could be sent in this many milliseconds")
      ->capture_default_str()
      ->type_name("MS")
      ->check(CLI::Range(uint64_t{0}, uint64_t{86'400'000}));
  cmd->add_option("--timeout", o->timeout,
                  "Give up (the program continues here) when the target stays silent this long")
      ->capture_default_str()
      ->type_name("DURATION");
  cmd->add_flag("--bundle-files", o->request.bundle_files,
                "Carry the contents of files open for writing to the target");
  cmd->add_flag(
      "--no-compress", [o](int64_t) { o->request.compress = false; },
      "Send memory pages uncompressed (fast links)");
  cmd->callback([o] { guarded([&] { return migrate_program(*o); }); });
}

} // namespace

TERN_COMMAND("migrate", add_migrate_command);

} // namespace tern::cli
