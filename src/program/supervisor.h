// Runs a Program and takes its checkpoints when asked: by a signal, a timer,
// a control socket, the guest itself (tern.checkpoint()) or the N-th stable
// point (deterministic, for tests). Each request only raises the store's
// checkpoint flag; the program stops at its next stable point, the
// supervisor captures it and writes the snapshot — in a forked child when
// the program continues (the pause is the fork), synchronously when it
// stops — then lets it continue or ends the run.
#pragma once

#include "program/program.h"
#include "snapshot/format.h"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace tern::program {

struct CheckpointPolicy {
  std::string path;                   // where checkpoints go ("": only where a request says)
  std::vector<int> continue_signals;  // each: checkpoint, then continue
  bool checkpoint_on_sigterm = false; // SIGTERM: checkpoint, then stop
  std::optional<std::chrono::milliseconds> every;
  std::string control_socket;         // a local socket: "checkpoint [--stop] [PATH]", "status"
  std::optional<uint64_t> at;         // the N-th stable point (counting mode)
  bool stop_after_checkpoint = false; // end the run after the first checkpoint written
  snapshot::CaptureOptions capture;
  wasi::SaveOptions save;
  snapshot::WriteOptions write;
  bool verbose = false; // one line on stderr per checkpoint
};

struct SupervisedOutcome {
  runtime::ExecOutcome exec; // how the program ended (when not stopped)
  bool stopped = false;      // the run ended after a checkpoint; exec is meaningless
  std::string last_checkpoint;
};

// Runs `program` to its end (or to a stopping checkpoint). A checkpoint that
// cannot be written is reported on stderr and the program continues: it is
// never lost. Throws tern::Error for setup problems (bad control socket).
SupervisedOutcome supervise(Program& program, const CheckpointPolicy& policy);

// The client side of the control socket: sends one command line, returns
// the reply line. Throws tern::Error if the socket cannot be reached.
std::string control_request(const std::string& socket_path, const std::string& command);

} // namespace tern::program
