#include "migrate/gateway_backend.h"

#include "tern/error.h"
#include "util/host_port.h"
#include "wasi/blocking.h"
#include "wasi/posix_errno.h"
#include "wasi/socket.h"
#include "wasi/state_sockets.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <map>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

namespace tern::migrate {

using namespace gateway;

namespace {

using Clock = std::chrono::steady_clock;

// How long an accepted connection may take to show the gateway's offer.
constexpr uint64_t kOfferWaitUs = 5'000'000;

wasi::SocketAddress resolve(const std::string& spec) {
  const util::HostPort hp = util::split_host_port(spec, "--gateway");
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(hp.host.empty() ? nullptr : hp.host.c_str(), hp.port.c_str(), &hints,
                             &found);
      rc != 0)
    throw Error(fmt::format("--gateway {}: {}", spec, ::gai_strerror(rc)));
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, ::freeaddrinfo);
  return wasi::socket_address_of(found->ai_addr, found->ai_addrlen);
}

bool is_wildcard(const wasi::SocketAddress& a) {
  return std::all_of(a.ip.begin(), a.ip.end(), [](uint8_t b) { return b == 0; });
}

// The address of this host on the way to `to`: where the gateway reaches a
// listener bound to the wildcard address.
wasi::SocketAddress local_address_toward(const wasi::SocketAddress& to) {
  sockaddr_storage ss;
  socklen_t len = wasi::to_sockaddr(to, ss);
  util::UniqueFd probe(::socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!probe || ::connect(probe.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0)
    throw Error(
        fmt::format("gateway {}: no route to it: {}", to.to_string(), std::strerror(errno)));
  return wasi::local_address(probe.get());
}

bool is_loopback(const wasi::SocketAddress& address) {
  const wasi::SocketAddress a = wasi::unmapped(address);
  if (a.family == 4) return a.ip[0] == 127;
  static constexpr uint8_t kLoopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return a.family == 6 && std::equal(a.ip.begin(), a.ip.end(), kLoopback6);
}

void warn(const std::string& text) {
  fmt::print(stderr, "tern: warning: {}\n", text);
}

const char* status_text(JoinStatus s) {
  switch (s) {
  case JoinStatus::Rejoin:
    return "re-joined";
  case JoinStatus::Gone:
    return "the gateway no longer has it";
  case JoinStatus::Mismatch:
    return "bytes moved on it after the snapshot was taken";
  }
  return "?";
}

} // namespace

GatewayBackend::GatewayBackend(BackendOptions options) : opt_(std::move(options)) {}
GatewayBackend::~GatewayBackend() = default;

// --- registration -------------------------------------------------------------

void GatewayBackend::send(MsgType type, std::span<const uint8_t> payload) {
  std::vector<uint8_t> bytes = frame(type, payload);
  channel_->write(bytes);
  channel_->flush();
}

Message GatewayBackend::request(MsgType type, std::span<const uint8_t> payload, MsgType expected) {
  send(type, payload);
  std::optional<Message> reply = read_message(*channel_);
  if (!reply) throw Error(fmt::format("gateway {} closed the channel", gateway_));
  Message m = std::move(*reply);
  if (m.type == MsgType::Error)
    throw Error(fmt::format("gateway {} refused: {}", gateway_,
                            std::string(m.payload.begin(), m.payload.end())));
  if (m.type != expected)
    throw Error(fmt::format("gateway {}: unexpected message {}", gateway_, int(m.type)));
  return m;
}

void GatewayBackend::register_program(wasi::WasiContext& ctx,
                                      const std::vector<HeldConnection>& held, bool standby,
                                      RegisteredMsg& reply) {
  if (!opt_.key) throw Error(fmt::format("--gateway {} needs --key FILE", gateway_));
  gateway_address_ = resolve(gateway_);
  RegisterMsg m;
  m.program = program_;
  m.gateway = instance_;
  m.connections = held;
  m.standby = standby;
  if (listener_fd_) {
    const wasi::FdEntry* e = ctx.fds().find(*listener_fd_);
    if (!e || e->kind != wasi::FdKind::TcpListener)
      throw Error(
          fmt::format("fd {}: the published listener is not a listening socket", *listener_fd_));
    m.publishes = true;
    m.listener = e->socket->local;
    if (is_wildcard(m.listener)) {
      const uint16_t port = m.listener.port;
      m.listener = local_address_toward(gateway_address_);
      m.listener.port = port;
    }
  }
  ChannelOptions options;
  options.timeout = opt_.timeout;
  try {
    channel_ = Channel::connect(gateway_, *opt_.key, options);
    reply = decode_registered(request(MsgType::Register, encode(m), MsgType::Registered).payload);
  } catch (const Error& e) {
    channel_.reset();
    throw Error(fmt::format("cannot register with gateway {}: {}", gateway_, e.what()));
  }
  instance_ = reply.gateway;
  session_ = reply.session;
  key_ = channel_->export_secret(kSessionKeyLabel);
  sequence_ = 0;
  taken_.clear();
}

