// The socket extension's options: sock_set_X / sock_get_X. A set goes to the
// kernel and is recorded in the fd's SocketOptions (a restore applies it
// again); a get reads the kernel's value, except the timeouts, which tern
// enforces itself (blocking waits are polls) and so only records.
#include "wasi/calls.h"
#include "wasi/posix_errno.h"
#include "wasi/socket.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace tern::wasi {
namespace {

struct HostOption {
  int level;
  int name;
};

struct BoolOption {
  HostOption host;
  bool SocketOptions::*field;
};

constexpr BoolOption kReuseAddr{{SOL_SOCKET, SO_REUSEADDR}, &SocketOptions::reuse_addr};
constexpr BoolOption kReusePort{{SOL_SOCKET, SO_REUSEPORT}, &SocketOptions::reuse_port};
constexpr BoolOption kKeepAlive{{SOL_SOCKET, SO_KEEPALIVE}, &SocketOptions::keep_alive};
constexpr BoolOption kBroadcast{{SOL_SOCKET, SO_BROADCAST}, &SocketOptions::broadcast};
constexpr BoolOption kNoDelay{{IPPROTO_TCP, TCP_NODELAY}, &SocketOptions::no_delay};
constexpr BoolOption kQuickAck{{IPPROTO_TCP, TCP_QUICKACK}, &SocketOptions::quick_ack};
constexpr BoolOption kFastOpenConnect{{IPPROTO_TCP, TCP_FASTOPEN_CONNECT},
                                      &SocketOptions::fastopen_connect};
constexpr BoolOption kIpv6Only{{IPPROTO_IPV6, IPV6_V6ONLY}, &SocketOptions::ipv6_only};

constexpr HostOption kKeepIdle{IPPROTO_TCP, TCP_KEEPIDLE};
constexpr HostOption kKeepIntvl{IPPROTO_TCP, TCP_KEEPINTVL};
constexpr HostOption kRecvBuf{SOL_SOCKET, SO_RCVBUF};
constexpr HostOption kSendBuf{SOL_SOCKET, SO_SNDBUF};

// The hop limit options have an IPv4 and an IPv6 name.
HostOption ttl_option(const FdEntry& e) {
  return e.socket->family == 6 ? HostOption{IPPROTO_IPV6, IPV6_UNICAST_HOPS}
                               : HostOption{IPPROTO_IP, IP_TTL};
}
HostOption multicast_ttl_option(const FdEntry& e) {
  return e.socket->family == 6 ? HostOption{IPPROTO_IPV6, IPV6_MULTICAST_HOPS}
                               : HostOption{IPPROTO_IP, IP_MULTICAST_TTL};
}
HostOption multicast_loop_option(bool ipv6) {
  return ipv6 ? HostOption{IPPROTO_IPV6, IPV6_MULTICAST_LOOP}
              : HostOption{IPPROTO_IP, IP_MULTICAST_LOOP};
}

Errno set_int(const FdEntry& e, HostOption o, int value) {
  return ::setsockopt(e.host.get(), o.level, o.name, &value, sizeof value) == 0 ? Errno::success
                                                                                : last_errno();
}

Errno get_int(const FdEntry& e, HostOption o, int& value) {
  socklen_t len = sizeof value;
  value = 0;
  return ::getsockopt(e.host.get(), o.level, o.name, &value, &len) == 0 ? Errno::success
                                                                        : last_errno();
}

// A socket option's value as an int the kernel takes: EINVAL past `max`.
Errno checked(uint32_t value, uint32_t max, int& out) {
  if (value > max) return Errno::inval;
  out = int(value);
  return Errno::success;
}

Ret set_bool(Call& c, uint32_t fd, uint32_t enabled, const BoolOption& o) {
  FdEntry* e;
  WASI_TRY(get_socket(c, fd, 0, e));
  bool on = enabled != 0;
  WASI_TRY(set_int(*e, o.host, on));
  e->socket->options.*o.field = on;
  return Errno::success;
}

// Reads an int option and stores it in guest memory as T (a bool as one byte).
template <typename T>
Ret get_as(Call& c, uint32_t fd, uint32_t out, HostOption o) {
  FdEntry* e;
  WASI_TRY(get_socket(c, fd, 0, e));
  if (!c.mem.in_bounds(out, sizeof(T))) return Errno::fault;
  int value;
  WASI_TRY(get_int(*e, o, value));
  if constexpr (std::is_same_v<T, bool>) {
    return c.mem.store<uint8_t>(out, value != 0);
  } else {
    return c.mem.store<T>(out, T(value));
  }
}

Ret get_bool(Call& c, uint32_t fd, uint32_t out, const BoolOption& o) {
  return get_as<bool>(c, fd, out, o.host);
}

// Sets an int option within [0, max] and records it in `field`.
template <typename T>
Ret set_recorded(Call& c, uint32_t fd, uint32_t value, uint32_t max,
                 HostOption (*option)(const FdEntry&), std::optional<T> SocketOptions::*field) {
  FdEntry* e;
  WASI_TRY(get_socket(c, fd, 0, e));
  int host_value;
  WASI_TRY(checked(value, max, host_value));
  WASI_TRY(set_int(*e, option(*e), host_value));
  e->socket->options.*field = T(value);
  return Errno::success;
}

template <HostOption O>
HostOption fixed(const FdEntry&) {
  return O;
}

Ret set_timeout(Call& c, uint32_t fd, uint64_t timeout_us, uint64_t SocketOptions::*field) {
  FdEntry* e;
  WASI_TRY(get_socket(c, fd, 0, e));
  // A negative timeout (as the signed count Linux takes) is out of the
  // option's domain, as setsockopt says for a negative timeval.
  if (timeout_us > uint64_t(INT64_MAX)) return Errno::dom;
  e->socket->options.*field = timeout_us;
  return Errno::success;
}

Ret get_timeout(Call& c, uint32_t fd, uint32_t out, uint64_t SocketOptions::*field) {
  FdEntry* e;
  WASI_TRY(get_socket(c, fd, 0, e));
  return c.mem.store<uint64_t>(out, e->socket->options.*field);
}

// __wasi_addr_ip_t: an address without a port.
Errno read_addr_ip(GuestMemory& mem, uint32_t addr, SocketAddress& out) {
  namespace L = layout::wasi_addr_ip;
  std::span<const uint8_t> rec;
  WASI_TRY(mem.bytes(addr, L::size, rec));
  using runtime::Memory;
  uint32_t kind = Memory::load_le<uint32_t>(rec.data() + L::kind);
  out = {};
  if (kind == uint32_t(AddrKind::ipv4)) {
    out.family = 4;
    std::copy_n(rec.data() + L::ip4, 4, out.ip.begin());
    return Errno::success;
  }
  if (kind != uint32_t(AddrKind::ipv6)) return Errno::protonosupport;
  out.family = 6;
  for (uint32_t i = 0; i < 8; ++i) {
    uint16_t group = Memory::load_le<uint16_t>(rec.data() + L::ip6 + 2 * i);
    out.ip[2 * i] = uint8_t(group >> 8);
    out.ip[2 * i + 1] = uint8_t(group);
  }
  return Errno::success;
}

Errno host_membership(const FdEntry& e, const SocketOptions::Membership& m, bool join) {
  int rc;
  if (m.group.family == 4) {
    ip_mreq req{};
    std::memcpy(&req.imr_multiaddr, m.group.ip.data(), 4);
    // The guest passes its in_addr's s_addr: network-order bytes read as a
    // little-endian number. Written back the same way, they are the address.
    uint8_t interface[4];
    runtime::Memory::store_le<uint32_t>(interface, m.interface);
    std::memcpy(&req.imr_interface, interface, 4);
    rc = ::setsockopt(e.host.get(), IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP, &req,
                      sizeof req);
  } else {
    ipv6_mreq req{};
    std::memcpy(&req.ipv6mr_multiaddr, m.group.ip.data(), 16);
    req.ipv6mr_interface = m.interface;
    rc = ::setsockopt(e.host.get(), IPPROTO_IPV6, join ? IPV6_ADD_MEMBERSHIP : IPV6_DROP_MEMBERSHIP,
                      &req, sizeof req);
  }
  return rc == 0 ? Errno::success : last_errno();
}

Ret membership(Call& c, uint32_t fd, uint32_t group, uint32_t interface, bool join) {
  FdEntry* e;
  WASI_TRY(get_socket(c, fd, 0, e));
  SocketOptions::Membership m;
  WASI_TRY(read_addr_ip(c.mem, group, m.group));
  m.interface = interface;
  WASI_TRY(host_membership(*e, m, join));
  auto& joined = e->socket->options.memberships;
  auto it = std::find(joined.begin(), joined.end(), m);
  if (join && it == joined.end()) joined.push_back(m);
  if (!join && it != joined.end()) joined.erase(it);
  return Errno::success;
}

} // namespace

