#include "runtime/memory.h"

#include <cerrno>
#include <cstring>
#include <sys/mman.h>

#include <fmt/format.h>

#include "tern/error.h"

namespace tern::runtime {
namespace {

void* map_anonymous(uint64_t bytes, int prot) {
  return ::mmap(nullptr, bytes, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
}

} // namespace

Memory::Memory(const wasm::MemoryType& type)
    : max_pages_(type.limits.max), shared_(type.limits.shared) {
  uint64_t initial = type.limits.min * wasm::kPageSize;
  if constexpr (sizeof(void*) == 8) {
    void* p = map_anonymous(kGuardedReservation, PROT_NONE);
    if (p != MAP_FAILED) {
      base_ = static_cast<uint8_t*>(p);
      reserved_ = kGuardedReservation;
      guarded_ = true;
    }
  }
  if (!guarded_) {
    // Shared memories may never move: reserve their maximum up front.
    uint64_t want = shared_ && max_pages_ ? *max_pages_ * wasm::kPageSize : initial;
    reserved_ = std::max<uint64_t>(want, wasm::kPageSize);
    void* p = map_anonymous(reserved_, PROT_NONE);
    if (p == MAP_FAILED)
      throw Error(fmt::format("cannot reserve {} bytes of linear memory: {}", reserved_,
                              std::strerror(errno)));
    base_ = static_cast<uint8_t*>(p);
  }
  // Transparent huge pages where the system allows them: a 2 MiB page has one
  // page-table entry instead of 512, which makes fork() (the pause of a
  // background checkpoint, snapshot/background.h) and TLB misses cheaper.
  ::madvise(base_, reserved_, MADV_HUGEPAGE);
  if (!commit(initial))
    throw Error(fmt::format("cannot allocate {} bytes of linear memory", initial));
}

Memory::~Memory() {
  if (base_) ::munmap(base_, reserved_);
}

wasm::MemoryType Memory::type() const {
  wasm::MemoryType t;
  t.limits.min = pages();
  t.limits.max = max_pages_;
  t.limits.shared = shared_;
  return t;
}

bool Memory::commit(uint64_t new_size) {
  if (new_size <= size_) return true;
  if (new_size > reserved_) {
    if (shared_) return false;
    void* p = ::mremap(base_, reserved_, new_size, MREMAP_MAYMOVE);
    if (p == MAP_FAILED) return false;
    base_ = static_cast<uint8_t*>(p);
    reserved_ = new_size;
  }
  if (::mprotect(base_ + size_, new_size - size_, PROT_READ | PROT_WRITE) != 0) return false;
  size_ = new_size;
  return true;
}

int64_t Memory::grow(uint64_t delta_pages) {
  uint64_t old_pages = pages();
  uint64_t limit = max_pages_ ? std::min(*max_pages_, wasm::kMaxPages) : wasm::kMaxPages;
  if (delta_pages > limit - old_pages) return -1;
  if (!commit((old_pages + delta_pages) * wasm::kPageSize)) return -1;
  return static_cast<int64_t>(old_pages);
}

} // namespace tern::runtime
