// The AOT engine: binds compiled code to instances, enters it (with a jump
// buffer for traps and faults), and continues suspended threads by
// rewinding (docs/aot.md).
#include "aot/engine.h"

#include "aot/engine_state.h"
#include "runtime/store.h"
#include "tern/error.h"
#include "tern/internal_error.h"
#include "util/trace_time.h"

#include <fmt/format.h>
#include <map>

namespace tern::aot {
namespace {

using runtime::ExecOutcome;
using runtime::Slot;

class AotEngine final : public runtime::Engine {
public:
  explicit AotEngine(CodeProvider provider) : provider_(std::move(provider)) {
    install_fault_handler();
  }

  void prepare(runtime::ModuleInstance& inst) override;
  // Only code compiled with wide addresses reads through the mirror views;
  // other code gets a private memory, which a forked snapshot writer sees
  // copy-on-write (a mirrored one must be copied in the pause).
  bool wants_mirrored_memories(const runtime::ModuleInstance& inst) override {
    return code_for(inst).code->info().flags & kWideAddresses;
  }
  std::unique_ptr<runtime::Engine> for_new_thread() override;
  ExecOutcome call(runtime::Thread& thread, runtime::FunctionInstance* func,
                   std::span<const Slot> args, std::span<Slot> results) override;
  runtime::ViewThread capture(const runtime::Thread& thread) const override;
  void restore(runtime::Thread& thread, runtime::ModuleInstance& instance,
               const runtime::ViewThread& view) override;
  ExecOutcome resume(runtime::Thread& thread, std::span<Slot> results) override;

private:
  struct ModuleCode {
    std::shared_ptr<const wasm::Module> module; // kept alive with its code
    std::shared_ptr<const CodeImage> code;
  };
  const ModuleCode& code_for(const runtime::ModuleInstance& inst);
  ThreadState& state(runtime::Thread& thread);
  InstanceRecord& record_of(const runtime::ModuleInstance& inst);
  // Calls `entry` through its type's trampoline with `slots`.
  ExecOutcome enter(ThreadState& ts, const runtime::FunctionInstance* func, uint64_t* slots);

