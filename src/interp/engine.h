// The interpreter as a runtime::Engine.
#pragma once

#include <memory>

#include "runtime/engine.h"

namespace tern::interp {

std::unique_ptr<runtime::Engine> make_engine();

} // namespace tern::interp
