#include "wasi/blocking.h"

#include <cerrno>
#include <chrono>

namespace tern::wasi {
namespace {

using Clock = std::chrono::steady_clock;

// poll's timeout argument for a wait that ends at `deadline` (rounded up,
// so that a timeout never fires early); -1 waits for ever.
int poll_timeout(bool nonblocking, const Clock::time_point* deadline) {
  if (nonblocking) return 0;
  if (!deadline) return -1;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now()).count();
  return left <= 0 ? 0 : left > 1'000'000'000 ? 1'000'000'000 : int(left);
}

} // namespace

Wait wait_ready(int fd, short events, bool nonblocking, const runtime::Interrupt& interrupt,
                uint64_t timeout_us) {
  Clock::time_point deadline = Clock::now() + std::chrono::microseconds(timeout_us);
  const Clock::time_point* until = timeout_us ? &deadline : nullptr;
  for (;;) {
    pollfd fds[2] = {{fd, events, 0}, {interrupt.fd(), POLLIN, 0}};
    int timeout_ms = poll_timeout(nonblocking, until);
    int n = ::poll(fds, 2, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Wait::Ready; // let the caller's syscall report the problem
    }
    if (fds[0].revents != 0) return Wait::Ready;
    if (fds[1].revents != 0) return Wait::Interrupted;
    if (nonblocking || (until && Clock::now() >= deadline)) return Wait::NotReady;
  }
}

} // namespace tern::wasi
