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
// Interrupt's fd, as blocking host calls do) and the engine stops at the
// wait instruction; the waiter keeps its place in the queue, *parked*:
// a notify meanwhile still picks it in its turn (recorded as notified), and
// when the thread issues the same wait again (after the checkpoint, or
// after a restore that put the queues back with restore()) it takes up its
// parked place without looking at the value again. So a checkpoint neither
// loses a wakeup nor invents one.
//
// A waiter blocks in ppoll() on an eventfd of its host thread (notify
// writes to it) and the interrupt fd; the queue's mutex orders the value
// check against notify, so a notify after the check never goes unseen.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace tern::runtime {

class WaitQueues {
public:
  WaitQueues();
  ~WaitQueues();
  WaitQueues(const WaitQueues&) = delete;
  WaitQueues& operator=(const WaitQueues&) = delete;

  // How a wait ended; the numbering of the first three is the wait
  // instruction's result.
  enum class Outcome : uint8_t {
    Woken = 0,    // a notify woke it ("ok")
    NotEqual = 1, // the value differed at the start ("not-equal")
    TimedOut = 2, // the timeout passed ("timed-out")
    Interrupted,  // a checkpoint request came first: the waiter is parked in its place
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
  // If the thread has a parked place (an interrupted wait, or a restored
  // one), it resumes that wait instead: at its place in the queue, with the
  // deadline it had, or returns Woken at once if it was notified meanwhile.
  // Throws tern::Error if the parked place is at another address.
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
  struct WokenRecord {
    uint64_t thread_id = 0;
    uint64_t addr = 0;
    bool operator==(const WokenRecord&) const = default;
  };
  struct State {
    std::vector<QueueRecord> queues;
    // Notified, but not yet returned from their wait, in the order notified.
    std::vector<WokenRecord> woken;
    bool empty() const { return queues.empty() && woken.empty(); }
  };
  State capture() const;

  // Puts back what capture() recorded (a restore, before any thread runs):
  // every waiter parked at its place, its deadline `remaining_ns` from now,
  // the notified ones to return Woken. Throws tern::Error if waiters are
  // already queued, or a thread is named twice.
  void restore(const State& state);

  // Number of threads waiting at `addr`, parked ones included (tests,
  // inspection).
  size_t waiting_at(uint64_t addr) const;

private:
  struct Waiter;
  void remove(Waiter* w); // from its queue or the woken list, and freed
  Waiter* parked_place(uint64_t thread_id) const;

  mutable std::mutex mutex_;
  std::map<uint64_t, std::deque<Waiter*>> queues_;
  std::vector<Waiter*> woken_; // notified, not yet returned
  // Every waiter, queued or woken; parked ones have no host thread blocked.
  std::vector<std::unique_ptr<Waiter>> waiters_;
};

} // namespace tern::runtime
