#include "wasm/opcodes.h"

namespace tern::wasm::detail {

constexpr std::array<OpInfo, kOpCount> kOpInfo = {{
#define WASM_OP(name, text, prefix, code, imm, sig, bytes)                                         \
  OpInfo{text, prefix, code, ImmKind::imm, Sig::sig, bytes},
#include "wasm/opcodes.def"
#undef WASM_OP
}};

// Reverse maps from encodings to Op, built at compile time from the table.
constexpr std::array<uint16_t, 256> kOpByByte = [] {
  std::array<uint16_t, 256> map{};
  map.fill(kNoOp);
  for (uint16_t i = 0; i < kOpCount; ++i)
    if (kOpInfo[i].prefix == 0) map[kOpInfo[i].code] = i;
  return map;
}();

constexpr std::array<uint16_t, 32> kOpByMisc = [] {
  std::array<uint16_t, 32> map{};
  map.fill(kNoOp);
  for (uint16_t i = 0; i < kOpCount; ++i)
    if (kOpInfo[i].prefix == 0xFC) map[kOpInfo[i].code] = i;
  return map;
}();

constexpr std::array<uint16_t, 128> kOpByAtomic = [] {
  std::array<uint16_t, 128> map{};
  map.fill(kNoOp);
  for (uint16_t i = 0; i < kOpCount; ++i)
    if (kOpInfo[i].prefix == 0xFE) map[kOpInfo[i].code] = i;
  return map;
}();

} // namespace tern::wasm::detail
