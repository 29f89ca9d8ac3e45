#include "util/pagemap.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <fcntl.h>
#include <mutex>
#include <string_view>
#include <sys/mman.h>
#include <unistd.h>

namespace tern::util {
namespace {

constexpr uint64_t kPresent = uint64_t(1) << 63;
constexpr uint64_t kSwapped = uint64_t(1) << 62;
constexpr size_t kEntriesPerRead = 8192;

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

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
  Fd pagemap{::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)};
  // TERN_PAGEMAP=0 turns the page map off: under qemu-user it has been seen
  // to report pages of linear memory absent that hold data.
  if (const char* use = std::getenv("TERN_PAGEMAP"); use && std::string_view(use) == "0")
    return std::nullopt;
  if (pagemap.fd < 0 || !page_map_describes_us(pagemap.fd, host_page)) return std::nullopt;

  const size_t pages_per_block = block / host_page;
  const size_t total_pages = (len + host_page - 1) / host_page;
  std::vector<bool> touched((len + block - 1) / block, false);
  std::vector<uint64_t> entries(kEntriesPerRead);
  for (size_t first = 0; first < total_pages; first += kEntriesPerRead) {
    const size_t count = std::min(kEntriesPerRead, total_pages - first);
    if (!read_entries(pagemap.fd, addr / host_page + first, count, entries.data()))
      return std::nullopt;
    for (size_t i = 0; i < count; ++i)
      if (entries[i] & (kPresent | kSwapped)) touched[(first + i) / pages_per_block] = true;
  }
  return touched;
}

} // namespace tern::util
