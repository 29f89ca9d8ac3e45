// A table of references (funcref or externref), stored as Slots.
#pragma once

#include "runtime/value.h"
#include "wasm/types.h"

#include <cstdint>
#include <optional>
#include <vector>

namespace tern::runtime {

class Table {
public:
  Table(const wasm::TableType& type, Slot init);
  Table(const Table&) = delete; // bounds_ points into elems_
  Table& operator=(const Table&) = delete;

  // The elements and their count, in one place that compiled code reads
  // directly (aot/abi.h); kept in step with every change of size.
  struct Bounds {
    Slot* data = nullptr;
    uint64_t size = 0;
  };
  const Bounds* bounds() const { return &bounds_; }

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
  void sync_bounds() { bounds_ = {elems_.data(), elems_.size()}; }

  wasm::TableType type_;
  std::vector<Slot> elems_;
  Bounds bounds_;
};

} // namespace tern::runtime
