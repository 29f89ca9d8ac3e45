// Checkpoint signals (--checkpoint-on-signal, SIGTERM with
// --checkpoint-on-exit) from tern's first instruction to its exit.
//
// A script may signal tern the moment it has started it, while the module
// is still being decoded or a snapshot loaded. So `tern run` and `tern
// restore` block the signals a trigger may use before anything else
// happens (hold_signals, from cli/main.cpp's .preinit_array entry, before
// the libraries initialize), install the handlers as soon as the options
// say which signals those are (install_signal_triggers), and only then
// unblock them: a signal that came meanwhile is delivered to its handler.
// Handlers only record the request; while a program runs (armed) they also
// raise its checkpoint flag, so it stops at its next stable point, and
// before that the supervisor raises the flag itself when the program
// starts. Handlers stay installed until tern exits: a trigger that arrives
// after the program ended is ignored instead of killing tern.
#pragma once

#include "runtime/interrupt.h"

#include <cstdint>
#include <vector>

namespace tern::program {

// Blocks every signal but the fault signals (tern's compiled code needs
// SIGSEGV and SIGBUS) in the calling thread, the main thread before any
// other exists; release_signals() undoes it. Uses only system calls and
// plain globals, so it may run before the C++ runtime initializes.
void hold_signals();
// Unblocks what hold_signals() blocked; signals that arrived meanwhile are
// delivered now, to their handlers or with their default action.
void release_signals();

// What the handlers recorded since the last take_signals().
inline constexpr uint32_t kSignalCheckpoint = 1; // checkpoint, then continue
inline constexpr uint32_t kSignalTerminate = 2;  // checkpoint, then stop
uint32_t take_signals();
uint32_t pending_signals(); // the same, left in place

// Installs the handlers (throws tern::Error if one cannot be), ignores
// SIGPIPE (a write to a closed pipe or socket is EPIPE for the program, as
// in wasmtime, not the end of tern), then release_signals().
void install_signal_triggers(const std::vector<int>& checkpoint_signals,
                             bool checkpoint_on_sigterm);

// While armed, a handler also raises `interrupt`'s request; arming raises
// it at once when a signal came before. disarm_signal_triggers() returns
// when no handler can touch the interrupt any more.
void arm_signal_triggers(runtime::Interrupt& interrupt);
void disarm_signal_triggers();

} // namespace tern::program
