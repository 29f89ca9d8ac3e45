#include "wasi/socket.h"

#include "tern/error.h"
#include "util/host_port.h"
#include "wasi/posix_errno.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>

namespace tern::wasi {
namespace {

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

} // namespace

SocketAddress socket_address_of(const sockaddr* addr, socklen_t len) {
  SocketAddress out;
  if (addr->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto* in4 = reinterpret_cast<const sockaddr_in*>(addr);
    out.family = 4;
    std::memcpy(out.ip.data(), &in4->sin_addr, 4);
    out.port = ntohs(in4->sin_port);
  } else if (addr->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    out.family = 6;
    std::memcpy(out.ip.data(), &in6->sin6_addr, 16);
    out.port = ntohs(in6->sin6_port);
  }
  return out;
}

socklen_t to_sockaddr(const SocketAddress& addr, sockaddr_storage& out) {
  out = {};
  if (addr.family == 4) {
    auto* in4 = reinterpret_cast<sockaddr_in*>(&out);
    in4->sin_family = AF_INET;
    std::memcpy(&in4->sin_addr, addr.ip.data(), 4);
    in4->sin_port = htons(addr.port);
    return sizeof(sockaddr_in);
  }
  if (addr.family == 6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&out);
    in6->sin6_family = AF_INET6;
    std::memcpy(&in6->sin6_addr, addr.ip.data(), 16);
    in6->sin6_port = htons(addr.port);
    return sizeof(sockaddr_in6);
  }
  return 0;
}

SocketAddress any_address(uint8_t family) {
  SocketAddress any;
  any.family = family;
  return any;
}

SocketAddress unmapped(const SocketAddress& addr) {
  static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (addr.family != 6 || std::memcmp(addr.ip.data(), kMappedPrefix, 12) != 0) return addr;
  SocketAddress v4;
  v4.family = 4;
  std::memcpy(v4.ip.data(), addr.ip.data() + 12, 4);
  v4.port = addr.port;
  return v4;
}

SocketAddress local_address(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return socket_address_of(reinterpret_cast<sockaddr*>(&ss), len);
}

SocketAddress peer_address(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return socket_address_of(reinterpret_cast<sockaddr*>(&ss), len);
}

SocketAddress listen_address(std::string_view spec) {
  util::HostPort hp = util::split_host_port(spec, "--listen");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  int rc =
      ::getaddrinfo(hp.host.empty() ? nullptr : hp.host.c_str(), hp.port.c_str(), &hints, &found);
  if (rc != 0) throw Error(fmt::format("--listen {}: {}", spec, ::gai_strerror(rc)));
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, ::freeaddrinfo);
  SocketAddress address = socket_address_of(found->ai_addr, found->ai_addrlen);
  if (address.family == 0)
    throw Error(fmt::format("--listen {}: not an IPv4 or IPv6 address", spec));
  return address;
}

FdEntry open_listener(std::string_view spec, int backlog) {
  const SocketAddress address = listen_address(spec);
  util::UniqueFd fd(
      ::socket(address.family == 6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw Error(fmt::format("--listen {}: socket: {}", spec, std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage ss;
  const socklen_t length = to_sockaddr(address, ss);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&ss), length) != 0)
    throw Error(fmt::format("--listen {}: bind: {}", spec, std::strerror(errno)));
  if (::listen(fd.get(), backlog) != 0)
    throw Error(fmt::format("--listen {}: listen: {}", spec, std::strerror(errno)));
  set_nonblocking(fd.get());

  FdEntry entry;
  entry.kind = FdKind::TcpListener;
  entry.rights_base = right::socket_listener;
  entry.rights_inheriting = right::socket_stream;
  entry.socket = SocketState{};
  entry.socket->local = local_address(fd.get());
  entry.socket->backlog = backlog;
  entry.socket->family = entry.socket->local.family;
  entry.socket->options.reuse_addr = true;
  entry.guest_path = std::string(spec);
  entry.host = std::move(fd);
  return entry;
}

bool shut_for_reading(int fd) {
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLRDHUP);
}

