#include "runtime/interrupt.h"

#include <cerrno>
#include <cstring>
#include <sys/eventfd.h>
#include <unistd.h>

#include <fmt/format.h>

#include "tern/error.h"

namespace tern::runtime {

Interrupt::Interrupt() {
  event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (event_fd_ < 0) throw Error(fmt::format("eventfd: {}", std::strerror(errno)));
}

Interrupt::~Interrupt() { ::close(event_fd_); }

void Interrupt::request() {
  flag_.fetch_or(kRequested, std::memory_order_relaxed);
  uint64_t one = 1;
  // Non-blocking; a full counter still leaves the fd readable.
  [[maybe_unused]] ssize_t n = ::write(event_fd_, &one, sizeof one);
}

void Interrupt::set_counting(bool on) {
  if (on)
    flag_.fetch_or(kCounting, std::memory_order_relaxed);
  else
    flag_.fetch_and(~kCounting, std::memory_order_relaxed);
}

void Interrupt::clear() {
  flag_.fetch_and(~kRequested, std::memory_order_relaxed);
  uint64_t drained;
  while (::read(event_fd_, &drained, sizeof drained) > 0) {
  }
}

} // namespace tern::runtime
