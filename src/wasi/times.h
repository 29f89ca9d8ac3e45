// Timestamps between WASI (u64 nanoseconds) and POSIX timespecs.
#pragma once

#include "wasi/abi.h"

#include <cstdint>
#include <ctime>

namespace tern::wasi {

inline uint64_t timestamp_of(const timespec& ts) {
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

inline timespec timespec_of(uint64_t ns) {
  return {time_t(ns / 1000000000u), long(ns % 1000000000u)};
}

// The utimensat times for fd/path_filestat_set_times: each of atime and
// mtime is left alone, set to "now", or set to the given value. Asking for
// both a value and "now" is EINVAL.
inline Errno host_times(uint64_t atim, uint64_t mtim, uint32_t fst_flags, timespec out[2]) {
  auto one = [](uint64_t value, bool set, bool now, timespec& ts) {
    if (set && now) return false;
    if (now)
      ts = {0, UTIME_NOW};
    else if (set)
      ts = timespec_of(value);
    else
      ts = {0, UTIME_OMIT};
    return true;
  };
  if (fst_flags & ~uint32_t(fstflag::atim | fstflag::atim_now | fstflag::mtim | fstflag::mtim_now))
    return Errno::inval;
  bool ok = one(atim, fst_flags & fstflag::atim, fst_flags & fstflag::atim_now, out[0]) &&
            one(mtim, fst_flags & fstflag::mtim, fst_flags & fstflag::mtim_now, out[1]);
  return ok ? Errno::success : Errno::inval;
}

} // namespace tern::wasi
