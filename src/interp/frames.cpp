// Suspended interpreter frames ↔ the wasm view (runtime/wasm_view.h).
//
// A frame's slots are [locals | operand stack] with the value at height h in
// slot num_locals + h at every stable point, so capture reads slots and
// restore writes them; the side table of stable points (CodePoint) gives
// the resume position and where a callee's frame starts.
#include "interp/exec.h"
#include "runtime/instance.h"
#include "runtime/store.h"
#include "runtime/view_frames.h"
#include "tern/error.h"
#include "tern/internal_error.h"

#include <algorithm>
#include <fmt/format.h>

namespace tern::interp {
namespace {

using runtime::FrameKind;
using runtime::FunctionInstance;
using runtime::ModuleInstance;
using runtime::Slot;
using wasm::StablePointKind;

const CompiledFunction& code_of(const FunctionInstance* f) {
  return *static_cast<const CompiledFunction*>(f->code);
}

} // namespace

runtime::ViewThread capture_thread(const runtime::Thread& thread) {
  runtime::ViewThread view;
  view.stable_points = thread.stable_points;
  runtime::ViewFrameBuilder builder;
  for (const runtime::Frame* f = thread.suspended_base + 1; f < thread.frame_top; ++f) {
    const bool innermost = f + 1 == thread.frame_top;
    const CompiledFunction& code = code_of(f->func);
    const uint32_t index = code.index_of(static_cast<const Word*>(f->pc));
    const CodePoint* point = innermost ? code.point_at_code(index) : code.point_resuming_at(index);
    if (!point) throw InternalError("a suspended frame is not at a stable point");
    const ModuleInstance& inst = *f->func->instance;
    const wasm::StablePoint* sp =
        inst.module().defined_func(f->func->index).info.find(point->wasm_offset, point->kind);
    if (!sp) throw InternalError("a suspended frame's point is not the validator's");
    // The frame's slots are [locals | operands]: the layout the builder takes.
    view.frames.push_back(builder.build(inst, f->func->index, *sp,
                                        runtime::frame_kind(point->kind, innermost), f->fp));
  }
  return view;
}

void restore_thread(runtime::Thread& thread, ModuleInstance& inst,
                    const runtime::ViewThread& view) {
  const std::vector<runtime::CheckedFrame> frames = runtime::check_view_thread(inst, view);
  runtime::Frame* const base = thread.frame_top;
  runtime::Frame* fsp = base + 1;
  Slot* fp = thread.slot_top;
  for (size_t i = 0; i < frames.size(); ++i) {
    const runtime::CheckedFrame& cf = frames[i];
    const bool innermost = i + 1 == frames.size();
    FunctionInstance* func = inst.funcs[cf.func_index];
    const CompiledFunction& code = translated(code_of(func));
    const CodePoint* point = code.point_at_wasm(cf.point->offset, cf.point->kind);
    if (!point)
      throw InternalError(fmt::format("no translated point at offset 0x{:x}", cf.point->offset));
    if (fsp >= thread.frames_end() || fp + code.frame_slots > thread.stack_end())
      throw Error("the snapshot's call stack does not fit in this thread");
    std::copy(cf.values.begin(), cf.values.end(), fp);
    const uint32_t pc_index = innermost ? point->code_index : point->resume_index;
    *fsp++ = runtime::Frame{code.entry() + pc_index, fp, func};
    // The callee's frame starts at the call's first argument.
    if (!innermost) fp += point->args_slot;
  }
  thread.frame_top = fsp;
  thread.suspended_base = base;
  thread.suspended_fp = thread.slot_top;
  thread.stable_points = view.stable_points;
}

runtime::ExecOutcome resume_thread(runtime::Thread& thread, std::span<Slot> results) {
  runtime::Frame* top = thread.frame_top - 1;
  const CompiledFunction& code = code_of(top->func);
  const Word* ip = static_cast<const Word*>(top->pc);
  // A loop header or entry poll already ran (and was counted) before the
  // stop; continue after it. A host call is issued again.
  if (const CodePoint* p = code.point_at_code(code.index_of(ip))) {
    if (p->kind == StablePointKind::LoopHeader) ip += 1;
    if (p->kind == StablePointKind::FunctionEntry) ip += 3;
  }
  Activation act;
  act.ip = ip;
  act.fp = top->fp;
  act.func = top->func;
  act.base = thread.suspended_base;
  act.frame_top = top;
  Slot* entry_fp = thread.suspended_fp;
  runtime::ExecOutcome out = execute(&thread, act);
  if (out.kind == runtime::ExecOutcome::Kind::Returned)
    std::copy_n(entry_fp, results.size(), results.begin());
  if (out.kind != runtime::ExecOutcome::Kind::Suspended) {
    thread.frame_top = act.base;
    thread.slot_top = entry_fp;
    thread.suspended_base = nullptr;
    thread.suspended_fp = nullptr;
  }
  return out;
}

} // namespace tern::interp
