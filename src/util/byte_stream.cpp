#include "util/byte_stream.h"

#include "tern/error.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <unistd.h>

namespace tern::util {
namespace {

constexpr size_t kBufferSize = size_t(1) << 18;

} // namespace

bool ByteSource::read_exact(std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    size_t n = read_some(out.subspan(done));
    if (n == 0) return false;
    done += n;
  }
  return true;
}

size_t SpanSource::read_some(std::span<uint8_t> out) {
  size_t n = std::min(out.size(), bytes_.size() - pos_);
  if (n == 0) return 0;
  std::memcpy(out.data(), bytes_.data() + pos_, n);
  pos_ += n;
  return n;
}

FdSink::FdSink(int fd, std::string name) : fd_(fd), name_(std::move(name)) {
  buffer_.reserve(kBufferSize);
}

void FdSink::write(std::span<const uint8_t> bytes) {
  if (buffer_.size() + bytes.size() <= kBufferSize) {
    buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
    return;
  }
  flush();
  // Large writes skip the buffer.
  if (bytes.size() >= kBufferSize) return write_through(bytes);
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

void FdSink::flush() {
  write_through(buffer_);
  buffer_.clear();
}

void FdSink::write_through(std::span<const uint8_t> bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(fmt::format("cannot write {}: {}", name_, std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
}

FdSource::FdSource(int fd, std::string name)
    : fd_(fd), name_(std::move(name)),
      buffer_(std::make_unique_for_overwrite<uint8_t[]>(kBufferSize)) {}

size_t FdSource::read_some(std::span<uint8_t> out) {
  if (out.empty()) return 0;
  if (begin_ == end_) {
    // Large reads skip the buffer.
    std::span<uint8_t> target =
        out.size() >= kBufferSize ? out : std::span<uint8_t>(buffer_.get(), kBufferSize);
    ssize_t n;
    do n = ::read(fd_, target.data(), target.size());
    while (n < 0 && errno == EINTR);
    if (n < 0) throw Error(fmt::format("cannot read {}: {}", name_, std::strerror(errno)));
    if (target.data() == out.data()) return static_cast<size_t>(n);
    begin_ = 0;
    end_ = static_cast<size_t>(n);
  }
  size_t n = std::min(out.size(), end_ - begin_);
  std::memcpy(out.data(), buffer_.get() + begin_, n);
  begin_ += n;
  return n;
}

} // namespace tern::util
