#include "runtime/table.h"

#include "tern/error.h"

#include <fmt/format.h>

namespace tern::runtime {
namespace {
// Tables beyond this many elements are refused (grow returns -1), so a
// guest cannot make the host allocate unbounded memory.
constexpr uint64_t kTableElementLimit = 10'000'000;
} // namespace

Table::Table(const wasm::TableType& type, Slot init) : type_(type) {
  // Valid modules may ask for up to 2^32 - 1 elements; allocating them all
  // would fail with a bare std::bad_alloc (or take 32 GiB).
  if (type.limits.min > kTableElementLimit)
    throw Error(fmt::format("a table of {} elements is above tern's limit of {} elements",
                            type.limits.min, kTableElementLimit));
  elems_.assign(static_cast<size_t>(type.limits.min), init);
  sync_bounds();
}

wasm::TableType Table::type() const {
  wasm::TableType t = type_;
  t.limits.min = elems_.size();
  return t;
}

int64_t Table::grow(uint32_t delta, Slot init) {
  uint64_t old = elems_.size();
  uint64_t limit = type_.limits.max ? std::min<uint64_t>(*type_.limits.max, wasm::kMaxTableSize)
                                    : wasm::kMaxTableSize;
  limit = std::min(limit, kTableElementLimit);
  if (delta > limit - std::min(limit, old)) return -1;
  elems_.resize(static_cast<size_t>(old + delta), init);
  sync_bounds();
  return static_cast<int64_t>(old);
}

} // namespace tern::runtime
