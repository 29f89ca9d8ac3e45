// Little-endian encoding of section payloads, independent of the host's byte
// order. The reader checks every length against what is left, so malformed
// input ends in tern::Error, never in a huge allocation or a read past the
// end. Extension sections (WASI, ...) encode themselves with these too.
#pragma once

#include "runtime/wasm_view.h"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tern::snapshot {

class PayloadWriter {
public:
  void u8(uint8_t v) { out_.push_back(v); }
  void u32(uint32_t v);
  void u64(uint64_t v);
  void boolean(bool v) { u8(v ? 1 : 0); }
  void bytes(std::span<const uint8_t> b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void string(std::string_view s); // u32 length + UTF-8 bytes
  // Type code (the wasm binary value type byte) + the value's bytes.
  void value(const runtime::ViewValue& v);

  std::vector<uint8_t>& out() { return out_; }

private:
  std::vector<uint8_t> out_;
};

class PayloadReader {
public:
  // `what` names the payload in error messages ("section GLOB").
  PayloadReader(std::span<const uint8_t> bytes, std::string what)
      : bytes_(bytes), what_(std::move(what)) {}

  uint8_t u8();
  uint32_t u32();
  uint64_t u64();
  bool boolean(); // 0 or 1, anything else is an error
  std::span<const uint8_t> bytes(size_t n);
  std::string string();
  runtime::ViewValue value();
  // A u32 count of items that each take at least `min_item_bytes`: checked
  // against the bytes left before anyone allocates for it.
  uint32_t count(size_t min_item_bytes, std::string_view items);

  size_t remaining() const { return bytes_.size() - pos_; }
  // The payload must be fully consumed.
  void expect_end() const;
  [[noreturn]] void fail(std::string_view reason) const;

private:
  std::span<const uint8_t> take(size_t n);
  std::span<const uint8_t> bytes_;
  size_t pos_ = 0;
  std::string what_;
};

} // namespace tern::snapshot
