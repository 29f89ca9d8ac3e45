#include "wasi/gateway.h"

#include "wasi/fd_table.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>

namespace tern::wasi {

size_t take_unread(GatewayStream& g, std::span<const iovec> iov, bool peek) {
  std::span<const uint8_t> from = g.unread_bytes();
  size_t n = 0;
  for (const iovec& v : iov) {
    const size_t k = std::min(v.iov_len, from.size() - n);
    std::memcpy(v.iov_base, from.data() + n, k);
    n += k;
    if (n == from.size()) break;
  }
  if (peek) return n;
  g.unread_at += n;
  if (g.unread_at == g.unread.size()) { // all read: give the memory back
    g.unread = {};
    g.unread_at = 0;
  }
  return n;
}

bool drain_until(FdEntry& e, uint64_t until, std::chrono::steady_clock::time_point deadline) {
  GatewayStream& g = *e.gateway;
  if (g.received > until) return false;
  // Compact first: what the program already read need not be carried.
  g.unread.erase(g.unread.begin(), g.unread.begin() + long(g.unread_at));
  g.unread_at = 0;
  while (g.received < until) {
    const size_t want = size_t(until - g.received);
    const size_t old = g.unread.size();
    g.unread.resize(old + want);
    ssize_t got = ::recv(e.host.get(), g.unread.data() + old, want, MSG_DONTWAIT);
    g.unread.resize(old + size_t(std::max<ssize_t>(got, 0)));
    if (got > 0) {
      g.received += uint64_t(got);
      continue;
    }
    if (got == 0 || (errno != EAGAIN && errno != EINTR)) return false; // end of stream, or broken
    auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{e.host.get(), POLLIN, 0};
    ::poll(&p, 1, int(std::min<long>(left.count(), 1000)));
  }
  return true;
}

} // namespace tern::wasi
