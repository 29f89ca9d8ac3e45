#include "runtime/dirty_pages.h"

#include "runtime/memory.h"
#include "tern/error.h"
#include "util/pagemap.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <mutex>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

namespace tern::runtime {
namespace {

uint64_t host_page_size() {
  static const uint64_t size = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

uint64_t words_for(uint64_t pages) {
  return (pages + 63) / 64;
}

void set_range(std::vector<uint64_t>& bits, uint64_t first, uint64_t end) {
  for (uint64_t p = first; p < end; ++p) bits[p / 64] |= uint64_t(1) << (p % 64);
}

// Where a memory is mapped: its base, and for a mirrored memory every other
// view of the same bytes (runtime/memory.h).
std::vector<uint8_t*> views_of(const Memory& m) {
  std::vector<uint8_t*> views{m.base()};
  if (m.mirrored())
    for (uint32_t v = 0; v < Memory::kMirrorViews; ++v)
      views.push_back(m.mirror_base() + v * Memory::kMirrorStride);
  return views;
}

// One way of finding written pages. Calls come with the tracker's lock held.
class Mechanism {
public:
  virtual ~Mechanism() = default;
  // ORs the pages written since the previous harvest among the first
  // `pages` into `bits` (sized for them); false when that is unknown, and
  // then every page must count as written. `pages` is the caller's count:
  // another thread may grow the memory meanwhile, and the pages it adds are
  // reported through grown() (their writes stay recorded for the next
  // harvest).
  virtual bool harvest(std::vector<uint64_t>& bits, uint64_t pages) = 0;
  // The memory grew from `old_bytes` (its base may have moved).
  virtual void grown(uint64_t old_bytes, bool base_moved) = 0;
  virtual void host_write(uint64_t /*addr*/, uint64_t /*len*/) {}
  virtual bool watches_host_writes() const { return false; }
};

// ------------------------------------------------------------- userfaultfd

class UffdMechanism : public Mechanism {
public:
  UffdMechanism(Memory& memory, std::unique_ptr<util::KernelWriteTracker> kernel)
      : memory_(memory), kernel_(std::move(kernel)) {}

  // Registers the memory; false with the reason when the kernel refuses.
  bool start(std::string& error) {
    if (!register_all(error)) return false;
    const uint64_t pages = memory_.size() / host_page_size();
    std::vector<uint64_t> ignored(words_for(pages));
    // The first scan protects what is there; what it reports is not news.
    return scan(ignored, pages, error);
  }

  bool harvest(std::vector<uint64_t>& bits, uint64_t pages) override {
    std::string error;
    if (scan(bits, pages, error)) return true;
    // Set up again for the next round; this one reports everything.
    std::vector<uint64_t> ignored(bits.size());
    if (register_all(error)) scan(ignored, pages, error);
    return false;
  }

  void grown(uint64_t old_bytes, bool base_moved) override {
    std::string error;
    if (base_moved) {
      register_all(error); // a moved mapping lost its registration
      return;
    }
    // A mirrored memory's new pages are new mappings in each view.
    if (memory_.mirrored())
      for (uint8_t* view : views_of(memory_))
        kernel_->add_range(view + old_bytes, memory_.size() - old_bytes, error);
  }

private:
  // A private memory is registered over its whole reservation, so that pages
  // made accessible by growing are covered; a mirrored memory's views are
  // mapped piecewise as it grows.
  bool register_all(std::string& error) {
    if (!memory_.mirrored()) return kernel_->add_range(memory_.base(), memory_.reserved(), error);
    for (uint8_t* view : views_of(memory_))
      if (!kernel_->add_range(view, memory_.size(), error)) return false;
    return true;
  }

  bool scan(std::vector<uint64_t>& bits, uint64_t pages, std::string& error) {
    const uint64_t page = host_page_size();
    const uint64_t size = pages * page;
    // A shared page can lose its mapping in one view and keep its bytes
    // (reclaim to swap): holes count there (util/pagemap.h).
    const bool holes = memory_.mirrored();
    for (uint8_t* view : views_of(memory_)) {
      const auto base = reinterpret_cast<uintptr_t>(view);
      auto mark = [&](uintptr_t first, uintptr_t end) {
        set_range(bits, (first - base) / page, std::min<uint64_t>((end - base), size) / page);
      };
      if (!kernel_->collect(view, size, holes, mark, error)) return false;
    }
    return true;
  }

  Memory& memory_;
  std::unique_ptr<util::KernelWriteTracker> kernel_;
};

// ---------------------------------------------------------------- mprotect

class MprotectMechanism;

// The views that mprotect tracking made read-only, for the fault handler:
// fixed slots of atomics, so that the handler neither locks nor allocates.
struct ProtectedView {
  std::atomic<uintptr_t> begin{0};
  std::atomic<uintptr_t> end{0}; // begin + the memory's size
  std::atomic<MprotectMechanism*> owner{nullptr};
};
constexpr size_t kMaxProtectedViews = 1024;
ProtectedView g_views[kMaxProtectedViews];
std::mutex g_views_mutex;
struct sigaction g_previous_segv;

void on_write_fault(int sig, siginfo_t* info, void* context);

void install_write_fault_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_write_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGSEGV, &sa, &g_previous_segv);
  });
}

