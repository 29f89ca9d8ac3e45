// The interpreter as a runtime::Engine.
#pragma once

#include "runtime/engine.h"

#include <memory>

namespace tern::interp {

std::unique_ptr<runtime::Engine> make_engine();

} // namespace tern::interp