void GatewayBackend::started(wasi::WasiContext& ctx) {
  gateway_ = opt_.gateway;
  program_ = random_id();
  // The first --listen socket is the one clients reach through the gateway.
  if (!ctx.options().listen.empty()) listener_fd_ = uint32_t(3 + ctx.preopens().size());
  RegisteredMsg reply;
  register_program(ctx, {}, false, reply);
  publish(ctx);
}

// The program takes the gateway's clients from now on: READY.
void GatewayBackend::publish(wasi::WasiContext& ctx) {
  if (listener_fd_) ctx.fds().find(*listener_fd_)->published = true;
  ctx.set_gateway_link(shared_from_this());
  send(MsgType::Ready);
}

// --- restore ----------------------------------------------------------------------

void GatewayBackend::restoring(const snapshot::ExtensionSection* section,
                               wasi::RestoreOptions& wasi) {
  if (!section) return;
  saved_ = decode_section(*section);
  if (opt_.no_gateway) return; // the WASI state brings the streams back reset
  if (!opt_.key)
    throw Error(fmt::format("the program was published through gateway {}: give --key FILE to "
                            "re-join its connections (or --no-gateway to restore without it: "
                            "they then come back reset)",
                            opt_.gateway.empty() ? saved_->gateway : opt_.gateway));
  for (const ConnectionRecord& c : saved_->connections) wasi.relayed_streams.insert(c.fd);
}

bool GatewayBackend::joins() const {
  return !opt_.no_gateway && (saved_ || !opt_.gateway.empty());
}

void GatewayBackend::restored(wasi::WasiContext& ctx) {
  if (!joins()) return;
  gateway_ = opt_.gateway.empty() ? saved_->gateway : opt_.gateway;
  if (saved_) {
    program_ = saved_->program;
    instance_ = saved_->instance;
    listener_fd_ = saved_->listener_fd;
    if (listener_fd_) {
      const wasi::FdEntry* e = ctx.fds().find(*listener_fd_);
      if (!e || e->kind != wasi::FdKind::TcpListener)
        throw Error(fmt::format("section GWAY: fd {} is not a listening socket in the WASI state",
                                *listener_fd_));
    }
    for (const ConnectionRecord& c : saved_->connections) {
      const wasi::FdEntry* e = ctx.fds().find(c.fd);
      if (!e || e->kind != wasi::FdKind::TcpStream || e->host)
        throw Error(
            fmt::format("section GWAY: fd {} is not a connected socket in the WASI state", c.fd));
    }
  } else { // published from now on: its first listening socket
    program_ = random_id();
    for (uint32_t fd : ctx.fds().open_fds())
      if (ctx.fds().find(fd)->kind == wasi::FdKind::TcpListener) {
        listener_fd_ = fd;
        break;
      }
  }
  if (!opt_.join_when_resuming)
    join(ctx);
  else
    join_as_standby(ctx);
}

// A migration's target, before it tells the source it is ready: the
// connections are joined now, while the source waits, so that only READY
// is left for when the program runs. If the gateway does not take a
// standby (the source is not frozen there, say), resuming() registers as
// before.
void GatewayBackend::join_as_standby(wasi::WasiContext& ctx) {
  if (!saved_) return;
  RegisteredMsg reply;
  try {
    register_program(ctx, held(), true, reply);
  } catch (const Error&) {
    channel_.reset();
    return;
  }
  rejoin(ctx, reply);
  standby_ = true;
}

// A standby takes the connections over as soon as the source has
// committed (the program runs here whatever happens now).
void GatewayBackend::committed(wasi::WasiContext& ctx) {
  if (standby_) join_for_good(ctx);
}