class MprotectMechanism : public Mechanism {
public:
  // Writes are recorded per wasm page: a sixteenth of the faults of host
  // pages, and far fewer mappings for the kernel to keep apart (each
  // protected run is a mapping; there may be at most vm.max_map_count).
  static constexpr uint64_t kBlock = 64 * 1024;

  explicit MprotectMechanism(Memory& memory)
      : memory_(memory), page_(host_page_size()), capacity_(max_bytes(memory) / page_),
        bits_(std::make_unique<std::atomic<uint64_t>[]>(words_for(capacity_))),
        views_(views_of(memory)) {}
  ~MprotectMechanism() override {
    unregister();
    for (uint8_t* view : views_) ::mprotect(view, memory_.size(), PROT_READ | PROT_WRITE);
  }

  bool start(std::string& error) {
    if (page_ > kBlock || kBlock % page_ != 0) {
      error = fmt::format("host pages of {} bytes", page_);
      return false;
    }
    install_write_fault_handler();
    std::lock_guard lock(g_views_mutex);
    for (uint8_t* view : views_) {
      size_t slot = 0;
      while (slot < kMaxProtectedViews && g_views[slot].owner.load()) ++slot;
      if (slot == kMaxProtectedViews) {
        error = "too many tracked memories";
        return false;
      }
      g_views[slot].begin.store(reinterpret_cast<uintptr_t>(view));
      g_views[slot].end.store(reinterpret_cast<uintptr_t>(view) + memory_.size());
      g_views[slot].owner.store(this);
      slots_.push_back(slot);
    }
    for (uint8_t* view : views_)
      if (::mprotect(view, memory_.size(), PROT_READ) != 0) {
        error = fmt::format("mprotect: {}", std::strerror(errno));
        return false;
      }
    return true;
  }

  bool harvest(std::vector<uint64_t>& bits, uint64_t pages) override {
    const uint64_t size = memory_.size();
    if (degraded_.exchange(false)) {
      // An mprotect failed in the handler, which then opened everything.
      for (uint64_t w = 0; w < words_for(capacity_); ++w) bits_[w].store(0);
      for (uint8_t* view : views_) ::mprotect(view, size, PROT_READ);
      return false;
    }
    // Take the bits first, then protect: a write between the two lands on a
    // page still writable, and is seen by whoever copies the page after
    // this returns; a write after the protection faults and is recorded.
    for (uint64_t w = 0; w < words_for(pages); ++w) bits[w] |= bits_[w].exchange(0);
    const uint64_t per_block = kBlock / page_;
    for (uint64_t p = 0; p < pages;) {
      if (!(bits[p / 64] >> (p % 64) & 1)) {
        ++p;
        continue;
      }
      uint64_t end = p;
      while (end < pages && (bits[end / 64] >> (end % 64) & 1)) ++end;
      end = std::min(pages, (end + per_block - 1) / per_block * per_block);
      for (uint8_t* view : views_)
        if (::mprotect(view + p * page_, (end - p) * page_, PROT_READ) != 0) return fail();
      p = end;
    }
    return true;
  }

