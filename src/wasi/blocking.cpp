#include "wasi/blocking.h"

#include <cerrno>

namespace tern::wasi {

Wait wait_ready(int fd, short events, bool nonblocking, const runtime::Interrupt& interrupt) {
  for (;;) {
    pollfd fds[2] = {{fd, events, 0}, {interrupt.fd(), POLLIN, 0}};
    int n = ::poll(fds, 2, nonblocking ? 0 : -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Wait::Ready; // let the caller's syscall report the problem
    }
    if (fds[0].revents != 0) return Wait::Ready;
    if (fds[1].revents != 0) return Wait::Interrupted;
    if (nonblocking) return Wait::NotReady;
  }
}

} // namespace tern::wasi
