// The waiters of memory.atomic.wait32/64 and memory.atomic.notify on one
// shared memory: for each address, the threads waiting there in the order
// they arrived (notify wakes the oldest first, as the threads proposal
// says), each with its deadline.
//
// The queues are a runtime object of their own, not hidden in futexes or
// condition variables, so that a checkpoint can write them down exactly:
// every address with its waiters in order, the time each has left, and the
// waiters that were notified but have not returned from their wait yet
// (capture()). A blocked wait also wakes up for a checkpoint request (the
// Interrupt's fd, as blocking host calls do): it leaves the queue, reports
// the time it had left and the engine stops at the wait instruction.
//
// A waiter blocks in ppoll() on an eventfd of its host thread (notify
// writes to it) and the interrupt fd; the queue's mutex orders the value
// check against notify, so a notify after the check never goes unseen.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

namespace tern::runtime {

class WaitQueues {
public:
  // How a wait ended; the numbering of the first three is the wait
  // instruction's result.
  enum class Outcome : uint8_t {
    Woken = 0,    // a notify woke it ("ok")
    NotEqual = 1, // the value differed at the start ("not-equal")
    TimedOut = 2, // the timeout passed ("timed-out")
    Interrupted,  // a checkpoint request came first: the wait did not happen
  };
  struct WaitResult {
    Outcome outcome = Outcome::Woken;
    // Interrupted: the nanoseconds the timeout had left (none: no timeout).
    std::optional<int64_t> remaining_ns;
  };

  // Who waits, for checkpoints, and what interrupts the wait.
  struct WaitOptions {
    uint64_t thread_id = 0;
    int interrupt_fd = -1; // readable while a checkpoint is requested; -1: none
  };

  // memory.atomic.wait: if the `bytes`-byte little-endian value at `p`
  // (address `addr` in the memory, aligned, in bounds) equals `expected`,
  // waits until notified, for at most `timeout_ns` (negative: no limit).
  WaitResult wait(uint64_t addr, const uint8_t* p, uint32_t bytes, uint64_t expected,
                  int64_t timeout_ns, const WaitOptions& options);

  // memory.atomic.notify: wakes up to `count` waiters at `addr`, oldest
  // first; returns how many it woke.
  uint32_t notify(uint64_t addr, uint32_t count);

  // The queues as a checkpoint records them, addresses ascending.
  struct WaiterRecord {
    uint64_t thread_id = 0;
    std::optional<int64_t> remaining_ns; // none: waits without limit
  };
  struct QueueRecord {
    uint64_t addr = 0;
    std::vector<WaiterRecord> waiters; // oldest first
  };
  struct State {
    std::vector<QueueRecord> queues;
    // Notified, but not yet returned from their wait.
    std::vector<uint64_t> woken_thread_ids;
  };
  State capture() const;

  // Number of threads waiting at `addr` (tests, inspection).
  size_t waiting_at(uint64_t addr) const;

private:
  struct Waiter;
  void remove(uint64_t addr, Waiter* w);

  mutable std::mutex mutex_;
  std::map<uint64_t, std::deque<Waiter*>> queues_;
  std::vector<Waiter*> woken_; // notified, not yet returned
};

} // namespace tern::runtime