Errno apply_socket_options(const FdEntry& e) {
  const SocketOptions& o = e.socket->options;
  for (const BoolOption* b : {&kReuseAddr, &kReusePort, &kKeepAlive, &kBroadcast, &kNoDelay,
                              &kQuickAck, &kFastOpenConnect, &kIpv6Only})
    if (o.*b->field) WASI_TRY(set_int(e, b->host, 1));
  auto set_if = [&](const auto& value, HostOption option) {
    return value ? set_int(e, option, int(*value)) : Errno::success;
  };
  const HostOption loop = multicast_loop_option(e.socket->family == 6);
  for (Errno err :
       {set_if(o.multicast_loop, loop), set_if(o.send_buf, kSendBuf), set_if(o.recv_buf, kRecvBuf),
        set_if(o.keep_idle_s, kKeepIdle), set_if(o.keep_intvl_s, kKeepIntvl),
        set_if(o.ttl, ttl_option(e)), set_if(o.multicast_ttl, multicast_ttl_option(e))})
    if (err != Errno::success) return err;
  if (o.linger_s) {
    linger value{1, int(*o.linger_s)};
    if (::setsockopt(e.host.get(), SOL_SOCKET, SO_LINGER, &value, sizeof value) != 0)
      return last_errno();
  }
  for (const auto& m : o.memberships) WASI_TRY(host_membership(e, m, true));
  return Errno::success;
}