  void grown(uint64_t old_bytes, bool base_moved) override {
    const uint64_t size = memory_.size();
    if (base_moved) views_ = views_of(memory_);
    {
      std::lock_guard lock(g_views_mutex);
      for (size_t i = 0; i < slots_.size(); ++i) {
        g_views[slots_[i]].begin.store(reinterpret_cast<uintptr_t>(views_[i]));
        g_views[slots_[i]].end.store(reinterpret_cast<uintptr_t>(views_[i]) + size);
      }
    }
    // The new pages are writable: marked, so the next harvest protects them.
    mark(base_moved ? 0 : old_bytes, size);
  }

  void host_write(uint64_t addr, uint64_t len) override {
    if (len == 0) return;
    const uint64_t first = addr / kBlock * kBlock;
    const uint64_t end = std::min(memory_.size(), (addr + len + kBlock - 1) / kBlock * kBlock);
    if (end <= first) return;
    if (::mprotect(views_[0] + first, end - first, PROT_READ | PROT_WRITE) != 0) {
      fail();
      return;
    }
    mark(first, end);
  }
  bool watches_host_writes() const override { return true; }

  // In the signal handler: the write at `offset` of `view` faulted.
  bool on_fault(uintptr_t view, uint64_t offset) noexcept {
    const uint64_t size = memory_.size();
    const uint64_t first = offset / kBlock * kBlock;
    const uint64_t len = std::min(kBlock, size - first);
    // Writable first, then marked (see harvest).
    if (::mprotect(reinterpret_cast<void*>(view + first), len, PROT_READ | PROT_WRITE) != 0) {
      // Out of mappings: open this view wholly (fewer mappings, not more);
      // the next harvest reports everything.
      degraded_.store(true);
      if (::mprotect(reinterpret_cast<void*>(view), size, PROT_READ | PROT_WRITE) != 0)
        return false;
    }
    mark(first, first + len);
    return true;
  }

private:
  static uint64_t max_bytes(const Memory& m) {
    const uint64_t pages =
        std::min(m.max_pages().value_or(wasm::kMaxRuntimePages), uint64_t(wasm::kMaxRuntimePages));
    return pages * wasm::kPageSize;
  }
  void mark(uint64_t first_byte, uint64_t end_byte) noexcept {
    for (uint64_t p = first_byte / page_; p < end_byte / page_; ++p)
      bits_[p / 64].fetch_or(uint64_t(1) << (p % 64), std::memory_order_relaxed);
  }
  bool fail() {
    degraded_.store(true);
    for (uint8_t* view : views_) ::mprotect(view, memory_.size(), PROT_READ | PROT_WRITE);
    return false;
  }
  void unregister() {
    std::lock_guard lock(g_views_mutex);
    for (size_t slot : slots_) {
      g_views[slot].owner.store(nullptr);
      g_views[slot].begin.store(0);
      g_views[slot].end.store(0);
    }
    slots_.clear();
  }

  Memory& memory_;
  const uint64_t page_;
  const uint64_t capacity_; // host pages the bitmap can hold: the memory's maximum
  std::unique_ptr<std::atomic<uint64_t>[]> bits_;
  std::vector<uint8_t*> views_;
  std::vector<size_t> slots_;
  std::atomic<bool> degraded_{false};
};

