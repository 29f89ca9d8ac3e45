#include "wasi/blocking.h"

#include "wasi/calls.h"

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

// When a wait of `timeout_us` (0: none) ends; false when it never does:
// no timeout, or one beyond what the clock can represent (about 292 years
// after its epoch), which is the same as waiting for ever.
bool deadline_of(uint64_t timeout_us, Clock::time_point& deadline) {
  if (timeout_us == 0) return false;
  const Clock::time_point now = Clock::now();
  const auto room =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::time_point::max() - now);
  if (timeout_us >= static_cast<uint64_t>(room.count())) return false;
  deadline = now + std::chrono::microseconds(static_cast<int64_t>(timeout_us));
  return true;
}

} // namespace

Wait wait_ready(int fd, short events, bool nonblocking, const runtime::Interrupt& interrupt,
                uint64_t timeout_us) {
  Clock::time_point deadline;
  const Clock::time_point* until = deadline_of(timeout_us, deadline) ? &deadline : nullptr;
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

Wait wait_ready(Call& c, FdEntry& e, short events, uint64_t timeout_us) {
  const int fd = e.host.get();
  if (e.nonblocking() || !c.context_lock)
    return wait_ready(fd, events, e.nonblocking(), c.interrupt, timeout_us);
  // Ready now (or asked to stop): no need to let the lock go.
  const Wait now = wait_ready(fd, events, true, c.interrupt);
  if (now != Wait::NotReady) return now;
  std::shared_ptr<FdEntry> kept = c.ctx.fds().share(e);
  if (!kept) return wait_ready(fd, events, false, c.interrupt, timeout_us); // not the table's
  c.kept.push_back(std::move(kept));
  c.context_lock->unlock();
  const Wait w = wait_ready(fd, events, false, c.interrupt, timeout_us);
  c.context_lock->lock();
  return w;
}

} // namespace tern::wasi