  CodeProvider provider_;
  std::map<const wasm::Module*, ModuleCode> modules_;
  std::deque<InstanceRecord> instances_;
  std::map<const runtime::Thread*, std::unique_ptr<ThreadState>> threads_;
};

ExecOutcome trapped(runtime::TrapKind kind) {
  runtime::Trap t;
  t.kind = kind;
  t.message = std::string(runtime::trap_message(kind));
  return ExecOutcome::trapped(std::move(t));
}

const AotEngine::ModuleCode& AotEngine::code_for(const runtime::ModuleInstance& inst) {
  auto it = modules_.find(&inst.module());
  if (it != modules_.end()) return it->second;
  const util::Sha256Digest hash = inst.module().sha256();
  ModuleCode mc{inst.module_ptr(), provider_(inst.module(), hash)};
  util::trace_time("compiled code loaded");
  return modules_.emplace(&inst.module(), std::move(mc)).first->second;
}

// The code this engine loaded, shared (a CodeImage is immutable once
// loaded); other modules still come from the provider.
std::unique_ptr<runtime::Engine> AotEngine::for_new_thread() {
  auto loaded = std::make_shared<std::map<const wasm::Module*, ModuleCode>>(modules_);
  return std::make_unique<AotEngine>(
      [loaded, provider = provider_](const wasm::Module& m, const util::Sha256Digest& hash) {
        auto it = loaded->find(&m);
        return it != loaded->end() ? it->second.code : provider(m, hash);
      });
}

void AotEngine::prepare(runtime::ModuleInstance& inst) {
  const wasm::Module& m = inst.module();
  const ModuleCode& mc = code_for(inst);
  const ModuleInfo& info = mc.code->info();
  if (info.num_functions != m.functions.size() || info.num_types != m.types.size())
    throw Error("the compiled code does not match the module (function or type count)");
  runtime::Memory* mem = inst.memory0();
  if (mem && !(info.flags & kBoundsChecks) && !mem->has_guard_region())
    throw Error("the compiled code relies on guard pages, but this host could not reserve "
                "them for the memory (address-space limit?); use --mode interp");
  if (mem && (info.flags & kWideAddresses) && !mem->mirrored())
    throw Error("the compiled code needs a mirrored memory, which this host could not map "
                "(memfd, address space); use --mode interp");

  InstanceRecord& rec = instances_.emplace_back();
  rec.instance = &inst;
  rec.code = mc.code;
  for (const wasm::FuncType& t : m.types) rec.type_ids.push_back(inst.store().intern_type(t));
  for (runtime::Table* t : inst.tables) rec.tables.push_back(t->bounds());
  rec.funcs.resize(inst.funcs.size());
  for (uint32_t i = 0; i < inst.funcs.size(); ++i) {
    runtime::FunctionInstance* f = inst.funcs[i];
    if (i >= m.num_imported_funcs) {
      rec.funcs[i] = {info.functions[i - m.num_imported_funcs], &rec.vm};
      f->code = &rec.funcs[i];
    } else if (f->is_host()) {
      HostImport& hi = rec.host_imports.emplace_back(HostImport{f, &rec.vm});
      rec.funcs[i] = {info.host_stubs[m.func_types[i]], &hi};
      if (!f->code) f->code = &rec.funcs[i]; // for call_indirect through tables
    } else {
      if (!f->code) throw InternalError("an imported function has no compiled code");
      rec.funcs[i] = *static_cast<const VmFunc*>(f->code);
    }
  }
  rec.vm.mem_base = mem ? mem->base() : nullptr;
  rec.vm.mem = mem ? mem->bounds() : nullptr;
  rec.vm.mem_mirror = mem ? mem->mirror_base() : nullptr;
  rec.vm.globals = inst.globals.data();
  rec.vm.tables = rec.tables.data();
  rec.vm.funcs = rec.funcs.data();
  rec.vm.func_refs = inst.funcs.data();
  rec.vm.type_ids = rec.type_ids.data();
  rec.vm.runtime = &rec;
  if (mem && mem->has_guard_region()) register_guard_region(mem->base(), mem->reserved());
  inst.engine_code = mc.code;
}

ThreadState& AotEngine::state(runtime::Thread& thread) {
  auto& p = threads_[&thread];
  if (!p) {
    p = std::make_unique<ThreadState>();
    p->thread = &thread;
    p->vm.owner = p.get();
    thread.store().interrupt().add_mirror(&p->vm.limit_and_flags, kFlagShift);
  }
  return *p;
}

InstanceRecord& AotEngine::record_of(const runtime::ModuleInstance& inst) {
  for (InstanceRecord& rec : instances_)
    if (rec.instance == &inst) return rec;
  throw InternalError("the instance was not prepared by this engine");
}

ExecOutcome AotEngine::enter(ThreadState& ts, const runtime::FunctionInstance* func,
                             uint64_t* slots) {
  const VmFunc* vf = static_cast<const VmFunc*>(func->code);
  InstanceRecord& rec = InstanceRecord::of(static_cast<const VmInstance*>(vf->ctx));
  auto trampoline = reinterpret_cast<Trampoline>(
      const_cast<void*>(rec.code->info().trampolines[rec.module().func_types[func->index]]));
  prepare_os_thread(ts);
  sigjmp_buf jump;
  sigjmp_buf* const outer_jump = ts.jump;
  const bool outer_in_wasm = ts.in_wasm;
  ThreadState* const outer_current = current_thread();
  ts.jump = &jump;
  ts.in_wasm = true;
  ts.exit = Exit::None;
  ts.vm.unwinding = 0;
  current_thread() = &ts;
  if (sigsetjmp(jump, 0) == 0) trampoline(&ts.vm, vf->ctx, vf->entry, slots);
  ts.jump = outer_jump;
  ts.in_wasm = outer_in_wasm;
  current_thread() = outer_current;
  switch (ts.exit) {
  case Exit::Fault:
    return trapped(runtime::TrapKind::MemoryOutOfBounds);
  case Exit::Trap:
    return ExecOutcome::trapped(std::move(ts.trap));
  case Exit::ProcExit:
    return ExecOutcome::exited(ts.exit_code);
  case Exit::None:
    break;
  }
  if (ts.vm.unwinding) {
    ExecOutcome out;
    out.kind = ExecOutcome::Kind::Suspended;
    return out;
  }
  return ExecOutcome::returned();
}

ExecOutcome AotEngine::call(runtime::Thread& thread, runtime::FunctionInstance* func,
                            std::span<const Slot> args, std::span<Slot> results) {
  if (func->is_host()) {
    runtime::CallContext ctx{thread, nullptr};
    runtime::HostResult r = func->host->callback(ctx, args, results);
    if (r.status == runtime::HostStatus::Ok) return ExecOutcome::returned();
    if (r.status == runtime::HostStatus::Exit) return ExecOutcome::exited(r.exit_code);
    runtime::Trap t;
    t.kind = runtime::TrapKind::Host;
    t.message =
        r.status == runtime::HostStatus::Trap ? r.message : "host function suspended outside wasm";
    return ExecOutcome::trapped(std::move(t));
  }
  ThreadState& ts = state(thread);
  std::vector<uint64_t> slots(std::max({args.size(), results.size(), size_t(1)}));
  std::copy(args.begin(), args.end(), slots.begin());
  if (!ts.jump) { // outermost: a new computation, nothing saved from before
    ts.saved.clear();
    ts.saved_values.clear();
  }
  ExecOutcome out = enter(ts, func, slots.data());
  if (out.kind == ExecOutcome::Kind::Returned)
    std::copy_n(slots.begin(), results.size(), results.begin());
  return out;
}

runtime::ViewThread AotEngine::capture(const runtime::Thread& thread) const {
  auto it = threads_.find(&thread);
  if (it == threads_.end() || (it->second->saved.empty() && it->second->rewind.empty()))
    throw InternalError("the thread is not suspended at a stable point");
  runtime::ViewThread view = capture_frames(*it->second);
  view.stable_points = thread.stable_points;
  return view;
}

void AotEngine::restore(runtime::Thread& thread, runtime::ModuleInstance& instance,
                        const runtime::ViewThread& view) {
  InstanceRecord& rec = record_of(instance);
  if (!(rec.code->info().flags & kStablePoints))
    throw Error("this module's compiled code has no stable points (compiled with "
                "--no-stable-points): it cannot continue a snapshot");
  ThreadState& ts = state(thread);
  restore_frames(ts, rec, view);
  ts.saved.clear();
  ts.saved_values.clear();
  thread.stable_points = view.stable_points;
}

ExecOutcome AotEngine::resume(runtime::Thread& thread, std::span<Slot> results) {
  ThreadState& ts = state(thread);
  if (ts.rewind.empty()) { // suspended here: rebuild from the frames just saved
    if (ts.saved.empty()) throw InternalError("the thread has nothing to resume");
    ts.rewind.assign(ts.saved.rbegin(), ts.saved.rend());
    ts.rewind_values = std::move(ts.saved_values);
  }
  ts.saved.clear();
  ts.saved_values.clear();
  const SavedFrame& outermost = ts.rewind.front();
  runtime::FunctionInstance* func = outermost.inst->instance->funcs[outermost.func_index];
  std::vector<uint64_t> slots(std::max({func->type->params.size(), results.size(), size_t(1)}));
  ts.rewind_next = 0;
  ts.skip_next_count = false;
  ts.rewinding = true;
  ts.vm.limit_and_flags.fetch_or(kRewindingBit);
  ExecOutcome out = enter(ts, func, slots.data());
  if (ts.rewinding) finish_rewind(ts); // stopped before the innermost point (a trap)
  ts.rewind.clear();
  ts.rewind_values.clear();
  if (out.kind == ExecOutcome::Kind::Returned)
    std::copy_n(slots.begin(), results.size(), results.begin());
  return out;
}

// Builds the trap in the thread; kept apart from the jump so that its
// temporaries are gone before it.
void record_trap(ThreadState& ts, runtime::TrapKind kind, uint32_t func_index, uint32_t wasm_offset,
                 uint32_t detail) {
  ts.exit = Exit::Trap;
  ts.trap = {};
  ts.trap.kind = kind;
  ts.trap.message = std::string(runtime::trap_message(kind));
  if (kind == runtime::TrapKind::IndirectCallOutOfRange ||
      kind == runtime::TrapKind::IndirectCallNull)
    ts.trap.message += fmt::format(" {}", detail);
  if (kind == runtime::TrapKind::Unreachable && detail == 1)
    ts.trap.message = "internal error: a thread was rewound to a point its code does not have";
  if (func_index != ~0u) ts.trap.backtrace.push_back({func_index, wasm_offset, {}});
}

} // namespace

void raise_trap(ThreadState& ts, runtime::TrapKind kind, uint32_t func_index, uint32_t wasm_offset,
                uint32_t detail) {
  record_trap(ts, kind, func_index, wasm_offset, detail);
  jump_out(ts);
}

void finish_rewind(ThreadState& ts) {
  ts.rewinding = false;
  ts.vm.limit_and_flags.fetch_and(~kRewindingBit);
}

std::unique_ptr<runtime::Engine> make_engine(CodeProvider provider) {
  return std::make_unique<AotEngine>(std::move(provider));
}

} // namespace tern::aot
