#include "runtime/interrupt.h"

#include "tern/error.h"

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace tern::runtime {

Interrupt::Interrupt() {
  event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (event_fd_ < 0) throw Error(fmt::format("eventfd: {}", std::strerror(errno)));
}

Interrupt::~Interrupt() {
  ::close(event_fd_);
}

// Async-signal-safe: atomics only.
void Interrupt::set_bits(uint32_t bits) {
  flag_.fetch_or(bits, std::memory_order_relaxed);
  size_t n = mirror_count_.load(std::memory_order_acquire);
  for (size_t i = 0; i < n; ++i)
    mirrors_[i].word.load(std::memory_order_relaxed)->fetch_or(uint64_t(bits) << mirrors_[i].shift);
}

void Interrupt::clear_bits(uint32_t bits) {
  flag_.fetch_and(~bits, std::memory_order_relaxed);
  size_t n = mirror_count_.load(std::memory_order_acquire);
  for (size_t i = 0; i < n; ++i)
    mirrors_[i]
        .word.load(std::memory_order_relaxed)
        ->fetch_and(~(uint64_t(bits) << mirrors_[i].shift));
}

void Interrupt::add_mirror(std::atomic<uint64_t>* word, unsigned shift) {
  std::lock_guard lock(mirror_mutex_);
  size_t n = mirror_count_.load(std::memory_order_relaxed);
  if (n == kMaxMirrors) throw Error("too many threads for one store");
  mirrors_[n].shift.store(shift, std::memory_order_relaxed);
  mirrors_[n].word.store(word, std::memory_order_relaxed);
  mirror_count_.store(n + 1, std::memory_order_seq_cst);
  // Published first, then filled: a request in between reaches it either way.
  uint64_t bits = flag_.load(std::memory_order_seq_cst) & (kRequested | kCounting);
  word->fetch_or(bits << shift);
}

void Interrupt::request() {
  set_bits(kRequested);
  uint64_t one = 1;
  // Non-blocking; a full counter still leaves the fd readable.
  [[maybe_unused]] ssize_t n = ::write(event_fd_, &one, sizeof one);
}

void Interrupt::set_counting(bool on) {
  if (on)
    set_bits(kCounting);
  else
    clear_bits(kCounting);
}

void Interrupt::clear() {
  clear_bits(kRequested);
  uint64_t drained;
  while (::read(event_fd_, &drained, sizeof drained) > 0) {
  }
}

} // namespace tern::runtime
