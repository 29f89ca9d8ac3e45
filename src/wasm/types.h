// WebAssembly types as the binary format and the validator see them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern::wasm {

// Value types, with their binary encodings as enumerator values.
enum class ValType : uint8_t {
  I32 = 0x7F,
  I64 = 0x7E,
  F32 = 0x7D,
  F64 = 0x7C,
  V128 = 0x7B,
  FuncRef = 0x70,
  ExternRef = 0x6F,
};

inline bool is_ref(ValType t) {
  return t == ValType::FuncRef || t == ValType::ExternRef;
}
inline bool is_num(ValType t) {
  return !is_ref(t) && t != ValType::V128;
}
std::string_view to_string(ValType t);

struct FuncType {
  std::vector<ValType> params;
  std::vector<ValType> results;
  bool operator==(const FuncType&) const = default;
};
std::string to_string(const FuncType& t);

struct Limits {
  uint64_t min = 0;
  std::optional<uint64_t> max;
  bool shared = false;
  bool operator==(const Limits&) const = default;
};

struct TableType {
  ValType elem = ValType::FuncRef;
  Limits limits;
};

struct MemoryType {
  Limits limits; // in 64 KiB pages
};

struct GlobalType {
  ValType type = ValType::I32;
  bool mut = false;
};

enum class ExternKind : uint8_t { Func = 0, Table = 1, Memory = 2, Global = 3 };
std::string_view to_string(ExternKind k);

// A block's type: empty, a single result, or a function type index
// (multi-value).
struct BlockType {
  enum class Kind : uint8_t { Empty, Value, TypeIndex } kind = Kind::Empty;
  ValType value = ValType::I32;
  uint32_t type_index = 0;
};

inline constexpr uint64_t kPageSize = 65536;
inline constexpr uint64_t kMaxPages = 65536; // 4 GiB
// The largest memory tern instantiates or grows to, one page below what wasm
// allows (implementations may refuse to grow, and may fail to instantiate a
// memory they cannot provide). Below 4 GiB, an access that did not trap
// proves that its address plus up to 64 KiB does not wrap in 32 bits, which
// lets compiled code step through arrays in 64-bit arithmetic (AccessNoWrap,
// aot/llvm/access_nowrap.h).
inline constexpr uint64_t kMaxRuntimePages = kMaxPages - 1;
inline constexpr uint64_t kMaxTableSize = 0xFFFFFFFFu;

} // namespace tern::wasm
