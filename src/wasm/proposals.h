// WebAssembly proposals tern does not implement yet, recognized by their
// encodings so that a module using one is refused naming the proposal
// ("the SIMD proposal is not supported yet") instead of being called
// malformed. Only consulted where decoding fails anyway: an encoding tern
// implements never gets here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tern::wasm {

// How the byte was read.
enum class Encoding {
  Opcode,     // an instruction's first byte (the prefix of 0xfb-0xfe instructions)
  ValueType,  // a value type (also in block types and select)
  Section,    // a section id
  ExternKind, // an import or export kind
  TypeForm,   // the form byte of a type section entry
};

// Refuses `byte`, read as `encoding` at `offset`, which tern does not
// decode: UnsupportedProposal when it belongs to a proposal tern lacks,
// else DecodeError(offset, malformed).
[[noreturn]] void refuse(Encoding encoding, uint8_t byte, size_t offset,
                         const std::string& malformed);

} // namespace tern::wasm
