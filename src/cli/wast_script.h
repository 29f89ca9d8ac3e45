// Executing one spec script, as wast2json's command list, against a fresh
// store: modules, registrations, actions and every kind of assertion.
#pragma once

#include "cli/engine_mode.h"

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace tern::cli {

struct WastTally {
  uint64_t passed = 0;
  uint64_t failed = 0;
  uint64_t skipped = 0; // text-format modules and v128 values tern cannot run here

  WastTally& operator+=(const WastTally& other) {
    passed += other.passed;
    failed += other.failed;
    skipped += other.skipped;
    return *this;
  }
};

// "N passed, M failed" with ", K skipped" when anything was skipped.
std::string format_tally(const WastTally& tally);

struct WastScript {
  std::string name;     // the .wast file, as failure lines name it
  std::string wasm_dir; // where the command list's module files are
};

// Runs every command of `commands` (wast2json's top-level object) with the
// engine `engine` chooses. Prints one line per failed command on stdout
// ("FILE:LINE: <command>: expected ..., got ..."); never throws for what a
// command does, only for a command list it cannot understand at all.
WastTally run_wast_script(const WastScript& script, const nlohmann::json& commands,
                          const EngineOptions& engine);

} // namespace tern::cli
