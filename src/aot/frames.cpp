// Saved frames of compiled code ↔ the wasm view (runtime/wasm_view.h).
//
// A frame saved by unwinding holds the function's locals, then the
// operands live at its point, in stack order: none at a function entry,
// all of them at a loop header and at a host call (whose arguments, and
// call_indirect's index, are on top), and those below the arguments at a
// wasm call site. Those are exactly the view's operands, so converting is a
// matter of types; restoring additionally checks that the view fits the
// module, because compiled code trusts what it reloads.
#include "aot/engine_state.h"
#include "tern/error.h"

#include <fmt/format.h>

namespace tern::aot {
namespace {

using runtime::FrameKind;
using wasm::StablePointKind;

wasm::Instr instr_at(const wasm::Module& m, uint32_t func_index, uint32_t offset) {
  const wasm::Function& fn = m.defined_func(func_index);
  wasm::ByteReader bytes(std::span<const uint8_t>(m.bytes).subspan(offset, fn.body_end - offset),
                         offset);
  wasm::InstrReader reader(bytes);
  wasm::Instr in;
  reader.next(in);
  return in;
}

uint32_t call_arity(const wasm::Module& m, const wasm::Instr& in) {
  if (in.op == wasm::Op::Call) return uint32_t(m.func_type(in.a).params.size());
  return uint32_t(m.types[in.a].params.size()) + 1; // call_indirect: and the index
}

uint32_t live_operands(const wasm::Module& m, uint32_t func_index, uint32_t point, FrameKind kind) {
  const wasm::StablePoint& p = m.defined_func(func_index).info.stable_points[point];
  switch (kind) {
  case FrameKind::FunctionEntry:
    return 0;
  case FrameKind::LoopHeader:
  case FrameKind::HostCall:
    return p.stack_height;
  case FrameKind::CallSite:
    return operands_below_call(m, func_index, point);
  }
  return 0;
}

StablePointKind point_kind_of(FrameKind k) {
  switch (k) {
  case FrameKind::FunctionEntry:
    return StablePointKind::FunctionEntry;
  case FrameKind::LoopHeader:
    return StablePointKind::LoopHeader;
  default:
    return StablePointKind::CallSite;
  }
}

// Checks that frame `i` can continue into frame `i + 1` (its callee), or,
// for the innermost frame, that compiled code can resume at it.
void check_call(const wasm::Module& m, const runtime::ViewThread& view, size_t i) {
  const runtime::ViewFrame& vf = view.frames[i];
  if (vf.kind != FrameKind::CallSite && vf.kind != FrameKind::HostCall) return;
  const wasm::Instr in = instr_at(m, vf.func_index, vf.wasm_offset);
  if (vf.kind == FrameKind::HostCall) {
    if (in.op == wasm::Op::Call && !m.is_imported_func(in.a))
      throw Error(
          fmt::format("frame {}: a host call frame at a call of the module's own function", i));
    return;
  }
  const runtime::ViewFrame& callee = view.frames[i + 1];
  if (callee.func_index < m.num_imported_funcs || callee.func_index >= m.func_types.size())
    throw Error(fmt::format("frame {}: function {} is not defined by the module", i + 1,
                            callee.func_index));
  if (in.op == wasm::Op::Call) {
    if (m.is_imported_func(in.a))
      throw Error(fmt::format("frame {}: frames across module instances cannot be restored", i));
    if (callee.func_index != in.a)
      throw Error(fmt::format("frame {}: it calls function {}, but the next frame is function {}",
                              i, in.a, callee.func_index));
  } else if (m.func_type(callee.func_index) != m.types[in.a]) {
    throw Error(
        fmt::format("frame {}: the next frame's function does not have the type called", i));
  }
}

} // namespace

uint32_t operands_below_call(const wasm::Module& m, uint32_t func_index, uint32_t point) {
  const wasm::StablePoint& p = m.defined_func(func_index).info.stable_points[point];
  return p.stack_height - call_arity(m, instr_at(m, func_index, p.offset));
}

runtime::ViewThread capture_frames(const ThreadState& ts) {
  runtime::ViewThread view;
  for (auto it = ts.saved.rbegin(); it != ts.saved.rend(); ++it) {
    const SavedFrame& f = *it;
    const runtime::ModuleInstance& inst = *f.inst->instance;
    const wasm::Module& m = inst.module();
    const wasm::FunctionInfo& info = m.defined_func(f.func_index).info;
    const wasm::StablePoint& point = info.stable_points[f.point];
    runtime::ViewFrame vf;
    vf.func_index = f.func_index;
    vf.wasm_offset = point.offset;
    vf.kind = f.kind;
    const auto locals = runtime::local_types(m, f.func_index);
    const auto types = info.types_at(point);
    const uint32_t height = live_operands(m, f.func_index, f.point, f.kind);
    if (f.count < locals.size() + height)
      throw Error("internal error: a saved frame is shorter than its point needs");
    const uint64_t* values = ts.saved_values.data() + f.first;
    for (size_t i = 0; i < locals.size(); ++i)
      vf.locals.push_back(runtime::to_view(inst, locals[i], values[i], "a local"));
    for (uint32_t i = 0; i < height; ++i)
      vf.stack.push_back(runtime::to_view(inst, types[i], values[locals.size() + i], "an operand"));
    view.frames.push_back(std::move(vf));
  }
  return view;
}

void restore_frames(ThreadState& ts, InstanceRecord& rec, const runtime::ViewThread& view) {
  if (view.frames.empty()) throw Error("the snapshot's thread has no frames");
  const runtime::ModuleInstance& inst = *rec.instance;
  const wasm::Module& m = inst.module();
  std::vector<SavedFrame> frames;
  std::vector<uint64_t> values;
  for (size_t i = 0; i < view.frames.size(); ++i) {
    const runtime::ViewFrame& vf = view.frames[i];
    const bool innermost = i + 1 == view.frames.size();
    if (vf.func_index < m.num_imported_funcs || vf.func_index >= m.func_types.size())
      throw Error(
          fmt::format("frame {}: function {} is not defined by the module", i, vf.func_index));
    if (innermost == (vf.kind == FrameKind::CallSite))
      throw Error(fmt::format("frame {}: a {} frame cannot be {}", i,
                              vf.kind == FrameKind::CallSite ? "call-site" : "stopped",
                              innermost ? "innermost" : "a caller"));
    const wasm::FunctionInfo& info = m.defined_func(vf.func_index).info;
    const wasm::StablePoint* point = info.find(vf.wasm_offset, point_kind_of(vf.kind));
    if (!point)
      throw Error(fmt::format("frame {}: no stable point at offset 0x{:x} in {}", i, vf.wasm_offset,
                              m.func_name(vf.func_index)));
    check_call(m, view, i);
    SavedFrame f;
    f.inst = &rec;
    f.func_index = vf.func_index;
    f.point = uint32_t(point - info.stable_points.data());
    f.kind = vf.kind;
    const auto locals = runtime::local_types(m, vf.func_index);
    const auto types = info.types_at(*point);
    const uint32_t height = live_operands(m, vf.func_index, f.point, vf.kind);
    if (vf.locals.size() != locals.size() || vf.stack.size() != height)
      throw Error(fmt::format("frame {} ({}): {} locals and {} operands saved, {} and {} expected",
                              i, m.func_name(vf.func_index), vf.locals.size(), vf.stack.size(),
                              locals.size(), height));
    f.first = values.size();
    f.count = uint32_t(locals.size() + height);
    for (size_t k = 0; k < locals.size(); ++k) {
      if (vf.locals[k].type != locals[k])
        throw Error(fmt::format("frame {}: local {} has the wrong type", i, k));
      values.push_back(
          runtime::from_view(inst, vf.locals[k], fmt::format("frame {} local {}", i, k)));
    }
    for (uint32_t k = 0; k < height; ++k) {
      if (vf.stack[k].type != types[k])
        throw Error(fmt::format("frame {}: operand {} has the wrong type", i, k));
      values.push_back(
          runtime::from_view(inst, vf.stack[k], fmt::format("frame {} operand {}", i, k)));
    }
    frames.push_back(f);
  }
  ts.rewind = std::move(frames);
  ts.rewind_values = std::move(values);
}

} // namespace tern::aot
