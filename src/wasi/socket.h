// TCP sockets in the fd table: --listen sockets, accepted connections, and
// the conversions between host socket addresses and SocketAddress.
#pragma once

#include "wasi/fd_table.h"

#include <string_view>
#include <sys/socket.h>

namespace tern::wasi {

SocketAddress socket_address_of(const sockaddr* addr, socklen_t len);
SocketAddress local_address(int fd);
SocketAddress peer_address(int fd);

// A listening TCP socket bound to "ADDR:PORT" ("127.0.0.1:8080",
// "[::1]:8080", "localhost:8080"), as an fd entry. Throws tern::Error.
FdEntry open_listener(std::string_view spec, int backlog = 128);

// A connected TCP socket (from accept) as an fd entry. The host fd is
// non-blocking; blocking is done with poll so that it can be interrupted.
FdEntry stream_entry(util::UniqueFd fd, uint16_t fdflags);

} // namespace tern::wasi
