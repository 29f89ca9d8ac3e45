#include "wasm/types.h"

namespace tern::wasm {

std::string_view to_string(ValType t) {
  switch (t) {
  case ValType::I32:
    return "i32";
  case ValType::I64:
    return "i64";
  case ValType::F32:
    return "f32";
  case ValType::F64:
    return "f64";
  case ValType::V128:
    return "v128";
  case ValType::FuncRef:
    return "funcref";
  case ValType::ExternRef:
    return "externref";
  }
  return "<unknown type>";
}

namespace {

std::string type_list(const std::vector<ValType>& types) {
  std::string out = "[";
  for (size_t i = 0; i < types.size(); ++i) {
    if (i > 0) out += ' ';
    out += to_string(types[i]);
  }
  return out + "]";
}

} // namespace

// The spec's notation: [i32 i32] -> [i64].
std::string to_string(const FuncType& t) {
  return type_list(t.params) + " -> " + type_list(t.results);
}

std::string_view to_string(ExternKind k) {
  switch (k) {
  case ExternKind::Func:
    return "func";
  case ExternKind::Table:
    return "table";
  case ExternKind::Memory:
    return "memory";
  case ExternKind::Global:
    return "global";
  }
  return "<unknown kind>";
}

} // namespace tern::wasm
