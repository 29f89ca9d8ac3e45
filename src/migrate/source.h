// The sending end of a live migration, run inside the tern process whose
// program moves (`tern run/restore --control SOCKET`, asked by `tern
// migrate`): connect and authenticate, offer the module, stream memory in
// pre-copy rounds while the program keeps running, then stop it at a
// stable point, send what changed and the rest of its state, and end the
// run only when the target has confirmed that the program runs there
// (docs/migration-stream.md). Any failure before that confirmation leaves
// the program running here as if nothing had happened.
#pragma once

#include "program/supervisor.h"

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace tern::migrate {

struct MigrateRequest {
  std::string to;       // HOST:PORT of `tern serve`
  std::string key_file; // absolute path, read by the program's tern
  std::string mode;     // engine on the target; "" = serve's --mode
  // Pre-copy rounds while the program runs, at most; 0 is stop-and-copy.
  uint32_t max_rounds = 30;
  // Stop the program once the pages still dirty could be sent in this
  // long at the bandwidth measured so far.
  std::chrono::milliseconds max_downtime{30};
  // The target may stay silent this long in any phase.
  std::chrono::milliseconds timeout{10'000};
  bool bundle_files = false; // --bundle-files: files open for writing travel along
  bool compress = true;      // zstd for pages

  // The control request, `migrate [--bundle-files] [--no-compress] --
  // to=HOST:PORT [mode=M] max-rounds=N max-downtime=MS timeout=MS
  // key=PATH` (the key last: a path may hold spaces), and back;
  // from_request throws tern::Error for a malformed one.
  std::string to_request_line() const;
  static MigrateRequest from_request(const program::ControlCommand& request);
};

struct MigrateResult {
  std::string to;
  uint32_t rounds = 0; // memory passes: pre-copy rounds and the final one
  uint64_t bytes_sent = 0;
  double downtime_ms = 0; // the program stopped here -> the target confirmed it runs
  // "migrated to HOST:PORT: R rounds, X MiB sent, downtime D ms"
  std::string line() const;
};

// Moves the program. Returns once it runs on the target (the supervised
// run then ends); throws tern::Error when it cannot move, and the program
// goes on here.
MigrateResult migrate(program::ProgramControl& control, const MigrateRequest& request);

// The `migrate` control command: replies "ok " + MigrateResult::line() or
// "error REASON".
program::ProgramCommand migrate_command();

} // namespace tern::migrate
