// The WASI fd table: the one owner of every guest file descriptor and of
// everything a restore needs to rebuild it (docs/design.md §4). Guest fd numbers
// are virtual; each entry owns its host fd. The record is semantic (kind,
// guest path, preopen, flags, rights, file identity, socket addresses), so
// the checkpoint code can write it down without looking at host structures.
#pragma once

#include "util/unique_fd.h"
#include "wasi/abi.h"
#include "wasi/gateway.h"

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace tern::wasi {

enum class FdKind : uint8_t {
  Unknown,
  File,
  Directory,
  CharDevice,
  BlockDevice,
  Fifo,
  TcpListener, // a listening TCP socket (--listen, or bound by the guest)
  TcpStream,   // a connected TCP socket (accepted or connected)
  TcpSocket,   // a TCP socket the guest opened, not yet listening or connected
  UdpSocket,   // a datagram socket the guest opened (bound, connected or not)
};

std::string_view to_string(FdKind kind);
FileType file_type_of(FdKind kind);
// The kind of an open host fd, from fstat (and the socket's state).
FdKind kind_of(int host_fd, const struct stat& st);
FileType file_type_of(const struct stat& st);

// What identifies a file's contents at the time it was opened (or last
// refreshed): a restore checks it so that a changed file is an error.
struct FileIdentity {
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  static FileIdentity of(const struct stat& st);
};

// A socket address in a host-neutral form.
struct SocketAddress {
  uint8_t family = 0;            // 4 or 6; 0 when unknown
  std::array<uint8_t, 16> ip{};  // network byte order; IPv4 in the first 4 bytes
  uint16_t port = 0;             // host number (not network order)
  std::string to_string() const; // "127.0.0.1:8080", "[::1]:8080"
  bool operator==(const SocketAddress&) const = default;
};

// The socket options the guest set (the socket extension's sock_set_*), as
// it asked for them: a restore applies them again. Unset ones are the
// system's defaults.
struct SocketOptions {
  bool reuse_addr = false;
  bool reuse_port = false;
  bool keep_alive = false;
  bool broadcast = false;
  bool no_delay = false;
  bool quick_ack = false;
  bool fastopen_connect = false;
  bool ipv6_only = false;
  std::optional<bool> multicast_loop;
  std::optional<uint32_t> linger_s;     // engaged: SO_LINGER on, with this many seconds
  std::optional<uint32_t> send_buf;     // SO_SNDBUF as requested (the kernel doubles it)
  std::optional<uint32_t> recv_buf;     // SO_RCVBUF as requested
  std::optional<uint32_t> keep_idle_s;  // TCP_KEEPIDLE
  std::optional<uint32_t> keep_intvl_s; // TCP_KEEPINTVL
  std::optional<uint8_t> ttl;           // IP_TTL (IPv6: unicast hops)
  std::optional<uint8_t> multicast_ttl; // IP_MULTICAST_TTL
  // Blocking recv/accept and send/connect give up with EAGAIN after this
  // long (0: never). tern waits with poll, so it enforces them itself.
  uint64_t recv_timeout_us = 0;
  uint64_t send_timeout_us = 0;
  struct Membership {
    SocketAddress group;    // port unused
    uint32_t interface = 0; // IPv4: the interface address (network order); IPv6: its index
    bool operator==(const Membership&) const = default;
  };
  std::vector<Membership> memberships; // multicast groups joined
};

// Socket state a restore re-creates: addresses, how it was set up, and what
// the guest has shut down. Whether it listens, is connected or is neither
// is its FdKind.
struct SocketState {
  uint8_t family = 0;      // 4 or 6: the socket's own family
  SocketAddress local;     // bound address; family 0 while the socket is unbound
  SocketAddress peer;      // TcpStream and connected UdpSocket; the target while connecting
  int backlog = 0;         // TcpListener only
  bool connecting = false; // TcpSocket: a connect to `peer` is in progress
  bool shut_read = false;
  bool shut_write = false;
  SocketOptions options;
};

// One readdir snapshot of a directory: fd_readdir cookies are indexes into
// it, so they stay meaningful on any filesystem (and after a restore).
struct DirListing {
  struct Entry {
    std::string name;
    uint64_t inode = 0;
    FileType type = FileType::unknown;
  };
  std::vector<Entry> entries;
};

struct FdEntry {
  FdKind kind = FdKind::Unknown;
  util::UniqueFd host;
  // For fds opened under a preopen: the path the guest opened, relative to
  // the preopen's root ("" for the preopen itself). For stdio: "<stdin>",
  // "<stdout>", "<stderr>", or the redirection's host path.
  std::string guest_path;
  std::optional<uint32_t> preopen; // index into WasiContext::preopens()
  bool is_preopen = false;         // this fd *is* the preopen (fd_prestat_get)
  // One of tern's standard streams (0 stdin, 1 stdout, 2 stderr), whatever
  // fd number the guest moved it to: a restore opens it from the restore's
  // own options, not from the checkpoint's.
  std::optional<uint8_t> stdio;
  uint16_t oflags = 0;      // as opened (path_open)
  uint32_t lookupflags = 0; // as opened (path_open)
  uint16_t fdflags = 0;     // current (fd_fdstat_set_flags)
  Rights rights_base = 0;
  Rights rights_inheriting = 0;
  FileIdentity identity; // files and directories
  std::optional<SocketState> socket;
  // A TcpStream relayed by `tern gateway`, or a TcpSocket connecting
  // through it (wasi/gateway.h).
  std::unique_ptr<GatewayStream> gateway;
  // A TcpListener whose connections come from the gateway (`tern run
  // --listen ... --gateway ...`): each begins with the gateway's offer.
  bool published = false;
  // Not state: a cache for fd_readdir, rebuilt from the directory on demand.
  std::unique_ptr<DirListing> listing;

  bool is_stream() const; // reads may block: pipes, terminals, sockets
  bool is_socket() const;
  bool nonblocking() const { return (fdflags & fdflag::nonblock) != 0; }
  // SO_RCVTIMEO / SO_SNDTIMEO as the guest set them (0: none).
  uint64_t recv_timeout_us() const { return socket ? socket->options.recv_timeout_us : 0; }
  uint64_t send_timeout_us() const { return socket ? socket->options.send_timeout_us : 0; }
  // The file position, which the kernel keeps for us (files only): what a
  // checkpoint records and a restore seeks back to.
  std::optional<uint64_t> position() const;
  // Size and mtime change as the program writes: re-read them (a checkpoint
  // records the identity as of the checkpoint).
  void refresh_identity();
};

class FdTable {
public:
  static constexpr uint32_t kMaxFds = 1u << 16;

  // The entry for `fd` if it exists and holds every right in `needed`:
  // Errno::badf when there is no such fd, Errno::notcapable when a right is
  // missing.
  Errno get(uint32_t fd, Rights needed, FdEntry*& out);
  FdEntry* find(uint32_t fd);

  // Installs `entry` at the lowest free number.
  Errno insert(FdEntry entry, uint32_t& fd_out);
  // Installs `entry` at `fd` (setup and restore); replaces what was there.
  void insert_at(uint32_t fd, FdEntry entry);
  Errno close(uint32_t fd);
  // fd_renumber: `to` must be open; it is closed and `from` takes its number.
  Errno renumber(uint32_t from, uint32_t to);

  // Every open fd, in increasing order (for checkpoints and tests).
  std::vector<uint32_t> open_fds() const;

  // A share of the entry `e` (in this table), for a call that waits with
  // the context unlocked: a close meanwhile takes the number away, and the
  // entry (its host fd open) lives on until that call ends, as a blocked
  // read on a descriptor another thread closes does on POSIX.
  std::shared_ptr<FdEntry> share(const FdEntry& e) const;

private:
  std::vector<std::shared_ptr<FdEntry>> slots_;
  uint32_t first_free_hint_ = 0;
};

} // namespace tern::wasi
