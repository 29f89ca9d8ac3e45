// poll_oneoff: clock and fd subscriptions, several at once, waited on with
// one ppoll that also watches the checkpoint request.
#include "wasi/calls.h"
#include "wasi/posix_errno.h"
#include "wasi/times.h"

#include <algorithm>
#include <cerrno>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tern::wasi::calls {
namespace {

namespace S = layout::subscription;
namespace E = layout::event;

struct Subscription {
  uint64_t userdata = 0;
  EventType type = EventType::clock;
  uint32_t clock_id = 0;
  uint64_t timeout = 0;
  uint16_t clock_flags = 0;
  uint32_t fd = 0;
};

struct Event {
  uint64_t userdata = 0;
  Errno error = Errno::success;
  EventType type = EventType::clock;
  uint64_t nbytes = 0;
  uint16_t flags = 0;
};

// Which host clock a clock subscription's deadline is kept in.
enum class DeadlineClock { None, Realtime, Monotonic };

template <typename T>
T field(const std::vector<uint8_t>& raw, size_t at) {
  return runtime::Memory::load_le<T>(raw.data() + at);
}

Errno parse(const std::vector<uint8_t>& raw, uint32_t n, std::vector<Subscription>& out) {
  out.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    size_t base = size_t(i) * S::size;
    Subscription& s = out[i];
    s.userdata = field<uint64_t>(raw, base + S::userdata);
    uint8_t tag = field<uint8_t>(raw, base + S::tag);
    if (tag > static_cast<uint8_t>(EventType::fd_write)) return Errno::inval;
    s.type = static_cast<EventType>(tag);
    if (s.type == EventType::clock) {
      s.clock_id = field<uint32_t>(raw, base + S::clock_id);
      s.timeout = field<uint64_t>(raw, base + S::clock_timeout);
      s.clock_flags = field<uint16_t>(raw, base + S::clock_flags);
    } else {
      s.fd = field<uint32_t>(raw, base + S::fd);
    }
  }
  return Errno::success;
}

DeadlineClock deadline_clock(const Subscription& s) {
  if (s.type != EventType::clock) return DeadlineClock::None;
  bool absolute = s.clock_flags & subclockflag::abstime;
  switch (static_cast<ClockId>(s.clock_id)) {
  case ClockId::realtime:
    return absolute ? DeadlineClock::Realtime : DeadlineClock::Monotonic;
  case ClockId::monotonic:
    return DeadlineClock::Monotonic;
  default:
    return DeadlineClock::None; // CPU-time clocks cannot be waited on
  }
}

// Absolute deadlines: relative timeouts become guest-monotonic instants, so
// a suspended wait resumes with only what remained.
std::vector<uint64_t> compute_deadlines(const std::vector<Subscription>& subs,
                                        const Clocks& clocks) {
  std::vector<uint64_t> deadlines(subs.size(), 0);
  uint64_t mono = clocks.monotonic_now();
  for (size_t i = 0; i < subs.size(); ++i) {
    const Subscription& s = subs[i];
    if (deadline_clock(s) == DeadlineClock::None) continue;
    bool absolute = s.clock_flags & subclockflag::abstime;
    uint64_t deadline = absolute ? s.timeout : mono + s.timeout;
    deadlines[i] = deadline < mono && !absolute ? UINT64_MAX : deadline; // overflow: forever
  }
  return deadlines;
}

uint64_t now_in(DeadlineClock clock, const Clocks& clocks) {
  return clock == DeadlineClock::Realtime ? clocks.realtime_now() : clocks.monotonic_now();
}

uint64_t readable_bytes(const FdEntry& e) {
  const uint64_t unread = e.gateway ? e.gateway->unread_size() : 0;
  if (e.kind == FdKind::File) {
    struct stat st;
    off_t pos = ::lseek(e.host.get(), 0, SEEK_CUR);
    if (::fstat(e.host.get(), &st) != 0 || pos < 0 || st.st_size < pos) return 0;
    return uint64_t(st.st_size - pos);
  }
  int avail = 0;
  if (::ioctl(e.host.get(), FIONREAD, &avail) != 0 || avail < 0) return unread;
  return unread + uint64_t(avail);
}

Errno write_events(Call& c, uint32_t out, uint32_t nevents_out, const std::vector<Event>& events) {
  for (size_t i = 0; i < events.size(); ++i) {
    const Event& ev = events[i];
    Record<E::size> rec;
    rec.put<uint64_t>(E::userdata, ev.userdata);
    rec.put(E::error, ev.error);
    rec.put(E::type, ev.type);
    rec.put<uint64_t>(E::nbytes, ev.nbytes);
    rec.put<uint16_t>(E::flags, ev.flags);
    WASI_TRY(rec.write_to(c.mem, out + i * E::size));
  }
  return c.mem.store<uint32_t>(nevents_out, uint32_t(events.size()));
}

// The state of one poll_oneoff while it waits.
class Poller {
public:
  Poller(Call& c, std::vector<Subscription> subs, std::vector<uint64_t> deadlines)
      : c_(c), subs_(std::move(subs)), deadlines_(std::move(deadlines)) {}

  // Fills `events` with what is ready, waiting as long as needed.
  // Returns false when the checkpoint interrupt fired first.
  bool wait(std::vector<Event>& events) {
    setup(events);
    for (;;) {
      timespec timeout{};
      bool finite = events.empty() ? next_timeout(timeout) : true;
      int n = sleep_or_poll(finite ? &timeout : nullptr);
      if (n < 0 && errno != EINTR) return fail_all(events);
      collect(events);
      if (!events.empty()) return true;
      if (fds_.back().revents != 0) return false;
    }
  }

private:
  // Other threads' calls run while this one waits: the entries it polls
  // are kept by the call (a close meanwhile does not free them).
  int sleep_or_poll(const timespec* timeout) {
    if (!c_.context_lock || (timeout && timeout->tv_sec == 0 && timeout->tv_nsec == 0))
      return ::ppoll(fds_.data(), fds_.size(), timeout, nullptr);
    c_.context_lock->unlock();
    int n = ::ppoll(fds_.data(), fds_.size(), timeout, nullptr);
    int saved = errno;
    c_.context_lock->lock();
    errno = saved;
    return n;
  }

