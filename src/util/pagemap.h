// What the kernel's page tables say about this process's memory, from
// /proc/self/pagemap:
//   - which parts of an anonymous mapping were ever touched: a page of a
//     private anonymous mapping that is neither present nor swapped out was
//     never written and reads as zero. Lets a snapshot skip untouched memory
//     without reading (and faulting in) it;
//   - which pages were written since they were last write-protected, with a
//     userfaultfd in asynchronous write-protect mode and the PAGEMAP_SCAN
//     ioctl (Linux 6.7+): dirty-page tracking (runtime/dirty_pages.h).
#pragma once

#include "util/unique_fd.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tern::util {

// For each `block`-byte block of [base, base + len): whether any host page
// in it is present or swapped. `base` and `block` must be multiples of the
// host page size. nullopt when the page map cannot be read or does not
// describe this process's addresses (not Linux, /proc not mounted, a
// user-mode emulator such as qemu-user), or when the environment has
// TERN_PAGEMAP=0: then every block must be assumed touched.
std::optional<std::vector<bool>> touched_blocks(const void* base, size_t len, size_t block);

// Write tracking by the kernel: ranges registered with a userfaultfd in
// asynchronous write-protect mode (UFFD_FEATURE_WP_ASYNC). A write to a
// write-protected page is resolved by the kernel itself, without a signal or
// a message (system calls writing into the range included), and leaves the
// page marked written; PAGEMAP_SCAN reports the written pages and
// write-protects them again in one atomic step per page. Writes cost one
// page fault per page and collection; nothing while no one collects.
class KernelWriteTracker {
public:
  // A tracker, or nullptr with the reason in `why_not` (kernel older than
  // 6.7, userfaultfd not permitted, no page map, TERN_PAGEMAP=0, ...).
  static std::unique_ptr<KernelWriteTracker> open(std::string& why_not);

  // Registers [begin, begin + len) (host-page aligned; may include
  // PROT_NONE parts that are made accessible later): writes to it are
  // tracked from the next collect() on. False with the reason in `error`.
  bool add_range(const void* begin, size_t len, std::string& error);

  // Calls `written(first, end)` for each run of pages of [begin, begin + len)
  // written since the previous collect() of those pages (or since they were
  // registered) and write-protects them again; a write racing with the call
  // is either reported now or by the next call. With `holes`, pages that are
  // not mapped (never touched, or dropped by the kernel) count as written
  // and are protected too: needed where a page can lose its mapping with
  // its contents kept elsewhere (shared memory reclaimed to swap), at the
  // cost of a second fault on a page's first touch. Without it, such pages
  // are neither reported nor protected: right for private anonymous memory,
  // whose unmapped pages read as zero. False with the reason in `error`.
  bool collect(const void* begin, size_t len, bool holes,
               const std::function<void(uintptr_t first, uintptr_t end)>& written,
               std::string& error);

private:
  KernelWriteTracker(UniqueFd uffd, UniqueFd pagemap)
      : uffd_(std::move(uffd)), pagemap_(std::move(pagemap)) {}
  UniqueFd uffd_;
  UniqueFd pagemap_;
};

} // namespace tern::util
