#include "util/pagemap.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <mutex>
#include <string_view>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/userfaultfd.h>
#include <sys/syscall.h>
#endif

namespace tern::util {
namespace {

constexpr uint64_t kPresent = uint64_t(1) << 63;
constexpr uint64_t kSwapped = uint64_t(1) << 62;
constexpr size_t kEntriesPerRead = 8192;

bool page_map_disabled() {
  // TERN_PAGEMAP=0 turns the page map off: under qemu-user it has been seen
  // to report pages of linear memory absent that hold data.
  const char* use = std::getenv("TERN_PAGEMAP");
  return use && std::string_view(use) == "0";
}

// Reads the entries of `count` host pages from `first_page` on; false when
// the page map cannot be read.
bool read_entries(int fd, uintptr_t first_page, size_t count, uint64_t* out) {
  const off_t offset = static_cast<off_t>(first_page * sizeof(uint64_t));
  const size_t want = count * sizeof(uint64_t);
  ssize_t n;
  do n = ::pread(fd, out, want, offset);
  while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(want);
}

// Whether this process's page map describes its own addresses. It does not
// under a user-mode emulator (qemu-user maps guest addresses elsewhere in
// the host and passes the host's page map through), where trusting it would
// skip pages that hold data. Checked once, with a pattern no unrelated
// mapping is likely to show: of eight fresh pages, exactly those written
// must read as present.
bool page_map_describes_us(int fd, size_t host_page) {
  static std::once_flag once;
  static bool reliable = false;
  std::call_once(once, [&] {
    constexpr size_t kProbe = 8;
    constexpr uint8_t kWritten = 0b10100101;
    // Mapped the way linear memories are: reserved, then made accessible.
    void* p = ::mmap(nullptr, kProbe * host_page, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return;
    if (::mprotect(p, kProbe * host_page, PROT_READ | PROT_WRITE) != 0) {
      ::munmap(p, kProbe * host_page);
      return;
    }
    auto* bytes = static_cast<volatile uint8_t*>(p);
    for (size_t i = 0; i < kProbe; ++i)
      if (kWritten >> i & 1) bytes[i * host_page] = 1;
    uint64_t entries[kProbe] = {};
    reliable = read_entries(fd, reinterpret_cast<uintptr_t>(p) / host_page, kProbe, entries);
    for (size_t i = 0; reliable && i < kProbe; ++i)
      reliable = bool(entries[i] & (kPresent | kSwapped)) == bool(kWritten >> i & 1);
    ::munmap(p, kProbe * host_page);
  });
  return reliable;
}

} // namespace

std::optional<std::vector<bool>> touched_blocks(const void* base, size_t len, size_t block) {
  const size_t host_page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const auto addr = reinterpret_cast<uintptr_t>(base);
  if (host_page == 0 || block % host_page != 0 || addr % host_page != 0) return std::nullopt;
  if (page_map_disabled()) return std::nullopt;
  UniqueFd pagemap(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  if (!pagemap || !page_map_describes_us(pagemap.get(), host_page)) return std::nullopt;

  const size_t pages_per_block = block / host_page;
  const size_t total_pages = (len + host_page - 1) / host_page;
  std::vector<bool> touched((len + block - 1) / block, false);
  std::vector<uint64_t> entries(kEntriesPerRead);
  for (size_t first = 0; first < total_pages; first += kEntriesPerRead) {
    const size_t count = std::min(kEntriesPerRead, total_pages - first);
    if (!read_entries(pagemap.get(), addr / host_page + first, count, entries.data()))
      return std::nullopt;
    for (size_t i = 0; i < count; ++i)
      if (entries[i] & (kPresent | kSwapped)) touched[(first + i) / pages_per_block] = true;
  }
  return touched;
}

// ------------------------------------------------- userfaultfd + PAGEMAP_SCAN

// Debian 12's kernel headers (6.1) predate both; the kernel decides at run
// time whether it has them. Names of our own, so that newer headers that do
// define them do not clash.
namespace {

constexpr uint64_t kUffdFeatureWpUnpopulated = uint64_t(1) << 13;
constexpr uint64_t kUffdFeatureWpAsync = uint64_t(1) << 15;
constexpr int kUffdUserModeOnly = 1;

struct PageRegion {
  uint64_t start, end, categories;
};
struct PmScanArg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages, category_inverted,
      category_mask, category_anyof_mask, return_mask;
};
constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);
constexpr uint64_t kPmScanWpMatching = 1 << 0;
constexpr uint64_t kPmScanCheckWpAsync = 1 << 1;
constexpr uint64_t kPageIsWritten = 1 << 1;
constexpr uint64_t kPageIsPresent = 1 << 3;
constexpr uint64_t kPageIsSwapped = 1 << 4;

std::string errno_text() {
  return std::strerror(errno);
}

} // namespace

std::unique_ptr<KernelWriteTracker> KernelWriteTracker::open(std::string& why_not) {
#ifdef __linux__
  const size_t host_page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  if (page_map_disabled()) {
    why_not = "the page map is turned off (TERN_PAGEMAP=0)";
    return nullptr;
  }
  UniqueFd pagemap(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  if (!pagemap) {
    why_not = "/proc/self/pagemap: " + errno_text();
    return nullptr;
  }
  if (!page_map_describes_us(pagemap.get(), host_page)) {
    why_not = "the page map does not describe this process's memory (an emulator?)";
    return nullptr;
  }
  // User-mode faults only: what an unprivileged process may ask for. Writes
  // by system calls are still tracked, since asynchronous mode resolves
  // every write fault in the kernel.
  UniqueFd uffd(
      static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | kUffdUserModeOnly)));
  if (!uffd) {
    why_not = "userfaultfd: " + errno_text();
    return nullptr;
  }
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = kUffdFeatureWpAsync | kUffdFeatureWpUnpopulated;
  if (::ioctl(uffd.get(), UFFDIO_API, &api) != 0 || !(api.features & kUffdFeatureWpAsync)) {
    why_not = "userfaultfd has no asynchronous write-protect mode (Linux 6.7+)";
    return nullptr;
  }
  // An empty scan: does this kernel have the ioctl at all?
  PmScanArg probe{};
  probe.size = sizeof probe;
  if (::ioctl(pagemap.get(), kPagemapScan, &probe) < 0) {
    why_not = "PAGEMAP_SCAN: " + errno_text() + " (Linux 6.7+)";
    return nullptr;
  }
  return std::unique_ptr<KernelWriteTracker>(
      new KernelWriteTracker(std::move(uffd), std::move(pagemap)));
#else
  why_not = "userfaultfd and PAGEMAP_SCAN are Linux's";
  return nullptr;
#endif
}

