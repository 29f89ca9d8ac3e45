// A thread of wasm execution: its value stack (locals and operands of every
// frame, in Slots) and its frame records. The engines run on these stacks,
// and snapshots read and write them in the wasm view.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/value.h"

namespace tern::runtime {

class Store;
struct FunctionInstance;

// One activation, as recorded when it is not the running one. `pc` is
// engine-specific (the interpreter's resume position).
struct Frame {
  const void* pc = nullptr;
  Slot* fp = nullptr;
  FunctionInstance* func = nullptr;
};

struct ThreadLimits {
  size_t value_stack_slots = size_t(1) << 21; // 16 MiB
  size_t max_frames = 100000;
};

class Thread {
public:
  explicit Thread(Store& store, ThreadLimits limits = {});
  ~Thread();
  Thread(const Thread&) = delete;
  Thread& operator=(const Thread&) = delete;

  Store& store() const { return *store_; }
  Slot* stack_begin() const { return stack_; }
  Slot* stack_end() const { return stack_ + limits_.value_stack_slots; }
  const ThreadLimits& limits() const { return limits_; }

  std::vector<Frame> frames; // caller frames of the running activation

private:
  Store* store_;
  ThreadLimits limits_;
  Slot* stack_ = nullptr; // mmap'd, committed as touched
};

} // namespace tern::runtime
