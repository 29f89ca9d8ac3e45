#include "runtime/view_frames.h"

#include "runtime/instance.h"
#include "tern/error.h"
#include "wasm/instr.h"

#include <fmt/format.h>

namespace tern::runtime {
namespace {

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

// Operands a call takes: its arguments, and call_indirect's table index.
uint32_t call_arity(const wasm::Module& m, const wasm::Instr& in) {
  if (in.op == wasm::Op::Call) return uint32_t(m.func_type(in.a).params.size());
  return uint32_t(m.types[in.a].params.size()) + 1;
}

void check_defined(const wasm::Module& m, size_t frame, uint32_t func_index) {
  if (func_index < m.num_imported_funcs || func_index >= m.func_types.size())
    throw Error(
        fmt::format("frame {}: function {} is not defined by the module", frame, func_index));
}

// Frame `i` (a call site or host call) against the instruction at its point
// and, for a wasm call, the next frame.
void check_call(const wasm::Module& m, const ViewThread& view, size_t i) {
  const ViewFrame& vf = view.frames[i];
  const wasm::Instr in = instr_at(m, vf.func_index, vf.wasm_offset);
  if (vf.kind == FrameKind::HostCall) {
    if (in.op == wasm::Op::Call && !m.is_imported_func(in.a))
      throw Error(
          fmt::format("frame {}: a host call frame at a call of the module's own function", i));
    return;
  }
  const ViewFrame& callee = view.frames[i + 1];
  check_defined(m, i + 1, callee.func_index);
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

StablePointKind point_kind(FrameKind kind) {
  switch (kind) {
  case FrameKind::FunctionEntry:
    return StablePointKind::FunctionEntry;
  case FrameKind::LoopHeader:
    return StablePointKind::LoopHeader;
  case FrameKind::AtomicWait:
    return StablePointKind::AtomicWait;
  case FrameKind::CallSite:
  case FrameKind::HostCall:
    break;
  }
  return StablePointKind::CallSite;
}

FrameKind frame_kind(StablePointKind point, bool host_call) {
  switch (point) {
  case StablePointKind::FunctionEntry:
    return FrameKind::FunctionEntry;
  case StablePointKind::LoopHeader:
    return FrameKind::LoopHeader;
  case StablePointKind::AtomicWait:
    return FrameKind::AtomicWait;
  case StablePointKind::CallSite:
    break;
  }
  return host_call ? FrameKind::HostCall : FrameKind::CallSite;
}

uint32_t live_operands(const wasm::Module& m, uint32_t func_index, const wasm::StablePoint& p,
                       FrameKind kind) {
  switch (kind) {
  case FrameKind::FunctionEntry:
    return 0;
  case FrameKind::LoopHeader:
  case FrameKind::HostCall:
  case FrameKind::AtomicWait:
    return p.stack_height;
  case FrameKind::CallSite:
    break;
  }
  return p.stack_height - call_arity(m, instr_at(m, func_index, p.offset));
}

const wasm::LocalLiveness& ViewFrameBuilder::liveness(const wasm::Module& m, uint32_t func_index) {
  auto& entry = liveness_[{&m, func_index}];
  if (!entry) entry = std::make_unique<wasm::LocalLiveness>(m, func_index);
  return *entry;
}

ViewFrame ViewFrameBuilder::build(const ModuleInstance& inst, uint32_t func_index,
                                  const wasm::StablePoint& point, FrameKind kind,
                                  const Slot* values) {
  const wasm::Module& m = inst.module();
  const wasm::FunctionInfo& info = m.defined_func(func_index).info;
  const auto point_index = uint32_t(&point - info.stable_points.data());
  const wasm::LocalLiveness& live = liveness(m, func_index);
  const auto locals = local_types(m, func_index);
  const auto types = info.types_at(point);
  const uint32_t height = live_operands(m, func_index, point, kind);
  ViewFrame vf;
  vf.func_index = func_index;
  vf.wasm_offset = point.offset;
  vf.kind = kind;
  for (size_t i = 0; i < locals.size(); ++i)
    vf.locals.push_back(live.live(point_index, uint32_t(i))
                            ? to_view(inst, locals[i], values[i], "a local")
                            : ViewValue{locals[i], 0});
  for (uint32_t i = 0; i < height; ++i)
    vf.stack.push_back(to_view(inst, types[i], values[locals.size() + i], "an operand"));
  return vf;
}

std::vector<CheckedFrame> check_view_thread(const ModuleInstance& inst, const ViewThread& view) {
  if (view.frames.empty()) throw Error("the snapshot's thread has no frames");
  const wasm::Module& m = inst.module();
  std::vector<CheckedFrame> frames;
  for (size_t i = 0; i < view.frames.size(); ++i) {
    const ViewFrame& vf = view.frames[i];
    const bool innermost = i + 1 == view.frames.size();
    check_defined(m, i, vf.func_index);
    if (innermost == (vf.kind == FrameKind::CallSite))
      throw Error(fmt::format("frame {}: a {} frame cannot be {}", i,
                              vf.kind == FrameKind::CallSite ? "call-site" : "stopped",
                              innermost ? "innermost" : "a caller"));
    const wasm::FunctionInfo& info = m.defined_func(vf.func_index).info;
    const wasm::StablePoint* point = info.find(vf.wasm_offset, point_kind(vf.kind));
    if (!point)
      throw Error(fmt::format("frame {}: no stable point at offset 0x{:x} in {}", i, vf.wasm_offset,
                              m.func_name(vf.func_index)));
    if (vf.kind == FrameKind::CallSite || vf.kind == FrameKind::HostCall) check_call(m, view, i);
    CheckedFrame f;
    f.func_index = vf.func_index;
    f.point = point;
    f.point_index = uint32_t(point - info.stable_points.data());
    f.kind = vf.kind;
    const auto locals = local_types(m, vf.func_index);
    const auto types = info.types_at(*point);
    const uint32_t height = live_operands(m, vf.func_index, *point, vf.kind);
    if (vf.locals.size() != locals.size() || vf.stack.size() != height)
      throw Error(fmt::format("frame {} ({}): {} locals and {} operands saved, {} and {} expected",
                              i, m.func_name(vf.func_index), vf.locals.size(), vf.stack.size(),
                              locals.size(), height));
    f.num_locals = uint32_t(locals.size());
    for (size_t k = 0; k < locals.size(); ++k) {
      if (vf.locals[k].type != locals[k])
        throw Error(fmt::format("frame {}: local {} has the wrong type", i, k));
      f.values.push_back(from_view(inst, vf.locals[k], fmt::format("frame {} local {}", i, k)));
    }
    for (uint32_t k = 0; k < height; ++k) {
      if (vf.stack[k].type != types[k])
        throw Error(fmt::format("frame {}: operand {} has the wrong type", i, k));
      f.values.push_back(from_view(inst, vf.stack[k], fmt::format("frame {} operand {}", i, k)));
    }
    frames.push_back(std::move(f));
  }
  return frames;
}

} // namespace tern::runtime
