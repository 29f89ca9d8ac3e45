// Byte streams that only go forward: snapshots are written to and read from
// these, so the same bytes can go to a file, a socket or a buffer.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace tern::util {

class ByteSink {
public:
  virtual ~ByteSink() = default;
  // Writes all of `bytes` or throws tern::Error.
  virtual void write(std::span<const uint8_t> bytes) = 0;
  // Pushes buffered bytes down to the file descriptor (not to the disk).
  virtual void flush() {}
};

class ByteSource {
public:
  virtual ~ByteSource() = default;
  // Reads up to out.size() bytes; returns how many, 0 only at the end of the
  // stream. Throws tern::Error on an I/O error.
  virtual size_t read_some(std::span<uint8_t> out) = 0;
  // Reads exactly out.size() bytes; false (with an unspecified prefix of
  // `out` filled) when the stream ends first.
  bool read_exact(std::span<uint8_t> out);
};

// Appends to a vector.
class VectorSink : public ByteSink {
public:
  void write(std::span<const uint8_t> bytes) override {
    bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
  }
  std::vector<uint8_t>& bytes() { return bytes_; }

private:
  std::vector<uint8_t> bytes_;
};

// Reads from memory the caller keeps alive.
class SpanSource : public ByteSource {
public:
  explicit SpanSource(std::span<const uint8_t> bytes) : bytes_(bytes) {}
  size_t read_some(std::span<uint8_t> out) override;

private:
  std::span<const uint8_t> bytes_;
  size_t pos_ = 0;
};

// Buffered writes to a file descriptor the caller owns (file, pipe, socket).
// `name` is for error messages. Call flush() before the descriptor is used
// otherwise; the destructor does not flush (it cannot report errors).
class FdSink : public ByteSink {
public:
  FdSink(int fd, std::string name);
  void write(std::span<const uint8_t> bytes) override;
  void flush() override;

private:
  void write_through(std::span<const uint8_t> bytes);
  int fd_;
  std::string name_;
  std::vector<uint8_t> buffer_;
};

// Buffered reads from a file descriptor the caller owns.
class FdSource : public ByteSource {
public:
  FdSource(int fd, std::string name);
  size_t read_some(std::span<uint8_t> out) override;

private:
  int fd_;
  std::string name_;
  // Not zeroed: a fresh buffer's pages are faulted in only as reads fill
  // them (a small snapshot touches a few of its 64 pages).
  std::unique_ptr<uint8_t[]> buffer_;
  size_t begin_ = 0;
  size_t end_ = 0;
};

} // namespace tern::util
