// The store owns every runtime object (instances, functions, tables,
// memories, globals) and the engine that runs code; addresses stay valid for
// the store's life. Also the type registry that makes call_indirect's
// signature check one integer comparison, across modules.
#pragma once

#include "runtime/engine.h"
#include "runtime/instance.h"
#include "runtime/interrupt.h"
#include "tern/error.h"

#include <deque>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace tern::runtime {

// Instantiation ran into a trap (segment out of bounds, start function).
class InstantiationTrap : public Error {
public:
  explicit InstantiationTrap(Trap trap) : Error(trap.message), trap_(std::move(trap)) {}
  const Trap& trap() const { return trap_; }

private:
  Trap trap_;
};

class Store {
public:
  explicit Store(std::unique_ptr<Engine> engine);
  ~Store();

  Engine& engine() const { return *engine_; }
  // Checkpoint requests for every thread of this store.
  Interrupt& interrupt() { return interrupt_; }
  uint32_t intern_type(const wasm::FuncType& type);

  FunctionInstance* add_host_function(HostFunction fn);
  Memory* add_memory(const wasm::MemoryType& type, bool mirrored = false);
  Table* add_table(const wasm::TableType& type, Slot init);
  GlobalCell* add_global(const wasm::GlobalType& type, Slot value);

  // Links `imports` (one per module import, in order), allocates, runs
  // element and data initialization and the start function on `thread`
  // (InitMode::ForRestore: see there).
  // Throws LinkError when an import does not match, InstantiationTrap when
  // initialization traps (the instance's effects up to the trap remain, as
  // the spec requires).
  ModuleInstance* instantiate(std::shared_ptr<const wasm::Module> module,
                              std::span<const Extern> imports, Thread& thread,
                              InitMode init = InitMode::Full);

  const std::deque<std::unique_ptr<ModuleInstance>>& instances() const { return instances_; }

private:
  std::unique_ptr<Engine> engine_;
  Interrupt interrupt_;
  std::map<std::string, uint32_t> type_ids_; // keyed by the type's encoding
  std::deque<std::unique_ptr<ModuleInstance>> instances_;
  std::deque<FunctionInstance> functions_;
  std::deque<HostFunction> host_functions_;
  std::deque<std::unique_ptr<Memory>> memories_;
  std::deque<std::unique_ptr<Table>> tables_;
  std::deque<GlobalCell> globals_;
};

// Resolves imports by (module, name), like a wasm-c-api / wasmtime Linker.
class Linker {
public:
  void define(const std::string& module, const std::string& name, Extern value);
  // Every export of `instance` under `module` (the wast `register` command).
  void define_instance(const std::string& module, const ModuleInstance& instance);
  // One Extern per import of `module`, or LinkError "unknown import ...".
  std::vector<Extern> resolve(const wasm::Module& module) const;

private:
  std::map<std::pair<std::string, std::string>, Extern> defs_;
};

} // namespace tern::runtime
