// The frames of a thread's wasm view as engines save and rebuild them. Every
// engine keeps a stopped frame as one array of values — the function's
// locals, then the operands live at its stable point — and converts it here,
// so that the view is the same whichever engine produced it, and every
// engine trusts the same checks when it restores one.
#pragma once

#include "runtime/value.h"
#include "runtime/wasm_view.h"
#include "wasm/liveness.h"
#include "wasm/module.h"

#include <map>
#include <memory>
#include <utility>
#include <vector>

namespace tern::runtime {

class ModuleInstance;

// The validator's kind of the stable point a frame of `kind` is stopped at.
wasm::StablePointKind point_kind(FrameKind kind);
// The frame kind for a stop at `point`: a call site is a host call being
// re-issued when `host_call`, else a wasm call in progress; an atomic wait
// point is always a wait being re-issued.
FrameKind frame_kind(wasm::StablePointKind point, bool host_call);

// Operands a frame keeps at its point: none at a function entry; all of
// them at a loop header, at a host call being re-issued (its arguments,
// and call_indirect's index, on top) and at an atomic wait (its address,
// expected value and timeout on top); those below the arguments at a wasm
// call site (the arguments are the callee's first locals).
uint32_t live_operands(const wasm::Module& module, uint32_t func_index,
                       const wasm::StablePoint& point, FrameKind kind);

// Builds view frames from engine values (`values`: the locals, then the
// live operands, as Slots). Dead locals (wasm/liveness.h) are zero in the
// view whatever the engine held. Liveness is computed once per function, so
// a deep recursion costs one analysis.
class ViewFrameBuilder {
public:
  ViewFrame build(const ModuleInstance& instance, uint32_t func_index,
                  const wasm::StablePoint& point, FrameKind kind, const Slot* values);

private:
  const wasm::LocalLiveness& liveness(const wasm::Module& module, uint32_t func_index);
  std::map<std::pair<const wasm::Module*, uint32_t>, std::unique_ptr<wasm::LocalLiveness>>
      liveness_;
};

// A view frame checked against its module, ready for an engine to rebuild.
struct CheckedFrame {
  uint32_t func_index = 0;
  const wasm::StablePoint* point = nullptr;
  uint32_t point_index = 0; // in the function's FunctionInfo::stable_points
  FrameKind kind = FrameKind::FunctionEntry;
  uint32_t num_locals = 0;
  std::vector<Slot> values; // the locals, then the live operands
};

// Checks that `view` can continue in `instance`: every frame names a
// function the module defines and a stable point of that function; only the
// innermost frame is stopped (the others are calls in progress), and each
// call site calls the next frame's function (for call_indirect, one of the
// type called); a host-call frame is at a call of an import; values have the
// types the module says and references fit the instance. Throws tern::Error
// naming the frame that does not fit: engines run what they restore without
// further checks.
std::vector<CheckedFrame> check_view_thread(const ModuleInstance& instance, const ViewThread& view);

} // namespace tern::runtime
