// Choosing the execution engine from a command-line mode name. The one place
// that knows which modes exist, so every command offers the same choice.
#pragma once

#include "runtime/engine.h"

#include <memory>
#include <string>
#include <vector>

namespace tern::cli {

// Mode names accepted by --mode; the first is the default.
const std::vector<std::string>& engine_modes();

// The engine for `mode`; throws tern::Error for an unknown mode.
std::unique_ptr<runtime::Engine> make_engine_for_mode(const std::string& mode);

} // namespace tern::cli
