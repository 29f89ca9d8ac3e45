// One decoded instruction, and the reader that decodes a function body or a
// constant expression instruction by instruction. The validator, the
// interpreter's translator and the AOT compiler all walk code with it.
#pragma once

#include "wasm/opcodes.h"
#include "wasm/reader.h"
#include "wasm/types.h"

#include <cstdint>
#include <vector>

namespace tern::wasm {

// Value and reference types as the binary format encodes them (one byte
// each); the module decoder and the instruction reader read them alike.
bool is_value_type_byte(uint8_t b);
ValType read_value_type(ByteReader& r);
ValType read_ref_type(ByteReader& r);

struct Instr {
  Op op = Op::Nop;
  uint32_t offset = 0;           // absolute byte offset of the opcode in the module
  BlockType block;               // block, loop, if
  uint32_t a = 0;                // first index immediate: label, func, local, global,
                                 // table, type (call_indirect), elem, data, dst table
  uint32_t b = 0;                // second index: call_indirect table, table.init/copy
                                 // table, memory index
  uint64_t imm = 0;              // constant bit pattern, or memarg offset
  uint32_t align = 0;            // memarg alignment exponent
  ValType type = ValType::I32;   // ref.null heap type, select t's type
  uint32_t select_arity = 0;     // number of types in select t
  std::vector<uint32_t> targets; // br_table labels; the default is last
};

// Decodes instructions from `reader` until it is exhausted. Malformed
// immediates throw DecodeError; nothing here checks types.
class InstrReader {
public:
  explicit InstrReader(ByteReader reader) : r_(reader) {}
  bool at_end() const { return r_.at_end(); }
  size_t offset() const { return r_.offset(); }
  // Decodes the next instruction into `out` (reusing its storage).
  void next(Instr& out);

private:
  BlockType block_type();
  ByteReader r_;
};

} // namespace tern::wasm
