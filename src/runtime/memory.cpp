#include "runtime/memory.h"

#include "tern/error.h"

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

namespace tern::runtime {
namespace {

void* map_anonymous(uint64_t bytes, int prot) {
  return ::mmap(nullptr, bytes, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
}

} // namespace

Memory::Memory(const wasm::MemoryType& type, bool mirrored)
    : max_pages_(type.limits.max), shared_(type.limits.shared) {
  if (type.limits.min > wasm::kMaxRuntimePages)
    throw Error(fmt::format("a memory of {} pages is above tern's limit of {} pages "
                            "(4 GiB - 64 KiB)",
                            type.limits.min, wasm::kMaxRuntimePages));
  uint64_t initial = type.limits.min * wasm::kPageSize;
  if (mirrored && sizeof(void*) == 8) reserve_mirrored();
  if (sizeof(void*) == 8 && !guarded_) {
    void* p = map_anonymous(kGuardedReservation, PROT_NONE);
    if (p != MAP_FAILED) {
      bounds_.base = static_cast<uint8_t*>(p);
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
    bounds_.base = static_cast<uint8_t*>(p);
  }
  // Transparent huge pages where the system allows them: a 2 MiB page has one
  // page-table entry instead of 512, which makes fork() (the pause of a
  // background checkpoint, snapshot/background.h) and TLB misses cheaper.
  if (mirror_fd_ < 0) ::madvise(bounds_.base, reserved_, MADV_HUGEPAGE);
  if (!commit(initial))
    throw Error(fmt::format("cannot allocate {} bytes of linear memory", initial));
  // Made now, not on first use: another thread may open a log while this
  // one grows the memory.
  dirty_ = std::make_unique<DirtyTracker>(*this);
  if (shared_) wait_queues_ = std::make_unique<WaitQueues>();
}

Memory::~Memory() {
  pending_.reset(); // stops loading while the memory is mapped
  dirty_.reset();   // before the mappings it protects or registered go
  if (bounds_.base) ::munmap(bounds_.base, reserved_);
  if (mirror_fd_ >= 0) ::close(mirror_fd_);
}

// The reservation, and the file both views map; on any failure the memory
// is an ordinary guarded one (compiled code that needs the mirror refuses
// to run on it).
bool Memory::reserve_mirrored() {
  int fd = ::memfd_create("tern-memory", MFD_CLOEXEC);
  if (fd < 0) return false;
  void* p = map_anonymous(kMirroredReservation, PROT_NONE);
  if (p == MAP_FAILED) {
    ::close(fd);
    return false;
  }
  bounds_.base = static_cast<uint8_t*>(p);
  reserved_ = kMirroredReservation;
  guarded_ = true;
  mirror_fd_ = fd;
  return true;
}

// Maps bytes [from, to) of the file in every view. A memory is at most
// 4 GiB - 64 KiB (wasm::kMaxRuntimePages), so the unmapped rest of each
// 4 GiB stride keeps an access straddling the end of one view from
// reaching into the next.
bool Memory::map_views(uint64_t from, uint64_t to) {
  if (::ftruncate(mirror_fd_, off_t(to)) != 0) return false;
  if (to == from) return true;
  auto map_at = [&](uint8_t* view) {
    void* want = view + from;
    return ::mmap(want, to - from, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, mirror_fd_,
                  off_t(from)) == want;
  };
  if (!map_at(bounds_.base)) return false;
  for (uint32_t view = 0; view < kMirrorViews; ++view)
    if (!map_at(mirror_base() + view * kMirrorStride)) return false;
  return true;
}

wasm::MemoryType Memory::type() const {
  wasm::MemoryType t;
  t.limits.min = pages();
  t.limits.max = max_pages_;
  t.limits.shared = shared_;
  return t;
}

bool Memory::commit(uint64_t new_size) {
  if (new_size <= bounds_.size) return true;
  if (mirror_fd_ >= 0) {
    if (!map_views(bounds_.size, new_size)) return false;
    publish_size(new_size);
    return true;
  }
  if (new_size > reserved_) {
    if (shared_) return false;
    void* p = ::mremap(bounds_.base, reserved_, new_size, MREMAP_MAYMOVE);
    if (p == MAP_FAILED) return false;
    bounds_.base = static_cast<uint8_t*>(p);
    reserved_ = new_size;
  }
  uint8_t* end = bounds_.base + bounds_.size;
  if (::mprotect(end, new_size - bounds_.size, PROT_READ | PROT_WRITE) != 0) return false;
  publish_size(new_size);
  return true;
}

void Memory::publish_size(uint64_t bytes) {
  std::atomic_ref(bounds_.size).store(bytes, std::memory_order_release);
}

int64_t Memory::grow(uint64_t delta_pages) {
  std::lock_guard lock(grow_mutex_);
  uint64_t old_pages = pages();
  uint64_t limit =
      max_pages_ ? std::min(*max_pages_, wasm::kMaxRuntimePages) : wasm::kMaxRuntimePages;
  if (delta_pages > limit - old_pages) return -1;
  const uint8_t* old_base = bounds_.base;
  if (!commit((old_pages + delta_pages) * wasm::kPageSize)) return -1;
  if (delta_pages > 0) dirty_->grown(old_pages * wasm::kPageSize, old_base);
  return static_cast<int64_t>(old_pages);
}

void Memory::load_lazily(std::unique_ptr<PendingContents> pending) {
  std::lock_guard lock(pending_mutex_);
  pending_ = std::move(pending);
}

void Memory::wait_loaded() {
  std::lock_guard lock(pending_mutex_);
  if (!pending_) return;
  pending_->finish();
  pending_.reset();
}

DirtyLog Memory::open_dirty_log(std::optional<DirtyMechanism> mechanism) {
  // Both register the memory with a userfaultfd, and a range takes one.
  wait_loaded();
  return dirty_->open_log(mechanism);
}

void Memory::note_host_write(uint64_t addr, uint64_t len) {
  dirty_->host_write(addr, len);
}

} // namespace tern::runtime
