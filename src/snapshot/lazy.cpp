#include "snapshot/lazy.h"

#include "snapshot/pages.h"
#include "snapshot/payload.h"
#include "tern/error.h"
#include "tern/internal_error.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <string_view>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace tern::snapshot {
namespace {

uint64_t host_page_size() {
  static const auto size = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

std::string read_sysctl(const char* path) {
  char buf[32] = {};
  util::UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return "?";
  const ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  std::string s(buf, n > 0 ? static_cast<size_t>(n) : 0);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.empty() ? "?" : s;
}

// A userfaultfd that also serves faults taken inside the kernel (a system
// call writing into memory: WASI's fd_read): without UFFD_USER_MODE_ONLY.
// Unprivileged processes get one only where vm.unprivileged_userfaultfd is
// 1 (or /dev/userfaultfd grants it); a user-mode-only one would make such
// system calls fail with EFAULT, so the restore loads eagerly instead.
util::UniqueFd open_userfaultfd(std::string& why_not) {
  util::UniqueFd fd(static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK)));
  if (fd) return fd;
  const int err = errno;
#ifdef USERFAULTFD_IOC_NEW
  if (util::UniqueFd dev(::open("/dev/userfaultfd", O_RDWR | O_CLOEXEC)); dev) {
    fd.reset(::ioctl(dev.get(), USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK));
    if (fd) return fd;
  }
#endif
  if (err == ENOSYS)
    why_not = "userfaultfd: the kernel has none";
  else if (err == EPERM)
    why_not = fmt::format("userfaultfd: not permitted (vm.unprivileged_userfaultfd is {}: an "
                          "unprivileged process may only handle user-mode faults "
                          "(UFFD_USER_MODE_ONLY), and system calls writing into memory need "
                          "kernel-mode faults served)",
                          read_sysctl("/proc/sys/vm/unprivileged_userfaultfd"));
  else
    why_not = fmt::format("userfaultfd: {}", std::strerror(err));
  return {};
}

alignas(4096) const uint8_t kZeroPage[kPageSize] = {};

} // namespace

// Reads and decodes chunks for one thread.
class LazyMemory::Loader {
public:
  explicit Loader(const LazyMemory& lazy) : decoder_(lazy.index_, lazy.pages_, {}) {
    decoder_.allow_any_order();
  }
  // The chunk's pages, in page order.
  std::span<const uint8_t> decode(int fd, const Chunk& chunk) {
    read_section_at(fd, chunk.frame, section_);
    decoder_.decode(section_.payload(), section_.name());
    return decoder_.decoded();
  }

private:
  ChunkDecoder decoder_;
  Section section_;
};

std::unique_ptr<LazyMemory> LazyMemory::prepare(runtime::Memory& memory, uint32_t index,
                                                uint64_t pages, std::string& why_not) {
  if (pages == 0) {
    why_not = "the memory is empty";
    return nullptr;
  }
  // A base that may move on grow would leave the registration behind.
  if (!memory.has_guard_region()) {
    why_not = "the memory's base may move on this host";
    return nullptr;
  }
  if (memory.pages() < pages) throw InternalError("lazy restore of a memory too small");
  util::UniqueFd uffd = open_userfaultfd(why_not);
  if (!uffd) return nullptr;
  uffdio_api api{};
  api.api = UFFD_API;
  if (::ioctl(uffd.get(), UFFDIO_API, &api) != 0) {
    why_not = fmt::format("userfaultfd: UFFDIO_API: {}", std::strerror(errno));
    return nullptr;
  }
  if (memory.mirrored() && !(api.features & UFFD_FEATURE_MISSING_SHMEM)) {
    why_not = "userfaultfd: this kernel cannot serve missing pages of shared memory (compiled "
              "code's mirrored memory)";
    return nullptr;
  }

  std::unique_ptr<LazyMemory> lazy(new LazyMemory);
  lazy->index_ = index;
  lazy->pages_ = pages;
  lazy->uffd_ = std::move(uffd);
  const uint64_t length = pages * kPageSize;
  lazy->views_.push_back({memory.base(), length});
  if (memory.mirrored())
    for (uint32_t k = 0; k < runtime::Memory::kMirrorViews; ++k)
      lazy->views_.push_back({memory.mirror_base() + k * runtime::Memory::kMirrorStride, length});
  lazy->zeropage_ = true;
  for (const View& v : lazy->views_) {
    uffdio_register reg{};
    reg.range.start = reinterpret_cast<uintptr_t>(v.start);
    reg.range.len = v.length;
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    if (::ioctl(lazy->uffd_.get(), UFFDIO_REGISTER, &reg) != 0) {
      why_not = fmt::format("userfaultfd: UFFDIO_REGISTER: {}", std::strerror(errno));
      return nullptr; // the destructor unregisters what was
    }
    lazy->registered_ = true;
    if (!(reg.ioctls & (uint64_t(1) << _UFFDIO_COPY))) {
      why_not = "userfaultfd: UFFDIO_COPY is not available for this memory";
      return nullptr;
    }
    if (!(reg.ioctls & (uint64_t(1) << _UFFDIO_ZEROPAGE))) lazy->zeropage_ = false;
  }
  lazy->stop_event_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!lazy->stop_event_) {
    why_not = fmt::format("eventfd: {}", std::strerror(errno));
    return nullptr;
  }
  return lazy;
}

