// `tern restore SNAPSHOT [OPTIONS]`: continues a checkpointed program on this
// host, in any engine, with its files reopened and its output going to
// tern's own streams. It can be checkpointed again (the same options as
// `tern run`), so restores chain.
#include "cli/checkpoint_options.h"
#include "cli/commands.h"
#include "cli/engine_mode.h"
#include "cli/load.h"
#include "cli/stats.h"
#include "program/program.h"
#include "program/supervisor.h"
#include "tern/error.h"

#include <fmt/format.h>
#include <tuple>

namespace tern::cli {
namespace {

struct RestoreCliOptions {
  std::string snapshot;
  std::string module;
  std::vector<std::string> dirs;
  std::string stdin_path, stdout_path, stderr_path;
  bool allow_changed_files = false;
  std::vector<std::string> allow_connect, allow_bind, allow_resolve;
  std::string path_resolver = "auto";
  std::string mode = "interp";
  CheckpointCliOptions checkpoint;
  std::string stats_out;
};

wasi::ResolveMode resolve_mode(const std::string& name) {
  if (name == "auto") return wasi::ResolveMode::Auto;
  if (name == "openat2") return wasi::ResolveMode::Openat2;
  if (name == "walk") return wasi::ResolveMode::Walk;
  throw Error(fmt::format("--path-resolver {}: expected auto, openat2 or walk", name));
}

int restore(const RestoreCliOptions& o) {
  program::CheckpointPolicy policy = checkpoint_policy(o.checkpoint);
  program::Program::RestoreOptions options;
  if (!o.module.empty()) options.module = load_module(o.module);
  for (const auto& d : o.dirs) options.wasi.dirs.push_back(wasi::parse_dir_option(d));
  options.wasi.stdin_path = o.stdin_path;
  options.wasi.stdout_path = o.stdout_path;
  options.wasi.stderr_path = o.stderr_path;
  options.wasi.allow_changed_files = o.allow_changed_files;
  options.wasi.allow_connect = o.allow_connect;
  options.wasi.allow_bind = o.allow_bind;
  options.wasi.allow_resolve = o.allow_resolve;
  options.wasi.resolve_mode = resolve_mode(o.path_resolver);
  program::EngineSpec engine{o.mode, [&] { return make_engine_for_mode(o.mode); }};
  auto prog = program::Program::restore(o.snapshot, options, engine);
  if (!o.stats_out.empty()) prog->stop_at_stable_point(policy.at.value_or(0));
  program::SupervisedOutcome outcome = program::supervise(*prog, policy);
  int status = exit_status(outcome, prog->module());
  if (!o.stats_out.empty()) write_stats(o.stats_out, *prog, outcome, status);
  return status;
}

void add_restore_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("restore", "Continue a checkpointed program from its snapshot");
  auto o = std::make_shared<RestoreCliOptions>();
  cmd->add_option("SNAPSHOT", o->snapshot, "The snapshot file")->required()->type_name("");
  cmd->add_option("--module", o->module,
                  "The program's module, when the snapshot does not carry it (checked by sha256)")
      ->type_name("FILE");
  cmd->add_option("--dir", o->dirs,
                  "Map the program's directory GUEST to HOST on this machine (default: the "
                  "host path saved in the snapshot)")
      ->type_name("HOST[::GUEST]")
      ->allow_extra_args(false);
  cmd->add_option("--stdin", o->stdin_path, "Read the program's stdin from FILE")
      ->type_name("FILE");
  cmd->add_option("--stdout", o->stdout_path, "Write the program's stdout to FILE")
      ->type_name("FILE");
  cmd->add_option("--stderr", o->stderr_path, "Write the program's stderr to FILE")
      ->type_name("FILE");
  cmd->add_flag("--allow-changed-files", o->allow_changed_files,
                "Reopen files that changed since the checkpoint instead of refusing");
  // The network sandbox is the restore's own, as for `tern run`.
  for (auto [name, into, type, help] :
       {std::tuple{"--allow-connect", &o->allow_connect, "ADDR[/PREFIX][:PORT]",
                   "Let the program connect and send to matching addresses (socket extension)"},
        std::tuple{"--allow-bind", &o->allow_bind, "ADDR[/PREFIX][:PORT]",
                   "Let the program bind sockets to matching addresses (socket extension)"},
        std::tuple{"--allow-resolve", &o->allow_resolve, "HOST",
                   "Let the program resolve host name HOST (*.SUFFIX, or * for any)"}})
    cmd->add_option(name, *into, help)->allow_extra_args(false)->type_size(1)->type_name(type);
  cmd->add_option("--path-resolver", o->path_resolver,
                  "How paths are kept inside --dir directories: auto, openat2 or walk")
      ->type_name("MODE");
  cmd->add_option("--mode", o->mode, "Execution engine: interp (default)")
      ->type_name("MODE")
      ->check(CLI::IsMember(engine_modes()));
  add_checkpoint_options(*cmd, o->checkpoint);
  cmd->add_option("--stats-out", o->stats_out,
                  "At the end, write JSON to FILE: stable points executed, memory sha256, "
                  "exit status (for tests)")
      ->type_name("FILE");
  cmd->callback([o] { guarded([&] { return restore(*o); }); });
}

} // namespace

TERN_COMMAND("restore", add_restore_command);

} // namespace tern::cli
