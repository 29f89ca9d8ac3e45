#include "wasm/proposals.h"

#include "tern/error.h"

namespace tern::wasm {
namespace {

constexpr const char* kSimd = "SIMD";
constexpr const char* kExceptions = "exception handling";
constexpr const char* kTailCalls = "tail calls";
constexpr const char* kFunctionReferences = "typed function references";
constexpr const char* kGc = "garbage collection (GC)";

struct Known {
  uint8_t byte;
  const char* proposal;
  const char* construct; // what the byte is
};

// Encodings from each proposal's binary format (the WebAssembly 3.0 spec).
constexpr Known kOpcodes[] = {
    {0x06, kExceptions, "try"},
    {0x07, kExceptions, "catch"},
    {0x08, kExceptions, "throw"},
    {0x09, kExceptions, "rethrow"},
    {0x0A, kExceptions, "throw_ref"},
    {0x18, kExceptions, "delegate"},
    {0x19, kExceptions, "catch_all"},
    {0x1F, kExceptions, "try_table"},
    {0x12, kTailCalls, "return_call"},
    {0x13, kTailCalls, "return_call_indirect"},
    {0x14, kFunctionReferences, "call_ref"},
    {0x15, kFunctionReferences, "return_call_ref"},
    {0xFB, kGc, "instruction prefix 0xfb"},
    {0xFD, kSimd, "instruction prefix 0xfd"},
};

constexpr Known kValueTypes[] = {
    {0x7B, kSimd, "value type v128"},
    {0x69, kExceptions, "value type exnref"},
    {0x64, kFunctionReferences, "reference type (ref ...)"},
    {0x63, kFunctionReferences, "reference type (ref null ...)"},
    {0x6E, kGc, "value type anyref"},
    {0x6D, kGc, "value type eqref"},
    {0x6C, kGc, "value type i31ref"},
    {0x6B, kGc, "value type structref"},
    {0x6A, kGc, "value type arrayref"},
    {0x71, kGc, "value type nullref"},
    {0x72, kGc, "value type nullexternref"},
    {0x73, kGc, "value type nullfuncref"},
};

constexpr Known kSections[] = {{13, kExceptions, "tag section (id 13)"}};
constexpr Known kExternKinds[] = {{4, kExceptions, "tag import or export (kind 4)"}};
constexpr Known kTypeForms[] = {
    {0x5E, kGc, "array type"}, {0x5F, kGc, "struct type"},   {0x4E, kGc, "recursive type"},
    {0x50, kGc, "subtype"},    {0x4F, kGc, "final subtype"},
};

template <size_t N>
const Known* find(const Known (&table)[N], uint8_t byte) {
  for (const Known& k : table)
    if (k.byte == byte) return &k;
  return nullptr;
}

const Known* find(Encoding encoding, uint8_t byte) {
  switch (encoding) {
  case Encoding::Opcode:
    return find(kOpcodes, byte);
  case Encoding::ValueType:
    return find(kValueTypes, byte);
  case Encoding::Section:
    return find(kSections, byte);
  case Encoding::ExternKind:
    return find(kExternKinds, byte);
  case Encoding::TypeForm:
    return find(kTypeForms, byte);
  }
  return nullptr;
}

} // namespace

void refuse(Encoding encoding, uint8_t byte, size_t offset, const std::string& malformed) {
  if (const Known* k = find(encoding, byte))
    throw UnsupportedProposal(offset, malformed, k->proposal, k->construct);
  throw DecodeError(offset, malformed);
}

} // namespace tern::wasm