void on_write_fault(int sig, siginfo_t* info, void* context) {
  if (handle_write_protect_fault(info->si_addr)) return;
  const struct sigaction& prev = g_previous_segv;
  if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction) {
    prev.sa_sigaction(sig, info, context);
    return;
  }
  if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN && prev.sa_handler) {
    prev.sa_handler(sig);
    return;
  }
  ::signal(sig, SIG_DFL); // the faulting instruction runs again and kills the process
}

// ------------------------------------------------------------ page hashing

class HashMechanism : public Mechanism {
public:
  explicit HashMechanism(Memory& memory) : memory_(memory), page_(host_page_size()) {
    std::vector<uint8_t> zero(page_, 0);
    zero_hash_ = XXH3_128bits(zero.data(), zero.size());
    const uint64_t pages = memory.size() / page_;
    std::vector<uint64_t> ignored(words_for(pages));
    harvest(ignored, pages);
  }

  bool harvest(std::vector<uint64_t>& bits, uint64_t pages) override {
    const uint8_t* base = memory_.base();
    // Pages never touched read as zero: hashed without reading them (which
    // would map them). A shared mapping's page map does not show writes
    // through its other views: every page is read.
    std::optional<std::vector<bool>> touched;
    if (!memory_.mirrored()) touched = util::touched_blocks(base, pages * page_, page_);
    hashes_.resize(pages, zero_hash_);
    for (uint64_t p = 0; p < pages; ++p) {
      const XXH128_hash_t h =
          touched && !(*touched)[p] ? zero_hash_ : XXH3_128bits(base + p * page_, page_);
      if (!XXH128_isEqual(h, hashes_[p])) {
        bits[p / 64] |= uint64_t(1) << (p % 64);
        hashes_[p] = h;
      }
    }
    return true;
  }

  // New pages read as zero, which their initial hashes say; the tracker
  // reports them as new anyway.
  void grown(uint64_t, bool) override {}

private:
  Memory& memory_;
  const uint64_t page_;
  XXH128_hash_t zero_hash_;
  std::vector<XXH128_hash_t> hashes_;
};

} // namespace

// ------------------------------------------------------------------ pages

uint64_t DirtyPages::count() const {
  uint64_t n = 0;
  for (uint64_t w : bits) n += std::popcount(w);
  return n;
}

bool DirtyPages::any(uint64_t offset, uint64_t len) const {
  if (len == 0 || page_size == 0) return false;
  const uint64_t last = std::min(pages, (offset + len + page_size - 1) / page_size);
  for (uint64_t p = offset / page_size; p < last; ++p)
    if (test(p)) return true;
  return false;
}

std::vector<bool> DirtyPages::wasm_pages() const {
  constexpr uint64_t kWasmPage = 64 * 1024;
  std::vector<bool> out(pages * page_size / kWasmPage, false);
  for (uint64_t i = 0; i < out.size(); ++i) out[i] = any(i * kWasmPage, kWasmPage);
  return out;
}

std::string_view mechanism_name(DirtyMechanism m) {
  switch (m) {
  case DirtyMechanism::Userfaultfd:
    return "userfaultfd";
  case DirtyMechanism::Mprotect:
    return "mprotect";
  case DirtyMechanism::Hash:
    return "hash";
  }
  return "?";
}

namespace {

std::string_view mechanism_title(DirtyMechanism m) {
  switch (m) {
  case DirtyMechanism::Userfaultfd:
    return "userfaultfd write-protect (PAGEMAP_SCAN)";
  case DirtyMechanism::Mprotect:
    return "mprotect and a fault handler";
  case DirtyMechanism::Hash:
    return "page hashing";
  }
  return "?";
}

} // namespace

