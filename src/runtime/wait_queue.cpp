#include "runtime/wait_queue.h"

#include "runtime/atomics.h"
#include "tern/error.h"
#include "tern/internal_error.h"
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
  uint64_t addr = 0;
  int wake_fd = -1;    // the blocked host thread's eventfd; -1 while parked
  bool parked = false; // no host thread waits: interrupted, or restored
  bool notified = false;
  std::optional<Clock::time_point> deadline;
};

WaitQueues::WaitQueues() = default;
WaitQueues::~WaitQueues() = default;

namespace {

std::optional<int64_t> time_left(const std::optional<Clock::time_point>& deadline,
                                 Clock::time_point now) {
  if (!deadline) return std::nullopt;
  return std::max<int64_t>(
      0, std::chrono::duration_cast<std::chrono::nanoseconds>(*deadline - now).count());
}

} // namespace

WaitQueues::Waiter* WaitQueues::parked_place(uint64_t thread_id) const {
  for (const auto& w : waiters_)
    if (w->parked && w->thread_id == thread_id) return w.get();
  return nullptr;
}

WaitQueues::WaitResult WaitQueues::wait(uint64_t addr, const uint8_t* p, uint32_t bytes,
                                        uint64_t expected, int64_t timeout_ns,
                                        const WaitOptions& options) {
  const int wake_fd = thread_wake_fd();
  drain(wake_fd);
  Waiter* self = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (options.interrupt_fd >= 0) self = parked_place(options.thread_id);
    if (self) {
      // The wait a checkpoint interrupted (or a restore put back): its
      // value was checked when it first queued.
      if (self->addr != addr)
        throw Error(fmt::format("thread {} resumes a wait at address {} but its place in the wait "
                                "queues is at address {}",
                                options.thread_id, addr, self->addr));
      if (self->notified) {
        remove(self);
        return {Outcome::Woken, {}};
      }
      self->parked = false;
    } else {
      if (load_value(p, bytes) != expected) return {Outcome::NotEqual, {}};
      if (timeout_ns == 0) return {Outcome::TimedOut, {}};
      auto w = std::make_unique<Waiter>();
      w->thread_id = options.thread_id;
      w->addr = addr;
      if (timeout_ns > 0) {
        // A deadline beyond what the clock holds is no deadline.
        auto now = Clock::now();
        if (std::chrono::nanoseconds(timeout_ns) < Clock::time_point::max() - now)
          w->deadline = now + std::chrono::nanoseconds(timeout_ns);
      }
      self = w.get();
      waiters_.push_back(std::move(w));
      queues_[addr].push_back(self);
    }
    self->wake_fd = wake_fd;
  }
  const std::optional<Clock::time_point> deadline = self->deadline; // set before it queued
  for (;;) {
    pollfd fds[2] = {{wake_fd, POLLIN, 0}, {options.interrupt_fd, POLLIN, 0}};
    timespec ts{};
    timespec* limit = nullptr;
    if (deadline) {
      auto left = std::max(Clock::duration::zero(), *deadline - Clock::now());
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      ts.tv_sec = static_cast<time_t>(ns / 1000000000);
      ts.tv_nsec = static_cast<long>(ns % 1000000000);
      limit = &ts;
    }
    int n = ::ppoll(fds, options.interrupt_fd >= 0 ? 2 : 1, limit, nullptr);
    if (n < 0 && errno != EINTR) throw Error(fmt::format("ppoll: {}", std::strerror(errno)));
    std::lock_guard lock(mutex_);
    if (self->notified) {
      remove(self);
      return {Outcome::Woken, {}};
    }
    const auto now = Clock::now();
    if (deadline && now >= *deadline) {
      remove(self);
      return {Outcome::TimedOut, {}};
    }
    if (n > 0 && options.interrupt_fd >= 0 && readable(fds[1])) {
      // Parked: it keeps its place, and a notify may still pick it.
      self->parked = true;
      self->wake_fd = -1;
      return {Outcome::Interrupted, time_left(deadline, now)};
    }
    if (n > 0 && readable(fds[0])) drain(wake_fd); // a stale wakeup
  }
}

void WaitQueues::remove(Waiter* w) {
  auto it = queues_.find(w->addr);
  if (it != queues_.end()) {
    std::erase(it->second, w);
    if (it->second.empty()) queues_.erase(it);
  }
  std::erase(woken_, w);
  std::erase_if(waiters_, [w](const std::unique_ptr<Waiter>& p) { return p.get() == w; });
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
    if (w->wake_fd >= 0) {
      uint64_t one = 1;
      [[maybe_unused]] ssize_t written = ::write(w->wake_fd, &one, sizeof one);
    }
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
    for (const Waiter* w : queue)
      record.waiters.push_back({w->thread_id, time_left(w->deadline, now)});
    state.queues.push_back(std::move(record));
  }
  for (const Waiter* w : woken_) state.woken.push_back({w->thread_id, w->addr});
  return state;
}

void WaitQueues::restore(const State& state) {
  std::lock_guard lock(mutex_);
  if (!waiters_.empty()) throw InternalError("wait queues restored over live waiters");
  const auto now = Clock::now();
  auto add = [&](uint64_t thread_id, uint64_t addr) {
    if (parked_place(thread_id))
      throw Error(fmt::format("thread {} waits twice in the wait queues", thread_id));
    auto w = std::make_unique<Waiter>();
    w->thread_id = thread_id;
    w->addr = addr;
    w->parked = true;
    Waiter* raw = w.get();
    waiters_.push_back(std::move(w));
    return raw;
  };
  for (const QueueRecord& q : state.queues)
    for (const WaiterRecord& r : q.waiters) {
      Waiter* w = add(r.thread_id, q.addr);
      if (r.remaining_ns)
        w->deadline = now + std::chrono::nanoseconds(std::max<int64_t>(0, *r.remaining_ns));
      queues_[q.addr].push_back(w);
    }
  for (const WokenRecord& r : state.woken) {
    Waiter* w = add(r.thread_id, r.addr);
    w->notified = true;
    woken_.push_back(w);
  }
}

size_t WaitQueues::waiting_at(uint64_t addr) const {
  std::lock_guard lock(mutex_);
  auto it = queues_.find(addr);
  return it == queues_.end() ? 0 : it->second.size();
}

} // namespace tern::runtime
