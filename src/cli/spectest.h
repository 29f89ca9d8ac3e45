// The `spectest` host module that the WebAssembly spec test scripts import
// (print functions, constant globals, a table and a memory), as the spec's
// reference interpreter defines it. Only the wast runner uses it.
#pragma once

#include "runtime/store.h"

namespace tern::cli {

// Creates the spectest objects in `store` and defines them in `linker`
// under the module name "spectest".
void define_spectest(runtime::Store& store, runtime::Linker& linker);

} // namespace tern::cli