std::optional<DirtyMechanism> forced_dirty_mechanism() {
  const char* value = std::getenv("TERN_DIRTY_TRACKING");
  if (!value || !*value || std::string_view(value) == "auto") return std::nullopt;
  for (DirtyMechanism m :
       {DirtyMechanism::Userfaultfd, DirtyMechanism::Mprotect, DirtyMechanism::Hash})
    if (mechanism_name(m) == value) return m;
  throw Error(
      fmt::format("TERN_DIRTY_TRACKING={}: expected userfaultfd, mprotect, hash or auto", value));
}

bool handle_write_protect_fault(const void* addr) noexcept {
  const auto a = reinterpret_cast<uintptr_t>(addr);
  for (ProtectedView& v : g_views) {
    const uintptr_t begin = v.begin.load(std::memory_order_acquire);
    if (a < begin || a >= v.end.load(std::memory_order_acquire)) continue;
    if (MprotectMechanism* owner = v.owner.load(std::memory_order_acquire))
      return owner->on_fault(begin, a - begin);
  }
  return false;
}

// ---------------------------------------------------------------- tracker

struct DirtyTracker::State {
  explicit State(Memory& m) : memory(m) {}
  Memory& memory;
  mutable std::mutex mutex;
  std::unique_ptr<Mechanism> mechanism; // while a log is open
  DirtyMechanism kind = DirtyMechanism::Hash;
  std::string description;
  struct Log {
    bool open = false;
    uint64_t previous_pages = 0;
    std::vector<uint64_t> pending; // reported by this log's next collect
  };
  std::vector<Log> logs;

  uint64_t pages() const { return memory.size() / host_page_size(); }
  bool any_open() const {
    return std::any_of(logs.begin(), logs.end(), [](const Log& l) { return l.open; });
  }
  void start(std::optional<DirtyMechanism> forced);
  std::unique_ptr<Mechanism> try_start(DirtyMechanism m, std::string& why_not);
};

std::unique_ptr<Mechanism> DirtyTracker::State::try_start(DirtyMechanism m, std::string& why_not) {
  switch (m) {
  case DirtyMechanism::Userfaultfd: {
    auto kernel = util::KernelWriteTracker::open(why_not);
    if (!kernel) return nullptr;
    auto uffd = std::make_unique<UffdMechanism>(memory, std::move(kernel));
    if (!uffd->start(why_not)) return nullptr;
    return uffd;
  }
  case DirtyMechanism::Mprotect: {
    auto mp = std::make_unique<MprotectMechanism>(memory);
    if (!mp->start(why_not)) return nullptr;
    return mp;
  }
  case DirtyMechanism::Hash:
    return std::make_unique<HashMechanism>(memory);
  }
  return nullptr;
}

void DirtyTracker::State::start(std::optional<DirtyMechanism> forced) {
  if (!forced) forced = forced_dirty_mechanism();
  if (forced) {
    std::string why_not;
    mechanism = try_start(*forced, why_not);
    if (!mechanism)
      throw Error(fmt::format("dirty-page tracking with {} does not work here: {}",
                              mechanism_name(*forced), why_not));
    kind = *forced;
    description = fmt::format("{} (forced)", mechanism_title(kind));
    return;
  }
  std::string reasons;
  for (DirtyMechanism m :
       {DirtyMechanism::Userfaultfd, DirtyMechanism::Mprotect, DirtyMechanism::Hash}) {
    std::string why_not;
    mechanism = try_start(m, why_not);
    if (mechanism) {
      kind = m;
      description = std::string(mechanism_title(m)) + reasons;
      return;
    }
    reasons += fmt::format("; {} unavailable: {}", mechanism_name(m), why_not);
  }
}

DirtyTracker::DirtyTracker(Memory& memory) : state_(std::make_unique<State>(memory)) {}

DirtyTracker::~DirtyTracker() = default;

