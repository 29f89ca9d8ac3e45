#include "runtime/thread.h"

#include <cerrno>
#include <cstring>
#include <sys/mman.h>

#include <fmt/format.h>

#include "tern/error.h"

namespace tern::runtime {

Thread::Thread(Store& store, ThreadLimits limits) : store_(&store), limits_(limits) {
  size_t bytes = limits_.value_stack_slots * sizeof(Slot);
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
  if (p == MAP_FAILED) throw Error(fmt::format("cannot allocate the value stack: {}", std::strerror(errno)));
  stack_ = static_cast<Slot*>(p);
  frames_ = std::make_unique<Frame[]>(limits_.max_frames);
  frame_top = frames_.get();
  slot_top = stack_;
}

Thread::~Thread() { ::munmap(stack_, limits_.value_stack_slots * sizeof(Slot)); }

} // namespace tern::runtime
