#include "cli/spectest.h"

#include <bit>
#include <string>
#include <vector>

namespace tern::cli {
namespace {

using wasm::ValType;

constexpr const char* kModule = "spectest";

// The print functions exist for their signatures; their output would only
// clutter the runner's report, so they discard their arguments.
void define_print(runtime::Store& store, runtime::Linker& linker, const std::string& name,
                  std::vector<ValType> params) {
  runtime::HostFunction fn;
  fn.type.params = std::move(params);
  fn.callback = [](runtime::CallContext&, std::span<const runtime::Slot>,
                   std::span<runtime::Slot>) { return runtime::HostResult::ok(); };
  fn.module_name = kModule;
  fn.name = name;
  linker.define(kModule, name, runtime::Extern::of(store.add_host_function(std::move(fn))));
}

void define_global(runtime::Store& store, runtime::Linker& linker, const std::string& name,
                   ValType type, runtime::Slot value) {
  wasm::GlobalType global_type{type, /*mut=*/false};
  linker.define(kModule, name, runtime::Extern::of(store.add_global(global_type, value)));
}

} // namespace

void define_spectest(runtime::Store& store, runtime::Linker& linker) {
  define_print(store, linker, "print", {});
  define_print(store, linker, "print_i32", {ValType::I32});
  define_print(store, linker, "print_i64", {ValType::I64});
  define_print(store, linker, "print_f32", {ValType::F32});
  define_print(store, linker, "print_f64", {ValType::F64});
  define_print(store, linker, "print_i32_f32", {ValType::I32, ValType::F32});
  define_print(store, linker, "print_f64_f64", {ValType::F64, ValType::F64});

  define_global(store, linker, "global_i32", ValType::I32, 666);
  define_global(store, linker, "global_i64", ValType::I64, 666);
  define_global(store, linker, "global_f32", ValType::F32, std::bit_cast<uint32_t>(666.6f));
  define_global(store, linker, "global_f64", ValType::F64, std::bit_cast<uint64_t>(666.6));

  wasm::TableType table_type{ValType::FuncRef, wasm::Limits{10, 20, false}};
  linker.define(kModule, "table",
                runtime::Extern::of(store.add_table(table_type, runtime::kNullRef)));
  wasm::MemoryType memory_type{wasm::Limits{1, 2, false}};
  linker.define(kModule, "memory", runtime::Extern::of(store.add_memory(memory_type)));
  // The threads proposal's reference interpreter adds a shared memory.
  wasm::MemoryType shared_memory_type{wasm::Limits{1, 2, true}};
  linker.define(kModule, "shared_memory",
                runtime::Extern::of(store.add_memory(shared_memory_type)));
}

} // namespace tern::cli