  // fd subscriptions go into the pollfd set; ones that cannot be polled
  // become error events at once.
  void setup(std::vector<Event>& events) {
    for (size_t i = 0; i < subs_.size(); ++i) {
      const Subscription& s = subs_[i];
      if (s.type == EventType::clock) {
        if (deadline_clock(s) == DeadlineClock::None)
          events.push_back({s.userdata, Errno::inval, s.type, 0, 0});
        continue;
      }
      bool read = s.type == EventType::fd_read;
      FdEntry* e;
      Errno err = c_.ctx.fds().get(s.fd, read ? right::fd_read : right::fd_write, e);
      if (err != Errno::success) {
        events.push_back({s.userdata, err, s.type, 0, 0});
        continue;
      }
      // Bytes a gateway connection holds are ready without asking the kernel.
      if (read && e->gateway && e->gateway->unread_size() > 0) {
        events.push_back({s.userdata, Errno::success, s.type, readable_bytes(*e), 0});
        continue;
      }
      fds_.push_back({e->host.get(), short(read ? POLLIN : POLLOUT), 0});
      entries_.push_back(e);
      c_.kept.push_back(c_.ctx.fds().share(*e));
      // A connect through the gateway is done when its reply arrives.
      if (!read && e->gateway && e->socket->connecting && e->gateway->requested)
        fds_.back().events = POLLIN;
      fd_subs_.push_back(i);
    }
    fds_.push_back({c_.interrupt.fd(), POLLIN, 0});
  }

  // The time to the earliest clock deadline; false when there is none.
  bool next_timeout(timespec& out) const {
    bool any = false;
    uint64_t wait = UINT64_MAX;
    for (size_t i = 0; i < subs_.size(); ++i) {
      DeadlineClock clock = deadline_clock(subs_[i]);
      if (clock == DeadlineClock::None || deadlines_[i] == UINT64_MAX) continue;
      uint64_t now = now_in(clock, c_.ctx.clocks());
      wait = std::min(wait, deadlines_[i] > now ? deadlines_[i] - now : 0);
      any = true;
    }
    if (any) out = timespec_of(wait);
    return any;
  }

  void collect(std::vector<Event>& events) {
    for (size_t k = 0; k < fd_subs_.size(); ++k) {
      short revents = fds_[k].revents;
      if (revents == 0) continue;
      const Subscription& s = subs_[fd_subs_[k]];
      Event ev{s.userdata, Errno::success, s.type, 0, 0};
      if (revents & POLLNVAL) ev.error = Errno::badf;
      if (revents & POLLHUP) ev.flags |= eventrwflag::hangup;
      if (s.type == EventType::fd_read && ev.error == Errno::success)
        ev.nbytes = readable_bytes(*entries_[k]);
      events.push_back(ev);
    }
    for (size_t i = 0; i < subs_.size(); ++i) {
      DeadlineClock clock = deadline_clock(subs_[i]);
      if (clock == DeadlineClock::None) continue;
      if (now_in(clock, c_.ctx.clocks()) >= deadlines_[i])
        events.push_back({subs_[i].userdata, Errno::success, EventType::clock, 0, 0});
    }
  }

  // One event per subscription, replacing any found before the failure:
  // the program's array has room for nsubscriptions events, no more.
  bool fail_all(std::vector<Event>& events) {
    Errno err = last_errno();
    events.clear();
    for (const auto& s : subs_) events.push_back({s.userdata, err, s.type, 0, 0});
    return true;
  }

  Call& c_;
  std::vector<Subscription> subs_;
  std::vector<uint64_t> deadlines_;
  std::vector<pollfd> fds_;       // fd subscriptions, then the interrupt
  std::vector<size_t> fd_subs_;   // fds_[k] belongs to subs_[fd_subs_[k]]
  std::vector<FdEntry*> entries_; // and is entries_[k]'s (kept by the call)
};

} // namespace

Ret poll_oneoff(Call& c, uint32_t in, uint32_t out, uint32_t nsubscriptions, uint32_t nevents_out) {
  if (nsubscriptions == 0) return Errno::inval;
  uint64_t in_size = uint64_t(nsubscriptions) * S::size;
  std::span<const uint8_t> in_bytes;
  WASI_TRY(c.mem.bytes(in, in_size, in_bytes));
  if (!c.mem.in_bounds(out, uint64_t(nsubscriptions) * E::size) || !c.mem.in_bounds(nevents_out, 4))
    return Errno::fault;
  std::vector<uint8_t> raw(in_bytes.begin(), in_bytes.end());
  std::vector<Subscription> subs;
  WASI_TRY(parse(raw, nsubscriptions, subs));

  // The same call issued again after a suspension keeps its deadlines.
  auto& pending = c.ctx.pending_poll();
  bool resumed = pending && pending->in == in && pending->subscriptions == raw;
  std::vector<uint64_t> deadlines =
      resumed ? pending->deadlines : compute_deadlines(subs, c.ctx.clocks());

  Poller poller(c, subs, deadlines);
  std::vector<Event> events;
  if (!poller.wait(events)) {
    pending = PendingPoll{in, std::move(raw), std::move(deadlines)};
    return Ret::suspend();
  }
  pending.reset();
  return write_events(c, out, nevents_out, events);
}

} // namespace tern::wasi::calls
