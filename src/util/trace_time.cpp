#include "util/trace_time.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

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
}

void trace_time(const char* event) {
  if (!state().enabled) return;
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - state().start).count();
  std::fprintf(stderr, "tern: time +%.3f ms %s\n", ms, event);
}

} // namespace tern::util
