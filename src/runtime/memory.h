// A linear memory. On 64-bit hosts its address range is reserved once (8 GiB
// of PROT_NONE: any 32-bit address plus any 32-bit offset lands inside), so
// the base never moves and out-of-range accesses from compiled code fault
// into guard pages. Where that reservation is impossible the memory is a
// plain resizable mapping and the base may move on grow; engines reload
// base() after every call and memory.grow either way.
//
// A mirrored memory (engines that compile code ask for it) is a memfd
// mapped at base() as usual, and again kMirrorViews times at
// mirror_base() + k * 4 GiB: an address that is a sum of up to
// kMirrorViews 32-bit terms, computed without 32-bit wrap-around (compiled
// code sums the zero-extended operands of nested i32.adds in 64 bits, which
// lets LLVM analyze address arithmetic), reads at mirror_base() the same
// bytes as the wrapped sum would at base(), and traps where that would.
// The views are apart from base()'s guard region, which addresses with a
// memarg offset need as it is.
//
// Wasm memory is little-endian; load/store here convert on big-endian hosts.
#pragma once

#include "runtime/dirty_pages.h"
#include "runtime/wait_queue.h"
#include "wasm/types.h"

#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <span>

namespace tern::runtime {

// Contents still arriving in a memory: a lazy restore (snapshot/lazy.h)
// loads pages on first touch and in the background. Whoever needs the
// whole memory as plain anonymous or shared pages (dirty-page tracking,
// a checkpoint's forked writer) waits for finish() first.
class PendingContents {
public:
  virtual ~PendingContents() = default;
  // Blocks until every page is in and the memory is an ordinary one.
  virtual void finish() = 0;
};

class Memory {
public:
  explicit Memory(const wasm::MemoryType& type, bool mirrored = false);
  ~Memory();
  Memory(const Memory&) = delete;
  Memory& operator=(const Memory&) = delete;

  // Where the memory is and how big, in one place that compiled code reads
  // directly (aot/abi.h): base and size change together on grow.
  struct Bounds {
    uint8_t* base = nullptr;
    uint64_t size = 0; // bytes
  };
  const Bounds* bounds() const { return &bounds_; }

  uint8_t* base() const { return bounds_.base; }
  // Bytes. The threads of a shared memory read it while one of them grows
  // the memory (grow_mutex_ orders only the growers): commit() publishes
  // a new size atomically, after the pages it adds are accessible.
  uint64_t size() const {
    return std::atomic_ref(const_cast<uint64_t&>(bounds_.size)).load(std::memory_order_acquire);
  }
  uint64_t pages() const { return size() / wasm::kPageSize; }
  std::optional<uint64_t> max_pages() const { return max_pages_; }
  bool shared() const { return shared_; }
  // memory.atomic.wait/notify's queues: a shared memory's, else nullptr
  // (wait on an unshared memory traps, notify wakes nobody).
  WaitQueues* wait_queues() const { return wait_queues_.get(); }
  // Whether addresses past size() fault (guard reservation) on this host.
  bool has_guard_region() const { return guarded_; }
  // Whether base() + 4 GiB + a is another view of base() + a (see above).
  bool mirrored() const { return mirror_fd_ >= 0; }
  uint8_t* mirror_base() const { return mirrored() ? bounds_.base + kGuardedReservation : nullptr; }
  wasm::MemoryType type() const;

  // memory.grow: the old page count, or -1 when the limit forbids it.
  // Safe to call from several threads (shared memories).
  int64_t grow(uint64_t delta_pages);

  std::span<uint8_t> bytes() { return {bounds_.base, size()}; }
  bool in_bounds(uint64_t addr, uint64_t len) const {
    const uint64_t bytes = size();
    return addr <= bytes && len <= bytes - addr;
  }
  // The reserved address range (guard pages included).
  uint64_t reserved() const { return reserved_; }

  // A lazy restore's loader: owned by the memory from now on, destroyed
  // (its threads stopped) before the memory is unmapped.
  void load_lazily(std::unique_ptr<PendingContents> pending);
  // Returns once the memory holds all of its contents (at once unless a
  // lazy restore is still loading it). Any thread.
  void wait_loaded();

  // Dirty-page tracking (runtime/dirty_pages.h): a new log of the pages
  // written from now on (once a lazy restore has loaded the memory: the
  // log waits for it, wait_loaded); the first log starts tracking, with `mechanism`
  // (nullopt: TERN_DIRTY_TRACKING or the automatic choice). The log must
  // not outlive the memory.
  DirtyLog open_dirty_log(std::optional<DirtyMechanism> mechanism = std::nullopt);
  // Host code calls this before a system call writes into bytes
  // [addr, addr + len) (in bounds): with mprotect tracking the pages must be
  // writable first, or the call fails with EFAULT. Cheap when not tracking.
  void before_host_write(uint64_t addr, uint64_t len) {
    if (watch_host_writes_.load(std::memory_order_relaxed)) note_host_write(addr, len);
  }
  // For the tracker: whether before_host_write must tell it.
  void watch_host_writes(bool on) { watch_host_writes_.store(on, std::memory_order_relaxed); }

  // Little-endian typed access; callers check bounds.
  template <typename T>
  static T load_le(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    if constexpr (std::endian::native == std::endian::big && sizeof(T) > 1) v = byteswap(v);
    return v;
  }
  template <typename T>
  static void store_le(uint8_t* p, T v) {
    if constexpr (std::endian::native == std::endian::big && sizeof(T) > 1) v = byteswap(v);
    std::memcpy(p, &v, sizeof(T));
  }

  // Address range reserved for guarded memories: 4 GiB of addresses plus
  // 4 GiB of offsets, plus a page for the widest access.
  static constexpr uint64_t kGuardedReservation = (8ull << 30) + wasm::kPageSize;
  // Mirrored: kMirrorViews views of the memory, 4 GiB apart.
  static constexpr uint64_t kMirrorStride = 4ull << 30;
  static constexpr uint32_t kMirrorViews = 4;
  static constexpr uint64_t kMirroredReservation =
      kGuardedReservation + kMirrorViews * kMirrorStride + wasm::kPageSize;

private:
  template <typename T>
  static T byteswap(T v) {
    if constexpr (sizeof(T) == 2)
      return static_cast<T>(__builtin_bswap16(static_cast<uint16_t>(v)));
    if constexpr (sizeof(T) == 4)
      return static_cast<T>(__builtin_bswap32(static_cast<uint32_t>(v)));
    if constexpr (sizeof(T) == 8)
      return static_cast<T>(__builtin_bswap64(static_cast<uint64_t>(v)));
    return v;
  }
  bool commit(uint64_t new_size);
  void publish_size(uint64_t bytes); // see size()
  bool reserve_mirrored();
  bool map_views(uint64_t from, uint64_t to);
  void note_host_write(uint64_t addr, uint64_t len);

  Bounds bounds_;
  uint64_t reserved_ = 0;
  std::optional<uint64_t> max_pages_;
  bool shared_ = false;
  bool guarded_ = false;
  int mirror_fd_ = -1;
  std::atomic<bool> watch_host_writes_{false};
  std::unique_ptr<DirtyTracker> dirty_;
  std::unique_ptr<WaitQueues> wait_queues_;
  std::mutex grow_mutex_; // threads of a shared memory may grow it at once
  std::mutex pending_mutex_;
  std::unique_ptr<PendingContents> pending_; // a lazy restore still loading
};

} // namespace tern::runtime
