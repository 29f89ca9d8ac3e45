// Connections relayed by `tern gateway` (docs/gateway.md), as the WASI
// layer sees them: each is an ordinary TCP stream in the fd table whose
// FdEntry also carries a GatewayStream — the connection's identity at the
// gateway and the byte counts that let it re-join at exact offsets after the
// program moves. The protocol (offers, connect requests, their
// authentication) is the GatewayLink's, implemented in src/migrate/; this
// layer only calls it where a connection is made and counts bytes where
// they move.
#pragma once

#include "runtime/interrupt.h"
#include "util/unique_fd.h"
#include "wasi/abi.h"

#include <chrono>
#include <cstdint>
#include <span>
#include <sys/uio.h>
#include <vector>

namespace tern::wasi {

struct FdEntry;
struct SocketAddress;

struct GatewayStream {
  uint64_t id = 0;       // the connection's id at the gateway
  bool outgoing = false; // the program connected out (through the gateway); else it accepted
  // Bytes of the peer's stream taken from the host socket (read by the
  // program, or waiting in `unread`), and bytes of the program's stream
  // written to it. The gateway counts the same; a re-join starts there.
  uint64_t received = 0;
  uint64_t sent = 0;
  // Received, not yet read by the program: drained from the kernel at a
  // checkpoint (and carried by the snapshot), served before the socket.
  std::vector<uint8_t> unread;
  size_t unread_at = 0;
  // An outgoing connection not yet answered by the gateway: the request is
  // written once the socket is connected, then the reply is read.
  bool requested = false;
  std::vector<uint8_t> reply; // the reply's bytes so far

  size_t unread_size() const { return unread.size() - unread_at; }
  std::span<const uint8_t> unread_bytes() const {
    return std::span<const uint8_t>(unread).subspan(unread_at);
  }
};

// Copies unread bytes into `iov` in order (consuming them unless `peek`);
// returns how many.
size_t take_unread(GatewayStream& g, std::span<const iovec> iov, bool peek);

// What a checkpoint needs of one connection: every byte the gateway sent,
// `until` in all, taken from the kernel into `unread`. Waits for bytes
// still in flight up to `deadline`; false if they did not come (the
// connection broke, or the deadline passed).
bool drain_until(FdEntry& e, uint64_t until, std::chrono::steady_clock::time_point deadline);

// The other end of the link: tern's connection to the gateway that
// published the program (src/migrate/gateway_backend.h).
class GatewayLink {
public:
  virtual ~GatewayLink() = default;

  // A connection accepted on the published listener must begin with the
  // gateway's offer. Reads it (waiting briefly, never past a checkpoint
  // request), checks it and answers it; fills `out` (id, peer).
  enum class Offer { Accepted, Rejected, Interrupted };
  virtual Offer take_offer(int fd, const runtime::Interrupt& interrupt, GatewayStream& out,
                           SocketAddress& peer) = 0;

  // Whether the program's TCP connects to `target` go through the gateway.
  virtual bool routes(const SocketAddress& target) const = 0;
  // A new socket connecting (non-blocking) to the gateway, for an outgoing
  // connection to `target`.
  virtual Errno open_outgoing(util::UniqueFd& out) = 0;
  // Moves an outgoing connection's handshake on as far as it can without
  // blocking: writes the request for `target` once the socket is connected,
  // reads the reply. Done: `g.id` is set and the stream is connected;
  // Pending: wait for `events` (POLLIN/POLLOUT) and call again; Failed:
  // the connect's error in `error`.
  enum class Step { Done, Pending, Failed };
  virtual Step step_outgoing(int fd, const SocketAddress& target, GatewayStream& g, short& events,
                             Errno& error) = 0;

  // The program is about to close the connection (or, `write_only`, shut
  // down its sending side): the gateway must know the end of stream it
  // will see is the program's, not a crash's.
  virtual void closing(const GatewayStream& g, bool write_only) = 0;
};

} // namespace tern::wasi
