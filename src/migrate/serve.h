// `tern serve`: accepts migrating programs. Each connection is handled in
// a process of its own (forked), which authenticates the peer, receives
// the program (migrate/target.h) and, once the source has committed, runs
// it there: a hostile or broken peer can only end its own process, and
// programs never share an address space. Those processes die with serve.
//
// With `once`, serve runs the first program it receives in the foreground
// (the program's output is serve's) and exits with its exit status;
// connections that fail before that do not count.
#pragma once

#include "migrate/target.h"

#include <functional>
#include <string>

namespace tern::migrate {

struct ServeOptions {
  std::string listen; // ADDR:PORT
  std::string key_file;
  bool once = false;
  bool verbose = false; // a line on stderr per step ("tern: serve: ...")
  TargetOptions target;
  // Runs a received program (in its own process) in `mode`, the engine it
  // was rebuilt for (tern migrate --mode, else target.default_mode);
  // returns the exit status that process ends with.
  std::function<int(program::Program&, const std::string& mode)> run;
};

// Serves until killed, or with `once` until the first program received has
// ended; returns the exit status for tern (the program's, with `once`).
// Throws tern::Error when it cannot start (bad key, address in use).
int serve(const ServeOptions& options);

// The environment variable that stops a receiving process (SIGSTOP) at a
// phase of the protocol, for fault tests: hello, precopy, final, ready,
// commit (docs/migration-stream.md).
inline constexpr const char* kFaultVariable = "TERN_MIGRATE_FAULT";

} // namespace tern::migrate
