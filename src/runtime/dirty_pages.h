// Dirty-page tracking of a linear memory: which pages the program wrote
// since someone last asked. Two users ask: incremental checkpoints (pages
// written since the parent snapshot) and live migration's pre-copy (a
// sender thread collects and clears the dirty set round after round while
// the program runs, then once more when it is stopped).
//
// Usage, for either:
//
//   runtime::DirtyLog log = memory.open_dirty_log();   // tracking starts
//   runtime::DirtyPages all = log.collect();           // first: every page
//   ... copy all pages (the program may run meanwhile) ...
//   for (;;) {
//     runtime::DirtyPages d = log.collect();           // since the last collect
//     ... copy the pages d marks ...
//   }
//   ... stop the program at a stable point ...
//   runtime::DirtyPages last = log.collect();          // exact: nothing runs
//
// The guarantee: a page that collect() leaves out holds the same bytes as
// when the previous collect() of the same log returned (pages are never
// left out wrongly; a page may be reported that was written with the same
// bytes, or only read). Copying a page after collect() has returned sees
// every write reported so far; a write racing with the copy is reported by
// the next collect(). So "collect, then copy" rounds converge on the exact
// memory once the program stops.
//
// Several logs may be open on one memory (a checkpointing program being
// migrated): each collect() answers for its own log and clears nothing for
// the others. collect() may be called from any thread while the program runs
// (one thread per log at a time), and while memory.grow runs on another.
// A log must not outlive its memory.
//
// Mechanisms (DirtyMechanism), chosen when the first log opens:
//   - userfaultfd: write-protect in asynchronous mode with PAGEMAP_SCAN
//     (util/pagemap.h, Linux 6.7+). The kernel resolves the fault of a first
//     write after a collect by itself (no signal), system calls writing into
//     memory included; collecting walks the page tables. The default.
//   - mprotect: collected pages are made read-only; the first write to one
//     faults, and a SIGSEGV handler makes it writable again and marks it.
//     64 KiB (a wasm page) per fault. Host code that writes memory through
//     a system call (WASI's fd_read) must announce it first
//     (Memory::before_host_write), or the call would fail with EFAULT.
//     Compiled code's out-of-bounds traps are told apart by address (see
//     handle_write_protect_fault below and aot/signals.cpp).
//   - hash: every collect hashes each touched page (XXH3, 128 bits) and
//     compares with the previous hash. No cost while the program runs; a
//     collect reads all touched memory.
// The automatic choice is the first that works in that order; the
// environment variable TERN_DIRTY_TRACKING=userfaultfd|mprotect|hash|auto
// forces one (an error if it does not work here), which is how tests cover
// each mechanism on one machine.
//
// Memory growth: pages added since the previous collect are always
// reported (DirtyPages::previous_pages says where they begin), whatever the
// mechanism. Mirrored memories (runtime/memory.h) are tracked in every view.
// A forked child (snapshot/background.h) inherits no tracking: it only reads
// memory, and the parent's tracking goes on unchanged.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern::runtime {

class Memory;
class DirtyTracker;

enum class DirtyMechanism : uint8_t { Userfaultfd, Mprotect, Hash };

// "userfaultfd", "mprotect", "hash".
std::string_view mechanism_name(DirtyMechanism m);
// The mechanism the environment forces (TERN_DIRTY_TRACKING), nullopt for
// the automatic choice (unset or "auto"). Throws tern::Error for a value
// that is none of these.
std::optional<DirtyMechanism> forced_dirty_mechanism();

// The pages of one memory that one collect() reports, in host pages.
struct DirtyPages {
  uint64_t page_size = 0;      // bytes per page: the host's page size
  uint64_t pages = 0;          // pages in the memory at this collect
  uint64_t previous_pages = 0; // pages at the previous collect; later ones are new
  std::vector<uint64_t> bits;  // bit i of word i / 64: page i may have changed

  bool test(uint64_t page) const { return bits[page / 64] >> (page % 64) & 1; }
  // Pages reported.
  uint64_t count() const;
  // Whether any page overlapping bytes [offset, offset + len) is reported.
  bool any(uint64_t offset, uint64_t len) const;
  // One flag per 64 KiB wasm page of the memory: any of its host pages reported.
  std::vector<bool> wasm_pages() const;
};

// One consumer's view of a memory's writes. Movable; closing the last log of
// a memory stops the tracking (and its costs).
class DirtyLog {
public:
  DirtyLog() = default;
  DirtyLog(DirtyLog&& other) noexcept;
  DirtyLog& operator=(DirtyLog&& other) noexcept;
  ~DirtyLog();

  bool is_open() const { return tracker_ != nullptr; }
  // Pages written (or added by memory.grow) since this log's previous
  // collect(); the first collect() reports every page. Clears the set for
  // this log only. Never throws: if the mechanism fails, every page is
  // reported (still true) and tracking is set up again.
  DirtyPages collect();

  DirtyMechanism mechanism() const;
  // For people (--verbose-checkpoints): the mechanism, and why the ones
  // before it in the automatic order were not used, e.g. "mprotect (fault
  // handler); userfaultfd unavailable: PAGEMAP_SCAN: ... (Linux 6.7+)".
  std::string description() const;

private:
  friend class DirtyTracker;
  DirtyLog(DirtyTracker* tracker, size_t id) : tracker_(tracker), id_(id) {}
  DirtyTracker* tracker_ = nullptr;
  size_t id_ = 0;
};

// The tracking state of one memory, owned by it (Memory::open_dirty_log).
class DirtyTracker {
public:
  explicit DirtyTracker(Memory& memory);
  ~DirtyTracker();
  DirtyTracker(const DirtyTracker&) = delete;
  DirtyTracker& operator=(const DirtyTracker&) = delete;

  // A new log; the first starts tracking with `mechanism` (nullopt: the
  // environment's or the automatic choice). Throws tern::Error when a
  // forced mechanism does not work here, or differs from the one running.
  DirtyLog open_log(std::optional<DirtyMechanism> mechanism);

  // From Memory: it grew from `old_bytes` to its current size (and its base
  // moved from `old_base` if it differs).
  void grown(uint64_t old_bytes, const uint8_t* old_base);
  // From Memory::before_host_write (mprotect tracking only).
  void host_write(uint64_t addr, uint64_t len);

private:
  friend class DirtyLog;
  struct State;
  DirtyPages collect(size_t log);
  void close(size_t log);
  DirtyMechanism mechanism() const;
  std::string description() const;
  std::unique_ptr<State> state_;
};

// For fault handlers (async-signal-safe): if `addr` lies in memory that
// mprotect tracking made read-only, records the write, makes the page
// writable and returns true (the faulting instruction can run again);
// false for any other address. Compiled code's SIGSEGV handler asks this
// before it takes a fault for an out-of-bounds trap.
bool handle_write_protect_fault(const void* addr) noexcept;

} // namespace tern::runtime
