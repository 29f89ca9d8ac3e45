#include "wasi/state_sockets.h"

#include "tern/error.h"
#include "wasi/posix_errno.h"
#include "wasi/socket.h"
#include "wasi/state_records.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/socket.h>

namespace tern::wasi::state {
namespace {

using snapshot::PayloadReader;
using snapshot::PayloadWriter;

// Bits of the socket record's `flags`.
namespace sockflag {
constexpr uint32_t shut_read = 1 << 0;
constexpr uint32_t shut_write = 1 << 1;
constexpr uint32_t connecting = 1 << 2;
constexpr uint32_t all = shut_read | shut_write | connecting;
} // namespace sockflag

// Socket options the guest set (SocketOptions), as (id, value) pairs:
// options left at the system's default are not written, and a new option
// takes a new id (docs/snapshot-format.md §10.1 lists them).
struct OptionCodec {
  uint32_t id;
  const char* name;
  uint64_t max;
  std::optional<uint64_t> (*get)(const SocketOptions&);
  void (*set)(SocketOptions&, uint64_t);
};

template <bool SocketOptions::*F>
constexpr OptionCodec flag(uint32_t id, const char* name) {
  return {id, name, 1,
          [](const SocketOptions& o) { return o.*F ? std::optional<uint64_t>(1) : std::nullopt; },
          [](SocketOptions& o, uint64_t v) { o.*F = v == 1; }};
}

template <typename T, std::optional<T> SocketOptions::*F>
constexpr OptionCodec value(uint32_t id, const char* name, uint64_t max) {
  return {id, name, max,
          [](const SocketOptions& o) {
            return o.*F ? std::optional<uint64_t>(uint64_t(*(o.*F))) : std::nullopt;
          },
          [](SocketOptions& o, uint64_t v) { o.*F = static_cast<T>(v); }};
}

// Timeouts in µs, at most INT64_MAX as sock_set_*_timeout accepts them.
template <uint64_t SocketOptions::*F>
constexpr OptionCodec timeout(uint32_t id, const char* name) {
  return {
      id, name, uint64_t(INT64_MAX),
      [](const SocketOptions& o) { return o.*F ? std::optional<uint64_t>(o.*F) : std::nullopt; },
      [](SocketOptions& o, uint64_t v) { o.*F = v; }};
}

constexpr uint64_t kIntMax = 0x7FFFFFFF;
const OptionCodec kOptions[] = {
    flag<&SocketOptions::reuse_addr>(1, "reuse_addr"),
    flag<&SocketOptions::keep_alive>(2, "keep_alive"),
    flag<&SocketOptions::no_delay>(3, "no_delay"),
    flag<&SocketOptions::reuse_port>(4, "reuse_port"),
    flag<&SocketOptions::broadcast>(5, "broadcast"),
    flag<&SocketOptions::quick_ack>(6, "quick_ack"),
    flag<&SocketOptions::fastopen_connect>(7, "fastopen_connect"),
    flag<&SocketOptions::ipv6_only>(8, "ipv6_only"),
    value<bool, &SocketOptions::multicast_loop>(9, "multicast_loop", 1),
    value<uint32_t, &SocketOptions::linger_s>(10, "linger_s", kIntMax),
    value<uint32_t, &SocketOptions::send_buf>(11, "send_buf", kIntMax),
    value<uint32_t, &SocketOptions::recv_buf>(12, "recv_buf", kIntMax),
    value<uint32_t, &SocketOptions::keep_idle_s>(13, "keep_idle_s", kIntMax),
    value<uint32_t, &SocketOptions::keep_intvl_s>(14, "keep_intvl_s", kIntMax),
    value<uint8_t, &SocketOptions::ttl>(15, "ttl", 255),
    value<uint8_t, &SocketOptions::multicast_ttl>(16, "multicast_ttl", 255),
    timeout<&SocketOptions::recv_timeout_us>(17, "recv_timeout_us"),
    timeout<&SocketOptions::send_timeout_us>(18, "send_timeout_us"),
};

// How long a restore waits for the loopback reset to arrive (it normally
// has by the time close() returns).
constexpr int kResetWaitMs = 5000;

void write_address(PayloadWriter& w, const SocketAddress& a) {
  w.u8(a.family);
  w.bytes(a.ip);
  w.u32(a.port);
}

uint8_t read_family(PayloadReader& r) {
  const uint8_t family = r.u8();
  if (family != 0 && family != 4 && family != 6)
    r.fail(fmt::format("unknown address family {}", family));
  return family;
}

SocketAddress read_address(PayloadReader& r) {
  SocketAddress a;
  a.family = read_family(r);
  auto ip = r.bytes(a.ip.size());
  std::copy(ip.begin(), ip.end(), a.ip.begin());
  const uint32_t port = r.u32();
  if (port > 0xFFFF) r.fail(fmt::format("port {} is above 65535", port));
  a.port = static_cast<uint16_t>(port);
  return a;
}

[[noreturn]] void fail_socket(const SavedFd& f, const std::string& what,
                              const std::string& reason) {
  const SocketAddress& at = f.socket.local;
  throw Error(fmt::format("fd {} ({} {}): {}: {}", f.fd, to_string(f.kind),
                          at.family != 0 ? at.to_string() : "unbound", what, reason));
}

// Throws unless the restore's own options allow binding and connecting
// `f` where the snapshot says it was: a snapshot names addresses, the
// restore's command line grants them.
void check_granted(const SavedFd& f, SocketGrants& grants) {
  const SocketState& s = f.socket;
  if (f.kind == FdKind::TcpStream) return; // comes back reset: nothing is bound or connected
  const bool listener = f.kind == FdKind::TcpListener;
  if (s.local.family != 0 && !(listener && grants.lists(s.local)) &&
      !grants.policy.may_bind(s.local)) {
    const std::string at = s.local.to_string();
    fail_socket(f, "the restore does not allow binding it again",
                listener ? fmt::format("give --listen {} or --allow-bind {}", at, at)
                         : fmt::format("give --allow-bind {}", at));
  }
  if (f.kind == FdKind::UdpSocket && s.peer.family != 0 && !grants.policy.may_connect(s.peer))
    fail_socket(
        f, fmt::format("the restore does not allow connecting it to {} again", s.peer.to_string()),
        fmt::format("give --allow-connect {}", s.peer.to_string()));
}

// A new socket of the saved family with the saved options, bound to the
// saved address if it had one: what every kind but a stream starts from.
FdEntry reopen_socket(const SavedFd& f) {
  const SocketState& s = f.socket;
  const uint8_t family = s.family != 0 ? s.family : s.local.family;
  if (family != 4 && family != 6)
    throw Error(fmt::format("fd {}: a {} of unknown address family", f.fd, to_string(f.kind)));
  FdEntry e;
  if (Errno err = open_socket(family, f.kind == FdKind::UdpSocket, e); err != Errno::success)
    fail_socket(f, "cannot create the socket again", errno_text(err));
  e.kind = f.kind;
  e.guest_path = f.path;
  e.fdflags = f.fdflags;
  e.rights_base = f.rights_base;
  e.rights_inheriting = f.rights_inheriting;
  e.socket = s;
  e.socket->family = family;
  if (Errno err = apply_socket_options(e); err != Errno::success)
    fail_socket(f, "cannot set its options again", errno_text(err));
  if (s.local.family == 0) return e;
  sockaddr_storage address{};
  const socklen_t length = to_sockaddr(s.local, address);
  if (::bind(e.host.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0)
    fail_socket(f, "cannot bind its address again", std::strerror(errno));
  return e;
}

FdEntry listen_again(const SavedFd& f) {
  if (f.socket.local.family == 0)
    throw Error(fmt::format("fd {}: a listening socket without an address", f.fd));
  FdEntry e = reopen_socket(f);
  if (::listen(e.host.get(), f.socket.backlog > 0 ? f.socket.backlog : SOMAXCONN) != 0)
    fail_socket(f, "cannot listen again", std::strerror(errno));
  return e;
}

// A connected datagram socket is connected again: that only sets where its
// datagrams go.
FdEntry datagram_again(const SavedFd& f) {
  FdEntry e = reopen_socket(f);
  if (f.socket.peer.family == 0) return e;
  sockaddr_storage address{};
  const socklen_t length = to_sockaddr(f.socket.peer, address);
  if (::connect(e.host.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0)
    fail_socket(f, "cannot connect it again", std::strerror(errno));
  return e;
}

// A TCP socket neither listening nor connected. A connect in progress
// cannot move; the guest issues it again (the host call is re-issued on
// resume, or it polls and retries) and it starts over from this host.
FdEntry tcp_socket_again(const SavedFd& f) {
  FdEntry e = reopen_socket(f);
  e.socket->connecting = false;
  return e;
}

// Waits up to kResetWaitMs for `fd` to show `events`.
bool wait_for(int fd, short events) {
  pollfd p{fd, events, 0};
  int n;
  do n = ::poll(&p, 1, kResetWaitMs);
  while (n < 0 && errno == EINTR);
  return n == 1;
}

// A TCP connection over the loopback interface whose other end has been
// closed with a reset (SO_LINGER 0): the kernel then reports ECONNRESET on
// the next recv or send, end of stream on later reads and EPIPE on later
// writes, exactly as for a peer that reset a real connection.
util::UniqueFd loopback_reset_connection() {
  util::UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  auto* sa = reinterpret_cast<sockaddr*>(&address);
  if (!listener || ::bind(listener.get(), sa, length) != 0 || ::listen(listener.get(), 1) != 0 ||
      ::getsockname(listener.get(), sa, &length) != 0)
    return {};
  util::UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!client) return {};
  if (::connect(client.get(), sa, length) != 0 && errno != EINPROGRESS) return {};
  int error = 0;
  socklen_t error_length = sizeof error;
  if (!wait_for(client.get(), POLLOUT) ||
      ::getsockopt(client.get(), SOL_SOCKET, SO_ERROR, &error, &error_length) != 0 || error != 0 ||
      !wait_for(listener.get(), POLLIN))
    return {};
  util::UniqueFd server(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!server) return {};
  linger abort_on_close{1, 0};
  ::setsockopt(server.get(), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
  server.reset(); // sends the reset
  if (!wait_for(client.get(), POLLERR)) return {};
  return client;
}

// Where the loopback interface is unusable: a local stream socket whose
// peer was closed with unread data, for which Linux reports ECONNRESET on
// the next recv (a send reports EPIPE).
util::UniqueFd local_reset_connection() {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return {};
  util::UniqueFd ours(pair[0]), peer(pair[1]);
  const char unread = 0;
  if (::send(ours.get(), &unread, 1, MSG_NOSIGNAL) != 1) return {};
  peer.reset();
  return ours;
}

FdEntry stream_as_recorded(const SavedFd& f) {
  FdEntry e;
  e.kind = f.kind;
  e.guest_path = f.path;
  e.fdflags = f.fdflags;
  e.rights_base = f.rights_base;
  e.rights_inheriting = f.rights_inheriting;
  e.socket = f.socket; // the addresses the program was talking between
  return e;
}

FdEntry reset_stream(const SavedFd& f) {
  FdEntry e = stream_as_recorded(f);
  e.host = reset_connection();
  if (!e.host) fail_socket(f, "cannot create a reset connection", std::strerror(errno));
  return e;
}

} // namespace

void write_socket(PayloadWriter& w, const SocketState& s) {
  w.u8(s.family);
  write_address(w, s.local);
  write_address(w, s.peer);
  w.u32(static_cast<uint32_t>(s.backlog));
  w.u32((s.shut_read ? sockflag::shut_read : 0) | (s.shut_write ? sockflag::shut_write : 0) |
        (s.connecting ? sockflag::connecting : 0));
  uint32_t count = 0;
  for (const OptionCodec& o : kOptions) count += o.get(s.options) ? 1 : 0;
  w.u32(count);
  for (const OptionCodec& o : kOptions) {
    if (auto v = o.get(s.options)) {
      w.u32(o.id);
      w.u64(*v);
    }
  }
  w.u32(static_cast<uint32_t>(s.options.memberships.size()));
  for (const auto& m : s.options.memberships) {
    write_address(w, m.group);
    w.u32(m.interface);
  }
}

SocketState read_socket(PayloadReader& r, uint32_t fd) {
  SocketState s;
  s.family = read_family(r);
  s.local = read_address(r);
  s.peer = read_address(r);
  const uint32_t backlog = r.u32();
  if (backlog > kIntMax) r.fail(fmt::format("fd {}: backlog {} is too large", fd, backlog));
  s.backlog = static_cast<int>(backlog);
  const uint32_t flags = r.u32();
  if (flags & ~sockflag::all) r.fail(fmt::format("fd {}: unknown socket flags 0x{:x}", fd, flags));
  s.shut_read = flags & sockflag::shut_read;
  s.shut_write = flags & sockflag::shut_write;
  s.connecting = flags & sockflag::connecting;
  const uint32_t count = r.count(12, "socket options");
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t id = r.u32();
    const uint64_t value = r.u64();
    auto known = std::find_if(std::begin(kOptions), std::end(kOptions),
                              [&](const OptionCodec& o) { return o.id == id; });
    if (known == std::end(kOptions)) r.fail(fmt::format("fd {}: unknown socket option {}", fd, id));
    if (value > known->max)
      r.fail(fmt::format("fd {}: socket option {} = {} is above {}", fd, known->name, value,
                         known->max));
    known->set(s.options, value);
  }
  s.options.memberships.resize(r.count(25, "multicast memberships"));
  for (auto& m : s.options.memberships) {
    m.group = read_address(r);
    m.interface = r.u32();
  }
  return s;
}

nlohmann::json socket_json(const SocketState& s) {
  nlohmann::json options = nlohmann::json::object();
  for (const OptionCodec& o : kOptions)
    if (auto v = o.get(s.options)) options[o.name] = *v;
  nlohmann::json out = {{"family", s.family}, {"options", std::move(options)}};
  if (s.local.family != 0) out["local"] = s.local.to_string();
  if (s.peer.family != 0) out["peer"] = s.peer.to_string();
  if (s.backlog != 0) out["backlog"] = s.backlog;
  if (s.connecting) out["connecting"] = true;
  if (s.shut_read) out["shut_read"] = true;
  if (s.shut_write) out["shut_write"] = true;
  if (!s.options.memberships.empty()) {
    nlohmann::json groups = nlohmann::json::array();
    for (const auto& m : s.options.memberships) groups.push_back(m.group.to_string());
    out["memberships"] = std::move(groups);
  }
  return out;
}

FdEntry relayed_stream(const SavedFd& saved) {
  return stream_as_recorded(saved);
}

bool SocketGrants::lists(const SocketAddress& local) {
  for (size_t i = 0; i < listen.size(); ++i) {
    if (unmapped(listen[i]) != unmapped(local)) continue;
    listen_used[i] = true;
    return true;
  }
  return false;
}

FdEntry restore_socket(const SavedFd& saved, SocketGrants& grants) {
  check_granted(saved, grants);
  switch (saved.kind) {
  case FdKind::TcpListener:
    return listen_again(saved);
  case FdKind::TcpStream:
    return reset_stream(saved);
  case FdKind::TcpSocket:
    return tcp_socket_again(saved);
  case FdKind::UdpSocket:
    return datagram_again(saved);
  default:
    throw Error(
        fmt::format("fd {}: a {} socket cannot be restored", saved.fd, to_string(saved.kind)));
  }
}

} // namespace tern::wasi::state

namespace tern::wasi {

util::UniqueFd reset_connection() {
  util::UniqueFd fd = state::loopback_reset_connection();
  if (!fd) fd = state::local_reset_connection();
  if (fd) ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
  return fd;
}

} // namespace tern::wasi
