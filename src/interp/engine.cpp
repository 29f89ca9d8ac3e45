#include "interp/engine.h"

#include "interp/exec.h"
#include "runtime/instance.h"
#include "runtime/store.h"
#include "tern/error.h"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>

namespace tern::interp {
namespace {

using runtime::ExecOutcome;
using runtime::Slot;

class InterpEngine final : public runtime::Engine {
public:
  void prepare(runtime::ModuleInstance& inst) override {
    const wasm::Module& module = inst.module();
    std::vector<uint32_t> type_ids;
    type_ids.reserve(module.types.size());
    for (const auto& t : module.types) type_ids.push_back(inst.store().intern_type(t));
    auto code = std::make_shared<CompiledModule>(module, std::move(type_ids));
    for (uint32_t i = 0; i < code->funcs.size(); ++i)
      inst.funcs[module.num_imported_funcs + i]->code = &code->funcs[i];
    inst.engine_code = std::move(code);
  }

  // Code is per instance anyway (type ids are the store's).
  std::unique_ptr<runtime::Engine> for_new_thread() override {
    return std::make_unique<InterpEngine>();
  }

  ExecOutcome call(runtime::Thread& thread, runtime::FunctionInstance* func,
                   std::span<const Slot> args, std::span<Slot> results) override {
    if (func->is_host()) return call_host(thread, func, args, results);
    runtime::Frame* base = thread.frame_top;
    if (base == thread.frames_end()) return exhausted();
    Slot* fp = thread.slot_top;
    std::copy(args.begin(), args.end(), fp);
    Activation act;
    act.ip = static_cast<const CompiledFunction*>(func->code)->entry();
    act.fp = fp;
    act.func = func;
    act.base = base;
    act.frame_top = base + 1;
    ExecOutcome out = execute(&thread, act);
    if (out.kind == ExecOutcome::Kind::Returned) std::copy_n(fp, results.size(), results.begin());
    if (out.kind == ExecOutcome::Kind::Suspended) {
      thread.suspended_fp = fp;
    } else {
      thread.frame_top = base;
      thread.slot_top = fp;
    }
    return out;
  }

  runtime::ViewThread capture(const runtime::Thread& thread) const override {
    return capture_thread(thread);
  }
  void restore(runtime::Thread& thread, runtime::ModuleInstance& instance,
               const runtime::ViewThread& view) override {
    restore_thread(thread, instance, view);
  }
  ExecOutcome resume(runtime::Thread& thread, std::span<Slot> results) override {
    return resume_thread(thread, results);
  }

private:
  static ExecOutcome exhausted() {
    runtime::Trap t;
    t.kind = runtime::TrapKind::CallStackExhausted;
    t.message = std::string(runtime::trap_message(t.kind));
    return ExecOutcome::trapped(std::move(t));
  }

  static ExecOutcome call_host(runtime::Thread& thread, runtime::FunctionInstance* func,
                               std::span<const Slot> args, std::span<Slot> results) {
    runtime::CallContext ctx{thread, nullptr};
    runtime::HostResult r = func->host->callback(ctx, args, results);
    switch (r.status) {
    case runtime::HostStatus::Ok:
      return ExecOutcome::returned();
    case runtime::HostStatus::Exit:
      return ExecOutcome::exited(r.exit_code);
    case runtime::HostStatus::Trap:
    case runtime::HostStatus::Suspend: {
      runtime::Trap t;
      t.kind = runtime::TrapKind::Host;
      t.message = r.status == runtime::HostStatus::Trap ? r.message
                                                        : "host function suspended outside wasm";
      return ExecOutcome::trapped(std::move(t));
    }
    }
    return ExecOutcome::returned();
  }
};

} // namespace

std::unique_ptr<runtime::Engine> make_engine() {
  return std::make_unique<InterpEngine>();
}

} // namespace tern::interp
