// Runs a Program and takes its checkpoints when asked: by a signal, a timer,
// the control socket, the guest itself (tern.checkpoint()) or the N-th
// stable point (deterministic, for tests). Each request only raises the
// store's checkpoint flag; the program stops at its next stable point, the
// supervisor captures it and writes the snapshot — in a forked child when
// the program continues (the pause is the fork), synchronously when it
// stops — then lets it continue or ends the run.
//
// A Supervisor exists before its program does: it takes over the signals
// and opens the control socket while the module is decoded or the snapshot
// loaded, so a request that arrives then is kept and honoured at the
// program's first stable point. Every control request is answered: with
// its outcome, or with `error the program has ended` (or `... did not
// start`) when no checkpoint can be taken any more; and the supervisor
// never waits for a client, so tern always exits.
//
// The supervisor talks to the program only through Program (run, capture,
// the store's interrupt), which stops every thread of the program at once:
// nothing here assumes a single thread.
#pragma once

#include "program/program.h"
#include "snapshot/format.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tern::program {

struct CheckpointPolicy {
  std::string path;                   // where checkpoints go ("": only where a request says)
  std::vector<int> continue_signals;  // each: checkpoint, then continue
  bool checkpoint_on_sigterm = false; // SIGTERM: checkpoint, then stop
  // Periodic checkpoints: the next one comes due this long after the
  // previous one is written (not after it was asked for), so the program
  // always runs between two of them however long a checkpoint takes.
  std::optional<std::chrono::milliseconds> every;
  std::string control_socket;         // control_socket.h; commands `checkpoint`, `status`
  std::optional<uint64_t> at;         // the N-th stable point (counting mode)
  bool stop_after_checkpoint = false; // end the run after the first checkpoint written
  snapshot::CaptureOptions capture;
  wasi::SaveOptions save;
  snapshot::WriteOptions write;
  bool verbose = false; // one line on stderr per checkpoint, and a count at the end
};

struct SupervisedOutcome {
  runtime::ExecOutcome exec; // how the program ended (when not stopped)
  bool stopped = false;      // the run ended after a checkpoint; exec is meaningless
  std::string last_checkpoint;
  uint64_t checkpoints_written = 0;
  uint64_t checkpoints_failed = 0;
};

class Supervisor {
public:
  // Installs the policy's signal handlers (releasing the signals that
  // hold_signals() held) and opens its control socket; `engine` is what
  // `status` reports. Throws tern::Error for setup problems (a control
  // socket in use, a signal that cannot be handled).
  Supervisor(CheckpointPolicy policy, std::string engine);
  // Answers every request still waiting.
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Runs `program` to its end (or to a stopping checkpoint), once. A
  // checkpoint that cannot be written is reported on stderr and the
  // program continues: it is never lost. Throws tern::Error when the
  // policy does not fit the program (--checkpoint-at at or below the
  // stable points a restored program has already run).
  SupervisedOutcome run(Program& program);

private:
  struct State;
  std::unique_ptr<State> state_;
};

} // namespace tern::program