FdEntry stream_entry(util::UniqueFd fd, uint16_t fdflags) {
  set_nonblocking(fd.get());
  FdEntry entry;
  entry.kind = FdKind::TcpStream;
  entry.rights_base = right::socket_stream;
  entry.fdflags = fdflags & fdflag::nonblock;
  entry.socket = SocketState{};
  entry.socket->local = local_address(fd.get());
  entry.socket->peer = peer_address(fd.get());
  entry.socket->family = entry.socket->local.family;
  entry.host = std::move(fd);
  return entry;
}

} // namespace tern::wasi

namespace tern::wasi {

Errno open_socket(uint8_t family, bool datagram, FdEntry& out) {
  int domain = family == 6 ? AF_INET6 : AF_INET;
  int type = (datagram ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC | SOCK_NONBLOCK;
  util::UniqueFd fd(::socket(domain, type, 0));
  if (!fd) return last_errno();
  out = FdEntry{};
  out.kind = datagram ? FdKind::UdpSocket : FdKind::TcpSocket;
  out.rights_base = datagram ? right::socket_udp : right::socket_tcp;
  out.rights_inheriting = datagram ? 0 : right::socket_stream;
  out.socket = SocketState{};
  out.socket->family = family;
  out.host = std::move(fd);
  return Errno::success;
}

void mark_connected(FdEntry& entry) {
  if (entry.kind == FdKind::TcpSocket) entry.kind = FdKind::TcpStream;
  entry.socket->connecting = false;
  entry.socket->local = local_address(entry.host.get());
  entry.socket->peer = peer_address(entry.host.get());
}

namespace {

// A gateway connect that failed leaves a socket connected to the gateway:
// the program may try again, so it gets a fresh one with its options.
Errno gateway_connect_failed(FdEntry& entry, Errno error) {
  entry.socket->connecting = false;
  entry.gateway.reset();
  FdEntry fresh;
  if (open_socket(entry.socket->family, false, fresh) == Errno::success) {
    entry.host = std::move(fresh.host);
    apply_socket_options(entry);
  }
  return error;
}

Errno settle_gateway_connect(FdEntry& entry, GatewayLink* link, short& events) {
  if (!link) return gateway_connect_failed(entry, Errno::connrefused);
  Errno error = Errno::success;
  const SocketAddress target = entry.socket->peer;
  switch (link->step_outgoing(entry.host.get(), target, *entry.gateway, events, error)) {
  case GatewayLink::Step::Pending:
    return Errno::success;
  case GatewayLink::Step::Failed:
    return gateway_connect_failed(entry, error);
  case GatewayLink::Step::Done:
    break;
  }
  mark_connected(entry);
  entry.socket->peer = target; // not the gateway: the program connected to `target`
  return Errno::success;
}

} // namespace

Errno start_gateway_connect(FdEntry& entry, GatewayLink& link, const SocketAddress& target) {
  util::UniqueFd fd;
  WASI_TRY(link.open_outgoing(fd));
  entry.host = std::move(fd);
  WASI_TRY(apply_socket_options(entry));
  entry.gateway = std::make_unique<GatewayStream>();
  entry.gateway->outgoing = true;
  entry.socket->connecting = true;
  entry.socket->peer = target;
  return Errno::success;
}

Errno settle_connect(FdEntry& entry, GatewayLink* link) {
  short events = 0;
  return settle_connect(entry, link, events);
}

Errno settle_connect(FdEntry& entry, GatewayLink* link, short& events) {
  events = POLLOUT;
  if (entry.kind != FdKind::TcpSocket || !entry.socket->connecting) return Errno::success;
  if (entry.gateway) return settle_gateway_connect(entry, link, events);
  pollfd pfd{entry.host.get(), POLLOUT, 0};
  if (::poll(&pfd, 1, 0) != 1) return Errno::success; // still in progress
  int error = 0;
  socklen_t len = sizeof error;
  ::getsockopt(entry.host.get(), SOL_SOCKET, SO_ERROR, &error, &len);
  if (error == 0) {
    mark_connected(entry);
    return Errno::success;
  }
  entry.socket->connecting = false; // failed; the guest may try again
  return errno_from_posix(error);
}

} // namespace tern::wasi
