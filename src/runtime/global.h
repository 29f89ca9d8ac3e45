// A global variable's storage. Imported globals share the exporter's cell.
#pragma once

#include "runtime/value.h"
#include "wasm/types.h"

namespace tern::runtime {

struct GlobalCell {
  Slot value = 0;
  wasm::GlobalType type;
  Value get() const { return {type.type, value}; }
};

} // namespace tern::runtime