void GatewayBackend::resuming(wasi::WasiContext& ctx) {
  if (joins() && opt_.join_when_resuming && !joined_) join_for_good(ctx);
}

// A migration's target whose source has committed: the standby takes the
// program over, or (none) it registers now. The program must run whatever
// happens (its source is gone): without the gateway, if need be.
void GatewayBackend::join_for_good(wasi::WasiContext& ctx) {
  joined_ = true;
  try {
    if (standby_) {
      standby_ = false;
      publish(ctx);
      return;
    }
    join(ctx);
  } catch (const Error& e) {
    warn(fmt::format("{}; the program runs without the gateway, its connections reset", e.what()));
    channel_.reset();
    reset_unjoined(ctx);
  }
}

// Registers with the recorded connections, re-joins them, publishes the
// listener and lets the gateway offer new clients.
void GatewayBackend::join(wasi::WasiContext& ctx) {
  RegisteredMsg reply;
  register_program(ctx, held(), false, reply);
  rejoin(ctx, reply);
  publish(ctx);
}

// The snapshot's connections, as REGISTER names them.
std::vector<HeldConnection> GatewayBackend::held() const {
  std::vector<HeldConnection> out;
  if (saved_)
    for (const ConnectionRecord& c : saved_->connections)
      out.push_back({c.id, c.outgoing, c.received, c.sent});
  return out;
}

namespace {

// One connection being re-joined: connect to the gateway, send the join,
// read the reply.
struct Joining {
  const ConnectionRecord* record = nullptr;
  util::UniqueFd fd;
  std::vector<uint8_t> join;
  size_t written = 0;
  std::vector<uint8_t> reply;
  bool done = false, ok = false;
};

void step(Joining& j, short revents) {
  if (revents & (POLLERR | POLLHUP) && j.reply.empty() && j.written < j.join.size()) {
    j.done = true;
    return;
  }
  if (j.written < j.join.size()) {
    ssize_t n = ::send(j.fd.get(), j.join.data() + j.written, j.join.size() - j.written,
                       MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) j.written += size_t(n);
    if (n < 0 && errno != EAGAIN && errno != EINTR && errno != ENOTCONN) j.done = true;
    return;
  }
  uint8_t buffer[kReplySize];
  ssize_t n = ::recv(j.fd.get(), buffer, kReplySize - j.reply.size(), MSG_DONTWAIT);
  if (n > 0) j.reply.insert(j.reply.end(), buffer, buffer + n);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) j.done = true;
  if (j.reply.size() == kReplySize) {
    std::optional<Reply> r = decode_reply(j.reply);
    j.ok = r && r->status == 0 && r->id == j.record->id;
    j.done = true;
  }
}

} // namespace

// Every connection the gateway still holds at the recorded offsets is
// joined again (all at once); the others come back reset.
void GatewayBackend::rejoin(wasi::WasiContext& ctx, const RegisteredMsg& registered) {
  if (!saved_) return;
  std::vector<Joining> joins;
  for (size_t i = 0; i < saved_->connections.size(); ++i) {
    const ConnectionRecord& c = saved_->connections[i];
    const JoinStatus status =
        i < registered.connections.size() ? registered.connections[i].second : JoinStatus::Gone;
    if (status != JoinStatus::Rejoin) {
      warn(fmt::format("fd {}: connection {} comes back reset: {}", c.fd, c.id,
                       status_text(status)));
      continue;
    }
    Joining j;
    j.record = &c;
    j.join = encode(Join{session_, c.id, c.received, c.sent}, key_);
    sockaddr_storage ss;
    socklen_t len = wasi::to_sockaddr(gateway_address_, ss);
    j.fd = util::UniqueFd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!j.fd ||
        (::connect(j.fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS))
      j.done = true;
    joins.push_back(std::move(j));
  }
  const auto deadline = Clock::now() + opt_.timeout;
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<Joining*> waiting;
    for (Joining& j : joins) {
      if (j.done) continue;
      fds.push_back({j.fd.get(), short(j.written < j.join.size() ? POLLOUT : POLLIN), 0});
      waiting.push_back(&j);
    }
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (fds.empty() || left.count() <= 0) break;
    if (::poll(fds.data(), fds.size(), int(left.count())) < 0 && errno != EINTR) break;
    for (size_t k = 0; k < fds.size(); ++k)
      if (fds[k].revents) step(*waiting[k], fds[k].revents);
  }
  for (Joining& j : joins) {
    if (!j.ok) {
      warn(fmt::format("fd {}: connection {} comes back reset: the gateway did not take it back",
                       j.record->fd, j.record->id));
      continue;
    }
    const ConnectionRecord& c = *j.record;
    wasi::FdEntry& e = *ctx.fds().find(c.fd);
    e.host = std::move(j.fd);
    wasi::apply_socket_options(e);
    if (e.socket->shut_write) ::shutdown(e.host.get(), SHUT_WR);
    e.gateway = std::make_unique<wasi::GatewayStream>();
    e.gateway->id = c.id;
    e.gateway->outgoing = c.outgoing;
    e.gateway->received = c.received;
    e.gateway->sent = c.sent;
    e.gateway->unread = c.unread;
  }
  reset_unjoined(ctx);
}