bool KernelWriteTracker::add_range(const void* begin, size_t len, std::string& error) {
#ifdef __linux__
  uffdio_register reg{};
  reg.range.start = reinterpret_cast<uintptr_t>(begin);
  reg.range.len = len;
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  if (len == 0 || ::ioctl(uffd_.get(), UFFDIO_REGISTER, &reg) == 0) return true;
  error = "userfaultfd register: " + errno_text();
#else
  (void)begin, (void)len;
  error = "not Linux";
#endif
  return false;
}

bool KernelWriteTracker::collect(const void* begin, size_t len, bool holes,
                                 const std::function<void(uintptr_t, uintptr_t)>& written,
                                 std::string& error) {
  constexpr size_t kRegions = 512;
  PageRegion regions[kRegions];
  uintptr_t start = reinterpret_cast<uintptr_t>(begin);
  const uintptr_t end = start + len;
  while (start < end) {
    PmScanArg a{};
    a.size = sizeof a;
    a.flags = kPmScanWpMatching | kPmScanCheckWpAsync;
    a.start = start;
    a.end = end;
    a.vec = reinterpret_cast<uintptr_t>(regions);
    a.vec_len = kRegions;
    a.category_mask = kPageIsWritten;
    a.category_anyof_mask = holes ? 0 : kPageIsPresent | kPageIsSwapped;
    a.return_mask = kPageIsWritten;
    long n = ::ioctl(pagemap_.get(), kPagemapScan, &a);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = "PAGEMAP_SCAN: " + errno_text();
      return false;
    }
    for (long i = 0; i < n; ++i) written(regions[i].start, regions[i].end);
    // The scan stops early when `regions` is full.
    if (a.walk_end <= start) {
      error = "PAGEMAP_SCAN made no progress";
      return false;
    }
    start = a.walk_end;
  }
  return true;
}

} // namespace tern::util
