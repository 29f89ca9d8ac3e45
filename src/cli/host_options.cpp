#include "cli/host_options.h"

#include "cli/stats.h"
#include "migrate/gateway_backend.h"
#include "program/supervisor.h"
#include "tern/error.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace tern::cli {

void add_engine_and_stream_options(CLI::App& cmd, HostCliOptions& o) {
  add_engine_options(cmd, o.engine);
  cmd.add_option("--stdin", o.stdin_path, "Read the program's stdin from FILE")->type_name("FILE");
  cmd.add_option("--stdout", o.stdout_path, "Write the program's stdout to FILE")
      ->type_name("FILE");
  cmd.add_option("--stderr", o.stderr_path, "Write the program's stderr to FILE")
      ->type_name("FILE");
  cmd.add_option("--max-threads", o.max_threads,
                 "wasi-threads: at most N spawned threads running at once; thread-spawn "
                 "beyond them fails with -EAGAIN")
      ->type_name("N")
      ->check(CLI::Range(0u, program::kMaxThreadId))
      ->capture_default_str();
}

void add_sandbox_options(CLI::App& cmd, HostCliOptions& o) {
  auto repeatable = [&](const char* name, std::vector<std::string>& into, const char* type,
                        const char* help) {
    cmd.add_option(name, into, help)->allow_extra_args(false)->type_size(1)->type_name(type);
  };
  repeatable("--allow-connect", o.allow_connect, "ADDR[/PREFIX][:PORT]",
             "Let the program connect and send to matching addresses (socket extension)");
  repeatable("--allow-bind", o.allow_bind, "ADDR[/PREFIX][:PORT]",
             "Let the program bind sockets to matching addresses (socket extension)");
  repeatable("--allow-resolve", o.allow_resolve, "HOST",
             "Let the program resolve host name HOST (*.SUFFIX, or * for any)");
  cmd.add_option("--path-resolver", o.path_resolver,
                 "How paths are kept inside --dir directories: auto, openat2 or walk")
      ->type_name("MODE");
}

void add_checkpoint_and_stats_options(CLI::App& cmd, HostCliOptions& o) {
  add_checkpoint_options(cmd, o.checkpoint);
  cmd.add_option("--stats-out", o.stats_out,
                 "At the end, write JSON to FILE: stable points executed, memory sha256, "
                 "exit status (for tests)")
      ->type_name("FILE");
}

void add_gateway_options(CLI::App& cmd, HostCliOptions& o, GatewayUse use) {
  const char* group = "Gateway (live connections, docs/gateway.md)";
  const char* help =
      use == GatewayUse::Run
          ? "Take clients through the `tern gateway` with this control address: the first "
            "--listen socket is published there, and connections survive checkpoints and moves"
      : use == GatewayUse::Restore
          ? "Re-join the program's connections through the `tern gateway` with this control "
            "address (default: the one the snapshot names)"
          : "Re-join received programs' connections through the `tern gateway` with this "
            "control address, with --key (default: the one the stream names)";
  cmd.add_option("--gateway", o.gateway, help)->type_name("CONTROL_ADDR:PORT")->group(group);
  // tern serve's --key (the migrations') is the gateway's too: one key.
  if (use != GatewayUse::Serve)
    cmd.add_option("--key", o.key, "The key shared with the gateway (tern keygen)")
        ->type_name("FILE")
        ->group(group);
  if (use != GatewayUse::Run)
    cmd.add_flag("--no-gateway", o.no_gateway,
                 use == GatewayUse::Restore
                     ? "Restore without the snapshot's gateway: its connections come back reset"
                     : "Run received programs without their gateway: their connections come "
                       "back reset")
        ->group(group);
}

program::Participants gateway_participants(const HostCliOptions& o, GatewayUse use) {
  if (o.no_gateway && !o.gateway.empty())
    throw Error("--no-gateway leaves the gateway out: it takes no --gateway");
  if (o.no_gateway && !o.key.empty() && use == GatewayUse::Restore)
    throw Error("--no-gateway leaves the gateway out: it takes neither --gateway nor --key");
  if (use == GatewayUse::Run && o.gateway.empty()) {
    if (!o.key.empty()) throw Error("--key is the gateway's: it needs --gateway CONTROL_ADDR:PORT");
    return {};
  }
  if (!o.gateway.empty() && o.key.empty())
    throw Error(fmt::format("--gateway {} needs --key FILE (the gateway's key)", o.gateway));
  migrate::BackendOptions backend;
  backend.gateway = o.gateway;
  backend.no_gateway = o.no_gateway;
  // A migration's target joins the connections as a standby before the
  // source commits, takes them over once it has, and runs the program even
  // if the gateway cannot be reached then.
  backend.join_when_resuming = use == GatewayUse::Serve;
  if (!o.key.empty()) backend.key = migrate::Key::load(o.key);
  return {std::make_shared<migrate::GatewayBackend>(std::move(backend))};
}

void add_parents_option(CLI::App& cmd, std::string& dir) {
  cmd.add_option("--parents", dir,
                 "Where the parents of an incremental snapshot are (default: beside the "
                 "snapshot that names each)")
      ->type_name("DIR");
}

wasi::ResolveMode resolve_mode(const std::string& name) {
  if (name == "auto") return wasi::ResolveMode::Auto;
  if (name == "openat2") return wasi::ResolveMode::Openat2;
  if (name == "walk") return wasi::ResolveMode::Walk;
  throw Error(fmt::format("--path-resolver {}: expected auto, openat2 or walk", name));
}

program::EngineSpec engine_spec(const HostCliOptions& o) {
  EngineOptions engine = o.engine;
  // Counting stable points (--checkpoint-at, --stats-out) must count every
  // loop header and function entry the interpreter counts, so compiled code
  // polls at each of them; without, inner loops may poll once before they
  // start (and vectorize).
  if (o.checkpoint.at != 0 || o.checkpoint.pause_at != 0 || o.checkpoint.every_points != 0 ||
      !o.stats_out.empty())
    engine.compile.exact_points = true;
  return {engine.mode, [engine] { return make_engine_for_mode(engine); }, o.max_threads};
}

std::unique_ptr<program::Supervisor> make_supervisor(const HostCliOptions& o) {
  return std::make_unique<program::Supervisor>(checkpoint_policy(o.checkpoint), o.engine.mode);
}

int supervise_and_report(program::Program& prog, program::Supervisor& supervisor,
                         const HostCliOptions& o) {
  // --stats-out counts stable points, which needs counting mode
  // (--checkpoint-at turns it on by itself).
  if (!o.stats_out.empty() && o.checkpoint.at == 0 && o.checkpoint.every_points == 0)
    prog.stop_at_stable_point(0);
  program::SupervisedOutcome outcome = supervisor.run(prog);
  int status = exit_status(outcome, prog.module());
  if (!o.stats_out.empty()) write_stats(o.stats_out, prog, outcome, status);
  return status;
}

} // namespace tern::cli
