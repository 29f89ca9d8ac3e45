#include "migrate/gateway_relay.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/socket.h>

namespace tern::migrate::gateway {
namespace {

ByteQueue::Io failed_or_again() {
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? ByteQueue::Io::Again
                                                                   : ByteQueue::Io::Failed;
}

} // namespace

void ByteQueue::reserve(size_t more) {
  if (capacity_ - tail_ >= more) return;
  const size_t used = size();
  if (capacity_ - used >= more) { // room enough once the bytes are at the front
    std::memmove(bytes_.get(), bytes_.get() + head_, used);
  } else {
    const size_t capacity = std::max({capacity_ * 2, used + more, size_t(4096)});
    auto bigger = std::make_unique_for_overwrite<uint8_t[]>(capacity);
    if (used > 0) std::memcpy(bigger.get(), bytes_.get() + head_, used);
    bytes_ = std::move(bigger);
    capacity_ = capacity;
  }
  head_ = 0;
  tail_ = used;
}

void ByteQueue::push(std::span<const uint8_t> b) {
  reserve(b.size());
  if (!b.empty()) std::memcpy(bytes_.get() + tail_, b.data(), b.size());
  tail_ += b.size();
}

void ByteQueue::consume(size_t n) {
  head_ += n;
  if (head_ == tail_) head_ = tail_ = 0;
}

ByteQueue::Io ByteQueue::read_from(int fd, size_t room, size_t& n, bool& drained) {
  n = 0;
  drained = false;
  const size_t want = std::min(room, kMaxMove);
  if (want == 0) return Io::Again;
  reserve(want);
  ssize_t got = ::recv(fd, bytes_.get() + tail_, want, MSG_DONTWAIT);
  if (got > 0) {
    n = size_t(got);
    tail_ += n;
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
  ssize_t put = ::send(fd, bytes_.get() + head_, want, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (put < 0) return failed_or_again();
  n = size_t(put);
  consume(n);
  return Io::Moved;
}

} // namespace tern::migrate::gateway
