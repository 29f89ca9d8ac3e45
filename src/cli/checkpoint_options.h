// What `tern run` and `tern restore` share: the checkpoint options (both
// can checkpoint the program they run, so restores chain), and how a
// supervised program's end becomes tern's exit code.
#pragma once

#include "program/supervisor.h"
#include "runtime/trap.h"
#include "wasm/module.h"

#include <chrono>
#include <string>
#include <string_view>

namespace CLI {
class App;
}

namespace tern::cli {

// A trap makes tern exit with this status, as wasmtime does.
inline constexpr int kTrapExitCode = 134;

struct CheckpointCliOptions {
  std::string to;                 // --checkpoint-to PATH
  std::string on_signal = "USR1"; // --checkpoint-on-signal SIG
  bool on_exit = false;           // --checkpoint-on-exit
  std::string every;              // --checkpoint-every DURATION
  std::string control;            // --control SOCKET
  uint64_t at = 0;                // --checkpoint-at N (0: off)
  uint64_t pause_at = 0;          // --pause-at N (0: off)
  uint64_t every_points = 0;      // --checkpoint-every-points N (0: off)
  bool incremental = false;       // --incremental
  bool stop_after = false;        // --stop-after-checkpoint
  bool bundle_files = false;      // --bundle-files
  bool no_embed_module = false;   // --no-embed-module
  bool verbose = false;           // --verbose-checkpoints
};

void add_checkpoint_options(CLI::App& cmd, CheckpointCliOptions& options);

// "500ms", "10s", "2m", "1h" (a bare number is seconds) as `option` takes
// it; one error naming the option for anything else.
std::chrono::milliseconds parse_duration(const std::string& text, std::string_view option);

// Checks the options (one clear error for each mistake) and turns them into
// the supervisor's policy.
program::CheckpointPolicy checkpoint_policy(const CheckpointCliOptions& options);

// Prints a trap the way `tern run` reports it: the message, then the wasm
// backtrace with function names.
void print_trap(const runtime::Trap& trap, const wasm::Module& module);

// tern's exit status for how the program ended: its exit code, 0 when it
// returned or stopped after a checkpoint, kTrapExitCode after a trap.
int exit_status(const program::SupervisedOutcome& outcome, const wasm::Module& module);

} // namespace tern::cli
