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

#include "program/control_socket.h"
#include "program/program.h"
#include "snapshot/format.h"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tern::program {

// What a control command that takes a while (`migrate`) may do with the
// supervised program, from the thread it runs on.
class ProgramControl {
public:
  virtual ~ProgramControl() = default;
  // The program, once it runs (waits until then); throws tern::Error if it
  // has ended or never started. While it runs, another thread may only
  // read its memory: pre-copy rounds read it as it changes, and dirty-page
  // tracking (runtime/dirty_pages.h) catches up with the changes.
  virtual Program& program() = 0;
  // Stops the program at its next stable point and calls `at_stop` there,
  // on the program's thread, with the program stopped. When it returns
  // true the run ends (the program goes on elsewhere); false lets it
  // continue. Returns at_stop's answer or rethrows its exception; throws
  // tern::Error if the program ends first.
  virtual bool stop_and(const std::function<bool(Program&)>& at_stop) = 0;
  // `cancel` is called (from the program's thread) when the program ends
  // while the command runs, so that the command gives up instead of
  // waiting for it; at once if it has ended already.
  virtual void on_end(std::function<void()> cancel) = 0;
};

// A control command that acts on the program over time: the supervisor
// runs it on a thread of its own, and its return value is the reply line
// ("ok ..."; an exception is the `error` reply). The request line is
// `NAME [FLAG...] [-- ARGUMENT]` (control_socket.h).
struct ProgramCommand {
  std::string name;
  std::vector<std::string> flags;
  std::function<std::string(const ControlCommand& request, ProgramControl& control)> run;
};

struct CheckpointPolicy {
  std::string path;                   // where checkpoints go ("": only where a request says)
  std::vector<int> continue_signals;  // each: checkpoint, then continue
  bool checkpoint_on_sigterm = false; // SIGTERM: checkpoint, then stop
  // Periodic checkpoints: the next one comes due this long after the
  // previous one is written (not after it was asked for), so the program
  // always runs between two of them however long a checkpoint takes.
  std::optional<std::chrono::milliseconds> every;
  std::string control_socket;           // control_socket.h; commands `checkpoint`, `status`
  std::vector<ProgramCommand> commands; // more control commands (migrate)
  std::optional<uint64_t> at;           // the N-th stable point (counting mode)
  // Hold the program at the N-th stable point until a control request has
  // been handled there (counting mode; tests act at a chosen place).
  std::optional<uint64_t> pause_at;
  std::optional<uint64_t> every_points; // every N-th stable point: N, 2N, ... (counting mode)
  // Checkpoints to `path` form a chain of incremental snapshots
  // (program/incremental.h): PATH.1, PATH.2, ..., PATH naming the newest.
  bool incremental = false;
  bool stop_after_checkpoint = false; // end the run after the first checkpoint written
  snapshot::CaptureOptions capture;
  wasi::SaveOptions save;
  snapshot::WriteOptions write;
  bool verbose = false; // one line on stderr per checkpoint, and a count at the end
};

struct SupervisedOutcome {
  runtime::ExecOutcome exec; // how the program ended (when not stopped)
  bool stopped = false;      // the run ended after a checkpoint; exec is meaningless
  bool moved = false;        // ... because the program continues elsewhere (migrated)
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
