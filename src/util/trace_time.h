// TERN_TRACE_TIME=1: where tern's own time goes between main() and the
// guest's first instruction (or a restored program's continuation), as
// lines "tern: time +N.NNN ms (process cpu M.MMM ms) EVENT" on stderr: wall
// time since main(), and CPU time since exec (loading tern included) (docs/performance.md,
// "Startup"). Free when the variable is unset.
#pragma once

namespace tern::util {

// Records the reference point (call first thing in main()) and prints
// "main" with the CPU time spent before it.
void trace_time_start();
// Prints the time since trace_time_start() with `event`, if enabled.
void trace_time(const char* event);

} // namespace tern::util
