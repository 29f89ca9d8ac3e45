// The execution engine interface (interpreter, AOT). The store asks its
// engine to prepare instances and to call functions; everything an engine
// needs lives in the instance and the thread.
#pragma once

#include "runtime/trap.h"
#include "runtime/value.h"
#include "runtime/wasm_view.h"

#include <cstdint>
#include <memory>
#include <span>

namespace tern::runtime {

class ModuleInstance;
class Thread;
struct FunctionInstance;

struct ExecOutcome {
  enum class Kind : uint8_t {
    Returned,  // results written
    Trapped,   // `trap` describes it
    Exited,    // proc_exit(exit_code)
    Suspended, // stopped at a stable point for a checkpoint; frames are on the thread
  } kind = Kind::Returned;
  Trap trap;
  int32_t exit_code = 0;

  static ExecOutcome returned() { return {}; }
  static ExecOutcome trapped(Trap t) { return {Kind::Trapped, std::move(t), 0}; }
  static ExecOutcome exited(int32_t code) { return {Kind::Exited, {}, code}; }
};

class Engine {
public:
  virtual ~Engine() = default;
  // Attach code to a new instance's functions (may compile, or reuse the
  // module's cached code).
  virtual void prepare(ModuleInstance& instance) = 0;
  // Whether the store should make memories mirrored (runtime/memory.h).
  virtual bool wants_mirrored_memories(const ModuleInstance& /*instance*/) { return false; }
  // An engine for another host thread of the same program (wasi-threads):
  // it runs the modules this engine prepared with the same code, compiling
  // nothing again. Engines are not thread-safe, so each host thread has its
  // own (and its own store); call this on the thread that uses this engine.
  // Throws tern::Error for an engine that cannot.
  virtual std::unique_ptr<Engine> for_new_thread();
  // Call a wasm or host function with arguments; results are written back.
  // A Suspended outcome leaves the thread stopped at stable points.
  virtual ExecOutcome call(Thread& thread, FunctionInstance* func, std::span<const Slot> args,
                           std::span<Slot> results) = 0;

  // The suspended thread in the wasm view (frames, outermost first).
  virtual ViewThread capture(const Thread& thread) const = 0;
  // Rebuilds a thread's frames from the wasm view, in `instance`, so that
  // resume() continues it. Throws tern::Error if the view does not fit the
  // module (unknown function, no stable point at an offset, wrong types).
  virtual void restore(Thread& thread, ModuleInstance& instance, const ViewThread& view) = 0;
  // Continues a suspended (or restored) thread until the outermost function
  // returns (its results are written to `results`), traps, exits or
  // suspends again.
  virtual ExecOutcome resume(Thread& thread, std::span<Slot> results) = 0;
};

} // namespace tern::runtime
