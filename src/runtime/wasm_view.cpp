#include "runtime/wasm_view.h"

#include "runtime/instance.h"
#include "tern/error.h"

#include <fmt/format.h>

namespace tern::runtime {

using wasm::ValType;

// A funcref Slot as function index + 1 (0 = null) in `inst`'s index space.
uint32_t ref_to_index(const ModuleInstance& inst, ValType type, Slot bits, std::string_view where) {
  if (bits == runtime::kNullRef) return 0;
  if (type == ValType::ExternRef)
    throw Error(fmt::format("{} holds a host (extern) reference, which cannot be saved", where));
  auto index = inst.func_index_of(runtime::slot_funcref(bits));
  if (!index)
    throw Error(
        fmt::format("{} refers to a function of another instance, which cannot be saved", where));
  return *index + 1;
}

Slot index_to_ref(const ModuleInstance& inst, ValType type, uint64_t ref, std::string_view where) {
  if (ref == 0) return runtime::kNullRef;
  if (type == ValType::ExternRef)
    throw Error(fmt::format("{}: snapshot holds a non-null extern reference", where));
  if (ref > inst.funcs.size())
    throw Error(fmt::format("{}: function {} does not exist (the module has {})", where, ref - 1,
                            inst.funcs.size()));
  return runtime::funcref_slot(inst.funcs[ref - 1]);
}

runtime::ViewValue to_view(const ModuleInstance& inst, ValType type, Slot bits,
                           std::string_view where) {
  if (wasm::is_ref(type)) return {type, ref_to_index(inst, type, bits, where)};
  if (type == ValType::V128) throw Error(fmt::format("{}: v128 values cannot be saved", where));
  return {type, bits};
}

Slot from_view(const ModuleInstance& inst, const runtime::ViewValue& v, std::string_view where) {
  if (wasm::is_ref(v.type)) return index_to_ref(inst, v.type, v.bits, where);
  return v.bits;
}

std::vector<ValType> local_types(const wasm::Module& m, uint32_t func_index) {
  std::vector<ValType> types = m.func_type(func_index).params;
  const auto& locals = m.defined_func(func_index).locals;
  types.insert(types.end(), locals.begin(), locals.end());
  return types;
}

} // namespace tern::runtime
