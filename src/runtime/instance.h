// A module instance: a module's functions, tables, memories and globals bound
// to the concrete objects its imports resolved to.
#pragma once

#include "runtime/function.h"
#include "runtime/global.h"
#include "runtime/memory.h"
#include "runtime/table.h"
#include "wasm/module.h"

#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace tern::runtime {

class Store;

// An external value: what satisfies an import, what an export yields.
struct Extern {
  wasm::ExternKind kind = wasm::ExternKind::Func;
  FunctionInstance* func = nullptr;
  Table* table = nullptr;
  Memory* memory = nullptr;
  GlobalCell* global = nullptr;

  static Extern of(FunctionInstance* f) {
    return {wasm::ExternKind::Func, f, nullptr, nullptr, nullptr};
  }
  static Extern of(Table* t) { return {wasm::ExternKind::Table, nullptr, t, nullptr, nullptr}; }
  static Extern of(Memory* m) { return {wasm::ExternKind::Memory, nullptr, nullptr, m, nullptr}; }
  static Extern of(GlobalCell* g) {
    return {wasm::ExternKind::Global, nullptr, nullptr, nullptr, g};
  }
};

// How Store::instantiate initialized an instance. ForRestore is for an
// instance a snapshot is about to be applied to: the snapshot's memories,
// tables and segment states replace what initialization would write, so
// active data segments are marked dropped without being copied (the
// instance's own memories stay untouched: all zero) and the start function
// does not run.
enum class InitMode { Full, ForRestore };

class ModuleInstance {
public:
  ModuleInstance(Store& store, std::shared_ptr<const wasm::Module> module);

  Store& store() const { return *store_; }
  const wasm::Module& module() const { return *module_; }
  const std::shared_ptr<const wasm::Module>& module_ptr() const { return module_; }

  // Index spaces (imports first), as the engines use them.
  std::vector<FunctionInstance*> funcs;
  std::vector<Table*> tables;
  std::vector<Memory*> memories;
  std::vector<GlobalCell*> globals;
  // Element segments as instantiated (emptied by elem.drop), and which data
  // segments are dropped.
  std::vector<std::vector<Slot>> elem_segments;
  std::vector<bool> data_dropped;
  // Engine code for the module, shared by its instances.
  std::shared_ptr<const void> engine_code;
  InitMode init_mode = InitMode::Full;

  Memory* memory0() const { return memories.empty() ? nullptr : memories[0]; }
  // `f`'s index in this instance's function space, if it has one.
  std::optional<uint32_t> func_index_of(const FunctionInstance* f) const;
  std::optional<Extern> find_export(std::string_view name) const;
  FunctionInstance* find_func_export(std::string_view name) const;

private:
  friend class Store;
  Store* store_;
  std::shared_ptr<const wasm::Module> module_;
};

} // namespace tern::runtime
