#include "wasm/reader.h"

#include <cstring>

namespace tern::wasm {

uint64_t ByteReader::unsigned_leb(unsigned bits) {
  uint64_t result = 0;
  unsigned shift = 0;
  const unsigned max_bytes = (bits + 6) / 7;
  for (unsigned i = 0;; ++i) {
    if (pos_ >= data_.size()) fail(kUnexpectedEnd);
    uint8_t byte = data_[pos_++];
    if (i == max_bytes - 1) {
      // Last permitted byte: no continuation, and unused bits must be zero.
      if (byte & 0x80) fail("integer representation too long");
      unsigned used = bits - shift;
      if (used < 7 && (byte >> used) != 0) fail("integer too large");
      return result | (uint64_t(byte) << shift);
    }
    result |= uint64_t(byte & 0x7F) << shift;
    shift += 7;
    if (!(byte & 0x80)) return result;
  }
}

int64_t ByteReader::signed_leb(unsigned bits) {
  uint64_t result = 0;
  unsigned shift = 0;
  const unsigned max_bytes = (bits + 6) / 7;
  for (unsigned i = 0;; ++i) {
    if (pos_ >= data_.size()) fail(kUnexpectedEnd);
    uint8_t byte = data_[pos_++];
    if (i == max_bytes - 1) {
      if (byte & 0x80) fail("integer representation too long");
      // The unused high bits must all equal the value's sign bit.
      unsigned used = bits - shift; // value bits in this byte (1..7)
      if (used < 7) {
        uint8_t payload = byte & 0x7F;
        bool negative = (payload >> (used - 1)) & 1;
        uint8_t expect = negative ? uint8_t(0x7F >> used) : 0;
        if ((payload >> used) != expect) fail("integer too large");
      }
      result |= uint64_t(byte & 0x7F) << shift;
      shift += 7;
      if (shift < 64 && (byte & 0x40)) result |= ~uint64_t(0) << shift;
      return static_cast<int64_t>(result);
    }
    result |= uint64_t(byte & 0x7F) << shift;
    shift += 7;
    if (!(byte & 0x80)) {
      if (shift < 64 && (byte & 0x40)) result |= ~uint64_t(0) << shift;
      return static_cast<int64_t>(result);
    }
  }
}

uint32_t ByteReader::u32_long() {
  if (remaining() >= 5) {
    const uint8_t* p = data_.data() + pos_;
    uint32_t result = 0;
    for (unsigned k = 0; k < 4; ++k) {
      result |= uint32_t(p[k] & 0x7F) << (7 * k);
      if (p[k] < 0x80) {
        pos_ += k + 1;
        return result;
      }
    }
    // The fifth byte holds the top 4 bits and ends the number.
    if (p[4] < 0x10) {
      pos_ += 5;
      return result | uint32_t(p[4]) << 28;
    }
  }
  return static_cast<uint32_t>(unsigned_leb(32));
}

int32_t ByteReader::s32_long() {
  if (remaining() >= 5) {
    const uint8_t* p = data_.data() + pos_;
    uint32_t result = 0;
    for (unsigned k = 0; k < 4; ++k) {
      result |= uint32_t(p[k] & 0x7F) << (7 * k);
      if (p[k] < 0x80) {
        pos_ += k + 1;
        const unsigned shift = 7 * (k + 1);
        if (p[k] & 0x40) result |= ~uint32_t(0) << shift; // negative: sign-extend
        return static_cast<int32_t>(result);
      }
    }
    // The fifth byte: no continuation, and its unused bits copies of the sign
    // (bit 3), so 0x00-0x07 or 0x78-0x7F.
    const uint8_t last = p[4];
    if (last < 0x08 || (last >= 0x78 && last < 0x80)) {
      pos_ += 5;
      return static_cast<int32_t>(result | uint32_t(last) << 28);
    }
  }
  return static_cast<int32_t>(signed_leb(32));
}

std::string ByteReader::name() {
  uint32_t n = u32();
  if (n > remaining()) fail("length out of bounds");
  size_t start = offset();
  auto b = bytes(n);
  if (!is_valid_utf8(b)) fail_at(start, "malformed UTF-8 encoding");
  return std::string(b.begin(), b.end());
}

bool is_valid_utf8(std::span<const uint8_t> s) {
  size_t i = 0;
  while (i < s.size()) {
    // Names are mostly ASCII: eight bytes at a time while no high bit is set.
    for (uint64_t word; i + 8 <= s.size(); i += 8) {
      std::memcpy(&word, s.data() + i, 8);
      if (word & 0x8080808080808080u) break;
    }
    if (i == s.size()) break;
    uint8_t c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    unsigned len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (unsigned k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    // Reject overlong encodings, surrogates and code points past U+10FFFF.
    static constexpr uint32_t kMinForLen[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLen[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

} // namespace tern::wasm
