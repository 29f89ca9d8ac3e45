#include "wasm/instr.h"

#include "wasm/proposals.h"

#include <fmt/format.h>

namespace tern::wasm {

BlockType InstrReader::block_type() {
  uint8_t first = r_.peek();
  BlockType bt;
  if (first == 0x40) {
    r_.u8();
    bt.kind = BlockType::Kind::Empty;
    return bt;
  }
  if (is_value_type_byte(first)) {
    bt.kind = BlockType::Kind::Value;
    bt.value = read_value_type(r_);
    return bt;
  }
  const size_t start = r_.offset();
  int64_t index = r_.s33();
  if (index < 0) refuse(Encoding::ValueType, first, start, "malformed block type");
  bt.kind = BlockType::Kind::TypeIndex;
  bt.type_index = static_cast<uint32_t>(index);
  return bt;
}

bool is_value_type_byte(uint8_t b) {
  switch (b) {
  case 0x7F:
  case 0x7E:
  case 0x7D:
  case 0x7C:
  case 0x70:
  case 0x6F:
    return true;
  default:
    return false;
  }
}

ValType read_value_type(ByteReader& r) {
  const size_t start = r.offset();
  uint8_t b = r.u8();
  if (!is_value_type_byte(b)) refuse(Encoding::ValueType, b, start, "malformed value type");
  return static_cast<ValType>(b);
}

ValType read_ref_type(ByteReader& r) {
  const size_t start = r.offset();
  uint8_t b = r.u8();
  if (b != 0x70 && b != 0x6F) refuse(Encoding::ValueType, b, start, "malformed reference type");
  return static_cast<ValType>(b);
}

static void zero_byte(ByteReader& r) {
  if (r.u8() != 0) r.fail("zero byte expected");
}

void InstrReader::next(Instr& in) {
  in.offset = static_cast<uint32_t>(r_.offset());
  uint8_t byte = r_.u8();
  std::optional<Op> op;
  if (byte == 0xFC) {
    uint32_t sub = r_.u32();
    op = op_from_misc(sub);
    if (!op) r_.fail_at(in.offset, fmt::format("illegal opcode 0xfc {}", sub));
  } else if (byte == 0xFE) {
    uint32_t sub = r_.u32();
    op = op_from_atomic(sub);
    if (!op) r_.fail_at(in.offset, fmt::format("illegal opcode 0xfe {}", sub));
  } else {
    op = op_from_byte(byte);
    if (!op)
      refuse(Encoding::Opcode, byte, in.offset, fmt::format("illegal opcode 0x{:02x}", byte));
  }
  in.op = *op;
  switch (op_info(in.op).imm) {
  case ImmKind::None:
    break;
  case ImmKind::Block:
    in.block = block_type();
    break;
  case ImmKind::Label:
  case ImmKind::Func:
  case ImmKind::Local:
  case ImmKind::Global:
  case ImmKind::Table:
  case ImmKind::Elem:
  case ImmKind::Data:
    in.a = r_.u32();
    break;
  case ImmKind::BrTable: {
    uint32_t n = r_.u32();
    if (n > r_.remaining()) r_.fail(kUnexpectedEnd); // each label takes >= 1 byte
    in.targets.clear();
    in.targets.reserve(n + 1);
    for (uint32_t i = 0; i <= n; ++i) in.targets.push_back(r_.u32());
    break;
  }
  case ImmKind::CallIndirect:
    in.a = r_.u32();
    in.b = r_.u32();
    break;
  case ImmKind::MemArg:
  case ImmKind::AtomicMemArg:
    in.align = r_.u32();
    in.imm = r_.u32();
    break;
  case ImmKind::Mem:
    zero_byte(r_);
    in.a = 0;
    break;
  case ImmKind::Zero:
    zero_byte(r_);
    break;
  case ImmKind::I32:
    in.imm = static_cast<uint32_t>(r_.s32());
    break;
  case ImmKind::I64:
    in.imm = static_cast<uint64_t>(r_.s64());
    break;
  case ImmKind::F32:
    in.imm = r_.f32_bits();
    break;
  case ImmKind::F64:
    in.imm = r_.f64_bits();
    break;
  case ImmKind::RefType:
    in.type = read_ref_type(r_);
    break;
  case ImmKind::SelectT: {
    in.select_arity = r_.u32();
    if (in.select_arity > r_.remaining()) r_.fail(kUnexpectedEnd);
    for (uint32_t i = 0; i < in.select_arity; ++i) in.type = read_value_type(r_);
    break;
  }
  case ImmKind::TableInit:
    in.a = r_.u32(); // elem
    in.b = r_.u32(); // table
    break;
  case ImmKind::TableCopy:
    in.a = r_.u32(); // dst
    in.b = r_.u32(); // src
    break;
  case ImmKind::MemInit:
    in.a = r_.u32(); // data
    zero_byte(r_);
    break;
  case ImmKind::MemCopy:
    zero_byte(r_);
    zero_byte(r_);
    break;
  }
}

} // namespace tern::wasm
