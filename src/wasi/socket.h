// Sockets in the fd table: --listen sockets, accepted connections, sockets
// the guest opens (the socket extension), and the conversions between host
// socket addresses and SocketAddress.
#pragma once

#include "wasi/fd_table.h"

#include <string_view>
#include <sys/socket.h>

namespace tern::wasi {

SocketAddress socket_address_of(const sockaddr* addr, socklen_t len);
// The host form of `addr` in `out`; its length (0 for an unknown family).
socklen_t to_sockaddr(const SocketAddress& addr, sockaddr_storage& out);
SocketAddress local_address(int fd);
SocketAddress peer_address(int fd);
// The wildcard address of `family` (0.0.0.0 or ::), port 0: where a socket
// that is not bound gets bound implicitly.
SocketAddress any_address(uint8_t family);
// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it maps;
// any other address unchanged.
SocketAddress unmapped(const SocketAddress& addr);

// A new socket of `family` (4 or 6), TCP or UDP, as the socket extension's
// sock_open makes it: non-blocking on the host, unbound.
Errno open_socket(uint8_t family, bool datagram, FdEntry& out);

// Records that the socket in `entry` is now connected: a TCP socket becomes
// a TcpStream, and its addresses are read back from the kernel.
void mark_connected(FdEntry& entry);

// A TcpSocket whose non-blocking connect was in progress: if the kernel has
// finished it, records the outcome: connected (success), or no longer
// connecting (the connect's error, reported once, as Linux does). A connect
// through the gateway is moved on by `link` (wasi/gateway.h); `events` is
// then what to wait for while it is still in progress.
Errno settle_connect(FdEntry& entry, GatewayLink* link);
Errno settle_connect(FdEntry& entry, GatewayLink* link, short& events);

// Starts a TCP connect to `target` through the gateway: the socket in
// `entry` is replaced by one connecting to the gateway, with the same
// options, and the entry becomes a connect in progress.
Errno start_gateway_connect(FdEntry& entry, GatewayLink& link, const SocketAddress& target);

// Sets every option recorded in `entry`'s SocketOptions on its host socket,
// memberships included (a restore re-creating the socket). Some must
// precede bind (reuse_addr, reuse_port, ipv6_only): call it before binding.
Errno apply_socket_options(const FdEntry& entry);

// The address --listen "ADDR:PORT" names ("127.0.0.1:8080", "[::1]:8080",
// "localhost:8080": the first address the name has). Throws tern::Error
// naming the option.
SocketAddress listen_address(std::string_view spec);
// A listening TCP socket bound to listen_address(spec), as an fd entry.
// Throws tern::Error.
FdEntry open_listener(std::string_view spec, int backlog = 128);

// Whether the socket `fd` is shut down for reading (by the guest, or a
// UDP socket whose shutdown() Linux applied while reporting ENOTCONN): poll
// then always calls it readable, and a blocking receive finds no data and
// returns 0 at once, as Linux's does.
bool shut_for_reading(int fd);

// A connected TCP socket (from accept) as an fd entry. The host fd is
// non-blocking; blocking is done with poll so that it can be interrupted.
FdEntry stream_entry(util::UniqueFd fd, uint16_t fdflags);

} // namespace tern::wasi
