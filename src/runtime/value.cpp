#include "runtime/value.h"

#include <fmt/format.h>

namespace tern::runtime {

std::string to_string(const Value& v) {
  switch (v.type) {
  case ValType::I32:
    return fmt::format("{}", static_cast<int32_t>(v.as_u32()));
  case ValType::I64:
    return fmt::format("{}", static_cast<int64_t>(v.as_u64()));
  case ValType::F32:
    return fmt::format("{}", v.as_f32());
  case ValType::F64:
    return fmt::format("{}", v.as_f64());
  case ValType::FuncRef:
    return v.is_null() ? "ref.null func" : "ref.func";
  case ValType::ExternRef:
    return v.is_null() ? "ref.null extern" : fmt::format("ref.extern {}", slot_externref(v.bits));
  case ValType::V128:
    return "v128";
  }
  return "?";
}

} // namespace tern::runtime
