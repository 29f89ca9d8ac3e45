#include "runtime/store.h"

#include <fmt/format.h>

namespace tern::runtime {

std::unique_ptr<Engine> Engine::for_new_thread() {
  throw Error("this engine cannot run more than one thread");
}
namespace {

using wasm::ExternKind;

std::string type_key(const wasm::FuncType& t) {
  std::string key;
  for (auto p : t.params) key.push_back(static_cast<char>(p));
  key.push_back('>');
  for (auto r : t.results) key.push_back(static_cast<char>(r));
  return key;
}

// Import matching (spec 4.5.2 "Import Subtyping" for limits).
bool limits_match(const wasm::Limits& actual, const wasm::Limits& expected) {
  if (actual.min < expected.min) return false;
  if (expected.max) {
    if (!actual.max || *actual.max > *expected.max) return false;
  }
  return actual.shared == expected.shared;
}

void check_import(const wasm::Module& module, const wasm::Import& imp, const Extern& ext) {
  auto mismatch = [&] {
    throw LinkError(fmt::format("incompatible import type for {}.{}", imp.module, imp.name));
  };
  if (ext.kind != imp.kind) mismatch();
  switch (imp.kind) {
  case ExternKind::Func:
    if (*ext.func->type != module.types[imp.func_type]) mismatch();
    break;
  case ExternKind::Table:
    if (ext.table->elem_type() != imp.table.elem) mismatch();
    if (!limits_match(ext.table->type().limits, imp.table.limits)) mismatch();
    break;
  case ExternKind::Memory:
    if (!limits_match(ext.memory->type().limits, imp.memory.limits)) mismatch();
    break;
  case ExternKind::Global:
    if (ext.global->type.type != imp.global.type || ext.global->type.mut != imp.global.mut)
      mismatch();
    break;
  }
}

// Evaluates a validated constant expression in `inst`.
Slot eval_const(const wasm::ConstExpr& expr, const ModuleInstance& inst) {
  Slot value = 0;
  for (const wasm::ConstInstr& in : expr.instrs) {
    switch (in.op) {
    case wasm::Op::I32Const:
      value = static_cast<uint32_t>(in.imm);
      break;
    case wasm::Op::I64Const:
    case wasm::Op::F32Const:
    case wasm::Op::F64Const:
      value = in.imm;
      break;
    case wasm::Op::RefNull:
      value = kNullRef;
      break;
    case wasm::Op::RefFunc:
      value = funcref_slot(inst.funcs[in.a]);
      break;
    case wasm::Op::GlobalGet:
      value = inst.globals[in.a]->value;
      break;
    default:
      throw Error(
          fmt::format("unsupported instruction {} in constant expression", wasm::op_name(in.op)));
    }
  }
  return value;
}

[[noreturn]] void init_trap(TrapKind kind) {
  Trap t;
  t.kind = kind;
  t.message = std::string(trap_message(kind));
  throw InstantiationTrap(std::move(t));
}

} // namespace

Store::Store(std::unique_ptr<Engine> engine) : engine_(std::move(engine)) {}
Store::~Store() = default;

uint32_t Store::intern_type(const wasm::FuncType& type) {
  auto [it, inserted] =
      type_ids_.try_emplace(type_key(type), static_cast<uint32_t>(type_ids_.size()));
  return it->second;
}

FunctionInstance* Store::add_host_function(HostFunction fn) {
  HostFunction& host = host_functions_.emplace_back(std::move(fn));
  FunctionInstance& f = functions_.emplace_back();
  f.type = &host.type;
  f.type_id = intern_type(host.type);
  f.host = &host;
  return &f;
}

Memory* Store::add_memory(const wasm::MemoryType& type, bool mirrored) {
  return memories_.emplace_back(std::make_unique<Memory>(type, mirrored)).get();
}

Table* Store::add_table(const wasm::TableType& type, Slot init) {
  return tables_.emplace_back(std::make_unique<Table>(type, init)).get();
}

GlobalCell* Store::add_global(const wasm::GlobalType& type, Slot value) {
  return &globals_.emplace_back(GlobalCell{value, type});
}

ModuleInstance* Store::instantiate(std::shared_ptr<const wasm::Module> module_ptr,
                                   std::span<const Extern> imports, Thread& thread, InitMode init) {
  const wasm::Module& module = *module_ptr;
  if (imports.size() != module.imports.size())
    throw LinkError(
        fmt::format("module needs {} imports, {} given", module.imports.size(), imports.size()));
  for (size_t i = 0; i < imports.size(); ++i) check_import(module, module.imports[i], imports[i]);

  // The instance joins the store before initialization: if a segment traps,
  // what it already wrote into shared tables and memories stays, and those
  // entries may refer to this instance's functions.
  auto& owned = instances_.emplace_back(std::make_unique<ModuleInstance>(*this, module_ptr));
  ModuleInstance& inst = *owned;
  inst.init_mode = init;
  for (const Extern& e : imports) {
    switch (e.kind) {
    case ExternKind::Func:
      inst.funcs.push_back(e.func);
      break;
    case ExternKind::Table:
      inst.tables.push_back(e.table);
      break;
    case ExternKind::Memory:
      inst.memories.push_back(e.memory);
      break;
    case ExternKind::Global:
      inst.globals.push_back(e.global);
      break;
    }
  }
  // Each of the module's types is interned once, when a function first has
  // it (the ids are given in that order, as when every function asked).
  constexpr uint32_t kNotYet = ~uint32_t(0);
  std::vector<uint32_t> type_ids(module.types.size(), kNotYet);
  inst.funcs.reserve(module.func_types.size());
  for (uint32_t i = module.num_imported_funcs; i < module.func_types.size(); ++i) {
    FunctionInstance& f = functions_.emplace_back();
    const uint32_t type_index = module.func_types[i];
    f.type = &module.types[type_index];
    if (type_ids[type_index] == kNotYet) type_ids[type_index] = intern_type(*f.type);
    f.type_id = type_ids[type_index];
    f.instance = &inst;
    f.index = i;
    inst.funcs.push_back(&f);
  }
  for (size_t i = module.num_imported_tables; i < module.tables.size(); ++i)
    inst.tables.push_back(add_table(module.tables[i], kNullRef));
  for (size_t i = module.num_imported_memories; i < module.memories.size(); ++i)
    inst.memories.push_back(add_memory(module.memories[i], engine_->wants_mirrored_memories(inst)));
  for (const wasm::Global& g : module.globals)
    inst.globals.push_back(add_global(g.type, eval_const(g.init, inst)));

  engine_->prepare(inst);

  inst.elem_segments.resize(module.elems.size());
  for (size_t i = 0; i < module.elems.size(); ++i) {
    const wasm::ElemSegment& seg = module.elems[i];
    if (seg.mode == wasm::SegmentMode::Declarative) continue; // dropped at once
    auto& refs = inst.elem_segments[i];
    refs.reserve(seg.items.size());
    for (const auto& item : seg.items) refs.push_back(eval_const(item, inst));
  }
  inst.data_dropped.assign(module.datas.size(), false);

  // Active segments, in order: table.init / memory.init then drop.
  for (size_t i = 0; i < module.elems.size(); ++i) {
    const wasm::ElemSegment& seg = module.elems[i];
    if (seg.mode != wasm::SegmentMode::Active) continue;
    uint64_t offset = static_cast<uint32_t>(eval_const(seg.offset, inst));
    Table& table = *inst.tables[seg.table];
    auto& refs = inst.elem_segments[i];
    if (offset + refs.size() > table.size()) init_trap(TrapKind::TableOutOfBounds);
    for (size_t k = 0; k < refs.size(); ++k) table.set(static_cast<uint32_t>(offset + k), refs[k]);
    refs.clear();
  }
  for (size_t i = 0; i < module.datas.size(); ++i) {
    const wasm::DataSegment& seg = module.datas[i];
    if (seg.mode != wasm::SegmentMode::Active) continue;
    if (init == InitMode::ForRestore) { // the snapshot's memory replaces it
      inst.data_dropped[i] = true;
      continue;
    }
    uint64_t offset = static_cast<uint32_t>(eval_const(seg.offset, inst));
    Memory& mem = *inst.memories[seg.memory];
    auto bytes = module.data_bytes(seg);
    if (!mem.in_bounds(offset, bytes.size())) init_trap(TrapKind::MemoryOutOfBounds);
    if (!bytes.empty()) std::memcpy(mem.base() + offset, bytes.data(), bytes.size());
    inst.data_dropped[i] = true;
  }

  if (module.start && init == InitMode::Full) {
    ExecOutcome out = engine_->call(thread, inst.funcs[*module.start], {}, {});
    if (out.kind == ExecOutcome::Kind::Trapped) throw InstantiationTrap(std::move(out.trap));
    if (out.kind == ExecOutcome::Kind::Exited)
      throw Error(fmt::format("the start function exited with code {}", out.exit_code));
  }
  return &inst;
}

void Linker::define(const std::string& module, const std::string& name, Extern value) {
  defs_[{module, name}] = value;
}

void Linker::define_instance(const std::string& module, const ModuleInstance& instance) {
  for (const wasm::Export& e : instance.module().exports)
    define(module, e.name, *instance.find_export(e.name));
}

std::vector<Extern> Linker::resolve(const wasm::Module& module) const {
  std::vector<Extern> out;
  out.reserve(module.imports.size());
  for (const wasm::Import& imp : module.imports) {
    auto it = defs_.find({imp.module, imp.name});
    if (it == defs_.end())
      throw LinkError(fmt::format("unknown import: {}.{} ({})", imp.module, imp.name,
                                  wasm::to_string(imp.kind)));
    out.push_back(it->second);
  }
  return out;
}

} // namespace tern::runtime
