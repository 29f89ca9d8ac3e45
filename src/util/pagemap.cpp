#include "util/pagemap.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <fcntl.h>
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

} // namespace

std::optional<std::vector<bool>> touched_blocks(const void* base, size_t len, size_t block) {
  const size_t host_page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const auto addr = reinterpret_cast<uintptr_t>(base);
  if (host_page == 0 || block % host_page != 0 || addr % host_page != 0) return std::nullopt;
  Fd pagemap{::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)};
  if (pagemap.fd < 0) return std::nullopt;

  const size_t pages_per_block = block / host_page;
  const size_t total_pages = (len + host_page - 1) / host_page;
  std::vector<bool> touched((len + block - 1) / block, false);
  std::vector<uint64_t> entries(kEntriesPerRead);
  for (size_t first = 0; first < total_pages; first += kEntriesPerRead) {
    const size_t count = std::min(kEntriesPerRead, total_pages - first);
    const off_t offset = static_cast<off_t>((addr / host_page + first) * sizeof(uint64_t));
    const size_t want = count * sizeof(uint64_t);
    ssize_t n;
    do n = ::pread(pagemap.fd, entries.data(), want, offset);
    while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(want)) return std::nullopt;
    for (size_t i = 0; i < count; ++i)
      if (entries[i] & (kPresent | kSwapped)) touched[(first + i) / pages_per_block] = true;
  }
  return touched;
}

} // namespace tern::util
