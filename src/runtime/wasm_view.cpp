#include "runtime/wasm_view.h"

#include "runtime/instance.h"
#include "tern/error.h"

#include <fmt/format.h>

namespace tern::runtime {

ViewValue to_view(const ModuleInstance& inst, wasm::ValType type, Slot bits) {
  if (type == wasm::ValType::FuncRef) {
    if (bits == kNullRef) return {type, 0};
    auto index = inst.func_index_of(slot_funcref(bits));
    if (!index) throw Error("a function reference from another instance cannot be saved");
    return {type, uint64_t(*index) + 1};
  }
  if (type == wasm::ValType::ExternRef && bits != kNullRef)
    throw Error("a host (extern) reference cannot be saved");
  return {type, bits};
}

Slot from_view(const ModuleInstance& inst, const ViewValue& v) {
  if (v.type == wasm::ValType::FuncRef && v.bits != 0) {
    if (v.bits > inst.funcs.size())
      throw Error(fmt::format("function reference {} out of range", v.bits - 1));
    return funcref_slot(inst.funcs[v.bits - 1]);
  }
  if (v.type == wasm::ValType::ExternRef && v.bits != 0)
    throw Error("snapshot holds a non-null extern reference");
  return v.bits;
}

std::vector<wasm::ValType> local_types(const wasm::Module& m, uint32_t func_index) {
  std::vector<wasm::ValType> types = m.func_type(func_index).params;
  const auto& locals = m.defined_func(func_index).locals;
  types.insert(types.end(), locals.begin(), locals.end());
  return types;
}

} // namespace tern::runtime