// The recorded connections that were not re-joined come back reset, as
// connected sockets do without a gateway.
void GatewayBackend::reset_unjoined(wasi::WasiContext& ctx) {
  if (!saved_) return;
  for (const ConnectionRecord& c : saved_->connections) {
    wasi::FdEntry& e = *ctx.fds().find(c.fd);
    if (e.host) continue;
    e.host = wasi::reset_connection();
    if (!e.host)
      throw Error(
          fmt::format("fd {}: cannot create a reset connection: {}", c.fd, std::strerror(errno)));
  }
}

// --- checkpoints -----------------------------------------------------------------

void GatewayBackend::lost(const std::string& why) {
  warn(fmt::format("gateway {}: {}; the program's connections will not survive a restore", gateway_,
                   why));
  channel_.reset();
}

// Brings every relayed connection to agreement with the gateway: it reads
// every byte the program sent, stops sending, and says how much it sent;
// those bytes are drained from the kernel here. Then the records are exact.
std::optional<snapshot::ExtensionSection> GatewayBackend::checkpoint(wasi::WasiContext& ctx) {
  if (!channel_) {
    // Not joined (yet): a restore stopped again before the program continued
    // keeps its saved records as they are, unless they were given up with
    // --no-gateway; a program that never had a gateway has no section.
    if (saved_ && !opt_.no_gateway) return encode_section(*saved_);
    if (gateway_.empty()) return std::nullopt;
  }
  GatewayRecords g;
  g.gateway = gateway_;
  g.program = program_;
  g.instance = instance_;
  g.listener_fd = listener_fd_;
  if (!channel_) return encode_section(g);
  std::map<uint64_t, uint32_t> fd_of;
  FreezeMsg freeze;
  for (uint32_t fd : ctx.fds().open_fds()) {
    const wasi::FdEntry& e = *ctx.fds().find(fd);
    if (!e.gateway || e.kind != wasi::FdKind::TcpStream) continue;
    fd_of[e.gateway->id] = fd;
    freeze.sent.push_back({e.gateway->id, e.gateway->sent});
  }
  FrozenMsg frozen;
  try {
    frozen = decode_frozen(request(MsgType::Freeze, encode(freeze), MsgType::Frozen).payload);
  } catch (const Error& e) {
    lost(e.what());
    return encode_section(g);
  }
  frozen_ = true;
  const auto deadline = Clock::now() + opt_.timeout;
  for (const FrozenMsg::Entry& f : frozen.connections) {
    auto it = fd_of.find(f.id);
    if (it == fd_of.end()) continue;
    wasi::FdEntry& e = *ctx.fds().find(it->second);
    if (f.status != FrozenStatus::Held || !wasi::drain_until(e, f.forwarded, deadline)) {
      warn(fmt::format("fd {}: connection {} could not be checkpointed with the gateway; a "
                       "restore brings it back reset",
                       it->second, f.id));
      continue;
    }
    const wasi::GatewayStream& s = *e.gateway;
    auto unread = s.unread_bytes();
    g.connections.push_back({it->second, s.id, s.outgoing, s.received, s.sent,
                             std::vector<uint8_t>(unread.begin(), unread.end())});
  }
  return encode_section(g);
}

