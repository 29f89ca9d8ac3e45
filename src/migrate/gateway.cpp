#include "migrate/gateway.h"

#include "migrate/gateway_protocol.h"
#include "migrate/gateway_relay.h"
#include "tern/error.h"
#include "util/hex.h"
#include "wasi/net_policy.h"
#include "wasi/socket.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <fmt/format.h>
#include <map>
#include <mutex>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <set>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <thread>

namespace tern::migrate {

using namespace gateway;

namespace {

// How long a backend may take for the TLS handshake and for the rest of a
// message it started; between messages a channel may stay idle for ever.
constexpr std::chrono::milliseconds kHandshakeTimeout{10'000};
// A data connection to the control address must say what it is this soon.
constexpr std::chrono::milliseconds kDataHandshakeTimeout{10'000};
// An offer that could not be made (the listener refused) is tried again.
constexpr std::chrono::milliseconds kDialRetry{200};
// A connection closed cleanly waits this long for its peer's end of stream.
constexpr std::chrono::milliseconds kLinger{5'000};
// Out of descriptors or memory, the listeners rest this long (a pending
// connection would wake the loop again at once).
constexpr std::chrono::milliseconds kListenPause{100};
// Control channels at once (each has a thread while it lasts).
constexpr size_t kMaxSessions = 256;

// epoll tokens: what the event is about in the low bits, whose in the rest.
enum class Watch : uint64_t { ClientListener, ControlListener, Wake, Peer, Link, DataHandshake };
uint64_t token(Watch w, uint64_t id = 0) {
  return id << 3 | uint64_t(w);
}

// A relayed connection's socket, either side: no Nagle delay, and kernel
// buffers of `buffer` bytes (--buffer) instead of autotuned ones, which
// grew to megabytes: --buffer bounds what is held per connection, and the
// program's writes block once that much is on its way (back-pressure), as
// they would with a direct client.
void relay_socket(int fd, size_t buffer) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const int size = int(std::min<size_t>(buffer, 1 << 30));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
}

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// Closes with a reset, as a peer that aborts does.
void abort_socket(util::UniqueFd& fd) {
  if (!fd) return;
  linger abort_now{1, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &abort_now, sizeof abort_now);
  fd.reset();
}

std::vector<uint8_t> error_frame(std::string_view text) {
  return frame(MsgType::Error,
               std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

std::string short_id(const Id128& id) {
  return util::to_hex(std::span<const uint8_t>(id).first(4));
}

} // namespace

namespace gateway {

// A backend as it registered. (Not nested in Program: clang cannot
// default-construct, inside std::optional, a nested class with member
// initializers before its enclosing class is complete.)
struct Backend {
  uint64_t session_token = 0, session = 0;
  SessionKey key{};
  std::string address;
  bool publishes = false;
  wasi::SocketAddress listener;
};

// A program behind the gateway, as it is known across its moves.
struct Program {
  Id128 id{};
  uint64_t session_token = 0; // the control session of its backend now (0: away)
  uint64_t session = 0;       // that session's protocol id (handshakes name it)
  SessionKey key{};
  uint64_t last_sequence = 0; // of its outgoing connect requests
  std::string backend;        // the backend's address, for messages
  bool publishes = false;
  wasi::SocketAddress listener;
  bool ready = false;  // new clients may be offered
  bool frozen = false; // stopped for a checkpoint: nothing goes to it
  bool ended = false;  // it said it ended: no new clients for it
  std::optional<Clock::time_point> hold_until;
  std::set<uint64_t> conns;
  // A FREEZE being answered: the connections it named, in its order.
  std::optional<std::vector<std::pair<uint64_t, uint64_t>>> freeze;

  // A migration's target that registered while the program was frozen
  // (REGISTER standby): it joins the connections now, and takes the
  // program over at its READY; until then the frozen backend above keeps
  // it, and gets it back if the standby's session ends first.
  std::optional<Backend> standby;
};

} // namespace gateway

namespace {

// A backend's control channel: its thread reads messages and posts them to
// the loop; a request's answer comes back through `reply`.
struct Session {
  uint64_t token = 0;
  std::string peer;
  std::thread thread;
  std::mutex mutex;
  std::condition_variable cv;
  Channel* channel = nullptr; // while the thread has one
  SessionKey key{};           // derived from the channel before its first message
  std::optional<std::vector<uint8_t>> reply;
  bool cancelled = false;
  // The loop's own.
  Program* program = nullptr;
};

struct SessionEvent {
  uint64_t token = 0;
  std::optional<Message> message; // none: the channel ended
  std::string error;              // why, if it failed
};

// A connection to the control address that is not a TLS channel: a
// backend's re-join or outgoing connect request, read whole here.
struct DataHandshake {
  uint64_t id = 0;
  util::UniqueFd fd;
  std::string peer;
  std::vector<uint8_t> bytes;
  Clock::time_point deadline;
};

std::string address_text(const sockaddr_storage& ss, socklen_t len) {
  return wasi::socket_address_of(reinterpret_cast<const sockaddr*>(&ss), len).to_string();
}

} // namespace

struct Gateway::Impl {
  explicit Impl(GatewayOptions o);
  ~Impl();
  void run();

  GatewayOptions opt;
  const Id128 instance = random_id(); // connection ids mean something only here
  wasi::NetPolicy targets;
  Listener clients, control;
  util::UniqueFd epoll, wake;
  std::atomic<bool> stopping{false};
  uint64_t next_conn = 1, next_token = 1;

  std::map<uint64_t, std::unique_ptr<Conn>> conns;
  std::map<Id128, std::unique_ptr<Program>> programs;
  std::map<uint64_t, Program*> by_session; // protocol session id -> program
  Program* publisher = nullptr;            // the program new clients go to
  std::map<uint64_t, std::unique_ptr<DataHandshake>> handshakes;
  std::map<uint64_t, std::shared_ptr<Session>> sessions;
  std::mutex events_mutex;
  std::deque<SessionEvent> events;

  // Verbose lines carry the seconds since the gateway started, so that a
  // program's time away can be read off its log.
  const Clock::time_point started = Clock::now();
  template <typename... Args>
  void log(fmt::format_string<Args...> format, Args&&... args) {
    if (!opt.verbose) return;
    const double t = std::chrono::duration<double>(Clock::now() - started).count();
    fmt::print(stderr, "tern gateway: [{:.6f}] {}\n", t,
               fmt::format(format, std::forward<Args>(args)...));
  }

  // --- epoll
  void watch(int fd, uint64_t what, uint32_t events);
  void interest(int fd, uint64_t what, uint32_t& current, uint32_t want);
  void update(Conn& c);
  // When the loop must wake up without an event: the earliest deadline
  // set since the last scan (wake_at), or a little later for one removed.
  std::optional<Clock::time_point> next_deadline;
  void wake_at(Clock::time_point t);
  void retry_dial(Conn& c);
  std::optional<Clock::time_point> listening_paused_until;
  void pause_listening();
  void resume_listening();
  std::optional<Clock::time_point> earliest_deadline() const;
  int next_timeout() const;
  void dispatch(uint64_t what, uint32_t events);

  // --- clients and outgoing targets (the peer side)
  void accept_clients();
  void on_peer(Conn& c, uint32_t events);
  void target_connected(Conn& c);
  void read_peer(Conn& c);

  // --- backends (the link side)
  void on_link(Conn& c, uint32_t events);
  void dial(Conn& c);
  void dial_done(Conn& c);
  void read_take(Conn& c);
  void read_link(Conn& c);
  void link_ended(Conn& c, bool reset);
  void on_closed(Program& p, const ClosedMsg& m);
  void detach_link(Conn& c);

  // --- moving bytes, ending connections
  void pump(Conn& c);
  bool write_handshake(Conn& c);
  void finish_if_done(Conn& c);
  void close_cleanly(Conn& c);
  void abort_conn(Conn& c, const char* why);
  void erase(Conn& c);
  bool alive(uint64_t id) const { return conns.count(id) != 0; }

  // --- data connections on the control address
  void accept_control();
  void on_handshake(DataHandshake& h);
  void start_session(util::UniqueFd fd, std::string peer);
  void join(DataHandshake& h, Program& p);
  void connect_out(DataHandshake& h, Program& p);
  void refuse(util::UniqueFd& fd, int error);

  // --- programs and their control sessions
  void post(SessionEvent e);
  void drain_session_events();
  void on_message(Session& s, const Message& m);
  void on_session_closed(Session& s, const std::string& error);
  void answer(Session& s, std::vector<uint8_t> reply);
  Backend new_backend(Session& s, Program& p, const RegisterMsg& m);
  void use_backend(Program& p, const Backend& b);
  void on_register(Session& s, const RegisterMsg& m);
  void register_standby(Session& s, Program& p, const RegisterMsg& m);
  void take_over(Program& p);
  void drop_standby(Program& p);
  void on_freeze(Program& p, const FreezeMsg& m);
  void check_freeze(Program& p);
  void on_thaw(Program& p);
  void on_bye(Program& p);
  void leave(Program& p);
  void offer_waiting(Program& p);
  void expire_holds();
  void forget_if_done(Program& p);
  void serve_session(std::shared_ptr<Session> s, util::UniqueFd fd);
};

// ============================================================== setup, loop

Gateway::Impl::Impl(GatewayOptions o)
    : opt(std::move(o)), targets(opt.allow_connect, {}, {}), clients(opt.listen, "--listen"),
      control(opt.control, "--control") {
  epoll = util::UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
  wake = util::UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!epoll || !wake) throw Error(fmt::format("epoll: {}", std::strerror(errno)));
  // Clients come in bursts (a whole pool reconnecting): a deep backlog.
  ::listen(clients.fd(), SOMAXCONN);
  ::listen(control.fd(), SOMAXCONN);
  set_nonblocking(clients.fd());
  set_nonblocking(control.fd());
  watch(clients.fd(), token(Watch::ClientListener), EPOLLIN);
  watch(control.fd(), token(Watch::ControlListener), EPOLLIN);
  watch(wake.get(), token(Watch::Wake), EPOLLIN);
}

Gateway::Impl::~Impl() {
  for (auto& [t, s] : sessions) {
    {
      std::lock_guard lock(s->mutex);
      s->cancelled = true;
      if (s->channel) s->channel->cancel();
    }
    s->cv.notify_all();
  }
  for (auto& [t, s] : sessions)
    if (s->thread.joinable()) s->thread.join();
}

void Gateway::Impl::watch(int fd, uint64_t what, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = what;
  if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
    throw Error(fmt::format("epoll_ctl: {}", std::strerror(errno)));
}

// A connection's socket is in the epoll set only while it waits for
// something: one that has hung up would otherwise wake the loop for ever.
void Gateway::Impl::interest(int fd, uint64_t what, uint32_t& current, uint32_t want) {
  if (want == current) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = what;
  const int op = current == 0 ? EPOLL_CTL_ADD : want == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
  ::epoll_ctl(epoll.get(), op, fd, &ev);
  current = want;
}

void Gateway::Impl::run() {
  // The log's times are seconds from here; this says where that is on the
  // system's monotonic clock (steady_clock), for comparing with other logs.
  log("started (monotonic clock {:.6f} s)",
      std::chrono::duration<double>(started.time_since_epoch()).count());
  std::vector<epoll_event> ready(256);
  while (!stopping.load()) {
    int n = ::epoll_wait(epoll.get(), ready.data(), int(ready.size()), next_timeout());
    if (n < 0 && errno != EINTR) throw Error(fmt::format("epoll_wait: {}", std::strerror(errno)));
    for (int i = 0; i < n; ++i) dispatch(ready[size_t(i)].data.u64, ready[size_t(i)].events);
    expire_holds();
  }
}

void Gateway::Impl::dispatch(uint64_t what, uint32_t events) {
  const uint64_t id = what >> 3;
  switch (Watch(what & 7)) {
  case Watch::ClientListener:
    return accept_clients();
  case Watch::ControlListener:
    return accept_control();
  case Watch::Wake: {
    uint64_t count;
    [[maybe_unused]] ssize_t r = ::read(wake.get(), &count, sizeof count);
    return drain_session_events();
  }
  case Watch::Peer:
    if (auto it = conns.find(id); it != conns.end()) on_peer(*it->second, events);
    return;
  case Watch::Link:
    if (auto it = conns.find(id); it != conns.end()) on_link(*it->second, events);
    return;
  case Watch::DataHandshake:
    if (auto it = handshakes.find(id); it != handshakes.end()) on_handshake(*it->second);
    return;
  }
}

// The next deadline among dial retries, holds, lingering closes and data
// handshakes, as epoll's timeout.
// The earliest of the deadlines of dial retries, holds, lingering closes
// and data handshakes (a scan: only when one is due).
std::optional<Clock::time_point> Gateway::Impl::earliest_deadline() const {
  std::optional<Clock::time_point> next;
  auto consider = [&](const std::optional<Clock::time_point>& t) {
    if (t && (!next || *t < *next)) next = t;
  };
  for (const auto& [id, c] : conns) {
    consider(c->dial_after);
    consider(c->closing_until);
    if (!c->program) consider(c->accepted + opt.hold);
  }
  for (const auto& [id, p] : programs) consider(p->hold_until);
  for (const auto& [id, h] : handshakes) consider(h->deadline);
  consider(listening_paused_until);
  return next;
}

// Stops watching both listeners for a while: accepting fails for want of
// descriptors or memory, and a connection waiting in the backlog would
// wake the loop for ever. Closing connections frees what it needs.
void Gateway::Impl::pause_listening() {
  if (listening_paused_until) return;
  listening_paused_until = Clock::now() + kListenPause;
  wake_at(*listening_paused_until);
  ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, clients.fd(), nullptr);
  ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, control.fd(), nullptr);
  log("out of descriptors or memory: not accepting for {} ms", kListenPause.count());
}

void Gateway::Impl::resume_listening() {
  listening_paused_until.reset();
  watch(clients.fd(), token(Watch::ClientListener), EPOLLIN);
  watch(control.fd(), token(Watch::ControlListener), EPOLLIN);
}

void Gateway::Impl::wake_at(Clock::time_point t) {
  if (!next_deadline || t < *next_deadline) next_deadline = t;
}

// An offer that could not be made is made again a little later.
void Gateway::Impl::retry_dial(Conn& c) {
  c.dial_after = Clock::now() + kDialRetry;
  wake_at(*c.dial_after);
}

int Gateway::Impl::next_timeout() const {
  if (!next_deadline) return -1;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(*next_deadline - Clock::now()).count();
  return int(std::clamp<int64_t>(ms, 0, 60'000));
}

// What each socket of `c` should wake the loop for, given its state.
void Gateway::Impl::update(Conn& c) {
  const Program* p = c.program;
  const bool flowing = c.link_state == LinkState::Attached && !c.handshake_pending() &&
                       !c.reply_pending && p && !p->frozen;
  if (c.peer) {
    uint32_t want = 0;
    if (c.peer_connecting) {
      want = EPOLLOUT;
    } else {
      if (!c.peer_eof && c.to_backend.size() < opt.buffer && !c.closing_until) want |= EPOLLIN;
      if (c.closing_until) want |= EPOLLIN; // read to the end, discarding
      if (!c.to_peer.empty() && !c.peer_shut) want |= EPOLLOUT;
    }
    interest(c.peer.get(), token(Watch::Peer, c.id), c.peer_events, want);
  }
  if (c.link) {
    uint32_t want = 0;
    switch (c.link_state) {
    case LinkState::Dialing:
      want = EPOLLOUT;
      break;
    case LinkState::Offered:
      want = c.handshake_pending() ? EPOLLOUT : EPOLLIN;
      break;
    case LinkState::Attached:
      if (!c.backend_eof && !c.unexplained_end && (c.to_peer.size() < opt.buffer || c.absorbing()))
        want |= EPOLLIN;
      if (c.handshake_pending()) want |= EPOLLOUT;
      if (flowing && (!c.to_backend.empty() || (c.peer_eof && !c.link_shut))) want |= EPOLLOUT;
      break;
    case LinkState::None:
      break;
    }
    interest(c.link.get(), token(Watch::Link, c.id), c.link_events, want);
  }
}

// ======================================================== the peer side

void Gateway::Impl::accept_clients() {
  for (;;) {
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    util::UniqueFd fd(::accept4(clients.fd(), reinterpret_cast<sockaddr*>(&from), &len,
                                SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
        pause_listening();
      return;
    }
    relay_socket(fd.get(), opt.buffer);
    auto c = std::make_unique<Conn>();
    c->id = next_conn++;
    c->peer_address = wasi::socket_address_of(reinterpret_cast<sockaddr*>(&from), len);
    c->peer = std::move(fd);
    Conn& conn = *c;
    conns[conn.id] = std::move(c);
    if (publisher && !publisher->ended) {
      conn.program = publisher;
      publisher->conns.insert(conn.id);
    } else {
      wake_at(conn.accepted + opt.hold); // no program takes it (yet)
    }
    log("client {} is connection {}", conn.peer_address.to_string(), conn.id);
    if (conn.program) dial(conn);
    update(conn);
  }
}

void Gateway::Impl::on_peer(Conn& c, uint32_t events) {
  const uint64_t id = c.id;
  if (c.peer_connecting) {
    target_connected(c);
    if (alive(id)) update(c);
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_peer(c);
  if (alive(id)) pump(c);
}

// An outgoing connection's target answered: the backend hears how it went.
void Gateway::Impl::target_connected(Conn& c) {
  int error = 0;
  socklen_t len = sizeof error;
  ::getsockopt(c.peer.get(), SOL_SOCKET, SO_ERROR, &error, &len);
  c.peer_connecting = false;
  c.reply_pending = false;
  if (error != 0) {
    log("connection {}: connect to {} failed: {}", c.id, c.peer_address.to_string(),
        std::strerror(error));
    refuse(c.link, error);
    return erase(c);
  }
  log("connection {}: connected to {}", c.id, c.peer_address.to_string());
  c.link_out = encode(Reply{0, c.id});
  c.link_out_at = 0;
  pump(c);
}

void Gateway::Impl::read_peer(Conn& c) {
  if (c.closing_until) { // closing: what still comes is dropped
    char sink[4096];
    ssize_t n;
    while ((n = ::recv(c.peer.get(), sink, sizeof sink, MSG_DONTWAIT)) > 0) {
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) erase(c);
    return;
  }
  while (!c.peer_eof && c.to_backend.size() < opt.buffer) {
    size_t n = 0;
    bool drained = false;
    switch (c.to_backend.read_from(c.peer.get(), opt.buffer - c.to_backend.size(), n, drained)) {
    case ByteQueue::Io::Moved:
      if (drained) return; // epoll says when more comes
      continue;
    case ByteQueue::Io::End:
      c.peer_eof = true;
      log("connection {}: the peer finished sending", c.id);
      return;
    case ByteQueue::Io::Again:
      return;
    case ByteQueue::Io::Failed:
      return abort_conn(c, "the peer reset the connection");
    }
  }
}

// ========================================================= the link side

void Gateway::Impl::on_link(Conn& c, uint32_t events) {
  const uint64_t id = c.id;
  switch (c.link_state) {
  case LinkState::Dialing:
    dial_done(c);
    break;
  case LinkState::Offered:
    if (c.handshake_pending()) {
      if (!write_handshake(c)) break;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_take(c);
    break;
  case LinkState::Attached:
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_link(c);
    break;
  case LinkState::None:
    break;
  }
  if (alive(id)) pump(c);
}

// Offers `c` to its program's listener: connect, then the offer.
void Gateway::Impl::dial(Conn& c) {
  Program* p = c.program;
  if (!p || !p->ready || p->frozen || !p->publishes || c.link_state != LinkState::None ||
      c.ever_attached || c.rejoin_expected || c.frozen || c.closing_until)
    return;
  c.dial_after.reset();
  sockaddr_storage ss;
  socklen_t len = wasi::to_sockaddr(p->listener, ss);
  util::UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd ||
      (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS)) {
    retry_dial(c);
    return;
  }
  relay_socket(fd.get(), opt.buffer);
  c.link = std::move(fd);
  c.link_state = LinkState::Dialing;
  c.link_events = 0;
  update(c);
}

void Gateway::Impl::dial_done(Conn& c) {
  int error = 0;
  socklen_t len = sizeof error;
  ::getsockopt(c.link.get(), SOL_SOCKET, SO_ERROR, &error, &len);
  if (error != 0) {
    log("connection {}: offer to {} failed: {}", c.id, c.program->listener.to_string(),
        std::strerror(error));
    detach_link(c);
    retry_dial(c);
    return;
  }
  c.link_state = LinkState::Offered;
  c.take.clear();
  c.link_out = encode(Offer{c.program->session, c.id, c.peer_address}, c.program->key);
  c.link_out_at = 0;
  write_handshake(c);
}

// The backend's answer to an offer: it took the connection.
void Gateway::Impl::read_take(Conn& c) {
  uint8_t buffer[kTakeSize];
  const size_t want = kTakeSize - c.take.size();
  ssize_t n = ::recv(c.link.get(), buffer, want, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) { // not taken (the backend stopped, or refused it): offered again later
    detach_link(c);
    retry_dial(c);
    return;
  }
  c.take.insert(c.take.end(), buffer, buffer + n);
  if (c.take.size() < kTakeSize) return;
  if (decode_take(c.take) != c.id) {
    detach_link(c);
    retry_dial(c);
    return;
  }
  c.link_state = LinkState::Attached;
  c.ever_attached = true;
  c.link_shut = false;
  log("connection {}: taken by {}", c.id, c.program->backend);
}

void Gateway::Impl::read_link(Conn& c) {
  while (!c.backend_eof && !c.unexplained_end && (c.to_peer.size() < opt.buffer || c.absorbing())) {
    size_t room = opt.buffer > c.to_peer.size() ? opt.buffer - c.to_peer.size() : 0;
    if (c.absorbing()) room = std::max<size_t>(room, size_t(c.freeze_sent - c.received));
    size_t n = 0;
    bool drained = false;
    switch (c.to_peer.read_from(c.link.get(), room, n, drained)) {
    case ByteQueue::Io::Moved:
      c.received += n;
      if (!drained) continue;
      if (c.frozen && c.program) check_freeze(*c.program);
      return; // epoll says when more comes
    case ByteQueue::Io::End:
      return link_ended(c, false);
    case ByteQueue::Io::Again:
      if (c.frozen && c.program) check_freeze(*c.program);
      return;
    case ByteQueue::Io::Failed:
      return link_ended(c, true);
    }
  }
  if (c.frozen && c.program) check_freeze(*c.program);
}

// The backend's side of `c` ended. In a checkpoint (the program stopped,
// and will be restored elsewhere) that is the move: hold the connection.
// If the program said it closed it, pass that on. Otherwise it may have
// crashed: hold the connection until it says so, or a restore re-joins it.
void Gateway::Impl::link_ended(Conn& c, bool reset) {
  Program* p = c.program;
  if (c.frozen || (p && p->frozen)) {
    detach_link(c);
    if (p) check_freeze(*p);
    return;
  }
  if (c.program_closed) {
    if (reset) return abort_conn(c, "the program reset the connection");
    c.backend_eof = true;
    log("connection {}: the program finished sending", c.id);
    return;
  }
  c.unexplained_end = true;
  if (reset || !p || p->session_token == 0) detach_link(c);
}

// The program closed `id` or shut down its sending side.
void Gateway::Impl::on_closed(Program& p, const ClosedMsg& m) {
  auto it = conns.find(m.id);
  if (it == conns.end() || it->second->program != &p) return;
  Conn& c = *it->second;
  c.program_closed = true;
  if (!c.unexplained_end) return;
  c.unexplained_end = false;
  if (c.link_state != LinkState::Attached) // a reset link: the client sees a reset too
    return abort_conn(c, "the program reset the connection");
  c.backend_eof = true;
  log("connection {}: the program finished sending", c.id);
  pump(c);
}

void Gateway::Impl::detach_link(Conn& c) {
  c.link.reset(); // closing removes it from epoll
  c.link_state = LinkState::None;
  c.link_events = 0;
  c.link_out.clear();
  c.link_out_at = 0;
  c.take.clear();
}

// =========================================== moving bytes, ending connections

// Writes the handshake still owed on the link; false while some is left
// (or the link broke).
bool Gateway::Impl::write_handshake(Conn& c) {
  while (c.handshake_pending()) {
    ssize_t n = ::send(c.link.get(), c.link_out.data() + c.link_out_at,
                       c.link_out.size() - c.link_out_at, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      c.link_out_at += size_t(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return false;
    if (c.link_state == LinkState::Offered) { // not taken: offered again later
      detach_link(c);
      retry_dial(c);
    } else {
      link_ended(c, true);
    }
    return false;
  }
  return true;
}

// Moves whatever can move without waiting, in both directions, then passes
// on ends of stream and finishes the connection when both are done.
void Gateway::Impl::pump(Conn& c) {
  const uint64_t id = c.id;
  Program* p = c.program;
  if (c.link_state == LinkState::Attached && !c.reply_pending && c.handshake_pending()) {
    if (!write_handshake(c) && !alive(id)) return;
  }
  const bool flowing = c.link_state == LinkState::Attached && !c.handshake_pending() &&
                       !c.reply_pending && p && !p->frozen;
  while (flowing && !c.to_backend.empty()) {
    size_t n = 0;
    ByteQueue::Io io = c.to_backend.write_to(c.link.get(), n);
    if (io == ByteQueue::Io::Moved) {
      c.forwarded += n;
      continue;
    }
    if (io == ByteQueue::Io::Failed) {
      link_ended(c, true);
      if (!alive(id)) return;
    }
    break;
  }
  if (flowing && c.link && c.peer_eof && c.to_backend.empty() && !c.link_shut) {
    ::shutdown(c.link.get(), SHUT_WR);
    c.link_shut = true;
  }
  while (!c.peer_connecting && c.peer && !c.to_peer.empty() && !c.peer_shut) {
    size_t n = 0;
    ByteQueue::Io io = c.to_peer.write_to(c.peer.get(), n);
    if (io == ByteQueue::Io::Moved) continue;
    if (io == ByteQueue::Io::Failed) return abort_conn(c, "the peer went away");
    break;
  }
  if (c.backend_eof && c.to_peer.empty() && !c.peer_shut && !c.peer_connecting) {
    ::shutdown(c.peer.get(), SHUT_WR);
    c.peer_shut = true;
  }
  // A side not watched for reading (its buffer was full) may have bytes
  // waiting now that there is room; a watched one wakes the loop itself.
  if (!(c.link_events & EPOLLIN) && c.link_state == LinkState::Attached && !c.backend_eof &&
      c.to_peer.size() < opt.buffer)
    read_link(c);
  if (!alive(id)) return;
  if (!(c.peer_events & EPOLLIN) && !c.peer_connecting && !c.peer_eof &&
      c.to_backend.size() < opt.buffer && !c.closing_until)
    read_peer(c);
  if (!alive(id)) return;
  finish_if_done(c);
  if (alive(id)) update(c);
}

// Both directions ended and everything was delivered: the connection is
// over.
void Gateway::Impl::finish_if_done(Conn& c) {
  const bool up_done = c.peer_eof && c.to_backend.empty() && c.link_shut;
  const bool down_done = c.backend_eof && c.to_peer.empty() && c.peer_shut;
  if (up_done && down_done) {
    log("connection {}: closed ({} bytes in, {} out)", c.id, c.forwarded, c.received);
    erase(c);
  }
}

// The end of a connection nobody will take any more (its program did not
// come back in time): what the program sent is delivered, then our end of
// stream; what the peer still sends is read and dropped until it closes.
void Gateway::Impl::close_cleanly(Conn& c) {
  detach_link(c);
  c.to_backend = {};
  if (c.peer_connecting) return erase(c);
  size_t n = 0;
  while (!c.to_peer.empty() && c.to_peer.write_to(c.peer.get(), n) == ByteQueue::Io::Moved) {
  }
  if (!c.peer_shut) ::shutdown(c.peer.get(), SHUT_WR);
  c.peer_shut = true;
  c.to_peer = {};
  c.closing_until = Clock::now() + kLinger;
  wake_at(*c.closing_until);
  update(c);
}

void Gateway::Impl::abort_conn(Conn& c, const char* why) {
  log("connection {}: {}: reset", c.id, why);
  abort_socket(c.peer);
  abort_socket(c.link);
  erase(c);
}

void Gateway::Impl::erase(Conn& c) {
  Program* p = c.program;
  if (p) p->conns.erase(c.id);
  conns.erase(c.id); // closes both sockets
  if (!p) return;
  check_freeze(*p);
  forget_if_done(*p);
}

// ============================================ data connections on control

void Gateway::Impl::accept_control() {
  for (;;) {
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    util::UniqueFd fd(::accept4(control.fd(), reinterpret_cast<sockaddr*>(&from), &len,
                                SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
        pause_listening();
      return;
    }
    auto h = std::make_unique<DataHandshake>();
    h->id = next_token++;
    h->peer = address_text(from, len);
    h->deadline = Clock::now() + kDataHandshakeTimeout;
    wake_at(h->deadline);
    h->fd = std::move(fd);
    watch(h->fd.get(), token(Watch::DataHandshake, h->id), EPOLLIN);
    handshakes[h->id] = std::move(h);
  }
}

// The first bytes tell a data connection (a join or connect request,
// whole) from a control channel (a TLS handshake, left to a session).
void Gateway::Impl::on_handshake(DataHandshake& h) {
  const uint64_t id = h.id;
  uint8_t magic[kMagicSize];
  ssize_t n = ::recv(h.fd.get(), magic, sizeof magic, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    handshakes.erase(id);
    return;
  }
  const bool join = std::equal(kJoinMagic.begin(), kJoinMagic.begin() + n, magic);
  const bool connect = std::equal(kConnectMagic.begin(), kConnectMagic.begin() + n, magic);
  if (!join && !connect) {
    util::UniqueFd fd = std::move(h.fd);
    std::string peer = h.peer;
    handshakes.erase(id); // closing `h`'s empty fd removes nothing; this one leaves epoll:
    ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, fd.get(), nullptr);
    return start_session(std::move(fd), std::move(peer));
  }
  if (size_t(n) < kMagicSize) return; // the rest of the magic is on its way
  const size_t size = join ? kJoinSize : kConnectSize;
  uint8_t buffer[kConnectSize > kJoinSize ? kConnectSize : kJoinSize];
  n = ::recv(h.fd.get(), buffer, size - h.bytes.size(), MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    handshakes.erase(id);
    return;
  }
  h.bytes.insert(h.bytes.end(), buffer, buffer + n);
  if (h.bytes.size() < size) return;
  auto it = by_session.find(session_of(h.bytes));
  if (it == by_session.end()) {
    log("data connection from {}: unknown session", h.peer);
    handshakes.erase(id);
    return;
  }
  ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, h.fd.get(), nullptr);
  if (join)
    this->join(h, *it->second);
  else
    connect_out(h, *it->second);
  handshakes.erase(id);
}

void Gateway::Impl::refuse(util::UniqueFd& fd, int error) {
  std::vector<uint8_t> reply = encode(Reply{uint32_t(error), 0});
  [[maybe_unused]] ssize_t n = ::send(fd.get(), reply.data(), reply.size(), MSG_NOSIGNAL);
  fd.reset();
}

// A restored backend takes a connection back at the offsets it recorded.
void Gateway::Impl::join(DataHandshake& h, Program& p) {
  const bool standby = p.standby && session_of(h.bytes) == p.standby->session;
  std::optional<Join> m = decode_join(h.bytes, standby ? p.standby->key : p.key);
  if (!m) {
    log("data connection from {}: a join that does not authenticate", h.peer);
    return refuse(h.fd, EACCES);
  }
  auto it = conns.find(m->id);
  Conn* c = it != conns.end() ? it->second.get() : nullptr;
  if (!c || c->program != &p || !c->rejoin_expected || c->rejoin_session != m->session ||
      c->forwarded != m->received || c->received != m->sent) {
    log("connection {}: a re-join from {} that does not fit", m->id, h.peer);
    return refuse(h.fd, ENOENT);
  }
  c->rejoin_expected = false;
  relay_socket(h.fd.get(), opt.buffer);
  if (standby) { // kept aside until the standby takes over; answered now
    const std::vector<uint8_t> reply = encode(Reply{0, c->id});
    if (::send(h.fd.get(), reply.data(), reply.size(), MSG_DONTWAIT | MSG_NOSIGNAL) !=
        ssize_t(reply.size()))
      return;
    c->standby_link = std::move(h.fd);
    log("connection {}: joined by standby {} at {} bytes in, {} out", c->id, p.standby->address,
        c->forwarded, c->received);
    return;
  }
  detach_link(*c);
  c->link = std::move(h.fd);
  c->link_state = LinkState::Attached;
  c->link_shut = false;
  c->unexplained_end = false;
  c->link_out = encode(Reply{0, c->id});
  c->link_out_at = 0;
  c->link_events = 0;
  log("connection {}: re-joined by {} at {} bytes in, {} out", c->id, p.backend, c->forwarded,
      c->received);
  pump(*c);
}

// A program connects out through the gateway: a new connection whose peer
// is the target; the reply waits for the target's answer.
void Gateway::Impl::connect_out(DataHandshake& h, Program& p) {
  std::optional<Connect> m = decode_connect(h.bytes, p.key);
  if (!m || m->sequence <= p.last_sequence) {
    log("data connection from {}: a connect request that does not authenticate", h.peer);
    return refuse(h.fd, EACCES);
  }
  p.last_sequence = m->sequence;
  if (!opt.allow_connect.empty() && !targets.may_connect(m->target)) {
    log("{} may not connect to {} (--allow-connect)", p.backend, m->target.to_string());
    return refuse(h.fd, EACCES);
  }
  sockaddr_storage ss;
  socklen_t len = wasi::to_sockaddr(m->target, ss);
  util::UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (len == 0 || !fd) return refuse(h.fd, len == 0 ? EAFNOSUPPORT : errno);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS)
    return refuse(h.fd, errno);
  relay_socket(fd.get(), opt.buffer);
  relay_socket(h.fd.get(), opt.buffer);
  auto c = std::make_unique<Conn>();
  c->id = next_conn++;
  c->program = &p;
  c->outgoing = true;
  c->peer_address = m->target;
  c->peer = std::move(fd);
  c->peer_connecting = true;
  c->link = std::move(h.fd);
  c->link_state = LinkState::Attached;
  c->ever_attached = true;
  c->reply_pending = true;
  Conn& conn = *c;
  conns[conn.id] = std::move(c);
  p.conns.insert(conn.id);
  log("connection {}: {} connects to {}", conn.id, p.backend, conn.peer_address.to_string());
  update(conn);
}

// ================================================= programs and sessions

void Gateway::Impl::start_session(util::UniqueFd fd, std::string peer) {
  if (sessions.size() >= kMaxSessions) {
    log("{}: too many control channels; closed", peer);
    return;
  }
  auto s = std::make_shared<Session>();
  s->token = next_token++;
  s->peer = std::move(peer);
  sessions[s->token] = s;
  s->thread =
      std::thread([this, s, fd = std::move(fd)]() mutable { serve_session(s, std::move(fd)); });
}

// A session's thread: the TLS handshake, then messages to the loop and
// its answers back, until the channel ends.
void Gateway::Impl::serve_session(std::shared_ptr<Session> s, util::UniqueFd fd) {
  std::unique_ptr<Channel> ch;
  std::string error;
  try {
    ChannelOptions options;
    options.timeout = kHandshakeTimeout;
    ch = Channel::accept(std::move(fd), s->peer, opt.key, options);
    {
      std::lock_guard lock(s->mutex);
      if (s->cancelled) throw ChannelCancelled("cancelled");
      s->channel = ch.get();
      s->key = ch->export_secret(kSessionKeyLabel);
    }
    for (;;) {
      // Between messages a channel may stay idle for ever (the read
      // timeout counts from here).
      while (!ch->readable(std::chrono::milliseconds(60'000))) {
      }
      std::optional<Message> m = read_message(*ch);
      if (!m) break; // closed cleanly
      const bool wants_reply = m->type == MsgType::Register || m->type == MsgType::Freeze;
      post({s->token, std::move(m), ""});
      if (!wants_reply) continue;
      std::vector<uint8_t> reply;
      {
        std::unique_lock lock(s->mutex);
        s->cv.wait(lock, [&] { return s->reply || s->cancelled; });
        if (s->cancelled) break;
        reply = std::move(*s->reply);
        s->reply.reset();
      }
      ch->write(reply);
      ch->flush();
      if (reply.size() > 4 && reply[4] == uint8_t(MsgType::Error)) break;
    }
    ch->close();
  } catch (const std::exception& e) {
    error = e.what();
  }
  {
    std::lock_guard lock(s->mutex);
    s->channel = nullptr;
  }
  ch.reset();
  post({s->token, std::nullopt, error});
}

void Gateway::Impl::post(SessionEvent e) {
  {
    std::lock_guard lock(events_mutex);
    events.push_back(std::move(e));
  }
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake.get(), &one, sizeof one);
}

void Gateway::Impl::drain_session_events() {
  for (;;) {
    SessionEvent e;
    {
      std::lock_guard lock(events_mutex);
      if (events.empty()) return;
      e = std::move(events.front());
      events.pop_front();
    }
    auto it = sessions.find(e.token);
    if (it == sessions.end()) continue;
    std::shared_ptr<Session> s = it->second;
    if (!e.message) {
      on_session_closed(*s, e.error);
      if (s->thread.joinable()) s->thread.join();
      sessions.erase(e.token);
      continue;
    }
    try {
      on_message(*s, *e.message);
    } catch (const Error& err) { // a malformed message: the session ends
      log("{}: {}", s->peer, err.what());
      answer(*s, error_frame(err.what()));
    }
  }
}

void Gateway::Impl::answer(Session& s, std::vector<uint8_t> reply) {
  {
    std::lock_guard lock(s.mutex);
    s.reply = std::move(reply);
  }
  s.cv.notify_all();
}

void Gateway::Impl::on_message(Session& s, const Message& m) {
  if (m.type == MsgType::Register) return on_register(s, decode_register(m.payload));
  Program* p = s.program;
  if (p && p->standby && p->standby->session_token == s.token) {
    if (m.type != MsgType::Ready) throw Error(fmt::format("unexpected message {}", int(m.type)));
    return take_over(*p);
  }
  // A session that registered nothing, or whose program has moved on to
  // another backend since, is not heard.
  if (!p || p->session_token != s.token) {
    if (m.type == MsgType::Freeze)
      answer(s, error_frame("this backend no longer holds the program"));
    return;
  }
  switch (m.type) {
  case MsgType::Freeze:
    return on_freeze(*p, decode_freeze(m.payload));
  case MsgType::Thaw:
    return on_thaw(*p);
  case MsgType::Ready:
    p->ready = true;
    log("program {} is ready at {}", short_id(p->id), p->backend);
    return offer_waiting(*p);
  case MsgType::Bye:
    return on_bye(*p);
  case MsgType::Closed:
    return on_closed(*p, decode_closed(m.payload));
  default:
    throw Error(fmt::format("unexpected message {}", int(m.type)));
  }
}

void Gateway::Impl::on_register(Session& s, const RegisterMsg& m) {
  auto refuse_with = [&](const std::string& text) {
    log("{}: registration refused: {}", s.peer, text);
    answer(s, error_frame(text));
  };
  if (s.program) return refuse_with("this session already registered");
  auto& slot = programs[m.program];
  if (!slot) {
    slot = std::make_unique<Program>();
    slot->id = m.program;
  }
  Program& p = *slot;
  if (m.standby) return register_standby(s, p, m);
  if (p.session_token != 0 && !p.frozen) {
    return refuse_with(fmt::format("program {} runs at {} (stop it before restoring it elsewhere)",
                                   short_id(p.id), p.backend));
  }
  if (m.publishes && publisher && publisher != &p && !publisher->ended &&
      (publisher->session_token != 0 || !publisher->conns.empty()))
    return refuse_with(
        fmt::format("program {} is published through this gateway", short_id(publisher->id)));
  const bool ours = m.gateway == Id128{} || m.gateway == instance;
  if (p.standby) drop_standby(p);
  // A backend it replaces (a checkpoint taken, restored here) is let go.
  if (p.session_token != 0) {
    auto old = sessions.find(p.session_token);
    if (old != sessions.end()) old->second->program = nullptr;
    by_session.erase(p.session);
    for (uint64_t id : p.conns)
      if (Conn& c = *conns.at(id); c.link_state != LinkState::Attached || c.frozen) detach_link(c);
  }
  by_session.erase(p.session);
  use_backend(p, new_backend(s, p, m));
  if (m.publishes) {
    for (auto& [id, c] : conns) { // clients that waited for a program
      if (c->program) continue;
      c->program = &p;
      p.conns.insert(id);
    }
  }

  RegisteredMsg reply;
  reply.gateway = instance;
  reply.session = p.session;
  std::set<uint64_t> recorded;
  for (const HeldConnection& h : m.connections) {
    // Ids are per instance: another instance's records name none of ours
    // (after a gateway restart our connection 1 is another client).
    if (ours) recorded.insert(h.id);
    auto it = conns.find(h.id);
    Conn* c = ours && it != conns.end() && it->second->program == &p ? it->second.get() : nullptr;
    JoinStatus status = JoinStatus::Gone;
    if (c && !c->closing_until && c->outgoing == h.outgoing)
      status = c->forwarded == h.received && c->received == h.sent ? JoinStatus::Rejoin
                                                                   : JoinStatus::Mismatch;
    if (status == JoinStatus::Rejoin) {
      detach_link(*c);
      c->rejoin_expected = true;
      c->rejoin_session = p.session;
      c->frozen = false;
    } else if (c) {
      log("connection {}: its offsets in the snapshot ({} in, {} out) are not the gateway's ({}, "
          "{}): closed",
          c->id, h.received, h.sent, c->forwarded, c->received);
      close_cleanly(*c);
    }
    reply.connections.push_back({h.id, status});
  }
  // Connections the snapshot does not have were held by a backend after
  // it was taken (or closed by the program before): they end. Those no
  // backend ever took are offered again.
  std::vector<uint64_t> stale;
  for (uint64_t id : p.conns) {
    Conn& c = *conns.at(id);
    if (recorded.count(id) || c.closing_until) continue;
    if (c.ever_attached) {
      stale.push_back(id);
    } else {
      detach_link(c);
      c.frozen = false;
    }
  }
  for (uint64_t id : stale)
    if (alive(id)) close_cleanly(*conns.at(id));
  log("program {} registered from {}: {} connection(s) to re-join", short_id(p.id), p.backend,
      std::count_if(reply.connections.begin(), reply.connections.end(),
                    [](const auto& e) { return e.second == JoinStatus::Rejoin; }));
  answer(s, frame(MsgType::Registered, encode(reply)));
}

// The backend of session `s`, which registers `p` with `m`: a protocol
// session id no other session has (handshakes name it), entered in
// by_session.
Backend Gateway::Impl::new_backend(Session& s, Program& p, const RegisterMsg& m) {
  Backend b;
  b.session_token = s.token;
  while (b.session == 0 || by_session.count(b.session)) {
    Id128 r = random_id();
    std::memcpy(&b.session, r.data(), sizeof b.session);
  }
  by_session[b.session] = &p;
  {
    std::lock_guard lock(s.mutex);
    b.key = s.key;
  }
  b.address = s.peer;
  b.publishes = m.publishes;
  b.listener = m.listener;
  s.program = &p;
  return b;
}

// `b` holds the program from now on (not ready for new clients yet).
void Gateway::Impl::use_backend(Program& p, const Backend& b) {
  p.session_token = b.session_token;
  p.session = b.session;
  p.key = b.key;
  p.last_sequence = 0;
  p.backend = b.address;
  p.publishes = b.publishes;
  p.listener = b.listener;
  p.ready = false;
  p.frozen = false;
  p.ended = false;
  p.freeze.reset();
  p.hold_until.reset();
  if (p.publishes) publisher = &p;
}

// A migration's target registers while its source is frozen: it may join
// the connections at the offsets the source's FREEZE settled, but they
// stay the source's (nothing flows to the target) until its READY, which
// it sends once the source has committed. So the re-joins are not part of
// the clients' stall, and a migration that fails after them leaves the
// source its connections: the standby's session ends, and the source's
// THAW lets them flow again.
void Gateway::Impl::register_standby(Session& s, Program& p, const RegisterMsg& m) {
  auto refuse_with = [&](const std::string& text) {
    log("{}: standby registration refused: {}", s.peer, text);
    answer(s, error_frame(text));
    forget_if_done(p);
  };
  if (p.session_token == 0 || !p.frozen || p.freeze || p.standby || m.gateway != instance)
    return refuse_with(fmt::format("program {} is not frozen at a backend here", short_id(p.id)));
  if (m.publishes && publisher && publisher != &p && !publisher->ended &&
      (publisher->session_token != 0 || !publisher->conns.empty()))
    return refuse_with(
        fmt::format("program {} is published through this gateway", short_id(publisher->id)));
  const Backend& sb = p.standby.emplace(new_backend(s, p, m));
  RegisteredMsg reply;
  reply.gateway = instance;
  reply.session = sb.session;
  for (const HeldConnection& h : m.connections) {
    auto it = conns.find(h.id);
    Conn* c = it != conns.end() && it->second->program == &p ? it->second.get() : nullptr;
    JoinStatus status = JoinStatus::Gone;
    if (c && !c->closing_until && c->outgoing == h.outgoing)
      status = c->forwarded == h.received && c->received == h.sent ? JoinStatus::Rejoin
                                                                   : JoinStatus::Mismatch;
    if (status == JoinStatus::Rejoin) {
      c->rejoin_expected = true;
      c->rejoin_session = sb.session;
    }
    reply.connections.push_back({h.id, status});
  }
  log("program {} registered from {} as a standby: {} connection(s) to re-join", short_id(p.id),
      sb.address, std::count_if(reply.connections.begin(), reply.connections.end(), [](auto& e) {
        return e.second == JoinStatus::Rejoin;
      }));
  answer(s, frame(MsgType::Registered, encode(reply)));
}

// The standby's READY: the source committed and the target runs the
// program. The source is let go, the joined connections flow at once, and
// those the target did not join come back reset there: they end here.
void Gateway::Impl::take_over(Program& p) {
  const Backend sb = std::move(*p.standby);
  p.standby.reset();
  if (p.session_token != 0) {
    auto old = sessions.find(p.session_token);
    if (old != sessions.end()) old->second->program = nullptr;
  }
  by_session.erase(p.session);
  use_backend(p, sb);
  std::vector<uint64_t> ids(p.conns.begin(), p.conns.end());
  for (uint64_t id : ids) {
    if (!alive(id)) continue;
    Conn& c = *conns.at(id);
    c.frozen = false;
    c.rejoin_expected = false;
    if (c.standby_link) {
      detach_link(c);
      c.link = std::move(c.standby_link);
      c.link_state = LinkState::Attached;
      c.link_shut = false;
      c.unexplained_end = false;
      c.ever_attached = true;
    } else if (c.ever_attached && !c.closing_until) {
      close_cleanly(c);
    } else if (!c.closing_until) {
      detach_link(c); // an offer the source did not take: made to the target
    }
  }
  p.ready = true;
  log("program {} is ready at {} (the standby took it over)", short_id(p.id), p.backend);
  for (uint64_t id : ids)
    if (alive(id)) pump(*conns.at(id));
  offer_waiting(p);
}

// The standby's session ended before its READY, or the source continues
// (THAW, a migration that failed): the connections stay the source's.
void Gateway::Impl::drop_standby(Program& p) {
  const Backend& sb = *p.standby;
  log("program {}: standby at {} dropped", short_id(p.id), sb.address);
  for (uint64_t id : p.conns) {
    Conn& c = *conns.at(id);
    c.standby_link.reset();
    if (c.rejoin_expected && c.rejoin_session == sb.session) c.rejoin_expected = false;
  }
  by_session.erase(sb.session);
  auto s = sessions.find(sb.session_token);
  if (s != sessions.end() && s->second->program == &p) s->second->program = nullptr;
  p.standby.reset();
}

void Gateway::Impl::on_freeze(Program& p, const FreezeMsg& m) {
  p.frozen = true;
  p.freeze = m.sent;
  for (auto [id, sent] : m.sent) {
    auto it = conns.find(id);
    if (it == conns.end() || it->second->program != &p) continue;
    Conn& c = *it->second;
    c.frozen = true;
    c.freeze_sent = sent;
    c.ever_attached = true; // the program has it, even if its answer to the offer is on its way
  }
  // Offers not yet made wait for the thaw (or the next backend).
  for (uint64_t id : p.conns) {
    Conn& c = *conns.at(id);
    if (c.link_state == LinkState::Dialing) detach_link(c);
  }
  log("program {} checkpoints ({} connection(s))", short_id(p.id), m.sent.size());
  for (auto [id, sent] : m.sent)
    if (auto it = conns.find(id); it != conns.end()) pump(*it->second);
  check_freeze(p);
}

// A FREEZE is answered once every byte its program sent has been read (or
// the connection is gone).
void Gateway::Impl::check_freeze(Program& p) {
  if (!p.freeze) return;
  FrozenMsg reply;
  for (auto [id, sent] : *p.freeze) {
    auto it = conns.find(id);
    FrozenMsg::Entry e{id, FrozenStatus::Unknown, 0};
    if (it != conns.end() && it->second->program == &p) {
      const Conn& c = *it->second;
      if (c.received < sent && c.link_state != LinkState::None) return; // still coming
      e.status = c.received == sent ? FrozenStatus::Held : FrozenStatus::Broken;
      e.forwarded = c.forwarded;
    }
    reply.connections.push_back(e);
  }
  p.freeze.reset();
  auto s = sessions.find(p.session_token);
  if (s != sessions.end()) answer(*s->second, frame(MsgType::Frozen, encode(reply)));
}

void Gateway::Impl::on_thaw(Program& p) {
  if (p.standby) drop_standby(p);
  p.frozen = false;
  p.freeze.reset();
  std::vector<uint64_t> ids(p.conns.begin(), p.conns.end());
  for (uint64_t id : ids) {
    if (!alive(id)) continue;
    Conn& c = *conns.at(id);
    c.frozen = false;
    pump(c);
  }
  offer_waiting(p);
}

// The program ended: it takes no more clients.
void Gateway::Impl::on_bye(Program& p) {
  log("program {} ended", short_id(p.id));
  p.ended = true;
  p.ready = false;
  if (publisher == &p) publisher = nullptr;
  // Its connections end with it: what it sent is delivered, then the end
  // of stream; those no backend took are closed.
  std::vector<uint64_t> ids(p.conns.begin(), p.conns.end());
  for (uint64_t id : ids) {
    if (!alive(id)) continue;
    if (!conns.at(id)->ever_attached)
      close_cleanly(*conns.at(id));
    else
      on_closed(p, ClosedMsg{id, false});
  }
}

void Gateway::Impl::on_session_closed(Session& s, const std::string& error) {
  if (!error.empty()) log("{}: {}", s.peer, error);
  Program* p = s.program;
  if (p && p->standby && p->standby->session_token == s.token) return drop_standby(*p);
  if (!p || p->session_token != s.token) return;
  leave(*p);
}

// The program's backend went away: its connections are held for --hold.
void Gateway::Impl::leave(Program& p) {
  p.session_token = 0;
  p.ready = false;
  p.freeze.reset();
  by_session.erase(p.session);
  p.hold_until = Clock::now() + opt.hold;
  wake_at(*p.hold_until);
  std::vector<uint64_t> ids(p.conns.begin(), p.conns.end());
  for (uint64_t id : ids) {
    if (!alive(id)) continue;
    Conn& c = *conns.at(id);
    if (c.link_state == LinkState::Dialing || c.link_state == LinkState::Offered ||
        c.unexplained_end)
      detach_link(c);
  }
  log("program {} is away: holding {} connection(s) for {} ms", short_id(p.id), p.conns.size(),
      opt.hold.count());
  forget_if_done(p);
}

// Offers every client of `p` that no backend holds.
void Gateway::Impl::offer_waiting(Program& p) {
  std::vector<uint64_t> ids(p.conns.begin(), p.conns.end());
  for (uint64_t id : ids) {
    if (!alive(id)) continue;
    Conn& c = *conns.at(id);
    if (c.link_state == LinkState::None) dial(c);
    if (alive(id)) update(c);
  }
}

void Gateway::Impl::expire_holds() {
  const auto now = Clock::now();
  if (!next_deadline || now < *next_deadline) return;
  if (listening_paused_until && now >= *listening_paused_until) resume_listening();
  std::vector<uint64_t> lingered, redial, unclaimed;
  for (auto& [id, c] : conns) {
    if (c->closing_until && now >= *c->closing_until)
      lingered.push_back(id);
    else if (c->dial_after && now >= *c->dial_after)
      redial.push_back(id);
    else if (!c->program && !c->closing_until && now >= c->accepted + opt.hold)
      unclaimed.push_back(id);
  }
  for (uint64_t id : lingered)
    if (alive(id)) erase(*conns.at(id));
  for (uint64_t id : redial)
    if (alive(id)) dial(*conns.at(id));
  for (uint64_t id : unclaimed)
    if (alive(id)) close_cleanly(*conns.at(id));
  for (auto it = handshakes.begin(); it != handshakes.end();)
    it = now >= it->second->deadline ? handshakes.erase(it) : std::next(it);
  std::vector<Program*> expired;
  for (auto& [id, p] : programs)
    if (p->hold_until && now >= *p->hold_until) expired.push_back(p.get());
  for (Program* p : expired) {
    log("program {} did not come back: closing {} connection(s)", short_id(p->id), p->conns.size());
    p->hold_until.reset();
    std::vector<uint64_t> ids(p->conns.begin(), p->conns.end());
    for (uint64_t id : ids)
      if (alive(id) && !conns.at(id)->closing_until) close_cleanly(*conns.at(id));
    p->ended = true;
    if (publisher == p) publisher = nullptr;
    forget_if_done(*p);
  }
  next_deadline = earliest_deadline();
}

// A program nobody runs and that has no connections is forgotten.
void Gateway::Impl::forget_if_done(Program& p) {
  if (p.session_token != 0 || p.standby || !p.conns.empty() || (!p.ended && p.hold_until)) return;
  if (publisher == &p) publisher = nullptr;
  by_session.erase(p.session);
  programs.erase(p.id);
}

// ============================================================== the API

Gateway::Gateway(GatewayOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Gateway::~Gateway() = default;

std::string Gateway::listen_address() const {
  return impl_->clients.address();
}
std::string Gateway::control_address() const {
  return impl_->control.address();
}

void Gateway::run() {
  impl_->run();
}

void Gateway::stop() {
  impl_->stopping.store(true);
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(impl_->wake.get(), &one, sizeof one);
}

} // namespace tern::migrate
