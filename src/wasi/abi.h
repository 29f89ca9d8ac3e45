// The wasi_snapshot_preview1 ABI as the guest sees it: errno values, rights
// bits, flags, and the byte layout of every structure passed through linear
// memory (little-endian, wasm32: pointers and sizes are 32-bit). Values
// follow the WASI preview1 witx definitions.
#pragma once

#include <cstdint>

namespace tern::wasi {

enum class Errno : uint16_t {
  success = 0,
  toobig = 1, // E2BIG
  acces = 2,
  addrinuse = 3,
  addrnotavail = 4,
  afnosupport = 5,
  again = 6,
  already = 7,
  badf = 8,
  badmsg = 9,
  busy = 10,
  canceled = 11,
  child = 12,
  connaborted = 13,
  connrefused = 14,
  connreset = 15,
  deadlk = 16,
  destaddrreq = 17,
  dom = 18,
  dquot = 19,
  exist = 20,
  fault = 21,
  fbig = 22,
  hostunreach = 23,
  idrm = 24,
  ilseq = 25,
  inprogress = 26,
  intr = 27,
  inval = 28,
  io = 29,
  isconn = 30,
  isdir = 31,
  loop = 32,
  mfile = 33,
  mlink = 34,
  msgsize = 35,
  multihop = 36,
  nametoolong = 37,
  netdown = 38,
  netreset = 39,
  netunreach = 40,
  nfile = 41,
  nobufs = 42,
  nodev = 43,
  noent = 44,
  noexec = 45,
  nolck = 46,
  nolink = 47,
  nomem = 48,
  nomsg = 49,
  noprotoopt = 50,
  nospc = 51,
  nosys = 52,
  notconn = 53,
  notdir = 54,
  notempty = 55,
  notrecoverable = 56,
  notsock = 57,
  notsup = 58,
  notty = 59,
  nxio = 60,
  overflow = 61,
  ownerdead = 62,
  perm = 63,
  pipe = 64,
  proto = 65,
  protonosupport = 66,
  prototype = 67,
  range = 68,
  rofs = 69,
  spipe = 70,
  srch = 71,
  stale = 72,
  timedout = 73,
  txtbsy = 74,
  xdev = 75,
  notcapable = 76,
};

// The one way WASI code passes an error on: WASI_TRY(expr) returns the
// result of `expr` from the enclosing function unless it succeeded. It
// takes an Errno, or in the calls a Ret (wasi/calls.h), which also stops
// for a checkpoint or a trap:
//   WASI_TRY(c.ctx.fds().get(fd, right::fd_read, e));
//   WASI_TRY(stream_read(c, *e, *iov, 0, n));
inline bool failed(Errno e) {
  return e != Errno::success;
}
#define WASI_TRY(expr)                                                                             \
  do {                                                                                             \
    if (auto wasi_try_result_ = (expr); ::tern::wasi::failed(wasi_try_result_))                    \
      return wasi_try_result_;                                                                     \
  } while (0)

// Rights: what an fd may be used for. A call lacking a right fails with
// Errno::notcapable.
using Rights = uint64_t;
namespace right {
inline constexpr Rights fd_datasync = 1ull << 0;
inline constexpr Rights fd_read = 1ull << 1;
inline constexpr Rights fd_seek = 1ull << 2;
inline constexpr Rights fd_fdstat_set_flags = 1ull << 3;
inline constexpr Rights fd_sync = 1ull << 4;
inline constexpr Rights fd_tell = 1ull << 5;
inline constexpr Rights fd_write = 1ull << 6;
inline constexpr Rights fd_advise = 1ull << 7;
inline constexpr Rights fd_allocate = 1ull << 8;
inline constexpr Rights path_create_directory = 1ull << 9;
inline constexpr Rights path_create_file = 1ull << 10;
inline constexpr Rights path_link_source = 1ull << 11;
inline constexpr Rights path_link_target = 1ull << 12;
inline constexpr Rights path_open = 1ull << 13;
inline constexpr Rights fd_readdir = 1ull << 14;
inline constexpr Rights path_readlink = 1ull << 15;
inline constexpr Rights path_rename_source = 1ull << 16;
inline constexpr Rights path_rename_target = 1ull << 17;
inline constexpr Rights path_filestat_get = 1ull << 18;
inline constexpr Rights path_filestat_set_size = 1ull << 19;
inline constexpr Rights path_filestat_set_times = 1ull << 20;
inline constexpr Rights fd_filestat_get = 1ull << 21;
inline constexpr Rights fd_filestat_set_size = 1ull << 22;
inline constexpr Rights fd_filestat_set_times = 1ull << 23;
inline constexpr Rights path_symlink = 1ull << 24;
inline constexpr Rights path_remove_directory = 1ull << 25;
inline constexpr Rights path_unlink_file = 1ull << 26;
inline constexpr Rights poll_fd_readwrite = 1ull << 27;
inline constexpr Rights sock_shutdown = 1ull << 28;
inline constexpr Rights sock_accept = 1ull << 29;
inline constexpr Rights all = (1ull << 30) - 1;
// tern's socket extension (not preview1, whose rights end at bit 29; WAMR
// numbers its own differently and clashes with preview1's sock_accept, so
// tern does not follow it). What sockets the guest opens may be used for.
inline constexpr Rights sock_connect = 1ull << 30;
inline constexpr Rights sock_listen = 1ull << 31;
inline constexpr Rights sock_bind = 1ull << 32;

// What each kind of fd can ever do; an fd's rights are a subset.
inline constexpr Rights regular_file = fd_datasync | fd_read | fd_seek | fd_fdstat_set_flags |
                                       fd_sync | fd_tell | fd_write | fd_advise | fd_allocate |
                                       fd_filestat_get | fd_filestat_set_size |
                                       fd_filestat_set_times | poll_fd_readwrite;
inline constexpr Rights directory =
    fd_datasync | fd_fdstat_set_flags | fd_sync | fd_advise | path_create_directory |
    path_create_file | path_link_source | path_link_target | path_open | fd_readdir |
    path_readlink | path_rename_source | path_rename_target | path_filestat_get |
    path_filestat_set_size | path_filestat_set_times | fd_filestat_get | fd_filestat_set_times |
    path_symlink | path_remove_directory | path_unlink_file | poll_fd_readwrite;
// Terminals, pipes, character devices: no seek or tell (wasi-libc's
// isatty() relies on that for character devices).
inline constexpr Rights stream =
    fd_read | fd_write | fd_fdstat_set_flags | fd_filestat_get | poll_fd_readwrite;
inline constexpr Rights socket_stream = stream | sock_shutdown;
inline constexpr Rights socket_listener =
    fd_read | fd_fdstat_set_flags | fd_filestat_get | poll_fd_readwrite | sock_accept;
// Sockets opened by the guest (sock_open): whatever their state allows.
inline constexpr Rights socket_tcp =
    socket_stream | sock_accept | sock_connect | sock_listen | sock_bind;
inline constexpr Rights socket_udp = socket_stream | sock_connect | sock_bind;
} // namespace right

enum class FileType : uint8_t {
  unknown = 0,
  block_device = 1,
  character_device = 2,
  directory = 3,
  regular_file = 4,
  socket_dgram = 5,
  socket_stream = 6,
  symbolic_link = 7,
};

enum class ClockId : uint32_t {
  realtime = 0,
  monotonic = 1,
  process_cputime = 2,
  thread_cputime = 3
};

enum class Whence : uint8_t { set = 0, cur = 1, end = 2 };

enum class Advice : uint8_t { normal, sequential, random, willneed, dontneed, noreuse };

namespace fdflag {
inline constexpr uint16_t append = 1 << 0;
inline constexpr uint16_t dsync = 1 << 1;
inline constexpr uint16_t nonblock = 1 << 2;
inline constexpr uint16_t rsync = 1 << 3;
inline constexpr uint16_t sync = 1 << 4;
inline constexpr uint16_t all = (1 << 5) - 1;
} // namespace fdflag

namespace oflag {
inline constexpr uint16_t creat = 1 << 0;
inline constexpr uint16_t directory = 1 << 1;
inline constexpr uint16_t excl = 1 << 2;
inline constexpr uint16_t trunc = 1 << 3;
inline constexpr uint16_t all = (1 << 4) - 1;
} // namespace oflag

namespace lookupflag {
inline constexpr uint32_t symlink_follow = 1 << 0;
}

namespace fstflag {
inline constexpr uint16_t atim = 1 << 0;
inline constexpr uint16_t atim_now = 1 << 1;
inline constexpr uint16_t mtim = 1 << 2;
inline constexpr uint16_t mtim_now = 1 << 3;
} // namespace fstflag

namespace riflag {
inline constexpr uint16_t recv_peek = 1 << 0;
inline constexpr uint16_t recv_waitall = 1 << 1;
} // namespace riflag

namespace roflag {
inline constexpr uint16_t recv_data_truncated = 1 << 0;
}

namespace sdflag {
inline constexpr uint8_t rd = 1 << 0;
inline constexpr uint8_t wr = 1 << 1;
} // namespace sdflag

enum class EventType : uint8_t { clock = 0, fd_read = 1, fd_write = 2 };

namespace eventrwflag {
inline constexpr uint16_t hangup = 1 << 0;
}

namespace subclockflag {
inline constexpr uint16_t abstime = 1 << 0;
}

inline constexpr uint8_t kPreopenTypeDir = 0;

// The socket extension's enums (WAMR's lib-socket, wasi_socket_ext.h).
enum class AddrKind : uint32_t { ipv4 = 0, ipv6 = 1 };                    // __wasi_addr_type_t
enum class SockType : int32_t { any = -1, dgram = 0, stream = 1 };        // __wasi_sock_type_t
enum class AddressFamily : uint32_t { inet4 = 0, inet6 = 1, unspec = 2 }; // __wasi_address_family_t

// Byte layouts of the structures in linear memory: sizes and field offsets.
namespace layout {
namespace iovec { // iovec and ciovec
inline constexpr uint32_t size = 8, buf = 0, buf_len = 4;
}
namespace fdstat {
inline constexpr uint32_t size = 24, filetype = 0, flags = 2, rights_base = 8,
                          rights_inheriting = 16;
}
namespace filestat {
inline constexpr uint32_t size = 64, dev = 0, ino = 8, filetype = 16, nlink = 24, fsize = 32,
                          atim = 40, mtim = 48, ctim = 56;
}
namespace dirent { // followed by d_namlen bytes of name
inline constexpr uint32_t size = 24, d_next = 0, d_ino = 8, d_namlen = 16, d_type = 20;
}
namespace prestat {
inline constexpr uint32_t size = 8, tag = 0, pr_name_len = 4;
}
namespace subscription {
inline constexpr uint32_t size = 48, userdata = 0, tag = 8, u = 16;
// u as a clock subscription
inline constexpr uint32_t clock_id = 16, clock_timeout = 24, clock_precision = 32, clock_flags = 40;
// u as an fd_read / fd_write subscription
inline constexpr uint32_t fd = 16;
} // namespace subscription
namespace event {
inline constexpr uint32_t size = 32, userdata = 0, error = 8, type = 10, nbytes = 16, flags = 24;
}
// The socket extension. __wasi_addr_t: a kind, then the IPv4 bytes n0..n3
// and port, or the IPv6 address as eight 16-bit groups (each a little-endian
// number: 0xfe80 for "fe80:") and port. Ports are plain numbers, not network
// order.
namespace wasi_addr {
inline constexpr uint32_t size = 24, kind = 0, ip4 = 4, ip4_port = 8, ip6 = 4, ip6_port = 20;
}
namespace wasi_addr_ip { // __wasi_addr_ip_t: an address without port
inline constexpr uint32_t size = 20, kind = 0, ip4 = 4, ip6 = 4;
}
namespace addr_info { // __wasi_addr_info_t
inline constexpr uint32_t size = 28, addr = 0, type = 24;
}
namespace addr_info_hints { // __wasi_addr_info_hints_t
inline constexpr uint32_t size = 12, type = 0, family = 4, hints_enabled = 8;
}
} // namespace layout

} // namespace tern::wasi
