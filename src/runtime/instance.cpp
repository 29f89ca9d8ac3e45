#include "runtime/instance.h"

namespace tern::runtime {

ModuleInstance::ModuleInstance(Store& store, std::shared_ptr<const wasm::Module> module)
    : store_(&store), module_(std::move(module)) {}

std::optional<Extern> ModuleInstance::find_export(std::string_view name) const {
  const wasm::Export* e = module_->find_export(name);
  if (!e) return std::nullopt;
  switch (e->kind) {
  case wasm::ExternKind::Func:
    return Extern::of(funcs[e->index]);
  case wasm::ExternKind::Table:
    return Extern::of(tables[e->index]);
  case wasm::ExternKind::Memory:
    return Extern::of(memories[e->index]);
  case wasm::ExternKind::Global:
    return Extern::of(globals[e->index]);
  }
  return std::nullopt;
}

std::optional<uint32_t> ModuleInstance::func_index_of(const FunctionInstance* f) const {
  if (f->instance == this) return f->index;
  for (uint32_t i = 0; i < module_->num_imported_funcs; ++i)
    if (funcs[i] == f) return i;
  return std::nullopt;
}

FunctionInstance* ModuleInstance::find_func_export(std::string_view name) const {
  auto e = find_export(name);
  return e && e->kind == wasm::ExternKind::Func ? e->func : nullptr;
}

} // namespace tern::runtime
