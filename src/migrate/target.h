// The receiving end of a live migration (`tern serve`): reads one
// program from an authenticated channel and builds it straight from the
// stream (no file): the module is checked and compiled while the source
// still runs it, pre-copy pages are decoded into the new instance's
// memory, and the final state completes it. The program is handed over
// only once the source has committed (docs/migration-stream.md), so a
// failure at any step leaves the program with the source alone.
#pragma once

#include "migrate/channel.h"
#include "program/program.h"
#include "wasi/state.h"

#include <functional>
#include <memory>
#include <string>

namespace tern::migrate {

struct TargetOptions {
  std::string default_mode; // when the source asks for none
  // The engine for a mode; throws tern::Error for a mode this tern lacks.
  std::function<program::EngineSpec(const std::string& mode)> engine;
  // What the restored program may open: serve's own --dir grants and
  // sandbox, never paths from the stream.
  wasi::RestoreOptions wasi;
  // Host state besides WASI that joins each received program (tern
  // gateway's link); none when empty.
  std::function<program::Participants()> participants;
  // Called at each step (phase names in docs/migration-stream.md, "Fault
  // injection"), e.g. to stop the process there in fault tests.
  std::function<void(const char* phase)> at_phase;
  // One line per step, for `tern serve --verbose`.
  std::function<void(const std::string& line)> log;
};

struct Received {
  std::unique_ptr<program::Program> program;
  std::string mode;
  uint32_t rounds = 0;
};

// Receives a program over `channel`. Once the program is rebuilt, before
// this end says ready, `may_run` is asked whether this process may run it
// when the source commits (tern serve --once runs one: a yes reserves the
// one place until this process ends); false fails the migration.
// Returns the program, stopped and ready to continue with run(); throws
// tern::Error when the migration fails (the source is told why when the
// link still works and then keeps running its program).
Received receive_program(Channel& channel, const TargetOptions& options,
                         const std::function<bool()>& may_run);

} // namespace tern::migrate
