#include "wasm/module.h"

#include <algorithm>
#include <fmt/format.h>

namespace tern::wasm {

// A function whose body starts with `loop` has two points at one offset,
// entry first; the innermost (the later one) is the one meant.
const StablePoint* FunctionInfo::find(uint32_t offset) const {
  auto after = std::ranges::upper_bound(stable_points, offset, {}, &StablePoint::offset);
  if (after == stable_points.begin() || std::prev(after)->offset != offset) return nullptr;
  return &*std::prev(after);
}

const StablePoint* FunctionInfo::find(uint32_t offset, StablePointKind kind) const {
  auto first = std::ranges::lower_bound(stable_points, offset, {}, &StablePoint::offset);
  for (auto it = first; it != stable_points.end() && it->offset == offset; ++it)
    if (it->kind == kind) return &*it;
  return nullptr;
}

std::string Module::func_name(uint32_t func_index) const {
  if (auto it = names.functions.find(func_index); it != names.functions.end()) return it->second;
  if (is_imported_func(func_index)) {
    // Imported functions are the n-th function import, not the n-th import.
    uint32_t seen = 0;
    for (const Import& im : imports) {
      if (im.kind != ExternKind::Func) continue;
      if (seen++ == func_index) return im.module + "." + im.name;
    }
  }
  return fmt::format("func[{}]", func_index);
}

const Export* Module::find_export(std::string_view name) const {
  auto it = std::ranges::find(exports, name, &Export::name);
  return it == exports.end() ? nullptr : &*it;
}

util::Sha256Digest Module::sha256() const {
  return known_sha256 ? *known_sha256 : util::sha256(bytes);
}

} // namespace tern::wasm
