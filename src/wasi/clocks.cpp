#include "wasi/clocks.h"

#include "wasi/posix_errno.h"

#include <ctime>

namespace tern::wasi {
namespace {

bool host_clock(uint32_t clock_id, clockid_t& out) {
  switch (static_cast<ClockId>(clock_id)) {
  case ClockId::realtime:
    out = CLOCK_REALTIME;
    return true;
  case ClockId::monotonic:
    out = CLOCK_MONOTONIC;
    return true;
  case ClockId::process_cputime:
    out = CLOCK_PROCESS_CPUTIME_ID;
    return true;
  case ClockId::thread_cputime:
    out = CLOCK_THREAD_CPUTIME_ID;
    return true;
  }
  return false;
}

uint64_t to_ns(const timespec& ts) {
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

uint64_t host_now(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return to_ns(ts);
}

} // namespace

Errno Clocks::now(uint32_t clock_id, uint64_t& out) const {
  clockid_t clock = CLOCK_MONOTONIC;
  if (!host_clock(clock_id, clock)) return Errno::inval;
  timespec ts{};
  if (::clock_gettime(clock, &ts) != 0) return last_errno();
  out = to_ns(ts) + static_cast<uint64_t>(offsets_[clock_id]);
  return Errno::success;
}

Errno Clocks::resolution(uint32_t clock_id, uint64_t& out) const {
  clockid_t clock = CLOCK_MONOTONIC;
  if (!host_clock(clock_id, clock)) return Errno::inval;
  timespec ts{};
  if (::clock_getres(clock, &ts) != 0) return last_errno();
  out = to_ns(ts);
  return Errno::success;
}

uint64_t Clocks::monotonic_now() const {
  return host_now(CLOCK_MONOTONIC) + static_cast<uint64_t>(offset(ClockId::monotonic));
}

uint64_t Clocks::realtime_now() const {
  return host_now(CLOCK_REALTIME);
}

void Clocks::continue_from(ClockId id, uint64_t guest_now) {
  if (id == ClockId::realtime) return;
  clockid_t clock = CLOCK_MONOTONIC;
  host_clock(static_cast<uint32_t>(id), clock);
  offsets_[static_cast<uint32_t>(id)] = static_cast<int64_t>(guest_now - host_now(clock));
}

} // namespace tern::wasi
