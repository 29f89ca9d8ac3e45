#include "runtime/wait_queue.h"

#include "runtime/atomics.h"
#include "tern/error.h"
#include "util/unique_fd.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace tern::runtime {
namespace {

using Clock = std::chrono::steady_clock;

// The eventfd a host thread's waits block on, made on its first wait.
int thread_wake_fd() {
  thread_local util::UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd) throw Error(fmt::format("eventfd: {}", std::strerror(errno)));
  return fd.get();
}

void drain(int fd) {
  uint64_t count;
  while (::read(fd, &count, sizeof count) > 0) {
  }
}

uint64_t load_value(const uint8_t* p, uint32_t bytes) {
  uint8_t* q = const_cast<uint8_t*>(p); // atomic_ref needs a non-const object
  return bytes == 4 ? atomics::load<uint32_t>(q) : atomics::load<uint64_t>(q);
}

bool readable(const pollfd& p) {
  return (p.revents & (POLLIN | POLLERR | POLLHUP)) != 0;
}

} // namespace

struct WaitQueues::Waiter {
  uint64_t thread_id = 0;
  int wake_fd = -1;
  bool notified = false; // under the mutex
  std::optional<Clock::time_point> deadline;
};

WaitQueues::WaitResult WaitQueues::wait(uint64_t addr, const uint8_t* p, uint32_t bytes,
                                        uint64_t expected, int64_t timeout_ns,
                                        const WaitOptions& options) {
  Waiter self;
  self.thread_id = options.thread_id;
  self.wake_fd = thread_wake_fd();
  if (timeout_ns >= 0) {
    // A deadline beyond what the clock holds is no deadline.
    auto now = Clock::now();
    if (std::chrono::nanoseconds(timeout_ns) < Clock::time_point::max() - now)
      self.deadline = now + std::chrono::nanoseconds(timeout_ns);
  }
  drain(self.wake_fd);
  {
    std::lock_guard lock(mutex_);
    if (load_value(p, bytes) != expected) return {Outcome::NotEqual, {}};
    if (timeout_ns == 0) return {Outcome::TimedOut, {}};
    queues_[addr].push_back(&self);
  }
  for (;;) {
    pollfd fds[2] = {{self.wake_fd, POLLIN, 0}, {options.interrupt_fd, POLLIN, 0}};
    timespec ts{};
    timespec* limit = nullptr;
    if (self.deadline) {
      auto left = std::max(Clock::duration::zero(), *self.deadline - Clock::now());
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      ts.tv_sec = static_cast<time_t>(ns / 1000000000);
      ts.tv_nsec = static_cast<long>(ns % 1000000000);
      limit = &ts;
    }
    int n = ::ppoll(fds, options.interrupt_fd >= 0 ? 2 : 1, limit, nullptr);
    if (n < 0 && errno != EINTR) throw Error(fmt::format("ppoll: {}", std::strerror(errno)));
    std::lock_guard lock(mutex_);
    if (self.notified) {
      std::erase(woken_, &self);
      return {Outcome::Woken, {}};
    }
    bool expired = self.deadline && Clock::now() >= *self.deadline;
    if (expired) {
      remove(addr, &self);
      return {Outcome::TimedOut, {}};
    }
    if (n > 0 && options.interrupt_fd >= 0 && readable(fds[1])) {
      remove(addr, &self);
      WaitResult r{Outcome::Interrupted, {}};
      if (self.deadline)
        r.remaining_ns =
            std::chrono::duration_cast<std::chrono::nanoseconds>(*self.deadline - Clock::now())
                .count();
      return r;
    }
    if (n > 0 && readable(fds[0])) drain(self.wake_fd); // a stale wakeup
  }
}

void WaitQueues::remove(uint64_t addr, Waiter* w) {
  auto it = queues_.find(addr);
  if (it == queues_.end()) return;
  std::erase(it->second, w);
  if (it->second.empty()) queues_.erase(it);
}

uint32_t WaitQueues::notify(uint64_t addr, uint32_t count) {
  std::lock_guard lock(mutex_);
  auto it = queues_.find(addr);
  if (it == queues_.end()) return 0;
  uint32_t woken = 0;
  auto& queue = it->second;
  while (woken < count && !queue.empty()) {
    Waiter* w = queue.front();
    queue.pop_front();
    w->notified = true;
    woken_.push_back(w);
    uint64_t one = 1;
    [[maybe_unused]] ssize_t written = ::write(w->wake_fd, &one, sizeof one);
    ++woken;
  }
  if (queue.empty()) queues_.erase(it);
  return woken;
}

WaitQueues::State WaitQueues::capture() const {
  std::lock_guard lock(mutex_);
  State state;
  auto now = Clock::now();
  for (const auto& [addr, queue] : queues_) {
    QueueRecord record{addr, {}};
    for (const Waiter* w : queue) {
      WaiterRecord waiter{w->thread_id, {}};
      if (w->deadline)
        waiter.remaining_ns = std::max<int64_t>(
            0, std::chrono::duration_cast<std::chrono::nanoseconds>(*w->deadline - now).count());
      record.waiters.push_back(waiter);
    }
    state.queues.push_back(std::move(record));
  }
  for (const Waiter* w : woken_) state.woken_thread_ids.push_back(w->thread_id);
  return state;
}

size_t WaitQueues::waiting_at(uint64_t addr) const {
  std::lock_guard lock(mutex_);
  auto it = queues_.find(addr);
  return it == queues_.end() ? 0 : it->second.size();
}

} // namespace tern::runtime
