// The socket extension (WAMR's lib-socket ABI): sockets the guest opens,
// binds, listens on and connects itself, addresses, name resolution and
// datagrams. What a guest may bind, connect or send to, and which names it
// may resolve, is the context's NetPolicy; anything else is EACCES, as WAMR
// answers outside its address pool. Blocking calls wait with poll so that a
// checkpoint request interrupts them before anything is consumed or sent.
#include "wasi/blocking.h"
#include "wasi/calls.h"
#include "wasi/posix_errno.h"
#include "wasi/socket.h"

#include <arpa/inet.h>
#include <cerrno>
#include <climits>
#include <memory>
#include <netdb.h>
#include <sys/socket.h>

namespace tern::wasi {

Errno read_wasi_addr(GuestMemory& mem, uint32_t addr, SocketAddress& out) {
  namespace L = layout::wasi_addr;
  std::span<const uint8_t> rec;
  WASI_TRY(mem.bytes(addr, L::size, rec));
  using runtime::Memory;
  uint32_t kind = Memory::load_le<uint32_t>(rec.data() + L::kind);
  out = {};
  if (kind == uint32_t(AddrKind::ipv4)) {
    out.family = 4;
    std::copy_n(rec.data() + L::ip4, 4, out.ip.begin());
    out.port = Memory::load_le<uint16_t>(rec.data() + L::ip4_port);
    return Errno::success;
  }
  if (kind == uint32_t(AddrKind::ipv6)) {
    out.family = 6;
    for (uint32_t i = 0; i < 8; ++i) {
      uint16_t group = Memory::load_le<uint16_t>(rec.data() + L::ip6 + 2 * i);
      out.ip[2 * i] = uint8_t(group >> 8);
      out.ip[2 * i + 1] = uint8_t(group);
    }
    out.port = Memory::load_le<uint16_t>(rec.data() + L::ip6_port);
    return Errno::success;
  }
  return Errno::protonosupport;
}

Errno write_wasi_addr(GuestMemory& mem, uint32_t addr, const SocketAddress& value) {
  namespace L = layout::wasi_addr;
  Record<L::size> rec;
  if (value.family == 6) {
    rec.put(L::kind, AddrKind::ipv6);
    for (uint32_t i = 0; i < 8; ++i)
      rec.put<uint16_t>(L::ip6 + 2 * i, uint16_t(value.ip[2 * i] << 8 | value.ip[2 * i + 1]));
    rec.put<uint16_t>(L::ip6_port, value.port);
  } else {
    rec.put(L::kind, AddrKind::ipv4);
    std::copy_n(value.ip.begin(), 4, rec.bytes.begin() + L::ip4);
    rec.put<uint16_t>(L::ip4_port, value.port);
  }
  return rec.write_to(mem, addr);
}

Errno get_socket(Call& c, uint32_t fd, Rights needed, FdEntry*& out) {
  // Not a socket at all says more than "lacks a socket right".
  const FdEntry* entry = c.ctx.fds().find(fd);
  if (entry && !entry->is_socket()) return Errno::notsock;
  return c.ctx.fds().get(fd, needed, out);
}

namespace {

Errno host_bind(int fd, const SocketAddress& addr) {
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(addr, ss);
  return ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0 ? Errno::success : last_errno();
}

// WAMR's mapping of getaddrinfo's errors (EAI_NONAME and the rest: EINVAL).
Errno errno_from_gai(int gai_error, int saved_errno) {
  switch (gai_error) {
  case EAI_AGAIN:
    return Errno::again;
  case EAI_MEMORY:
    return Errno::nomem;
  case EAI_SYSTEM:
    return errno_from_posix(saved_errno);
  case EAI_FAIL:
    return Errno::io;
  default:
    return Errno::inval;
  }
}

bool is_numeric_host(const std::string& host) {
  uint8_t buf[16];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

struct ResolveHints {
  bool enabled = false;
  int32_t type = int32_t(SockType::any);
  uint32_t family = uint32_t(AddressFamily::unspec);
};

Errno read_hints(GuestMemory& mem, uint32_t addr, ResolveHints& out) {
  namespace L = layout::addr_info_hints;
  uint8_t enabled = 0;
  uint32_t type = 0;
  uint64_t base = addr; // no 32-bit wrap-around past the end of memory
  WASI_TRY(mem.load(base + L::hints_enabled, enabled));
  WASI_TRY(mem.load(base + L::type, type));
  WASI_TRY(mem.load(base + L::family, out.family));
  out.enabled = enabled != 0;
  out.type = int32_t(type);
  return Errno::success;
}

addrinfo host_hints(const ResolveHints& h, bool numeric) {
  addrinfo hints{};
  hints.ai_flags = numeric ? AI_NUMERICHOST : 0;
  if (h.enabled && h.family == uint32_t(AddressFamily::inet4)) hints.ai_family = AF_INET;
  if (h.enabled && h.family == uint32_t(AddressFamily::inet6)) hints.ai_family = AF_INET6;
  if (h.enabled && h.type == int32_t(SockType::stream)) hints.ai_socktype = SOCK_STREAM;
  if (h.enabled && h.type == int32_t(SockType::dgram)) hints.ai_socktype = SOCK_DGRAM;
  return hints;
}

struct Resolved {
  SocketAddress addr;
  SockType type;
};

// getaddrinfo's answers that the ABI can express: IPv4/IPv6, stream/datagram.
std::vector<Resolved> usable(const addrinfo* list) {
  std::vector<Resolved> out;
  for (const addrinfo* ai = list; ai; ai = ai->ai_next) {
    if (ai->ai_socktype != SOCK_STREAM && ai->ai_socktype != SOCK_DGRAM) continue;
    SocketAddress addr = socket_address_of(ai->ai_addr, ai->ai_addrlen);
    if (addr.family == 0) continue;
    out.push_back({addr, ai->ai_socktype == SOCK_STREAM ? SockType::stream : SockType::dgram});
  }
  return out;
}

} // namespace

// Connect to the gateway, send the request, read its reply; each wait is
// for what the next step needs.
Ret wait_gateway_connect(Call& c, FdEntry& e, Errno not_yet) {
  for (;;) {
    short events = 0;
    WASI_TRY(settle_connect(e, c.ctx.gateway_link(), events));
    if (!e.socket->connecting) return Errno::success;
    Wait w = wait_ready(c, e, events, e.send_timeout_us());
    if (w == Wait::Interrupted) return Ret::suspend();
    if (w == Wait::NotReady) return not_yet;
  }
}

namespace calls {

Ret sock_open(Call& c, uint32_t /*pool_fd: WAMR ignores it too*/, uint32_t af, uint32_t socktype,
              uint32_t fd_out) {
  if (af != uint32_t(AddressFamily::inet4) && af != uint32_t(AddressFamily::inet6))
    return Errno::afnosupport;
  if (socktype != uint32_t(SockType::dgram) && socktype != uint32_t(SockType::stream))
    return Errno::prototype;
  if (!c.mem.in_bounds(fd_out, 4)) return Errno::fault;
  FdEntry entry;
  uint8_t family = af == uint32_t(AddressFamily::inet6) ? 6 : 4;
  WASI_TRY(open_socket(family, socktype == uint32_t(SockType::dgram), entry));
  uint32_t fd;
  WASI_TRY(c.ctx.fds().insert(std::move(entry), fd));
  return c.mem.store<uint32_t>(fd_out, fd);
}

Ret sock_close(Call& c, uint32_t fd) {
  return fd_close(c, fd); // "an alias for fd_close" in wasi_socket_ext.h
}

Ret sock_bind(Call& c, uint32_t fd, uint32_t addr) {
  FdEntry* e;
  WASI_TRY(get_socket(c, fd, right::sock_bind, e));
  SocketAddress a;
  WASI_TRY(read_wasi_addr(c.mem, addr, a));
  if (!c.ctx.net_policy().may_bind(a)) return Errno::acces;
  WASI_TRY(host_bind(e->host.get(), a));
  e->socket->local = local_address(e->host.get());
  return Errno::success;
}

Ret sock_listen(Call& c, uint32_t fd, uint32_t backlog) {
  FdEntry* e;
  WASI_TRY(get_socket(c, fd, right::sock_listen, e));
  if (e->kind == FdKind::UdpSocket) return Errno::notsup;
  // listen() on an unbound socket binds it to the wildcard address: that
  // too must be allowed.
  SocketState& s = *e->socket;
  if (s.local.family == 0 && !c.ctx.net_policy().may_bind(any_address(s.family)))
    return Errno::acces;
  int host_backlog = backlog > uint32_t(INT_MAX) ? INT_MAX : int(backlog);
  if (::listen(e->host.get(), host_backlog) != 0) return last_errno();
  e->kind = FdKind::TcpListener;
  s.backlog = host_backlog;
  s.local = local_address(e->host.get());
  return Errno::success;
}

Ret sock_connect(Call& c, uint32_t fd, uint32_t addr) {
  FdEntry* e;
  WASI_TRY(get_socket(c, fd, right::sock_connect, e));
  SocketAddress target;
  WASI_TRY(read_wasi_addr(c.mem, addr, target));
  if (!c.ctx.net_policy().may_connect(target)) return Errno::acces;
  if (e->kind == FdKind::TcpStream) return Errno::isconn;
  SocketState& s = *e->socket;
  // The same connect issued again (after a suspend, or polling a
  // non-blocking one) waits for the attempt already under way.
  bool again = s.connecting && s.peer == target;
  GatewayLink* link = c.ctx.gateway_link();
  if (!again && s.connecting) return Errno::already;
  if (!again && link && e->kind == FdKind::TcpSocket && link->routes(target)) {
    WASI_TRY(start_gateway_connect(*e, *link, target));
  } else if (!again) {
    sockaddr_storage ss;
    socklen_t len = to_sockaddr(target, ss);
    if (::connect(e->host.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0) {
      mark_connected(*e); // UDP, or TCP that completed at once
      return Errno::success;
    }
    if (errno != EINPROGRESS) return last_errno();
    s.connecting = true;
    s.peer = target;
  }
  if (!e->gateway) {
    Wait w = wait_ready(c, *e, POLLOUT, e->send_timeout_us());
    if (w == Wait::Interrupted) return Ret::suspend();
    if (w == Wait::NotReady) return again ? Errno::already : Errno::inprogress;
    WASI_TRY(settle_connect(*e, link));
    return s.connecting ? Errno::inprogress : Errno::success;
  }
  return wait_gateway_connect(c, *e, again ? Errno::already : Errno::inprogress);
}

Ret sock_addr_local(Call& c, uint32_t fd, uint32_t addr_out) {
  FdEntry* e;
  WASI_TRY(get_socket(c, fd, 0, e));
  if (!c.mem.in_bounds(addr_out, layout::wasi_addr::size)) return Errno::fault;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(e->host.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return last_errno();
  return write_wasi_addr(c.mem, addr_out, socket_address_of(reinterpret_cast<sockaddr*>(&ss), len));
}

Ret sock_addr_remote(Call& c, uint32_t fd, uint32_t addr_out) {
  FdEntry* e;
  WASI_TRY(get_socket(c, fd, 0, e));
  if (!c.mem.in_bounds(addr_out, layout::wasi_addr::size)) return Errno::fault;
  WASI_TRY(settle_connect(*e, c.ctx.gateway_link()));
  // A gateway connection's peer is the gateway's client (or the target the
  // program connected to), not the gateway.
  if (e->gateway && e->kind == FdKind::TcpStream)
    return write_wasi_addr(c.mem, addr_out, e->socket->peer);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(e->host.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return last_errno();
  return write_wasi_addr(c.mem, addr_out, socket_address_of(reinterpret_cast<sockaddr*>(&ss), len));
}

Ret sock_addr_resolve(Call& c, uint32_t host, uint32_t service, uint32_t hints, uint32_t info_out,
                      uint32_t info_count, uint32_t max_count_out) {
  constexpr uint32_t kMaxName = 1024;
  std::string host_name, service_name;
  WASI_TRY(c.mem.c_string(host, kMaxName, host_name));
  WASI_TRY(c.mem.c_string(service, kMaxName, service_name));
  ResolveHints h;
  WASI_TRY(read_hints(c.mem, hints, h));
  if (!c.mem.in_bounds(info_out, uint64_t(info_count) * layout::addr_info::size) ||
      !c.mem.in_bounds(max_count_out, 4))
    return Errno::fault;
  if (host_name.empty()) return Errno::inval;
  bool numeric = is_numeric_host(host_name);
  if (!numeric && !c.ctx.net_policy().may_resolve(host_name)) return Errno::acces;

  addrinfo ask = host_hints(h, numeric);
  addrinfo* found = nullptr;
  int rc = ::getaddrinfo(host_name.c_str(), service_name.empty() ? nullptr : service_name.c_str(),
                         &ask, &found);
  if (rc != 0) return errno_from_gai(rc, errno);
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, ::freeaddrinfo);
  std::vector<Resolved> answers = usable(found);

  namespace L = layout::addr_info;
  for (uint32_t i = 0; i < answers.size() && i < info_count; ++i) {
    uint32_t rec = info_out + i * L::size;
    write_wasi_addr(c.mem, rec + L::addr, answers[i].addr);
    c.mem.store<int32_t>(rec + L::type, int32_t(answers[i].type));
  }
  return c.mem.store<uint32_t>(max_count_out, uint32_t(answers.size()));
}

Ret sock_send_to(Call& c, uint32_t fd, uint32_t si_data, uint32_t si_data_len, uint32_t si_flags,
                 uint32_t dest_addr, uint32_t so_datalen_out) {
  FdEntry* e;
  WASI_TRY(get_socket(c, fd, right::fd_write, e));
  if (si_flags != 0) return Errno::inval; // no send flags are defined
  auto& iov = c.ctx.iov_scratch();
  WASI_TRY(c.mem.iovecs(si_data, si_data_len, iov, GuestMemory::Transfer::FromGuest));
  SocketAddress dest;
  WASI_TRY(read_wasi_addr(c.mem, dest_addr, dest));
  if (!c.mem.in_bounds(so_datalen_out, 4)) return Errno::fault;
  if (!c.ctx.net_policy().may_connect(dest)) return Errno::acces;
  if (e->gateway) { // a stream ignores the address, as TCP does; the gateway counts the bytes
    size_t n = 0;
    WASI_TRY(stream_write(c, *e, iov, n));
    return c.mem.store<uint32_t>(so_datalen_out, uint32_t(n));
  }
  sockaddr_storage ss;
  msghdr msg{};
  msg.msg_name = &ss;
  msg.msg_namelen = to_sockaddr(dest, ss);
  msg.msg_iov = iov.data();
  msg.msg_iovlen = iov.size();
  for (;;) {
    ssize_t sent = ::sendmsg(e->host.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent >= 0) return c.mem.store<uint32_t>(so_datalen_out, uint32_t(sent));
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return last_errno();
    Wait w = wait_ready(c, *e, POLLOUT, e->send_timeout_us());
    if (w == Wait::Interrupted) return Ret::suspend();
    if (w == Wait::NotReady) return Errno::again;
  }
}

Ret sock_recv_from(Call& c, uint32_t fd, uint32_t ri_data, uint32_t ri_data_len, uint32_t ri_flags,
                   uint32_t src_addr_out, uint32_t ro_datalen_out) {
  FdEntry* e;
  WASI_TRY(get_socket(c, fd, right::fd_read, e));
  if (e->kind == FdKind::TcpListener) return Errno::notconn;
  if (ri_flags & ~uint32_t(riflag::recv_peek)) return Errno::inval;
  auto& iov = c.ctx.iov_scratch();
  WASI_TRY(c.mem.iovecs(ri_data, ri_data_len, iov, GuestMemory::Transfer::IntoGuest));
  if (!c.mem.in_bounds(src_addr_out, layout::wasi_addr::size) ||
      !c.mem.in_bounds(ro_datalen_out, 4))
    return Errno::fault;
  WASI_TRY(settle_connect(*e, c.ctx.gateway_link()));
  if (e->gateway) { // its peer is the gateway's client (or target), not the gateway
    size_t n = 0;
    int flags = (ri_flags & riflag::recv_peek) ? MSG_PEEK : 0;
    WASI_TRY(stream_read(c, *e, iov, flags, n));
    write_wasi_addr(c.mem, src_addr_out, e->socket->peer);
    return c.mem.store<uint32_t>(ro_datalen_out, uint32_t(n));
  }
  sockaddr_storage ss{};
  msghdr msg{};
  msg.msg_iov = iov.data();
  msg.msg_iovlen = iov.size();
  int flags = MSG_DONTWAIT | ((ri_flags & riflag::recv_peek) ? MSG_PEEK : 0);
  for (;;) {
    Wait w = wait_ready(c, *e, POLLIN, e->recv_timeout_us());
    if (w == Wait::Interrupted) return Ret::suspend();
    if (w == Wait::NotReady) return Errno::again;
    msg.msg_name = &ss;
    msg.msg_namelen = sizeof ss;
    ssize_t got = ::recvmsg(e->host.get(), &msg, flags);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return last_errno();
      // Shut down for reading: poll calls it readable for ever (see
      // stream_read); Linux's blocking receive returns 0, from nobody.
      if (!shut_for_reading(e->host.get())) continue;
      if (e->nonblocking()) return Errno::again;
      write_wasi_addr(c.mem, src_addr_out, any_address(e->socket->family));
      return c.mem.store<uint32_t>(ro_datalen_out, 0);
    }
    // A stream names no source: it is the peer.
    SocketAddress source =
        msg.msg_namelen > 0 ? socket_address_of(reinterpret_cast<sockaddr*>(&ss), msg.msg_namelen)
                            : peer_address(e->host.get());
    write_wasi_addr(c.mem, src_addr_out, source);
    return c.mem.store<uint32_t>(ro_datalen_out, uint32_t(got));
  }
}

} // namespace calls
} // namespace tern::wasi
