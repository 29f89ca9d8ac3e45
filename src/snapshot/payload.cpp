#include "snapshot/payload.h"

#include "tern/error.h"
#include "tern/internal_error.h"

#include <fmt/format.h>

namespace tern::snapshot {
namespace {

using wasm::ValType;

// Bytes after the type code; 0 for types the format does not know.
size_t value_width(ValType t) {
  switch (t) {
  case ValType::I32:
  case ValType::F32:
  case ValType::FuncRef:
  case ValType::ExternRef:
    return 4;
  case ValType::I64:
  case ValType::F64:
    return 8;
  case ValType::V128:
    return 16;
  }
  return 0;
}

} // namespace

void PayloadWriter::u32(uint32_t v) {
  for (int i = 0; i < 4; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void PayloadWriter::u64(uint64_t v) {
  for (int i = 0; i < 8; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void PayloadWriter::string(std::string_view s) {
  u32(static_cast<uint32_t>(s.size()));
  bytes({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
}

void PayloadWriter::value(const runtime::ViewValue& v) {
  const size_t width = value_width(v.type);
  if (width == 0 || width == 16)
    throw Error(fmt::format("a {} value cannot be saved", wasm::to_string(v.type)));
  if (width == 4 && v.bits > 0xFFFFFFFFu)
    throw InternalError(
        fmt::format("{} value 0x{:x} is wider than 32 bits", wasm::to_string(v.type), v.bits));
  if (v.type == ValType::ExternRef && v.bits != 0)
    throw Error("a host (extern) reference cannot be saved");
  u8(static_cast<uint8_t>(v.type));
  if (width == 4)
    u32(static_cast<uint32_t>(v.bits));
  else
    u64(v.bits);
}

std::span<const uint8_t> PayloadReader::take(size_t n) {
  if (n > remaining())
    fail(fmt::format("needs {} more bytes at payload offset {}, {} left", n, pos_, remaining()));
  auto s = bytes_.subspan(pos_, n);
  pos_ += n;
  return s;
}

uint8_t PayloadReader::u8() {
  return take(1)[0];
}

uint32_t PayloadReader::u32() {
  auto b = take(4);
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | b[i];
  return v;
}

uint64_t PayloadReader::u64() {
  auto b = take(8);
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | b[i];
  return v;
}

bool PayloadReader::boolean() {
  uint8_t b = u8();
  if (b > 1) fail(fmt::format("flag byte {} at payload offset {} is neither 0 nor 1", b, pos_ - 1));
  return b == 1;
}

std::span<const uint8_t> PayloadReader::bytes(size_t n) {
  return take(n);
}

std::string PayloadReader::string() {
  uint32_t n = u32();
  auto b = take(n);
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

runtime::ViewValue PayloadReader::value() {
  const uint8_t code = u8();
  const auto type = static_cast<ValType>(code);
  const size_t width = value_width(type);
  if (width == 0) fail(fmt::format("unknown value type code 0x{:02x}", code));
  if (width == 16) fail("v128 values are not supported by this version of tern");
  runtime::ViewValue v{type, width == 4 ? u32() : u64()};
  if (type == ValType::ExternRef && v.bits != 0) fail("non-null extern reference");
  return v;
}

uint32_t PayloadReader::count(size_t min_item_bytes, std::string_view items) {
  uint32_t n = u32();
  if (min_item_bytes != 0 && n > remaining() / min_item_bytes)
    fail(fmt::format("{} {} cannot fit in the {} bytes left", n, items, remaining()));
  return n;
}

void PayloadReader::expect_end() const {
  if (remaining() != 0) fail(fmt::format("{} unexpected bytes at the end", remaining()));
}

void PayloadReader::fail(std::string_view reason) const {
  throw Error(fmt::format("{}: {}", what_, reason));
}

} // namespace tern::snapshot
