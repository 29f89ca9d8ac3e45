#include "wasi/socket.h"

#include "tern/error.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

namespace tern::wasi {
namespace {

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

struct HostPort {
  std::string host;
  std::string port;
};

HostPort split_host_port(std::string_view spec) {
  size_t colon = spec.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == spec.size())
    throw Error(fmt::format("--listen {}: expected ADDR:PORT", spec));
  std::string_view host = spec.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return {std::string(host), std::string(spec.substr(colon + 1))};
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

FdEntry open_listener(std::string_view spec, int backlog) {
  HostPort hp = split_host_port(spec);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  int rc =
      ::getaddrinfo(hp.host.empty() ? nullptr : hp.host.c_str(), hp.port.c_str(), &hints, &found);
  if (rc != 0) throw Error(fmt::format("--listen {}: {}", spec, ::gai_strerror(rc)));
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, ::freeaddrinfo);

  util::UniqueFd fd(::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw Error(fmt::format("--listen {}: socket: {}", spec, std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), found->ai_addr, found->ai_addrlen) != 0)
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
  entry.socket->reuse_addr = true;
  entry.guest_path = std::string(spec);
  entry.host = std::move(fd);
  return entry;
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
  entry.host = std::move(fd);
  return entry;
}

} // namespace tern::wasi
