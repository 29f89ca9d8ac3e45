// Sockets in the WASI snapshot section: the socket record (SocketState in
// bytes and in JSON) and how a restore re-creates each kind. Everything the
// state code knows about SocketState is here, so a new socket field or kind
// changes this file only.
#pragma once

#include "snapshot/payload.h"
#include "wasi/fd_table.h"
#include "wasi/net_policy.h"

#include <nlohmann/json_fwd.hpp>

namespace tern::wasi::state {

struct SavedFd;

void write_socket(snapshot::PayloadWriter& w, const SocketState& s);
SocketState read_socket(snapshot::PayloadReader& r, uint32_t fd);
nlohmann::json socket_json(const SocketState& s);

// What the restore's own options let it re-create (docs/cli.md): its
// network sandbox, and the addresses its --listen options name.
struct SocketGrants {
  const NetPolicy& policy;
  std::vector<SocketAddress> listen;
  std::vector<bool> listen_used; // per `listen`: a listener was bound there

  bool lists(const SocketAddress& local);
};

// The socket of `saved` on this host, if `grants` allow it (else a
// tern::Error naming the fd, the address and the option that would): a
// listener bound again at its address (a taken port is a tern::Error naming
// the fd and the address); a connected stream as a socket whose peer has
// reset the connection, so the guest's next recv or send reports
// ECONNRESET; a socket the guest opened (TCP not yet connected, UDP) made
// again with its options, bound where it was, a UDP socket connected to
// the same peer.
FdEntry restore_socket(const SavedFd& saved, SocketGrants& grants);

// A connected stream whose connection someone else brings back (a gateway
// re-joining it: RestoreOptions::relayed_streams): the entry as recorded,
// without a host socket yet.
FdEntry relayed_stream(const SavedFd& saved);

} // namespace tern::wasi::state

namespace tern::wasi {

// A connected TCP socket whose peer has reset the connection: the guest's
// next recv or send on it fails with ECONNRESET, later reads see end of
// stream and later writes EPIPE. Invalid if none could be made (errno).
util::UniqueFd reset_connection();

} // namespace tern::wasi
