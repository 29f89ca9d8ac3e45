// Bounds-checked reading of the binary format's primitives (LEB128 integers,
// floats, names). Every failure throws DecodeError with the absolute offset.
#pragma once

#include "tern/error.h"

#include <cstdint>
#include <cstring>
#include <span>
#include <string>

namespace tern::wasm {

// What running out of bytes is called, in a section, a function body or the
// module itself: the spec reference interpreter's text, which its tests
// match by prefix ("unexpected end").
inline constexpr const char* kUnexpectedEnd = "unexpected end of section or function";

class ByteReader {
public:
  // `base` is the absolute offset of data[0] in the module, for messages.
  explicit ByteReader(std::span<const uint8_t> data, size_t base = 0) : data_(data), base_(base) {}

  size_t offset() const { return base_ + pos_; } // absolute
  size_t pos() const { return pos_; }            // relative to data[0]
  size_t remaining() const { return data_.size() - pos_; }
  bool at_end() const { return pos_ == data_.size(); }

  [[noreturn]] void fail(const std::string& reason) const { throw DecodeError(offset(), reason); }
  [[noreturn]] void fail_at(size_t absolute_offset, const std::string& reason) const {
    throw DecodeError(absolute_offset, reason);
  }

  uint8_t u8() {
    if (pos_ >= data_.size()) fail(kUnexpectedEnd);
    return data_[pos_++];
  }
  uint8_t peek() const {
    if (pos_ >= data_.size()) fail(kUnexpectedEnd);
    return data_[pos_];
  }

  // Most integers in code are one byte: read inline, the rest out of line.
  uint32_t u32() {
    if (pos_ < data_.size() && data_[pos_] < 0x80) return data_[pos_++];
    return u32_long();
  }
  uint64_t u64() { return unsigned_leb(64); }
  int32_t s32() {
    // One byte: bit 6 is the sign.
    if (pos_ < data_.size() && data_[pos_] < 0x80)
      return static_cast<int32_t>(static_cast<uint32_t>(data_[pos_++]) << 25) >> 25;
    return s32_long();
  }
  int64_t s33() { return signed_leb(33); }
  int64_t s64() {
    if (pos_ < data_.size() && data_[pos_] < 0x80)
      return static_cast<int64_t>(static_cast<uint64_t>(data_[pos_++]) << 57) >> 57;
    return signed_leb(64);
  }

  // Raw little-endian bit patterns of floats (never converted, so NaN payloads survive).
  uint32_t f32_bits() { return static_cast<uint32_t>(fixed_le(4)); }
  uint64_t f64_bits() { return fixed_le(8); }

  std::span<const uint8_t> bytes(size_t n) {
    if (n > remaining()) fail(kUnexpectedEnd);
    auto s = data_.subspan(pos_, n);
    pos_ += n;
    return s;
  }

  // A length-prefixed UTF-8 name.
  std::string name();

  // A reader over the next `n` bytes (a section or a function body).
  ByteReader sub(size_t n) {
    size_t start = offset();
    auto s = bytes(n);
    return ByteReader(s, start);
  }

private:
  // Any LEB128 integer of `bits`, byte by byte, with every malformation
  // named at the offset where it is found.
  uint64_t unsigned_leb(unsigned bits);
  int64_t signed_leb(unsigned bits);
  // u32 and s32 of several bytes: a well-formed one with its 5 bytes at
  // hand at once, anything else (near the end, malformed) by the above.
  uint32_t u32_long();
  int32_t s32_long();
  uint64_t fixed_le(unsigned n) {
    auto b = bytes(n);
    uint64_t v = 0;
    for (unsigned i = 0; i < n; ++i) v |= uint64_t(b[i]) << (8 * i);
    return v;
  }

  std::span<const uint8_t> data_;
  size_t base_;
  size_t pos_ = 0;
};

bool is_valid_utf8(std::span<const uint8_t> s);

} // namespace tern::wasm
