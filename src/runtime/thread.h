// A thread of wasm execution: its value stack (locals and operands of every
// frame, in Slots) and its frame records. The engines run on these stacks,
// and snapshots read and write them in the wasm view.
#pragma once

#include "runtime/value.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

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
  size_t value_stack_slots = size_t(1) << 22; // 32 MiB of address space, committed as used
  size_t max_frames = 200000;
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

  // Frame records of suspended activations (callers of the running one),
  // a fixed array so engines can push and pop with a pointer.
  Frame* frames_begin() const { return frames_; }
  Frame* frames_end() const { return frames_ + limits_.max_frames; }
  // Engines publish how far they have used the stacks whenever they leave
  // their loop (host calls, suspension), so nested calls and snapshots know.
  Frame* frame_top = nullptr; // one past the innermost saved frame
  Slot* slot_top = nullptr;   // one past the innermost used slot

  // While suspended: the sentinel frame below the outermost activation and
  // that activation's frame (where its results will be).
  Frame* suspended_base = nullptr;
  Slot* suspended_fp = nullptr;

  // Stable points executed (loop headers, function entries), counted while
  // the store's interrupt is in counting mode; stop when it reaches stop_at.
  uint64_t stable_points = 0;
  uint64_t stop_at = 0;

  // The thread's number in its program (0: the main thread), as snapshots
  // and wait queues name it.
  uint64_t id = 0;

  // Where the running engine keeps its loop state (opaque; engines only).
  void* engine_scratch = nullptr;

private:
  Store* store_;
  ThreadLimits limits_;
  // Both mmap'd, committed as touched: a thread costs no page until it runs
  // deep (allocating and zeroing the frame array took milliseconds).
  Slot* stack_ = nullptr;
  Frame* frames_ = nullptr;
};

} // namespace tern::runtime
