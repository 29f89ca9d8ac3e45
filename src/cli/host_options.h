// What `tern run` and `tern restore` share besides checkpointing: the engine
// the program runs in, its standard streams, its network sandbox, how its
// paths are resolved, and --stats-out. One definition, so both commands
// offer the same options with the same help.
#pragma once

#include "cli/checkpoint_options.h"
#include "cli/engine_mode.h"
#include "program/program.h"
#include "wasi/context.h"

#include <memory>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace tern::cli {

struct HostCliOptions {
  EngineOptions engine;
  std::string stdin_path, stdout_path, stderr_path;
  std::vector<std::string> allow_connect, allow_bind, allow_resolve;
  std::string path_resolver = "auto";
  CheckpointCliOptions checkpoint;
  std::string stats_out;
  std::string gateway;                                // --gateway CONTROL_ADDR:PORT
  std::string key;                                    // --key FILE
  bool no_gateway = false;                            // --no-gateway (restore)
  uint32_t max_threads = program::kDefaultMaxThreads; // --max-threads (wasi-threads)
};

// Adds the options in the order `--help` shows them: engine, streams,
// network sandbox, path resolver, checkpoint options, --stats-out.
void add_engine_and_stream_options(CLI::App& cmd, HostCliOptions& options);
void add_sandbox_options(CLI::App& cmd, HostCliOptions& options);
void add_checkpoint_and_stats_options(CLI::App& cmd, HostCliOptions& options);
// Who links a program to `tern gateway`: `tern run`, `tern restore`, or
// `tern serve` for the programs it receives.
enum class GatewayUse { Run, Restore, Serve };

// --gateway and --key (serve has its own --key, the same key); a restore
// and serve also have --no-gateway.
void add_gateway_options(CLI::App& cmd, HostCliOptions& options, GatewayUse use);

// The program's link to `tern gateway` (migrate/gateway_backend.h): a run
// has one with --gateway; a restore or a received program always has one,
// which re-joins the snapshot's connections (or says why it cannot). Throws
// tern::Error for options that do not go together or a key file that
// cannot be used.
program::Participants gateway_participants(const HostCliOptions& options, GatewayUse use);

// --parents DIR, for the commands that read chains of incremental
// snapshots (restore, inspect, snapshot flatten).
void add_parents_option(CLI::App& cmd, std::string& dir);

// --path-resolver's value; throws tern::Error for an unknown one.
wasi::ResolveMode resolve_mode(const std::string& name);

// Copies the streams, sandbox and resolver into wasi::WasiOptions (run) or
// wasi::RestoreOptions (restore), which name these fields alike.
template <class WasiSettings>
void apply_host_options(const HostCliOptions& o, WasiSettings& w) {
  w.stdin_path = o.stdin_path;
  w.stdout_path = o.stdout_path;
  w.stderr_path = o.stderr_path;
  w.allow_connect = o.allow_connect;
  w.allow_bind = o.allow_bind;
  w.allow_resolve = o.allow_resolve;
  w.resolve_mode = resolve_mode(o.path_resolver);
}

// The engine the options choose, as the program layer takes it.
program::EngineSpec engine_spec(const HostCliOptions& options);

// The supervisor of a run or restore, made from the options before the
// program exists (it takes over the checkpoint signals and opens the
// control socket at once).
std::unique_ptr<program::Supervisor> make_supervisor(const HostCliOptions& options);

// Runs `program` under `supervisor`, writes --stats-out when asked, and
// returns tern's exit status.
int supervise_and_report(program::Program& program, program::Supervisor& supervisor,
                         const HostCliOptions& options);

} // namespace tern::cli
