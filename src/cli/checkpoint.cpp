// `tern checkpoint --control SOCKET -o PATH [--stop]`: asks a running
// `tern run --control SOCKET` to checkpoint; prints where it went.
// `tern checkpoint --control SOCKET --status` prints the program's status
// (`running ...`, or `starting ...` while its module or snapshot loads).
#include "cli/commands.h"
#include "program/control_socket.h"
#include "tern/error.h"

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fmt/format.h>

namespace tern::cli {
namespace {

struct CheckpointClientOptions {
  std::string control;
  std::string output;
  bool stop = false;
  bool status = false;
};

// The request line (program/control_socket.h). -o is relative to the
// client's directory, not the program's: it is sent as an absolute path
// (which also never looks like a flag).
std::string request_line(const CheckpointClientOptions& o) {
  if (o.status) return "status";
  std::string command = "checkpoint";
  if (o.stop) command += " --stop";
  if (!o.output.empty()) {
    std::error_code ec;
    const auto path = std::filesystem::absolute(o.output, ec);
    if (ec) throw Error(fmt::format("-o {}: {}", o.output, ec.message()));
    command += " -- " + path.string();
  }
  return command;
}

int checkpoint(const CheckpointClientOptions& o) {
  const std::string command = request_line(o);
  std::string reply = program::control_request(o.control, command);
  if (reply.rfind("error ", 0) == 0) throw Error(reply.substr(6));
  // Anything else is not a tern control socket (or a protocol mismatch):
  // success would claim a checkpoint that was never written.
  const bool expected = o.status
                            ? reply.rfind("running ", 0) == 0 || reply.rfind("starting ", 0) == 0
                            : reply.rfind("ok ", 0) == 0;
  if (!expected)
    throw Error(fmt::format("{}: unexpected reply to `{}`: {:.200}", o.control, command, reply));
  if (o.status)
    fmt::print("{}\n", reply);
  else
    fmt::print("checkpoint written to {}\n", reply.substr(3));
  return 0;
}

void add_checkpoint_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "checkpoint", "Ask a running `tern run --control SOCKET` to checkpoint its program");
  auto o = std::make_shared<CheckpointClientOptions>();
  cmd->add_option("--control", o->control, "The program's control socket")
      ->required()
      ->type_name("SOCKET");
  cmd->add_option("-o,--output", o->output,
                  "Where to write the snapshot (default: the program's --checkpoint-to)")
      ->type_name("PATH");
  cmd->add_flag("--stop", o->stop, "Stop the program once the checkpoint is written");
  cmd->add_flag("--status", o->status, "Print the program's status instead");
  cmd->callback([o] { guarded([&] { return checkpoint(*o); }); });
}

} // namespace

TERN_COMMAND("checkpoint", add_checkpoint_command);

} // namespace tern::cli
