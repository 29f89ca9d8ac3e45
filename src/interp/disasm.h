// Listing of the interpreter's internal code, for `tern disasm`.
#pragma once

#include "interp/code.h"

#include <string>

namespace tern::interp {

// One line per instruction: code index, wasm offset, handler and operands
// (slots as byte offsets, packed pairs as lo|hi, targets as ->index), with
// stable points marked. Operand words that happen to equal a handler
// address would end an instruction early; the listing is for reading.
std::string disassemble(const CompiledFunction& f);

} // namespace tern::interp