LazyMemory::~LazyMemory() {
  stop_ = true;
  if (prefetcher_.joinable()) prefetcher_.join();
  if (handler_.joinable()) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_event_.get(), &one, sizeof one);
    handler_.join();
  }
  unregister();
}

// Unregistering wakes the faults already queued, but not one that another
// thread is taking at that moment: a fault taken under the per-VMA lock
// (Linux 6.7+) is queued after the unregister's wake-up and before the
// unregister can change that VMA, and would then wait for ever (seen: a
// restore hung after its memory was loaded, about once in a thousand). A
// wake-up after the unregister, which waits for that fault to be queued,
// sends it back to take an ordinary fault.
void LazyMemory::unregister() {
  if (!registered_) return;
  for (const View& v : views_) {
    uffdio_range range{reinterpret_cast<uintptr_t>(v.start), v.length};
    ::ioctl(uffd_.get(), UFFDIO_UNREGISTER, &range);
    ::ioctl(uffd_.get(), UFFDIO_WAKE, &range);
  }
  registered_ = false;
}

void LazyMemory::start(util::UniqueFd file, const std::string& path, const DeferredPages& pages) {
  file_ = std::move(file);
  path_ = path;
  try {
    index_chunks(pages);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", path_, e.what()));
  }
  state_ = std::make_unique<std::atomic<uint8_t>[]>(chunks_.size());
  handler_ = std::thread([this] { serve_faults(); });
  // TERN_LAZY_PREFETCH=0: pages load only when touched, until someone
  // needs the whole memory (finish): tests use it to checkpoint, grow and
  // exit while pages are still missing.
  const char* prefetch_env = std::getenv("TERN_LAZY_PREFETCH");
  if (!prefetch_env || std::string_view(prefetch_env) != "0")
    prefetcher_ = std::thread([this] { prefetch(); });
}

void LazyMemory::finish() {
  if (!prefetcher_.joinable()) prefetcher_ = std::thread([this] { prefetch(); });
  if (prefetcher_.joinable()) prefetcher_.join();
  if (handler_.joinable()) handler_.join();
  unregister();
}

// Each chunk's frame and chunk header, one pread each: where it is in the
// file and which pages it carries.
void LazyMemory::index_chunks(const DeferredPages& pages) {
  struct stat st;
  if (::fstat(file_.get(), &st) != 0) throw Error(std::strerror(errno));
  const auto file_size = static_cast<uint64_t>(st.st_size);
  uint64_t offset = pages.offset;
  uint32_t sections = pages.sections;
  uint64_t next_page = 0;
  for (;;) {
    std::array<uint8_t, kChunkHeaderBytes> head{};
    const SectionFrame frame = read_frame_at(file_.get(), offset, file_size, head);
    if (frame.tag == kTailTag) {
      Section tail;
      read_section_at(file_.get(), frame, tail);
      PayloadReader r(tail.payload(), tail.name());
      const uint64_t bytes = r.u64();
      const uint32_t count = r.u32();
      r.u64(); // the stream's hash: every section is checked as it is loaded
      r.expect_end();
      if (bytes != offset || count != sections)
        r.fail(fmt::format("the stream does not match its trailer ({} bytes in {} sections read, "
                           "{} bytes in {} sections written)",
                           offset, sections, bytes, count));
      if (offset + section_bytes(frame.length) != file_size)
        throw Error("snapshot is malformed: bytes follow the TAIL section");
      return;
    }
    if (frame.tag != kPagesTag) {
      Section s;
      read_section_at(file_.get(), frame, s);
      throw Error(fmt::format("snapshot is malformed: {} follows the MEMD section of memory {}, "
                              "where only its MEMP sections and the TAIL may",
                              s.name(), index_));
    }
    const std::string name = fmt::format("section MEMP at byte {}", offset);
    if (frame.length < kChunkHeaderBytes)
      throw Error(fmt::format("snapshot is malformed: {} is too short for a chunk", name));
    PayloadReader r(head, name);
    const ChunkHeader h = read_chunk_header(r, index_, pages_, next_page);
    next_page = h.first + h.count;
    if (h.bitmap != 0) chunks_.push_back({h.first, h.bitmap, frame});
    offset += section_bytes(frame.length);
    ++sections;
  }
}

