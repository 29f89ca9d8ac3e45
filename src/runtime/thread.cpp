#include "runtime/thread.h"

#include "tern/error.h"

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <sys/mman.h>

namespace tern::runtime {

namespace {

// Zero pages on demand; a zero Frame is a valid empty one.
void* map_lazily(size_t bytes, const char* what) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    throw Error(fmt::format("cannot allocate the {}: {}", what, std::strerror(errno)));
  return p;
}

} // namespace

Thread::Thread(Store& store, ThreadLimits limits) : store_(&store), limits_(limits) {
  stack_ = static_cast<Slot*>(map_lazily(limits_.value_stack_slots * sizeof(Slot), "value stack"));
  try {
    frames_ = static_cast<Frame*>(map_lazily(limits_.max_frames * sizeof(Frame), "frame stack"));
  } catch (...) {
    ::munmap(stack_, limits_.value_stack_slots * sizeof(Slot));
    throw;
  }
  frame_top = frames_;
  slot_top = stack_;
}

Thread::~Thread() {
  ::munmap(stack_, limits_.value_stack_slots * sizeof(Slot));
  ::munmap(frames_, limits_.max_frames * sizeof(Frame));
}

} // namespace tern::runtime
