// A table of references (funcref or externref), stored as Slots.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "runtime/value.h"
#include "wasm/types.h"

namespace tern::runtime {

class Table {
public:
  Table(const wasm::TableType& type, Slot init);

  ValType elem_type() const { return type_.elem; }
  uint32_t size() const { return static_cast<uint32_t>(elems_.size()); }
  std::optional<uint64_t> max() const { return type_.limits.max; }
  wasm::TableType type() const;

  Slot get(uint32_t i) const { return elems_[i]; }
  void set(uint32_t i, Slot v) { elems_[i] = v; }
  Slot* data() { return elems_.data(); }
  // table.grow: the old size, or -1 when the limit forbids it.
  int64_t grow(uint32_t delta, Slot init);

private:
  wasm::TableType type_;
  std::vector<Slot> elems_;
};

} // namespace tern::runtime
