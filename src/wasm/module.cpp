#include "wasm/module.h"

#include <algorithm>
#include <fmt/format.h>
#include <functional>

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

namespace {

// `span`, if it views part of `from`, the same part of `to` (else as it is:
// a module built by hand may view storage of its own).
template <typename T>
std::span<const T> rebased(std::span<const T> span, const std::vector<T>& from,
                           const std::vector<T>& to) {
  const std::less<const T*> before;
  const T* p = span.data();
  if (p == nullptr || before(p, from.data()) || before(from.data() + from.size(), p)) return span;
  return {to.data() + (p - from.data()), span.size()};
}

} // namespace

FunctionPools::FunctionPools(const FunctionPools& other)
    : functions(other.functions), local_types(other.local_types),
      stable_points(other.stable_points), stack_types(other.stack_types) {
  for (Function& f : functions) {
    f.locals = rebased(f.locals, other.local_types, local_types);
    f.info.stable_points = rebased(f.info.stable_points, other.stable_points, stable_points);
    f.info.stack_types = rebased(f.info.stack_types, other.stack_types, stack_types);
  }
}

FunctionPools& FunctionPools::operator=(const FunctionPools& other) {
  if (this != &other) *this = FunctionPools(other);
  return *this;
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
