// Opcode enumeration and static facts about each instruction.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tern::wasm {

enum class Op : uint16_t {
#define WASM_OP(name, text, prefix, code, imm, sig, bytes) name,
#include "wasm/opcodes.def"
#undef WASM_OP
};

inline constexpr uint16_t kOpCount = 0
#define WASM_OP(name, text, prefix, code, imm, sig, bytes) +1
#include "wasm/opcodes.def"
#undef WASM_OP
    ;

// What follows an opcode in the binary.
enum class ImmKind : uint8_t {
  None,
  Block,        // block type
  Label,        // label index
  BrTable,      // vec(label) label
  Func,         // function index
  CallIndirect, // type index, table index
  Local,
  Global,
  Table,
  MemArg, // align, offset
  Mem,    // memory index (a zero byte in 2.0)
  I32,
  I64,
  F32,
  F64,
  RefType,
  SelectT, // vec(valtype)
  Elem,
  Data,
  TableInit,    // elem index, table index
  TableCopy,    // dst table, src table
  MemInit,      // data index, memory index
  MemCopy,      // dst memory, src memory
  AtomicMemArg, // align, offset of an atomic access (align must be natural)
  Zero,         // a zero byte (atomic.fence)
};

// Fixed operand/result types; Special means the validator decides.
enum class Sig : uint8_t {
  Special,
  v_v,
  v_i,
  v_l,
  v_f,
  v_d,
  i_i,
  i_l,
  i_f,
  i_d,
  l_i,
  l_l,
  l_f,
  l_d,
  f_i,
  f_l,
  f_f,
  f_d,
  d_i,
  d_l,
  d_f,
  d_d,
  ii_i,
  ll_i,
  ll_l,
  ff_i,
  ff_f,
  dd_i,
  dd_d,
  ii_v,
  il_v,
  if_v,
  id_v,
  iii_v,
  il_l,
  iii_i,
  ill_l,
  iil_i,
  ill_i,
};

struct OpInfo {
  std::string_view text;
  uint8_t prefix;
  uint32_t code;
  ImmKind imm;
  Sig sig;
  uint8_t access_bytes; // natural size of a memory access, 0 if none
};

// The tables behind the lookups below, defined in opcodes.cpp. The lookups
// are inline because every decoded instruction goes through them.
namespace detail {
inline constexpr uint16_t kNoOp = 0xFFFF;
extern const std::array<OpInfo, kOpCount> kOpInfo;
extern const std::array<uint16_t, 256> kOpByByte;
extern const std::array<uint16_t, 32> kOpByMisc;
extern const std::array<uint16_t, 128> kOpByAtomic;
} // namespace detail

inline const OpInfo& op_info(Op op) {
  return detail::kOpInfo[static_cast<uint16_t>(op)];
}
inline std::string_view op_name(Op op) {
  return op_info(op).text;
}

// Decoding tables: the opcode for a single byte or a 0xFC sub-opcode.
inline std::optional<Op> op_from_byte(uint8_t byte) {
  uint16_t i = detail::kOpByByte[byte];
  if (i == detail::kNoOp) return std::nullopt;
  return static_cast<Op>(i);
}
inline std::optional<Op> op_from_misc(uint32_t sub) {
  if (sub >= detail::kOpByMisc.size() || detail::kOpByMisc[sub] == detail::kNoOp)
    return std::nullopt;
  return static_cast<Op>(detail::kOpByMisc[sub]);
}
// The opcode for a 0xFE (atomic) sub-opcode.
inline std::optional<Op> op_from_atomic(uint32_t sub) {
  if (sub >= detail::kOpByAtomic.size() || detail::kOpByAtomic[sub] == detail::kNoOp)
    return std::nullopt;
  return static_cast<Op>(detail::kOpByAtomic[sub]);
}
// Whether `op` is one of the threads proposal's atomic memory accesses
// (loads, stores, read-modify-writes, wait and notify).
inline bool is_atomic_access(Op op) {
  return op_info(op).imm == ImmKind::AtomicMemArg;
}

} // namespace tern::wasm
