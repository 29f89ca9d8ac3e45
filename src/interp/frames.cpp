// Suspended interpreter frames ↔ the wasm view (runtime/wasm_view.h).
//
// A frame's slots are [locals | operand stack] with the value at height h in
// slot num_locals + h at every stable point, so capture reads slots and
// restore writes them; the side table of stable points (CodePoint) gives
// the resume position and where a callee's frame starts.
#include "interp/exec.h"
#include "runtime/instance.h"
#include "runtime/store.h"
#include "tern/error.h"
#include "wasm/liveness.h"

#include <algorithm>
#include <fmt/format.h>

namespace tern::interp {
namespace {

using runtime::FrameKind;
using runtime::from_view;
using runtime::FunctionInstance;
using runtime::local_types;
using runtime::ModuleInstance;
using runtime::Slot;
using runtime::to_view;
using runtime::ViewValue;
using wasm::StablePointKind;
using wasm::ValType;

const CompiledFunction& code_of(const FunctionInstance* f) {
  return *static_cast<const CompiledFunction*>(f->code);
}

// The validator's record of the operand types at a point.
std::span<const ValType> stack_types_at(const wasm::Function& fn, uint32_t offset,
                                        StablePointKind kind) {
  const wasm::StablePoint* p = fn.info.find(offset, kind);
  if (!p) return {};
  return fn.info.types_at(*p);
}

StablePointKind code_kind(FrameKind k) {
  switch (k) {
  case FrameKind::FunctionEntry:
    return StablePointKind::FunctionEntry;
  case FrameKind::LoopHeader:
    return StablePointKind::LoopHeader;
  case FrameKind::CallSite:
  case FrameKind::HostCall:
    return StablePointKind::CallSite;
  }
  return StablePointKind::CallSite;
}

// Operands live at a point: call sites keep their arguments only while a
// host call is re-issued.
uint32_t live_height(const CodePoint& p, FrameKind kind, size_t validator_height) {
  return kind == FrameKind::HostCall ? static_cast<uint32_t>(validator_height) : p.stack_height;
}

} // namespace

runtime::ViewThread capture_thread(const runtime::Thread& thread) {
  runtime::ViewThread view;
  view.stable_points = thread.stable_points;
  for (const runtime::Frame* f = thread.suspended_base + 1; f < thread.frame_top; ++f) {
    const bool innermost = f + 1 == thread.frame_top;
    const CompiledFunction& code = code_of(f->func);
    const uint32_t index = code.index_of(static_cast<const Word*>(f->pc));
    const CodePoint* point = innermost ? code.point_at_code(index) : code.point_resuming_at(index);
    if (!point) throw Error("internal error: a suspended frame is not at a stable point");
    runtime::ViewFrame vf;
    vf.func_index = f->func->index;
    vf.wasm_offset = point->wasm_offset;
    switch (point->kind) {
    case StablePointKind::FunctionEntry:
      vf.kind = FrameKind::FunctionEntry;
      break;
    case StablePointKind::LoopHeader:
      vf.kind = FrameKind::LoopHeader;
      break;
    case StablePointKind::CallSite:
      vf.kind = innermost ? FrameKind::HostCall : FrameKind::CallSite;
      break;
    }
    const ModuleInstance& inst = *f->func->instance;
    const wasm::Module& m = inst.module();
    const auto locals = local_types(m, vf.func_index);
    // Dead locals are zero in the view (wasm/liveness.h), as in every engine.
    const wasm::FunctionInfo& info = m.defined_func(vf.func_index).info;
    const wasm::StablePoint* sp = info.find(point->wasm_offset, point->kind);
    const wasm::LocalLiveness liveness(m, vf.func_index);
    for (size_t i = 0; i < locals.size(); ++i) {
      const bool live = sp && liveness.live(uint32_t(sp - info.stable_points.data()), uint32_t(i));
      vf.locals.push_back(live ? runtime::to_view(inst, locals[i], f->fp[i], "a local")
                               : runtime::ViewValue{locals[i], 0});
    }
    auto types = stack_types_at(m.defined_func(vf.func_index), point->wasm_offset, point->kind);
    const uint32_t height = live_height(*point, vf.kind, types.size());
    if (height > types.size())
      throw Error("internal error: the validator has no types for a suspended frame");
    for (uint32_t i = 0; i < height; ++i)
      vf.stack.push_back(
          runtime::to_view(inst, types[i], f->fp[code.num_locals + i], "an operand"));
    view.frames.push_back(std::move(vf));
  }
  return view;
}

void restore_thread(runtime::Thread& thread, ModuleInstance& inst,
                    const runtime::ViewThread& view) {
  if (view.frames.empty()) throw Error("the snapshot's thread has no frames");
  const wasm::Module& m = inst.module();
  runtime::Frame* const base = thread.frame_top;
  runtime::Frame* fsp = base + 1;
  Slot* fp = thread.slot_top;
  for (size_t i = 0; i < view.frames.size(); ++i) {
    const runtime::ViewFrame& vf = view.frames[i];
    const bool innermost = i + 1 == view.frames.size();
    if (vf.func_index < m.num_imported_funcs || vf.func_index >= inst.funcs.size())
      throw Error(
          fmt::format("frame {}: function {} is not defined by the module", i, vf.func_index));
    if (innermost == (vf.kind == FrameKind::CallSite))
      throw Error(fmt::format("frame {}: a {} frame cannot be {}", i,
                              vf.kind == FrameKind::CallSite ? "call-site" : "stopped",
                              innermost ? "innermost" : "a caller"));
    FunctionInstance* func = inst.funcs[vf.func_index];
    const CompiledFunction& code = code_of(func);
    const CodePoint* point = code.point_at_wasm(vf.wasm_offset, code_kind(vf.kind));
    if (!point)
      throw Error(fmt::format("frame {}: no stable point at offset 0x{:x} in {}", i, vf.wasm_offset,
                              m.func_name(vf.func_index)));
    if (fsp >= thread.frames_end() || fp + code.frame_slots > thread.stack_end())
      throw Error("the snapshot's call stack does not fit in this thread");

    const auto locals = local_types(m, vf.func_index);
    auto types = stack_types_at(m.defined_func(vf.func_index), point->wasm_offset, point->kind);
    const uint32_t height = live_height(*point, vf.kind, types.size());
    if (height > types.size())
      throw Error(
          fmt::format("frame {}: no operand types recorded at offset 0x{:x}", i, vf.wasm_offset));
    if (vf.locals.size() != locals.size() || vf.stack.size() != height)
      throw Error(fmt::format("frame {} ({}): {} locals and {} operands saved, {} and {} expected",
                              i, m.func_name(vf.func_index), vf.locals.size(), vf.stack.size(),
                              locals.size(), height));
    for (size_t k = 0; k < locals.size(); ++k) {
      if (vf.locals[k].type != locals[k])
        throw Error(fmt::format("frame {}: local {} has the wrong type", i, k));
      fp[k] = runtime::from_view(inst, vf.locals[k], fmt::format("frame {} local {}", i, k));
    }
    for (uint32_t k = 0; k < height; ++k) {
      if (vf.stack[k].type != types[k])
        throw Error(fmt::format("frame {}: operand {} has the wrong type", i, k));
      fp[code.num_locals + k] =
          runtime::from_view(inst, vf.stack[k], fmt::format("frame {} operand {}", i, k));
    }
    const uint32_t pc_index = innermost ? point->code_index : point->resume_index;
    *fsp++ = runtime::Frame{code.entry() + pc_index, fp, func};
    if (!innermost) {
      // The callee's frame starts at the call's first argument.
      const runtime::ViewFrame& callee = view.frames[i + 1];
      if (callee.func_index >= inst.funcs.size() ||
          callee.locals.size() < inst.funcs[callee.func_index]->type->params.size())
        throw Error(fmt::format("frame {}: the callee frame does not match the call", i + 1));
      fp += point->args_slot;
    }
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
