// Waiting for an fd without becoming unstoppable: every wait also watches
// the store's checkpoint request (runtime::Interrupt), so a blocked guest
// reaches its host-call stable point promptly (docs/design.md §2).
#pragma once

#include "runtime/interrupt.h"

#include <cstdint>
#include <poll.h>

namespace tern::wasi {

enum class Wait {
  Ready,       // the fd is ready (or in error: the next syscall reports it)
  NotReady,    // a non-blocking wait found nothing, or the timeout passed
  Interrupted, // a checkpoint was requested while waiting
};

// Waits until `fd` has `events` (POLLIN, POLLOUT); with `nonblocking` it only
// looks, with a non-zero `timeout_us` (a socket's SO_RCVTIMEO/SO_SNDTIMEO)
// it gives up after that long. When the fd and the interrupt are both ready
// the fd wins: no call is suspended that could have completed.
Wait wait_ready(int fd, short events, bool nonblocking, const runtime::Interrupt& interrupt,
                uint64_t timeout_us = 0);

} // namespace tern::wasi
