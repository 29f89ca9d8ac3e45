// Runtime values. Inside the engine every value is an untyped 64-bit Slot
// holding the value *numerically* (an i32 zero-extended, a float's bit
// pattern), so slots mean the same on little- and big-endian hosts. Value
// adds the wasm type, for the embedding API, host calls and snapshots.
#pragma once

#include "wasm/types.h"

#include <bit>
#include <cstdint>
#include <string>

namespace tern::runtime {

using Slot = uint64_t;
using wasm::ValType;

struct FunctionInstance;

// References in a Slot: 0 is null for both reference types. A funcref is the
// FunctionInstance's address; an externref is the host's value plus one.
inline constexpr Slot kNullRef = 0;
inline Slot funcref_slot(const FunctionInstance* f) {
  return reinterpret_cast<uintptr_t>(f);
}
inline FunctionInstance* slot_funcref(Slot s) {
  return reinterpret_cast<FunctionInstance*>(s);
}
inline Slot externref_slot(uint64_t host_value) {
  return host_value + 1;
}
inline uint64_t slot_externref(Slot s) {
  return s - 1;
}

struct Value {
  ValType type = ValType::I32;
  Slot bits = 0;

  static Value i32(uint32_t v) { return {ValType::I32, v}; }
  static Value i64(uint64_t v) { return {ValType::I64, v}; }
  static Value f32_bits(uint32_t v) { return {ValType::F32, v}; }
  static Value f64_bits(uint64_t v) { return {ValType::F64, v}; }
  static Value f32(float v) { return {ValType::F32, std::bit_cast<uint32_t>(v)}; }
  static Value f64(double v) { return {ValType::F64, std::bit_cast<uint64_t>(v)}; }
  static Value null(ValType ref_type) { return {ref_type, kNullRef}; }
  static Value funcref(const FunctionInstance* f) { return {ValType::FuncRef, funcref_slot(f)}; }
  static Value externref(uint64_t host_value) {
    return {ValType::ExternRef, externref_slot(host_value)};
  }

  uint32_t as_u32() const { return static_cast<uint32_t>(bits); }
  uint64_t as_u64() const { return bits; }
  float as_f32() const { return std::bit_cast<float>(static_cast<uint32_t>(bits)); }
  double as_f64() const { return std::bit_cast<double>(bits); }
  bool is_null() const { return bits == kNullRef; }
};

// "42", "1.5", "ref.null func", ... as `tern run --invoke` prints results.
std::string to_string(const Value& v);

// Zero value of a type (locals, table fill defaults).
inline Value zero_value(ValType t) {
  return {t, 0};
}

} // namespace tern::runtime
