#include "snapshot/lazy.h"

#include "snapshot/chunk_index.h"
#include "snapshot/format.h"
#include "snapshot/pages.h"
#include "snapshot/payload.h"
#include "tern/error.h"
#include "tern/internal_error.h"
#include "util/byte_stream.h"
#include "util/trace_time.h"

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

// Fills `out` from `offset` of the file, whose size was `file_size`.
void pread_exact(int fd, std::span<uint8_t> out, uint64_t offset, uint64_t file_size) {
  for (size_t done = 0; done < out.size();) {
    const ssize_t n =
        ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(fmt::format("cannot read: {}", std::strerror(errno)));
    if (n == 0)
      throw Error(
          fmt::format("the file became shorter while it was read (it had {} bytes)", file_size));
    done += static_cast<size_t>(n);
  }
}

} // namespace

// Reads and decodes chunks for one thread.
class LazyMemory::Loader {
public:
  explicit Loader(const LazyMemory& lazy) : decoder_(lazy.index_, lazy.pages_, {}) {
    decoder_.allow_any_order();
  }
  // The chunk's pages, in page order; its header must be the one indexed.
  std::span<const uint8_t> decode(int fd, const Entry& entry) {
    read_section_at(fd, entry.frame, section_);
    PayloadReader r(section_.payload(), section_.name());
    if (read_chunk_header(r, entry.header.index, wasm::kMaxPages, 0) != entry.header)
      throw Error(fmt::format(
          "{} changed while it was read: it is not the chunk indexed ({})", section_.name(),
          describe_chunk({entry.frame.offset, entry.frame.length, entry.header})));
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
    struct stat st;
    if (::fstat(file_.get(), &st) != 0) throw Error(std::strerror(errno));
    file_size_ = static_cast<uint64_t>(st.st_size);
    if (pages.indexed)
      read_chunk_index(pages);
    else
      index_chunks(pages);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", path_, e.what()));
  }
  for (size_t e = 0; e < entries_.size(); ++e)
    if (entries_[e].header.bitmap != 0)
      chunks_.push_back(
          {entries_[e].header.first, entries_[e].header.bitmap, entries_[e].frame, e});
  util::trace_time(
      fmt::format("{} ({} chunks, {} reads)",
                  indexed_ ? "chunk index read" : "chunks indexed one by one (no chunk index)",
                  entries_.size(), index_reads_)
          .c_str());
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
  const uint64_t file_size = file_size_;
  uint64_t offset = pages.offset;
  uint32_t sections = pages.sections;
  uint64_t next_page = 0;
  for (;;) {
    std::array<uint8_t, kChunkHeaderBytes> head{};
    const SectionFrame frame = read_frame_at(file_.get(), offset, file_size, head);
    ++index_reads_;
    if (frame.tag == kTailTag) {
      Section tail;
      read_section_at(file_.get(), frame, tail);
      ++index_reads_;
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
      verified_ = entries_.size(); // read just now
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
    entries_.push_back({frame, h});
    offset += section_bytes(frame.length);
    ++sections;
  }
}

// The TAIL and the chunk index from the end of the file: one read that
// takes as many bytes as tern's own index of this memory would need (16
// pages a chunk) and some more, and a second one only for a longer index.
// The index's last field, just before its payload check and the TAIL, is
// its own offset (docs/snapshot-format.md §6.15).
void LazyMemory::read_chunk_index(const DeferredPages& pages) {
  constexpr uint64_t kTailBytes = section_bytes(8 + 4 + 8);
  constexpr uint64_t kMinIndexBytes = section_bytes(4 + 8); // no memory, its offset
  if (file_size_ < pages.offset + kMinIndexBytes + kTailBytes)
    throw Error(fmt::format("snapshot is truncated: it ends at byte {}, before the chunk index "
                            "(MIDX section) its header announces and the TAIL section",
                            file_size_));
  const uint64_t expected_chunks = (pages_ + kChunkPages - 1) / kChunkPages;
  const uint64_t guess =
      kTailBytes + section_bytes(4 + 8 + 4 + expected_chunks * kIndexEntryBytes + 8) + 4096;
  const uint64_t span = std::min(file_size_ - pages.offset, guess);
  const uint64_t start = file_size_ - span;
  std::vector<uint8_t> end(span);
  pread_exact(file_.get(), end, start, file_size_);
  ++index_reads_;

  const uint64_t tail_offset = file_size_ - kTailBytes;
  const std::span<const uint8_t> tail_bytes(end.data() + (tail_offset - start), kTailBytes);
  if (std::memcmp(tail_bytes.data(), kTailTag.data(), 4) != 0 ||
      get_u32(tail_bytes.data() + 8) != kTailBytes - section_bytes(0))
    throw Error(fmt::format("snapshot is truncated, or bytes follow its TAIL section: its last {} "
                            "bytes are not a TAIL section",
                            kTailBytes));
  Section tail;
  util::SpanSource tail_source(tail_bytes);
  read_section(tail_source, tail_offset, tail); // its header and payload checks
  PayloadReader r(tail.payload(), tail.name());
  const uint64_t bytes = r.u64();
  const uint32_t sections = r.u32();
  r.u64(); // the stream's hash: every section is checked as it is loaded
  r.expect_end();
  if (bytes != tail_offset)
    r.fail(fmt::format("it counts {} bytes before it, the file has {}", bytes, tail_offset));

  const uint64_t index_offset = get_u64(tail_bytes.data() - 16);
  if (index_offset < pages.offset || index_offset > tail_offset - kMinIndexBytes ||
      tail_offset - index_offset > section_bytes(0xFFFFFFFFu))
    throw Error(fmt::format("snapshot is malformed: its header announces a chunk index (MIDX "
                            "section) before the TAIL, but the 8 bytes that would give its "
                            "offset say {}, outside the memory's sections (bytes {} to {})",
                            index_offset, pages.offset, tail_offset));
  index_offset_ = index_offset;
  std::vector<uint8_t> whole;
  std::span<const uint8_t> index_bytes;
  if (index_offset >= start) {
    index_bytes = {end.data() + (index_offset - start), tail_offset - index_offset};
  } else { // longer than guessed
    whole.resize(tail_offset - index_offset);
    pread_exact(file_.get(), whole, index_offset, file_size_);
    ++index_reads_;
    index_bytes = whole;
  }
  if (std::memcmp(index_bytes.data(), kChunkIndexTag.data(), 4) != 0 ||
      get_u32(index_bytes.data() + 8) != index_bytes.size() - section_bytes(0))
    throw Error(fmt::format("snapshot is malformed: no chunk index (MIDX section) of {} bytes at "
                            "byte {}, where the 8 bytes before its TAIL section's checksum say "
                            "it is",
                            index_bytes.size(), index_offset));
  Section section;
  util::SpanSource index_source(index_bytes);
  read_section(index_source, index_offset, section); // its header and payload checks
  PayloadReader ir(section.payload(), section.name());
  const ChunkIndex index = decode_chunk_index(ir, index_offset);
  // The memory's pages run up to the index: it is the last memory indexed.
  if (index.memories.size() != uint64_t(index_) + 1)
    ir.fail(fmt::format("it indexes {} memories, where memory {} is the last",
                        index.memories.size(), index_));
  const IndexedMemory& m = index.memories[index_];
  if (m.memd_offset != pages.memd_offset ||
      pages.offset != pages.memd_offset + kMemoryHeaderSectionBytes)
    ir.fail(fmt::format("it puts memory {}'s MEMD section at byte {}, it is at byte {}", index_,
                        m.memd_offset, pages.memd_offset));
  if (!m.chunks.empty() && m.chunks.back().header.first + m.chunks.back().header.count > pages_)
    ir.fail(fmt::format("its {} is outside the memory's {} pages", describe_chunk(m.chunks.back()),
                        pages_));
  if (sections != uint64_t(pages.sections) + m.chunks.size() + 1)
    r.fail(fmt::format("it counts {} sections before it; the chunk index makes them {}", sections,
                       uint64_t(pages.sections) + m.chunks.size() + 1));
  entries_.reserve(m.chunks.size());
  for (const IndexedChunk& c : m.chunks)
    entries_.push_back({SectionFrame{kPagesTag, c.offset, c.length}, c.header});
  indexed_ = true;
}

// Reads entries' frames and chunk headers in file order, one read each,
// as index_chunks does, and compares them with the index. The first entry
// starts right after the MEMD, so entry k found where the index says, with
// the length it says, places entry k + 1 where the file has its next
// section: a verified prefix of the index is the file's own.
void LazyMemory::verify_entries(size_t n) {
  while (verified_.load(std::memory_order_acquire) < n) {
    std::lock_guard lock(verify_mutex_);
    const size_t e = verified_.load(std::memory_order_relaxed);
    if (e >= n) break;
    const Entry& entry = entries_[e];
    const IndexedChunk indexed{entry.frame.offset, entry.frame.length, entry.header};
    std::array<uint8_t, kChunkHeaderBytes> head{};
    try {
      const SectionFrame frame = read_frame_at(file_.get(), entry.frame.offset, file_size_, head);
      if (frame.tag != kPagesTag || frame.length != entry.frame.length ||
          frame.length < kChunkHeaderBytes)
        throw Error(fmt::format("the section at byte {} is {} ({} bytes)", frame.offset,
                                std::string_view(frame.tag.data(), 4), frame.length));
      PayloadReader r(head, fmt::format("section MEMP at byte {}", frame.offset));
      const ChunkHeader h = read_chunk_header(r, index_, pages_, 0);
      if (h != entry.header)
        throw Error(
            fmt::format("the file has {}", describe_chunk({frame.offset, frame.length, h})));
    } catch (const Error& error) {
      fail(fmt::format("the chunk index (section MIDX at byte {}) says {}, which the file does not "
                       "have: {}",
                       index_offset_, describe_chunk(indexed), error.what()));
    }
    verified_.store(e + 1, std::memory_order_release);
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
  // The index first (a small read per chunk), then the chunks.
  for (size_t e = 0; e < entries_.size() && !stop_.load(); e += 64)
    verify_entries(std::min(e + 64, entries_.size()));
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
    // No chunk carries it: zeros, once every chunk up to the first one
    // that starts after the page is known to be where the index says.
    const auto after =
        std::upper_bound(entries_.begin(), entries_.end(), page,
                         [](uint64_t p, const Entry& e) { return p < e.header.first; });
    verify_entries(std::min<size_t>(after - entries_.begin() + 1, entries_.size()));
    place(page, 1, nullptr);
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
  verify_entries(chunk.entry + 1); // the chunks before it are where the index says
  std::span<const uint8_t> decoded;
  try {
    decoded = loader.decode(file_.get(), entries_[chunk.entry]);
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
