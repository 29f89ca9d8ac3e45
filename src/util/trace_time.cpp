#include "util/trace_time.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace tern::util {
namespace {

using Clock = std::chrono::steady_clock;

struct TraceState {
  bool enabled = false;
  Clock::time_point start{};
};

TraceState& state() {
  static TraceState s;
  return s;
}

} // namespace

void trace_time_start() {
  const char* env = std::getenv("TERN_TRACE_TIME");
  state().enabled = env && *env && *env != '0';
  state().start = Clock::now();
  if (!state().enabled) return;
  // The absolute monotonic time (CLOCK_MONOTONIC, as steady_clock and
  // Python's time.monotonic()) lets a launcher add the time before main()
  // (bench/first_instruction.py).
  const double since_boot = std::chrono::duration<double>(state().start.time_since_epoch()).count();
  char event[64];
  std::snprintf(event, sizeof event, "(monotonic %.6f s) main", since_boot);
  trace_time(event);
}

void trace_time(const char* event) {
  if (!state().enabled) return;
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - state().start).count();
  // The process's CPU time counts from exec: it includes loading tern.
  timespec cpu{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
  std::fprintf(stderr, "tern: time +%.3f ms (process cpu %.3f ms) %s\n", ms,
               double(cpu.tv_sec) * 1e3 + double(cpu.tv_nsec) / 1e6, event);
}

} // namespace tern::util
