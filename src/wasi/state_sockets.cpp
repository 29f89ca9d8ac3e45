#include "wasi/state_sockets.h"

#include "tern/error.h"
#include "wasi/socket.h"
#include "wasi/state_records.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
constexpr uint32_t all = shut_read | shut_write;
} // namespace sockflag

// Socket options the guest set, as (id, value) pairs: options left at the
// system's default are not written, and new options take new ids.
enum class OptionId : uint32_t { reuse_addr = 1, keep_alive = 2, no_delay = 3 };

struct BoolOption {
  OptionId id;
  const char* name;
  bool SocketState::*field;
};
constexpr BoolOption kBoolOptions[] = {
    {OptionId::reuse_addr, "reuse_addr", &SocketState::reuse_addr},
    {OptionId::keep_alive, "keep_alive", &SocketState::keep_alive},
    {OptionId::no_delay, "no_delay", &SocketState::no_delay},
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

uint8_t family_of(const SocketState& s) {
  return s.local.family != 0 ? s.local.family : s.peer.family;
}

// Call right after the failed syscall: reads errno first.
[[noreturn]] void fail_socket(const SavedFd& f, const char* what) {
  const int err = errno;
  throw Error(fmt::format("fd {} ({} {}): {}: {}", f.fd, to_string(f.kind),
                          f.socket.local.to_string(), what, std::strerror(err)));
}

void set_option(int fd, int level, int name, bool on) {
  int value = on ? 1 : 0;
  ::setsockopt(fd, level, name, &value, sizeof value);
}

void apply_options(int fd, const SocketState& s) {
  if (s.reuse_addr) set_option(fd, SOL_SOCKET, SO_REUSEADDR, true);
  if (s.keep_alive) set_option(fd, SOL_SOCKET, SO_KEEPALIVE, true);
  if (s.no_delay) set_option(fd, IPPROTO_TCP, TCP_NODELAY, true);
}

FdEntry socket_entry(const SavedFd& f, util::UniqueFd host) {
  FdEntry entry;
  entry.kind = f.kind;
  entry.host = std::move(host);
  entry.guest_path = f.path;
  entry.fdflags = f.fdflags;
  entry.rights_base = f.rights_base;
  entry.rights_inheriting = f.rights_inheriting;
  entry.socket = f.socket;
  return entry;
}

FdEntry listen_again(const SavedFd& f) {
  const SocketState& s = f.socket;
  sockaddr_storage address{};
  const socklen_t length = to_sockaddr(s.local, address);
  if (length == 0)
    throw Error(
        fmt::format("fd {}: a listening socket without an address cannot be restored", f.fd));
  util::UniqueFd fd(::socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) fail_socket(f, "cannot create the socket again");
  apply_options(fd.get(), s);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0)
    fail_socket(f, "cannot bind its address again");
  if (::listen(fd.get(), s.backlog > 0 ? s.backlog : SOMAXCONN) != 0)
    fail_socket(f, "cannot listen again");
  return socket_entry(f, std::move(fd));
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

FdEntry reset_stream(const SavedFd& f) {
  util::UniqueFd fd = loopback_reset_connection();
  if (!fd) fd = local_reset_connection();
  if (!fd) fail_socket(f, "cannot create a reset connection");
  ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
  return socket_entry(f, std::move(fd));
}

} // namespace

void write_socket(PayloadWriter& w, const SocketState& s) {
  w.u8(family_of(s));
  write_address(w, s.local);
  write_address(w, s.peer);
  w.u32(static_cast<uint32_t>(s.backlog));
  w.u32((s.shut_read ? sockflag::shut_read : 0) | (s.shut_write ? sockflag::shut_write : 0));
  uint32_t count = 0;
  for (const BoolOption& o : kBoolOptions) count += s.*o.field ? 1 : 0;
  w.u32(count);
  for (const BoolOption& o : kBoolOptions) {
    if (!(s.*o.field)) continue;
    w.u32(static_cast<uint32_t>(o.id));
    w.u64(1);
  }
}

SocketState read_socket(PayloadReader& r, uint32_t fd) {
  SocketState s;
  read_family(r); // the local or peer address's; sockets that have neither are not saved yet
  s.local = read_address(r);
  s.peer = read_address(r);
  const uint32_t backlog = r.u32();
  if (backlog > 0x7FFFFFFF) r.fail(fmt::format("fd {}: backlog {} is too large", fd, backlog));
  s.backlog = static_cast<int>(backlog);
  const uint32_t flags = r.u32();
  if (flags & ~sockflag::all) r.fail(fmt::format("fd {}: unknown socket flags 0x{:x}", fd, flags));
  s.shut_read = flags & sockflag::shut_read;
  s.shut_write = flags & sockflag::shut_write;
  const uint32_t count = r.count(12, "socket options");
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t id = r.u32();
    const uint64_t value = r.u64();
    auto known = std::find_if(std::begin(kBoolOptions), std::end(kBoolOptions),
                              [&](const BoolOption& o) { return uint32_t(o.id) == id; });
    if (known == std::end(kBoolOptions))
      r.fail(fmt::format("fd {}: unknown socket option {}", fd, id));
    if (value > 1) r.fail(fmt::format("fd {}: socket option {} = {}", fd, known->name, value));
    s.*known->field = value == 1;
  }
  return s;
}

nlohmann::json socket_json(const SocketState& s) {
  nlohmann::json options = nlohmann::json::array();
  for (const BoolOption& o : kBoolOptions)
    if (s.*o.field) options.push_back(o.name);
  nlohmann::json out = {{"local", s.local.to_string()}, {"options", std::move(options)}};
  if (s.peer.family != 0) out["peer"] = s.peer.to_string();
  if (s.backlog != 0) out["backlog"] = s.backlog;
  if (s.shut_read) out["shut_read"] = true;
  if (s.shut_write) out["shut_write"] = true;
  return out;
}

FdEntry restore_socket(const SavedFd& saved) {
  switch (saved.kind) {
  case FdKind::TcpListener:
    return listen_again(saved);
  case FdKind::TcpStream:
    return reset_stream(saved);
  default:
    throw Error(
        fmt::format("fd {}: a {} socket cannot be restored", saved.fd, to_string(saved.kind)));
  }
}

} // namespace tern::wasi::state
