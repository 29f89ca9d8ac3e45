// Tiering (`tern run --mode auto`): a program starts at once in a first
// engine (the interpreter) while the code of a faster one (compiled code)
// is made in the background; at the first stable point after that code is
// ready, each thread is handed over in-process: its frames leave the first
// engine in the wasm view and enter the second, which continues them. The
// memory, globals and tables stay where they are (no copy, no file): both
// engines work on the same runtime objects.
//
// The rule (docs/aot.md, "Tiering"):
//  - code already in the cache: the program starts in the faster engine;
//  - else it starts in the first, and moves at the first stable point
//    (loop header or function entry) after the code is ready, or, when a
//    checkpoint stops the thread there, when the thread continues;
//  - `switch_at` N (--tier-up-at): at the N-th stable point exactly,
//    waiting for the code if needed (deterministic, for tests);
//  - code that cannot be made (no compiler, a compile error) leaves the
//    program in the first engine, with one warning.
// A checkpoint before, during or after the switch is the wasm view of
// whichever engine holds the thread then, so it restores anywhere.
#pragma once

#include "runtime/engine.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace tern::runtime {

// The faster engine's code for one module, being made in the background.
class PendingCode {
public:
  virtual ~PendingCode() = default;
  // Made (or failed): wait() returns at once.
  virtual bool ready() const = 0;
  // Blocks until ready; returns "" when the code is usable, else why not.
  virtual std::string wait() = 0;
};

struct TieringParts {
  std::unique_ptr<Engine> first;  // runs at once
  std::unique_ptr<Engine> faster; // gets its code from what `start` made
  // Starts making `faster`'s code for a module; `ready` is called once
  // (from any thread) when it is made or has failed.
  std::function<std::shared_ptr<PendingCode>(const ModuleInstance&, std::function<void()> ready)>
      start;
  std::optional<uint64_t> switch_at; // --tier-up-at
};

std::unique_ptr<Engine> make_tiering_engine(TieringParts parts);

} // namespace tern::runtime