DirtyLog DirtyTracker::open_log(std::optional<DirtyMechanism> mechanism) {
  std::lock_guard lock(state_->mutex);
  State& s = *state_;
  if (!s.mechanism) {
    s.start(mechanism);
    s.memory.watch_host_writes(s.mechanism->watches_host_writes());
  } else if (mechanism && *mechanism != s.kind) {
    throw Error(fmt::format("the memory's writes are already tracked with {}, not {}",
                            mechanism_name(s.kind), mechanism_name(*mechanism)));
  }
  State::Log log;
  log.open = true;
  log.pending.assign(words_for(s.pages()), 0);
  set_range(log.pending, 0, s.pages()); // the first collect reports every page
  auto slot =
      std::find_if(s.logs.begin(), s.logs.end(), [](const State::Log& l) { return !l.open; });
  if (slot == s.logs.end()) slot = s.logs.insert(s.logs.end(), State::Log{});
  *slot = std::move(log);
  return DirtyLog(this, static_cast<size_t>(slot - s.logs.begin()));
}

DirtyPages DirtyTracker::collect(size_t id) {
  std::lock_guard lock(state_->mutex);
  State& s = *state_;
  const uint64_t pages = s.pages();
  std::vector<uint64_t> written(words_for(pages), 0);
  if (!s.mechanism->harvest(written, pages)) set_range(written, 0, pages);
  for (State::Log& l : s.logs) {
    if (!l.open) continue;
    l.pending.resize(words_for(pages), 0);
    for (size_t w = 0; w < written.size(); ++w) l.pending[w] |= written[w];
  }
  State::Log& log = s.logs[id];
  DirtyPages out;
  out.page_size = host_page_size();
  out.pages = pages;
  out.previous_pages = log.previous_pages;
  out.bits = std::exchange(log.pending, std::vector<uint64_t>(words_for(pages), 0));
  log.previous_pages = pages;
  return out;
}

void DirtyTracker::close(size_t id) {
  std::lock_guard lock(state_->mutex);
  State& s = *state_;
  s.logs[id] = State::Log{};
  if (s.any_open()) return;
  s.memory.watch_host_writes(false);
  s.mechanism.reset(); // no one asks: no more faults
}

void DirtyTracker::grown(uint64_t old_bytes, const uint8_t* old_base) {
  std::lock_guard lock(state_->mutex);
  State& s = *state_;
  if (!s.mechanism) return;
  const bool moved = old_base != s.memory.base();
  s.mechanism->grown(old_bytes, moved);
  const uint64_t pages = s.pages();
  for (State::Log& l : s.logs) {
    if (!l.open) continue;
    l.pending.resize(words_for(pages), 0);
    // New pages are reported; after a move nothing is known.
    set_range(l.pending, moved ? 0 : old_bytes / host_page_size(), pages);
  }
}

void DirtyTracker::host_write(uint64_t addr, uint64_t len) {
  std::lock_guard lock(state_->mutex);
  if (state_->mechanism) state_->mechanism->host_write(addr, len);
}

DirtyMechanism DirtyTracker::mechanism() const {
  std::lock_guard lock(state_->mutex);
  return state_->kind;
}

std::string DirtyTracker::description() const {
  std::lock_guard lock(state_->mutex);
  return state_->description;
}

// -------------------------------------------------------------------- log

DirtyLog::DirtyLog(DirtyLog&& other) noexcept
    : tracker_(std::exchange(other.tracker_, nullptr)), id_(other.id_) {}

DirtyLog& DirtyLog::operator=(DirtyLog&& other) noexcept {
  if (this != &other) {
    if (tracker_) tracker_->close(id_);
    tracker_ = std::exchange(other.tracker_, nullptr);
    id_ = other.id_;
  }
  return *this;
}

DirtyLog::~DirtyLog() {
  if (tracker_) tracker_->close(id_);
}

DirtyPages DirtyLog::collect() {
  return tracker_->collect(id_);
}

DirtyMechanism DirtyLog::mechanism() const {
  return tracker_->mechanism();
}

std::string DirtyLog::description() const {
  return tracker_->description();
}

} // namespace tern::runtime