namespace calls {

Ret sock_set_reuse_addr(Call& c, uint32_t fd, uint32_t on) {
  return set_bool(c, fd, on, kReuseAddr);
}
Ret sock_get_reuse_addr(Call& c, uint32_t fd, uint32_t out) {
  return get_bool(c, fd, out, kReuseAddr);
}
Ret sock_set_reuse_port(Call& c, uint32_t fd, uint32_t on) {
  return set_bool(c, fd, on, kReusePort);
}
Ret sock_get_reuse_port(Call& c, uint32_t fd, uint32_t out) {
  return get_bool(c, fd, out, kReusePort);
}
Ret sock_set_keep_alive(Call& c, uint32_t fd, uint32_t on) {
  return set_bool(c, fd, on, kKeepAlive);
}
Ret sock_get_keep_alive(Call& c, uint32_t fd, uint32_t out) {
  return get_bool(c, fd, out, kKeepAlive);
}
Ret sock_set_broadcast(Call& c, uint32_t fd, uint32_t on) {
  return set_bool(c, fd, on, kBroadcast);
}
Ret sock_get_broadcast(Call& c, uint32_t fd, uint32_t out) {
  return get_bool(c, fd, out, kBroadcast);
}
Ret sock_set_tcp_no_delay(Call& c, uint32_t fd, uint32_t on) {
  return set_bool(c, fd, on, kNoDelay);
}
Ret sock_get_tcp_no_delay(Call& c, uint32_t fd, uint32_t out) {
  return get_bool(c, fd, out, kNoDelay);
}
Ret sock_set_tcp_quick_ack(Call& c, uint32_t fd, uint32_t on) {
  return set_bool(c, fd, on, kQuickAck);
}
Ret sock_get_tcp_quick_ack(Call& c, uint32_t fd, uint32_t out) {
  return get_bool(c, fd, out, kQuickAck);
}
Ret sock_set_tcp_fastopen_connect(Call& c, uint32_t fd, uint32_t on) {
  return set_bool(c, fd, on, kFastOpenConnect);
}
Ret sock_get_tcp_fastopen_connect(Call& c, uint32_t fd, uint32_t out) {
  return get_bool(c, fd, out, kFastOpenConnect);
}
Ret sock_set_ipv6_only(Call& c, uint32_t fd, uint32_t on) {
  return set_bool(c, fd, on, kIpv6Only);
}
Ret sock_get_ipv6_only(Call& c, uint32_t fd, uint32_t out) {
  return get_bool(c, fd, out, kIpv6Only);
}

Ret sock_set_linger(Call& c, uint32_t fd, uint32_t enabled, uint32_t linger_s) {
  FdEntry* e;
  WASI_TRY(get_socket(c, fd, 0, e));
  if (linger_s > uint32_t(INT_MAX)) return Errno::inval; // a negative int
  linger value{enabled != 0, int(linger_s)};
  if (::setsockopt(e->host.get(), SOL_SOCKET, SO_LINGER, &value, sizeof value) != 0)
    return last_errno();
  e->socket->options.linger_s = enabled ? std::optional<uint32_t>(linger_s) : std::nullopt;
  return Errno::success;
}

Ret sock_get_linger(Call& c, uint32_t fd, uint32_t enabled_out, uint32_t linger_s_out) {
  FdEntry* e;
  WASI_TRY(get_socket(c, fd, 0, e));
  if (!c.mem.in_bounds(enabled_out, 1) || !c.mem.in_bounds(linger_s_out, 4)) return Errno::fault;
  linger value{};
  socklen_t len = sizeof value;
  if (::getsockopt(e->host.get(), SOL_SOCKET, SO_LINGER, &value, &len) != 0) return last_errno();
  c.mem.store<uint8_t>(enabled_out, value.l_onoff != 0);
  return c.mem.store<int32_t>(linger_s_out, value.l_linger);
}

Ret sock_set_recv_buf_size(Call& c, uint32_t fd, uint32_t size) {
  return set_recorded(c, fd, size, INT_MAX, fixed<kRecvBuf>, &SocketOptions::recv_buf);
}
Ret sock_get_recv_buf_size(Call& c, uint32_t fd, uint32_t out) {
  return get_as<uint32_t>(c, fd, out, kRecvBuf);
}
Ret sock_set_send_buf_size(Call& c, uint32_t fd, uint32_t size) {
  return set_recorded(c, fd, size, INT_MAX, fixed<kSendBuf>, &SocketOptions::send_buf);
}
Ret sock_get_send_buf_size(Call& c, uint32_t fd, uint32_t out) {
  return get_as<uint32_t>(c, fd, out, kSendBuf);
}

Ret sock_set_recv_timeout(Call& c, uint32_t fd, uint64_t us) {
  return set_timeout(c, fd, us, &SocketOptions::recv_timeout_us);
}
Ret sock_get_recv_timeout(Call& c, uint32_t fd, uint32_t out) {
  return get_timeout(c, fd, out, &SocketOptions::recv_timeout_us);
}
Ret sock_set_send_timeout(Call& c, uint32_t fd, uint64_t us) {
  return set_timeout(c, fd, us, &SocketOptions::send_timeout_us);
}
Ret sock_get_send_timeout(Call& c, uint32_t fd, uint32_t out) {
  return get_timeout(c, fd, out, &SocketOptions::send_timeout_us);
}

Ret sock_set_tcp_keep_idle(Call& c, uint32_t fd, uint32_t s) {
  return set_recorded(c, fd, s, INT_MAX, fixed<kKeepIdle>, &SocketOptions::keep_idle_s);
}
Ret sock_get_tcp_keep_idle(Call& c, uint32_t fd, uint32_t out) {
  return get_as<uint32_t>(c, fd, out, kKeepIdle);
}
Ret sock_set_tcp_keep_intvl(Call& c, uint32_t fd, uint32_t s) {
  return set_recorded(c, fd, s, INT_MAX, fixed<kKeepIntvl>, &SocketOptions::keep_intvl_s);
}
Ret sock_get_tcp_keep_intvl(Call& c, uint32_t fd, uint32_t out) {
  return get_as<uint32_t>(c, fd, out, kKeepIntvl);
}

Ret sock_set_ip_ttl(Call& c, uint32_t fd, uint32_t ttl) {
  return set_recorded(c, fd, ttl, 255, ttl_option, &SocketOptions::ttl);
}
Ret sock_get_ip_ttl(Call& c, uint32_t fd, uint32_t out) {
  FdEntry* e;
  WASI_TRY(get_socket(c, fd, 0, e));
  return get_as<uint8_t>(c, fd, out, ttl_option(*e));
}
Ret sock_set_ip_multicast_ttl(Call& c, uint32_t fd, uint32_t ttl) {
  return set_recorded(c, fd, ttl, 255, multicast_ttl_option, &SocketOptions::multicast_ttl);
}
Ret sock_get_ip_multicast_ttl(Call& c, uint32_t fd, uint32_t out) {
  FdEntry* e;
  WASI_TRY(get_socket(c, fd, 0, e));
  return get_as<uint8_t>(c, fd, out, multicast_ttl_option(*e));
}

Ret sock_set_ip_multicast_loop(Call& c, uint32_t fd, uint32_t ipv6, uint32_t enabled) {
  FdEntry* e;
  WASI_TRY(get_socket(c, fd, 0, e));
  WASI_TRY(set_int(*e, multicast_loop_option(ipv6 != 0), enabled != 0));
  e->socket->options.multicast_loop = enabled != 0;
  return Errno::success;
}
Ret sock_get_ip_multicast_loop(Call& c, uint32_t fd, uint32_t ipv6, uint32_t out) {
  return get_as<bool>(c, fd, out, multicast_loop_option(ipv6 != 0));
}

Ret sock_set_ip_add_membership(Call& c, uint32_t fd, uint32_t group, uint32_t interface) {
  return membership(c, fd, group, interface, true);
}
Ret sock_set_ip_drop_membership(Call& c, uint32_t fd, uint32_t group, uint32_t interface) {
  return membership(c, fd, group, interface, false);
}

} // namespace calls
} // namespace tern::wasi