void GatewayBackend::resumed() {
  if (frozen_ && channel_) {
    try {
      send(MsgType::Thaw);
    } catch (const Error& e) {
      lost(e.what());
    }
  }
  frozen_ = false;
}

void GatewayBackend::ended() {
  if (!channel_) return;
  try {
    send(MsgType::Bye);
    channel_->close();
  } catch (const Error&) {
    // The gateway learns from the channel's end.
  }
  channel_.reset();
}

// --- the WASI layer's calls ---------------------------------------------------------

wasi::GatewayLink::Offer GatewayBackend::take_offer(int fd, const runtime::Interrupt& interrupt,
                                                    wasi::GatewayStream& out,
                                                    wasi::SocketAddress& peer) {
  std::array<uint8_t, kOfferSize> bytes;
  size_t got = 0;
  const auto deadline = Clock::now() + std::chrono::microseconds(kOfferWaitUs);
  while (got < bytes.size()) {
    ssize_t n = ::recv(fd, bytes.data() + got, bytes.size() - got, MSG_DONTWAIT);
    if (n > 0) {
      got += size_t(n);
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) return Offer::Rejected;
    const auto left =
        std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Offer::Rejected;
    switch (wasi::wait_ready(fd, POLLIN, false, interrupt, uint64_t(left.count()))) {
    case wasi::Wait::Interrupted:
      return Offer::Interrupted;
    case wasi::Wait::NotReady:
      return Offer::Rejected;
    case wasi::Wait::Ready:
      break;
    }
  }
  std::optional<gateway::Offer> offer = decode_offer(bytes, key_);
  if (!offer || offer->session != session_ || !taken_.insert(offer->id).second)
    return Offer::Rejected;
  std::vector<uint8_t> take = encode_take(offer->id);
  if (::send(fd, take.data(), take.size(), MSG_NOSIGNAL) != ssize_t(take.size()))
    return Offer::Rejected;
  out.id = offer->id;
  out.outgoing = false;
  peer = offer->peer;
  return Offer::Accepted;
}

void GatewayBackend::closing(const wasi::GatewayStream& g, bool write_only) {
  if (!channel_ || g.id == 0) return;
  try {
    send(MsgType::Closed, encode(ClosedMsg{g.id, write_only}));
  } catch (const Error& e) {
    lost(e.what());
  }
}

bool GatewayBackend::routes(const wasi::SocketAddress& target) const {
  return !is_loopback(target);
}

wasi::Errno GatewayBackend::open_outgoing(util::UniqueFd& out) {
  if (!channel_) return wasi::Errno::connrefused;
  sockaddr_storage ss;
  socklen_t len = wasi::to_sockaddr(gateway_address_, ss);
  out = util::UniqueFd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!out) return wasi::last_errno();
  if (::connect(out.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS)
    return wasi::last_errno();
  return wasi::Errno::success;
}

wasi::GatewayLink::Step GatewayBackend::step_outgoing(int fd, const wasi::SocketAddress& target,
                                                      wasi::GatewayStream& g, short& events,
                                                      wasi::Errno& error) {
  if (!g.requested) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 0) != 1) {
      events = POLLOUT;
      return Step::Pending;
    }
    int so_error = 0;
    socklen_t len = sizeof so_error;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
    if (so_error != 0) {
      error = wasi::errno_from_posix(so_error);
      return Step::Failed;
    }
    std::vector<uint8_t> request = encode(Connect{session_, ++sequence_, target}, key_);
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != ssize_t(request.size())) {
      error = wasi::Errno::connrefused;
      return Step::Failed;
    }
    g.requested = true;
  }
  uint8_t buffer[kReplySize];
  ssize_t n = ::recv(fd, buffer, kReplySize - g.reply.size(), MSG_DONTWAIT);
  if (n > 0) g.reply.insert(g.reply.end(), buffer, buffer + n);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    error = wasi::Errno::connrefused;
    return Step::Failed;
  }
  if (g.reply.size() < kReplySize) {
    events = POLLIN;
    return Step::Pending;
  }
  std::optional<Reply> reply = decode_reply(g.reply);
  g.reply.clear();
  if (!reply || reply->status != 0) {
    error = reply ? wasi::errno_from_posix(int(reply->status)) : wasi::Errno::io;
    return Step::Failed;
  }
  g.id = reply->id;
  return Step::Done;
}

} // namespace tern::migrate
