// Entry points of the dispatch loop, for the engine (engine.cpp) and for
// snapshot capture/restore, which build and read the same frames.
#pragma once

#include "interp/code.h"
#include "runtime/engine.h"
#include "runtime/thread.h"

namespace tern::interp {

// Where the loop starts: the innermost activation, and the frame-stack
// position of the sentinel below the outermost one (returning to it ends
// the loop).
struct Activation {
  const Word* ip = nullptr;
  runtime::Slot* fp = nullptr;
  runtime::FunctionInstance* func = nullptr;
  runtime::Frame* frame_top = nullptr; // one past the innermost saved caller frame
  runtime::Frame* base = nullptr;      // the sentinel
  const void* const** labels_out = nullptr;
};

// Runs until the outermost activation returns, a trap, an exit, or a
// suspension (frames then stay on the thread, innermost last).
runtime::ExecOutcome execute(runtime::Thread* thread, const Activation& act);

// The wasm view of a suspended thread's frames, and back (frames.cpp).
runtime::ViewThread capture_thread(const runtime::Thread& thread);
void restore_thread(runtime::Thread& thread, runtime::ModuleInstance& instance,
                    const runtime::ViewThread& view);
// Continues the innermost suspended frame (past its loop-header or entry
// poll, or re-issuing its host call).
runtime::ExecOutcome resume_thread(runtime::Thread& thread, std::span<runtime::Slot> results);

} // namespace tern::interp
