// libFuzzer target: arbitrary bytes through the module pipeline. Bad input
// must end in a tern::Error; anything else that escapes (another exception,
// a sanitizer report, a broken invariant) is a bug. Built and run by
// scripts/fuzz.sh.
//
// Decoding, validation, then instantiation and a bounded run of every
// exported function in the interpreter (imports are satisfied by stubs).
// Every stage may throw tern::Error, and each adds its own invariant checks
// next to check_decoded and check_validated.
#include "interp/engine.h"
#include "runtime/store.h"
#include "runtime/thread.h"
#include "tern/error.h"
#include "wasm/decoder.h"
#include "wasm/validator.h"

#include <cstdint>
#include <cstdlib>
#include <vector>

namespace {

using tern::wasm::Module;

[[noreturn]] void invariant_broken() {
  std::abort();
}

bool in_bounds(const Module& m, uint64_t begin, uint64_t size) {
  return begin <= m.bytes.size() && size <= m.bytes.size() - begin;
}

// What the decoder promises about a module it accepted.
void check_decoded(const Module& m) {
  if (m.func_types.size() != m.num_imported_funcs + m.functions.size()) invariant_broken();
  if (m.global_types.size() != m.num_imported_globals + m.globals.size()) invariant_broken();
  if (m.tables.size() < m.num_imported_tables) invariant_broken();
  if (m.memories.size() < m.num_imported_memories) invariant_broken();
  for (const auto& f : m.functions) {
    if (f.body_begin >= f.body_end || !in_bounds(m, f.body_begin, f.body_end - f.body_begin))
      invariant_broken();
    if (m.bytes[f.body_end - 1] != 0x0B) invariant_broken(); // the final `end`
  }
  for (const auto& d : m.datas)
    if (!in_bounds(m, d.begin, d.size)) invariant_broken();
  for (const auto& c : m.customs)
    if (!in_bounds(m, c.begin, c.size)) invariant_broken();
  if (m.data_count && *m.data_count != m.datas.size()) invariant_broken();
}

bool is_value_type(tern::wasm::ValType t) {
  using enum tern::wasm::ValType;
  return t == I32 || t == I64 || t == F32 || t == F64 || t == FuncRef || t == ExternRef;
}

// What the validator promises about each function of a module it accepted:
// stable points sorted inside the body, starting with the function entry,
// each with a slice of exactly known types no higher than the maximum.
void check_validated(const Module& m) {
  using tern::wasm::StablePointKind;
  for (const auto& f : m.functions) {
    const auto& info = f.info;
    if (info.stable_points.empty()) invariant_broken();
    const auto& entry = info.stable_points.front();
    if (entry.kind != StablePointKind::FunctionEntry || entry.offset != f.body_begin ||
        entry.stack_height != 0)
      invariant_broken();
    uint32_t last = f.body_begin;
    for (const auto& p : info.stable_points) {
      if (p.offset < last || p.offset >= f.body_end) invariant_broken();
      last = p.offset;
      if (p.stack_height > info.max_stack_height) invariant_broken();
      if (uint64_t(p.types_begin) + p.stack_height > info.stack_types.size()) invariant_broken();
      for (auto t : info.types_at(p))
        if (!is_value_type(t)) invariant_broken();
    }
  }
}

// Imports are satisfied with fresh objects of the declared types; host
// functions return zeros.
std::vector<tern::runtime::Extern> stub_imports(tern::runtime::Store& store, const Module& m) {
  using namespace tern::runtime;
  std::vector<Extern> out;
  for (const auto& imp : m.imports) {
    switch (imp.kind) {
    case tern::wasm::ExternKind::Func:
      out.push_back(Extern::of(store.add_host_function(
          {m.types[imp.func_type],
           [](CallContext&, std::span<const Slot>, std::span<Slot> results) {
             for (auto& r : results) r = 0;
             return HostResult::ok();
           },
           imp.module, imp.name})));
      break;
    case tern::wasm::ExternKind::Table:
      out.push_back(Extern::of(store.add_table(imp.table, kNullRef)));
      break;
    case tern::wasm::ExternKind::Memory:
      out.push_back(Extern::of(store.add_memory(imp.memory)));
      break;
    case tern::wasm::ExternKind::Global:
      out.push_back(Extern::of(store.add_global(imp.global, 0)));
      break;
    }
  }
  return out;
}

// Runs every exported function with zero arguments; counting mode bounds
// each run to a number of stable points, so loops cannot hang the fuzzer.
void run_exports(const std::shared_ptr<Module>& module) {
  using namespace tern::runtime;
  for (const auto& mem : module->memories)
    if (mem.limits.min > 1024) return; // keep the fuzzer's memory use small
  Store store(tern::interp::make_engine());
  Thread thread(store, ThreadLimits{size_t(1) << 16, 2000});
  store.interrupt().set_counting(true);
  thread.stop_at = 20000;
  ModuleInstance* inst = nullptr;
  try {
    inst = store.instantiate(module, stub_imports(store, *module), thread);
  } catch (const InstantiationTrap&) {
    return;
  }
  for (const auto& e : module->exports) {
    if (e.kind != tern::wasm::ExternKind::Func) continue;
    FunctionInstance* f = inst->funcs[e.index];
    std::vector<Slot> args(f->type->params.size(), 0), results(f->type->results.size(), 0);
    thread.stable_points = 0;
    ExecOutcome out = store.engine().call(thread, f, args, results);
    if (out.kind == ExecOutcome::Kind::Suspended) {
      // Stopped by the bound: the wasm view must be capturable.
      store.engine().capture(thread);
      return; // the thread stays suspended; do not reuse it
    }
  }
}

void run_pipeline(const uint8_t* data, size_t size) {
  auto module =
      std::make_shared<Module>(tern::wasm::decode_module(std::vector<uint8_t>(data, data + size)));
  check_decoded(*module);
  tern::wasm::validate_module(*module);
  check_validated(*module);
  run_exports(module);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    run_pipeline(data, size);
  } catch (const tern::Error&) {
    // Rejected input: the expected outcome for most of it.
  }
  return 0;
}
