// `--stats-out FILE`: facts about a finished run, as JSON, for tests that
// compare runs (the differential checkpoint suite).
#pragma once

#include "program/program.h"
#include "program/supervisor.h"

#include <string>

namespace tern::cli {

// {"exit_status": N, "stopped": bool, "stable_points": N, "checkpoints": N,
//  "checkpoints_failed": N, "memory_sha256": "hex"|null,
//  "memory_loading": "on first touch (...)"|"before the program continued (...)"|null}
void write_stats(const std::string& path, const program::Program& program,
                 const program::SupervisedOutcome& outcome, int exit_status);

} // namespace tern::cli
