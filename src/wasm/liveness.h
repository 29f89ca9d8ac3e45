// Which locals are live at each stable point of a function: read on some
// path from the point before being written. A frame's dead locals cannot
// influence what the program does next, so the wasm view records them as
// zero (docs/design.md §1, docs/aot.md): compiled code then keeps nothing alive
// just to save it, and every engine produces the same view.
#pragma once

#include "wasm/module.h"

#include <cstdint>
#include <vector>

namespace tern::wasm {

class LocalLiveness {
public:
  // For defined function `func_index` of a validated module.
  LocalLiveness(const Module& module, uint32_t func_index);

  // Whether `local` is live at stable point `point` (an index into the
  // function's FunctionInfo::stable_points): live into the instruction at
  // the point's offset (for a call site, that is also live after the call,
  // which changes no local).
  bool live(uint32_t point, uint32_t local) const {
    return (bits_[size_t(point) * words_ + local / 64] >> (local % 64)) & 1;
  }

private:
  size_t words_ = 0;
  std::vector<uint64_t> bits_; // words_ per stable point
};

} // namespace tern::wasm
