// `tern serve --listen ADDR:PORT --key FILE [--mode M] [--dir HOST::GUEST
// ...] [--once]`: receives programs that `tern migrate` moves here and runs
// each in its own process, in the mode asked (compiled for this host when
// needed). What a received program may open is what these options grant,
// as for `tern restore`: the stream's paths are never used.
#include "migrate/serve.h"

#include "cli/commands.h"
#include "cli/host_options.h"
#include "tern/error.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <fmt/format.h>

namespace tern::cli {
namespace {

struct ServeCliOptions {
  std::string listen;
  std::string key;
  std::vector<std::string> dirs;
  bool dirs_from_snapshot = false;
  bool stdio_from_snapshot = false;
  bool once = false;
  bool verbose = false;
  bool allow_changed_files = false;
  HostCliOptions host;
};

int serve(const ServeCliOptions& o) {
  const auto& c = o.host.checkpoint;
  if (!o.once &&
      (!c.control.empty() || !c.to.empty() || !o.host.stats_out.empty() ||
       !o.host.stdin_path.empty() || !o.host.stdout_path.empty() || !o.host.stderr_path.empty()))
    throw Error("--control, --checkpoint-to, --stats-out and the stream options name one "
                "program's files: give them with --once");
  // Checked now, not when the first program arrives.
  checkpoint_policy(c);
  migrate::ServeOptions s;
  s.listen = o.listen;
  s.key_file = o.key;
  s.once = o.once;
  s.verbose = o.verbose;
  s.target.default_mode = o.host.engine.mode;
  s.target.engine = [host = o.host](const std::string& mode) {
    const auto& modes = engine_modes();
    if (std::find(modes.begin(), modes.end(), mode) == modes.end())
      throw Error(fmt::format("this tern has no execution mode '{}'", mode));
    HostCliOptions h = host;
    h.engine.mode = mode;
    return engine_spec(h);
  };
  for (const auto& d : o.dirs) s.target.wasi.dirs.push_back(wasi::parse_dir_option(d));
  s.target.wasi.dirs_from_snapshot = o.dirs_from_snapshot;
  s.target.wasi.stdio_from_snapshot = o.stdio_from_snapshot;
  s.target.wasi.allow_changed_files = o.allow_changed_files;
  apply_host_options(o.host, s.target.wasi);
  // A received program re-joins its gateway with serve's key, at the
  // gateway the stream names unless --gateway says another.
  HostCliOptions gateway = o.host;
  gateway.key = o.key;
  gateway_participants(gateway, GatewayUse::Serve); // options checked now
  s.target.participants = [gateway] { return gateway_participants(gateway, GatewayUse::Serve); };
  s.run = [&o](program::Program& prog, const std::string& mode) {
    // The engine the program was rebuilt for, which `tern migrate --mode`
    // may have chosen over serve's --mode: the control socket's status
    // reports it.
    HostCliOptions received = o.host;
    received.engine.mode = mode;
    auto supervisor = make_supervisor(received);
    return supervise_and_report(prog, *supervisor, received);
  };
  return migrate::serve(s);
}

void add_serve_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "serve", "Receive programs moved by `tern migrate` and run each in its own process");
  auto o = std::make_shared<ServeCliOptions>();
  cmd->add_option("--listen", o->listen, "Where to accept migrations (port 0: any free port)")
      ->required()
      ->type_name("ADDR:PORT");
  cmd->add_option("--key", o->key, "The key both ends hold (from tern keygen)")
      ->required()
      ->type_name("FILE");
  add_engine_and_stream_options(*cmd, o->host);
  cmd->add_option("--dir", o->dirs,
                  "Map the program's directory GUEST to HOST here (every directory a program "
                  "uses must be mapped, or it is refused)")
      ->type_name("HOST::GUEST")
      ->allow_extra_args(false);
  cmd->add_flag("--dir-from-snapshot", o->dirs_from_snapshot,
                "Give directories no --dir names at the host paths the source had (shared "
                "storage)");
  cmd->add_flag("--stdio-from-snapshot", o->stdio_from_snapshot,
                "Continue streams the source redirected to files in those files (shared "
                "storage; no --stdin/--stdout/--stderr given)");
  cmd->add_flag("--allow-changed-files", o->allow_changed_files,
                "Reopen files that differ from the source's instead of refusing");
  add_sandbox_options(*cmd, o->host);
  add_gateway_options(*cmd, o->host, GatewayUse::Serve);
  cmd->add_flag("--once", o->once,
                "Run the first program received in the foreground (its output is serve's) and "
                "exit with its exit status");
  cmd->add_flag("-v,--verbose", o->verbose, "Report connections and each step on stderr");
  add_checkpoint_and_stats_options(*cmd, o->host);
  cmd->callback([o] { guarded([&] { return serve(*o); }); });
}

} // namespace

TERN_COMMAND("serve", add_serve_command);

} // namespace tern::cli
