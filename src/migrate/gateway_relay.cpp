#include "migrate/gateway_relay.h"

#include <algorithm>
#include <cerrno>
#include <sys/socket.h>

namespace tern::migrate::gateway {
namespace {

ByteQueue::Io failed_or_again() {
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? ByteQueue::Io::Again
                                                                   : ByteQueue::Io::Failed;
}

} // namespace

void ByteQueue::consume(size_t n) {
  head_ += n;
  if (head_ == bytes_.size()) {
    bytes_.clear();
    head_ = 0;
  } else if (head_ >= kMaxMove && head_ * 2 >= bytes_.size()) {
    bytes_.erase(bytes_.begin(), bytes_.begin() + long(head_));
    head_ = 0;
  }
}

ByteQueue::Io ByteQueue::read_from(int fd, size_t room, size_t& n, bool& drained) {
  n = 0;
  drained = false;
  const size_t want = std::min(room, kMaxMove);
  if (want == 0) return Io::Again;
  const size_t old = bytes_.size();
  bytes_.resize(old + want);
  ssize_t got = ::recv(fd, bytes_.data() + old, want, MSG_DONTWAIT);
  const int saved = errno;
  bytes_.resize(old + size_t(std::max<ssize_t>(got, 0)));
  errno = saved;
  if (got > 0) {
    n = size_t(got);
    drained = n < want;
    return Io::Moved;
  }
  if (got == 0) return Io::End;
  return failed_or_again();
}

ByteQueue::Io ByteQueue::write_to(int fd, size_t& n) {
  n = 0;
  if (empty()) return Io::Again;
  const size_t want = std::min(size(), kMaxMove);
  ssize_t put = ::send(fd, bytes_.data() + head_, want, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (put < 0) return failed_or_again();
  n = size_t(put);
  consume(n);
  return Io::Moved;
}

} // namespace tern::migrate::gateway
