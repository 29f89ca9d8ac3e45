#include "wasm/opcodes.h"

#include <array>

namespace tern::wasm {
namespace {

constexpr std::array<OpInfo, kOpCount> kInfo = {{
#define WASM_OP(name, text, prefix, code, imm, sig, bytes)                                         \
  OpInfo{text, prefix, code, ImmKind::imm, Sig::sig, bytes},
#include "wasm/opcodes.def"
#undef WASM_OP
}};

constexpr uint16_t kNoOp = 0xFFFF;

// Reverse maps from encodings to Op, built at compile time from the table.
constexpr auto kByteMap = [] {
  std::array<uint16_t, 256> map{};
  map.fill(kNoOp);
  for (uint16_t i = 0; i < kOpCount; ++i)
    if (kInfo[i].prefix == 0) map[kInfo[i].code] = i;
  return map;
}();

constexpr auto kMiscMap = [] {
  std::array<uint16_t, 32> map{};
  map.fill(kNoOp);
  for (uint16_t i = 0; i < kOpCount; ++i)
    if (kInfo[i].prefix == 0xFC) map[kInfo[i].code] = i;
  return map;
}();

} // namespace

const OpInfo& op_info(Op op) { return kInfo[static_cast<uint16_t>(op)]; }

std::optional<Op> op_from_byte(uint8_t byte) {
  uint16_t i = kByteMap[byte];
  if (i == kNoOp) return std::nullopt;
  return static_cast<Op>(i);
}

std::optional<Op> op_from_misc(uint32_t sub) {
  if (sub >= kMiscMap.size() || kMiscMap[sub] == kNoOp) return std::nullopt;
  return static_cast<Op>(kMiscMap[sub]);
}

} // namespace tern::wasm
