// `tern restore SNAPSHOT [OPTIONS]`: continues a checkpointed program on this
// host, in any engine, with its files reopened and its output going to
// tern's own streams. It can be checkpointed again (the same options as
// `tern run`), so restores chain.
#include "cli/commands.h"
#include "cli/host_options.h"
#include "cli/load.h"
#include "program/program.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace tern::cli {
namespace {

struct RestoreCliOptions {
  std::string snapshot;
  std::string module;
  std::vector<std::string> dirs;
  bool dirs_from_snapshot = false;
  bool stdio_from_snapshot = false;
  std::vector<std::string> listen;
  std::string parents;
  bool allow_changed_files = false;
  bool eager = false;
  HostCliOptions host;
};

int restore(const RestoreCliOptions& o) {
  // First: a checkpoint request may arrive while the snapshot loads.
  auto supervisor = make_supervisor(o.host);
  program::Program::RestoreOptions options;
  if (!o.module.empty()) {
    auto module = load_module(o.module);
    // Hashed once: the snapshot check, the compiled code and a next
    // checkpoint all need it.
    module->known_sha256 = module->sha256();
    options.module = std::move(module);
  }
  for (const auto& d : o.dirs) options.wasi.dirs.push_back(wasi::parse_dir_option(d));
  options.wasi.dirs_from_snapshot = o.dirs_from_snapshot;
  options.wasi.stdio_from_snapshot = o.stdio_from_snapshot;
  options.wasi.listen = o.listen;
  options.wasi.allow_changed_files = o.allow_changed_files;
  options.chain.parents_dir = o.parents;
  // Lazy unless asked not to, or unless dirty-page tracking must cover the
  // memory from the start (its userfaultfd and the loader's cannot share
  // the memory: tracking would wait for the whole memory anyway).
  options.lazy = !o.eager && !o.host.checkpoint.incremental;
  options.eager_because =
      o.eager ? "--eager" : "--incremental tracks the pages written from the start";
  apply_host_options(o.host, options.wasi);
  options.participants = gateway_participants(o.host, GatewayUse::Restore);
  auto prog = program::Program::restore(o.snapshot, options, engine_spec(o.host));
  if (o.host.checkpoint.verbose)
    fmt::print(stderr, "tern: restore: memory loaded {}\n", prog->memory_loading());
  return supervise_and_report(*prog, *supervisor, o.host);
}

void add_restore_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("restore", "Continue a checkpointed program from its snapshot");
  auto o = std::make_shared<RestoreCliOptions>();
  cmd->add_option("SNAPSHOT", o->snapshot,
                  "The snapshot file (an incremental one with its parents beside it)")
      ->required()
      ->type_name("");
  add_engine_and_stream_options(*cmd, o->host);
  cmd->add_option("--module", o->module,
                  "The program's module, when the snapshot does not carry it (checked by sha256)")
      ->type_name("FILE");
  cmd->add_option("--dir", o->dirs, "Give the program's directory GUEST as HOST on this machine")
      ->type_name("HOST[::GUEST]")
      ->allow_extra_args(false);
  cmd->add_flag("--dir-from-snapshot", o->dirs_from_snapshot,
                "Give directories no --dir names at the host paths the snapshot saved");
  cmd->add_flag("--stdio-from-snapshot", o->stdio_from_snapshot,
                "Continue streams the run redirected to files in those files (no "
                "--stdin/--stdout/--stderr given)");
  add_parents_option(*cmd, o->parents);
  cmd->add_flag("--eager", o->eager,
                "Load the whole memory before the program continues (default: pages load on "
                "first touch and in the background, with userfaultfd where it works)");
  cmd->add_flag("--allow-changed-files", o->allow_changed_files,
                "Reopen files that changed since the checkpoint instead of refusing");
  cmd->add_option("--listen", o->listen,
                  "Let the program's listening socket on ADDR:PORT listen again")
      ->type_name("ADDR:PORT")
      ->allow_extra_args(false)
      ->type_size(1);
  // The network sandbox is the restore's own, as for `tern run`.
  add_sandbox_options(*cmd, o->host);
  add_gateway_options(*cmd, o->host, GatewayUse::Restore);
  add_checkpoint_and_stats_options(*cmd, o->host);
  cmd->callback([o] { guarded([&] { return restore(*o); }); });
}

} // namespace

TERN_COMMAND("restore", add_restore_command);

} // namespace tern::cli