void LazyMemory::serve_faults() {
  Loader loader(*this);
  pollfd fds[2] = {{uffd_.get(), POLLIN, 0}, {stop_event_.get(), POLLIN, 0}};
  for (;;) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      fail(fmt::format("waiting for page faults: {}", std::strerror(errno)));
    }
    if (fds[1].revents & POLLIN) break;
    for (;;) {
      uffd_msg msg;
      const ssize_t n = ::read(uffd_.get(), &msg, sizeof msg);
      if (n == static_cast<ssize_t>(sizeof msg)) {
        if (msg.event == UFFD_EVENT_PAGEFAULT) serve(msg.arg.pagefault.address, loader);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      fail(fmt::format("reading page faults: {}", n < 0 ? std::strerror(errno) : "short read"));
    }
  }
  // Every carried page is in (or the program ended): pages never carried
  // are the kernel's to fill; faults waiting now are woken to retry.
  unregister();
}

void LazyMemory::prefetch() {
  Loader loader(*this);
  for (size_t c = 0; c < chunks_.size() && !stop_.load(); ++c) load(c, loader);
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(stop_event_.get(), &one, sizeof one);
}

void LazyMemory::serve(uint64_t address, Loader& loader) {
  for (const View& v : views_) {
    const auto start = reinterpret_cast<uint64_t>(v.start);
    if (address < start || address >= start + v.length) continue;
    const uint64_t page = (address - start) / kPageSize;
    // The chunk that holds the page: the last one starting at or before it.
    auto it = std::upper_bound(chunks_.begin(), chunks_.end(), page,
                               [](uint64_t p, const Chunk& c) { return p < c.first; });
    if (it != chunks_.begin()) {
      const Chunk& c = *std::prev(it);
      const uint64_t bit = page - c.first;
      if (bit < kMaxChunkPages && (c.bitmap >> bit & 1)) {
        load(static_cast<size_t>(std::prev(it) - chunks_.begin()), loader);
        wake(v, page);
        return;
      }
    }
    place(page, 1, nullptr); // no chunk carries it: zeros
    wake(v, page);
    return;
  }
  fail(fmt::format("a page fault at 0x{:x}, outside the memory", address));
}

void LazyMemory::load(size_t c, Loader& loader) {
  std::atomic<uint8_t>& state = state_[c];
  uint8_t expected = 0;
  if (!state.compare_exchange_strong(expected, 1)) {
    while (state.load() == 1) state.wait(1); // the other thread is at it
    return;
  }
  const Chunk& chunk = chunks_[c];
  std::span<const uint8_t> decoded;
  try {
    decoded = loader.decode(file_.get(), chunk);
  } catch (const Error& e) {
    fail(e.what());
  }
  // Each run of consecutive pages in one copy.
  const uint8_t* src = decoded.data();
  for (uint64_t bits = chunk.bitmap; bits != 0;) {
    const int first = std::countr_zero(bits);
    const int run = std::countr_one(bits >> first);
    place(chunk.first + first, run, src);
    src += run * kPageSize;
    bits = run + first >= 64 ? 0 : bits & ~((uint64_t(1) << (first + run)) - 1);
  }
  state.store(2);
  state.notify_all();
}

void LazyMemory::place(uint64_t page, uint64_t pages, const uint8_t* bytes) {
  if (!bytes && !zeropage_) {
    for (uint64_t p = page; p < page + pages; ++p) place(p, 1, kZeroPage);
    return;
  }
  uint8_t* const dst = views_[0].start + page * kPageSize;
  const uint64_t length = pages * kPageSize;
  for (uint64_t done = 0; done < length;) {
    int64_t result;
    int rc;
    if (bytes) {
      uffdio_copy copy{};
      copy.dst = reinterpret_cast<uintptr_t>(dst + done);
      copy.src = reinterpret_cast<uintptr_t>(bytes + done);
      copy.len = length - done;
      rc = ::ioctl(uffd_.get(), UFFDIO_COPY, &copy);
      result = copy.copy;
    } else {
      uffdio_zeropage zero{};
      zero.range.start = reinterpret_cast<uintptr_t>(dst + done);
      zero.range.len = length - done;
      rc = ::ioctl(uffd_.get(), UFFDIO_ZEROPAGE, &zero);
      result = zero.zeropage;
    }
    if (rc == 0) return;
    if (errno == EAGAIN) { // part done, or the mapping was changing: the rest again
      if (result > 0) done += static_cast<uint64_t>(result);
      continue;
    }
    if (errno == EEXIST) { // that host page is in already (two faults on one page)
      done += host_page_size();
      continue;
    }
    fail(fmt::format("placing memory page {}: {}", page + done / kPageSize, std::strerror(errno)));
  }
}

void LazyMemory::wake(const View& v, uint64_t page) {
  uffdio_range range{reinterpret_cast<uintptr_t>(v.start + page * kPageSize), kPageSize};
  ::ioctl(uffd_.get(), UFFDIO_WAKE, &range);
}

void LazyMemory::fail(const std::string& message) const {
  // The program is stopped in a fault on a page that cannot be loaded (or
  // will be): it cannot continue, and nothing can be unwound into it.
  fmt::print(stderr, "tern: error: {}: loading memory on demand: {}\n", path_, message);
  std::fflush(stderr);
  ::_exit(1);
}

} // namespace tern::snapshot
