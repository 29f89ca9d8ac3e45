// The guest's clocks. Realtime is the host's. The monotonic and CPU-time
// clocks are the host's plus a per-context offset, so that a restore (on
// another machine, or after a reboot) can keep them from going backwards:
// it sets the offset so the guest's clock continues from the saved reading.
#pragma once

#include "wasi/abi.h"

#include <cstdint>

namespace tern::wasi {

class Clocks {
public:
  // The current time of a WASI clock, in nanoseconds.
  Errno now(uint32_t clock_id, uint64_t& out) const;
  Errno resolution(uint32_t clock_id, uint64_t& out) const;
  // The guest's monotonic time now (poll_oneoff deadlines use it).
  uint64_t monotonic_now() const;
  uint64_t realtime_now() const;

  // Offsets added to the host's readings, indexed by ClockId (realtime's is
  // always 0). State: saved and restored with the context.
  int64_t offset(ClockId id) const { return offsets_[static_cast<uint32_t>(id)]; }
  // Makes clock `id` read `guest_now` now (restore).
  void continue_from(ClockId id, uint64_t guest_now);

private:
  int64_t offsets_[4] = {0, 0, 0, 0};
};

} // namespace tern::wasi
