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
  trace_time("main");
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
