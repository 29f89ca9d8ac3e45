// Saved frames of compiled code ↔ the wasm view (runtime/wasm_view.h).
//
// A frame saved by unwinding holds the function's locals, then the
// operands live at its point, in stack order (runtime/view_frames.h says
// which): the layout every engine converts through runtime::ViewFrameBuilder
// and runtime::check_view_thread. Restoring checks the view fully there,
// because compiled code trusts what it reloads.
#include "aot/engine_state.h"
#include "runtime/view_frames.h"
#include "tern/error.h"
#include "tern/internal_error.h"

#include <ranges>
#include <vector>

namespace tern::aot {

namespace {

// `frames` outermost first, their values in `values`.
template <typename Frames>
runtime::ViewThread view_of(const Frames& frames, const std::vector<uint64_t>& values) {
  runtime::ViewThread view;
  runtime::ViewFrameBuilder builder;
  for (const SavedFrame& f : frames) {
    const runtime::ModuleInstance& inst = *f.inst->instance;
    const wasm::StablePoint& point =
        inst.module().defined_func(f.func_index).info.stable_points[f.point];
    if (f.count < runtime::local_types(inst.module(), f.func_index).size() +
                      runtime::live_operands(inst.module(), f.func_index, point, f.kind))
      throw InternalError("a saved frame is shorter than its point needs");
    view.frames.push_back(
        builder.build(inst, f.func_index, point, f.kind, values.data() + f.first));
  }
  return view;
}

} // namespace

runtime::ViewThread capture_frames(const ThreadState& ts) {
  // Unwinding saves the innermost frame first; a restore keeps the view's
  // order, outermost first.
  if (ts.saved.empty()) return view_of(ts.rewind, ts.rewind_values);
  return view_of(std::ranges::reverse_view(ts.saved), ts.saved_values);
}

void restore_frames(ThreadState& ts, InstanceRecord& rec, const runtime::ViewThread& view) {
  std::vector<SavedFrame> frames;
  std::vector<uint64_t> values;
  for (runtime::CheckedFrame& cf : runtime::check_view_thread(*rec.instance, view)) {
    SavedFrame f;
    f.inst = &rec;
    f.func_index = cf.func_index;
    f.point = cf.point_index;
    f.kind = cf.kind;
    f.first = values.size();
    f.count = uint32_t(cf.values.size());
    values.insert(values.end(), cf.values.begin(), cf.values.end());
    frames.push_back(f);
  }
  ts.rewind = std::move(frames);
  ts.rewind_values = std::move(values);
}

} // namespace tern::aot
