#include "wasi/state_records.h"

#include "snapshot/payload.h"
#include "tern/error.h"
#include "tern/internal_error.h"
#include "wasi/state_sockets.h"

#include <ctime>
#include <fmt/format.h>

namespace tern::wasi::state {
namespace {

using snapshot::PayloadReader;
using snapshot::PayloadWriter;

constexpr uint32_t kSubscriptionBytes = layout::subscription::size;
constexpr uint32_t kMaxFileMode = 07777;
// preview1's rights and tern's socket extension's.
constexpr Rights kKnownRights =
    right::all | right::sock_connect | right::sock_listen | right::sock_bind;

void write_strings(PayloadWriter& w, const std::vector<std::string>& list) {
  w.u32(static_cast<uint32_t>(list.size()));
  for (const auto& s : list) w.string(s);
}

std::vector<std::string> read_strings(PayloadReader& r, std::string_view what) {
  std::vector<std::string> list(r.count(4, what));
  for (auto& s : list) s = r.string();
  return list;
}

void write_pending_poll(PayloadWriter& w, const std::optional<PendingPoll>& poll) {
  w.boolean(poll.has_value());
  if (!poll) return;
  if (poll->subscriptions.size() != poll->deadlines.size() * kSubscriptionBytes)
    throw InternalError(fmt::format("a pending poll with {} subscription bytes and {} deadlines",
                                    poll->subscriptions.size(), poll->deadlines.size()));
  w.u32(poll->in);
  w.u32(static_cast<uint32_t>(poll->deadlines.size()));
  w.bytes(poll->subscriptions);
  for (uint64_t d : poll->deadlines) w.u64(d);
}

std::optional<PendingPoll> read_pending_poll(PayloadReader& r) {
  if (!r.boolean()) return std::nullopt;
  PendingPoll poll;
  poll.in = r.u32();
  const uint32_t n = r.count(kSubscriptionBytes + 8, "pending poll subscriptions");
  if (n == 0) r.fail("a pending poll_oneoff has no subscriptions");
  auto bytes = r.bytes(size_t(n) * kSubscriptionBytes);
  poll.subscriptions.assign(bytes.begin(), bytes.end());
  poll.deadlines.resize(n);
  for (auto& d : poll.deadlines) d = r.u64();
  return poll;
}

void write_listing(PayloadWriter& w, const std::optional<DirListing>& listing) {
  w.boolean(listing.has_value());
  if (!listing) return;
  w.u32(static_cast<uint32_t>(listing->entries.size()));
  for (const auto& e : listing->entries) {
    w.string(e.name);
    w.u64(e.inode);
    w.u8(static_cast<uint8_t>(e.type));
  }
}

std::optional<DirListing> read_listing(PayloadReader& r) {
  if (!r.boolean()) return std::nullopt;
  DirListing listing;
  listing.entries.resize(r.count(4 + 8 + 1, "directory entries"));
  for (auto& e : listing.entries) {
    e.name = r.string();
    e.inode = r.u64();
    const uint8_t type = r.u8();
    if (type > static_cast<uint8_t>(FileType::symbolic_link))
      r.fail(fmt::format("directory entry {}: unknown file type {}", e.name, type));
    e.type = static_cast<FileType>(type);
  }
  return listing;
}

void write_fd(PayloadWriter& w, const SavedFd& f) {
  w.u32(f.fd);
  w.u8(kind_code(f.kind));
  w.u8(static_cast<uint8_t>(f.origin));
  w.u32(f.fdflags);
  w.u64(f.rights_base);
  w.u64(f.rights_inheriting);
  w.string(f.path);
  switch (f.origin) {
  case Origin::Stdio:
    w.u8(f.stream);
    w.boolean(f.redirected);
    w.u64(f.position);
    break;
  case Origin::Preopen:
    w.u32(f.preopen);
    break;
  case Origin::Path:
    w.u32(f.preopen);
    w.u32(f.oflags);
    w.u32(f.lookupflags);
    w.u64(f.position);
    w.u64(f.size);
    w.u64(static_cast<uint64_t>(f.mtime_ns));
    write_listing(w, f.listing);
    break;
  case Origin::Socket:
    write_socket(w, f.socket);
    break;
  }
}

// The kinds each origin may have.
bool kind_fits(Origin origin, FdKind kind) {
  const bool socket = kind == FdKind::TcpListener || kind == FdKind::TcpStream ||
                      kind == FdKind::TcpSocket || kind == FdKind::UdpSocket;
  switch (origin) {
  case Origin::Stdio:
    return true; // tern's own streams can be anything, sockets included
  case Origin::Preopen:
    return kind == FdKind::Directory;
  case Origin::Path:
    return !socket;
  case Origin::Socket:
    return socket;
  }
  return false;
}

uint32_t read_flags(PayloadReader& r, uint32_t all, std::string_view what) {
  const uint32_t v = r.u32();
  if (v & ~all) r.fail(fmt::format("unknown {} bits 0x{:x}", what, v & ~all));
  return v;
}

void read_path_record(PayloadReader& r, SavedFd& f) {
  f.oflags = static_cast<uint16_t>(read_flags(r, oflag::all, "oflags"));
  f.lookupflags = read_flags(r, lookupflag::symlink_follow, "lookupflags");
  f.position = r.u64();
  f.size = r.u64();
  f.mtime_ns = static_cast<int64_t>(r.u64());
  f.listing = read_listing(r);
  if (f.listing && f.kind != FdKind::Directory)
    r.fail(fmt::format("fd {}: a directory listing on a {}", f.fd, wasi::to_string(f.kind)));
}

SavedFd read_fd(PayloadReader& r, size_t preopen_count) {
  SavedFd f;
  f.fd = r.u32();
  if (f.fd >= FdTable::kMaxFds) r.fail(fmt::format("fd {} is above the limit", f.fd));
  const uint8_t kind = r.u8();
  const auto k = kind_from_code(kind);
  if (!k) r.fail(fmt::format("fd {}: unknown kind {}", f.fd, kind));
  f.kind = *k;
  const uint8_t origin = r.u8();
  if (origin > static_cast<uint8_t>(Origin::Socket))
    r.fail(fmt::format("fd {}: unknown origin {}", f.fd, origin));
  f.origin = static_cast<Origin>(origin);
  if (!kind_fits(f.origin, f.kind))
    r.fail(fmt::format("fd {}: a {} cannot have origin {}", f.fd, wasi::to_string(f.kind),
                       to_string(f.origin)));
  f.fdflags = static_cast<uint16_t>(read_flags(r, fdflag::all, "fdflags"));
  f.rights_base = r.u64();
  f.rights_inheriting = r.u64();
  if ((f.rights_base | f.rights_inheriting) & ~kKnownRights)
    r.fail(fmt::format("fd {}: unknown rights bits", f.fd));
  f.path = r.string();
  switch (f.origin) {
  case Origin::Stdio:
    f.stream = r.u8();
    if (f.stream > 2)
      r.fail(fmt::format("fd {}: standard stream {} is not 0, 1 or 2", f.fd, f.stream));
    f.redirected = r.boolean();
    f.position = r.u64();
    break;
  case Origin::Preopen:
  case Origin::Path:
    f.preopen = r.u32();
    if (f.preopen >= preopen_count)
      r.fail(fmt::format("fd {}: preopen {} does not exist ({} preopens)", f.fd, f.preopen,
                         preopen_count));
    if (f.origin == Origin::Path) read_path_record(r, f);
    break;
  case Origin::Socket:
    f.socket = read_socket(r, f.fd);
    break;
  }
  return f;
}

void write_file(PayloadWriter& w, const BundledFile& f) {
  w.u32(f.preopen);
  w.string(f.path);
  w.u32(f.mode);
  w.u64(f.size);
  w.u64(static_cast<uint64_t>(f.mtime_ns));
  w.u32(static_cast<uint32_t>(f.zstd.size()));
  w.bytes(f.zstd);
}

BundledFile read_file(PayloadReader& r, size_t preopen_count) {
  BundledFile f;
  f.preopen = r.u32();
  if (f.preopen >= preopen_count)
    r.fail(fmt::format("bundled file: preopen {} does not exist", f.preopen));
  f.path = r.string();
  if (f.path.empty()) r.fail("bundled file with an empty path");
  f.mode = r.u32();
  if (f.mode > kMaxFileMode) r.fail(fmt::format("bundled file {}: mode 0{:o}", f.path, f.mode));
  f.size = r.u64();
  f.mtime_ns = static_cast<int64_t>(r.u64());
  auto data = r.bytes(r.count(1, "bytes of bundled file contents"));
  f.zstd.assign(data.begin(), data.end());
  return f;
}

} // namespace

uint8_t kind_code(FdKind kind) {
  switch (kind) {
  case FdKind::Unknown:
    return 0;
  case FdKind::File:
    return 1;
  case FdKind::Directory:
    return 2;
  case FdKind::CharDevice:
    return 3;
  case FdKind::BlockDevice:
    return 4;
  case FdKind::Fifo:
    return 5;
  case FdKind::TcpListener:
    return 6;
  case FdKind::TcpStream:
    return 7;
  case FdKind::TcpSocket:
    return 8;
  case FdKind::UdpSocket:
    return 9;
  }
  return 0;
}

std::optional<FdKind> kind_from_code(uint8_t code) {
  static constexpr FdKind kKinds[] = {FdKind::Unknown,     FdKind::File,        FdKind::Directory,
                                      FdKind::CharDevice,  FdKind::BlockDevice, FdKind::Fifo,
                                      FdKind::TcpListener, FdKind::TcpStream,   FdKind::TcpSocket,
                                      FdKind::UdpSocket};
  if (code >= std::size(kKinds)) return std::nullopt;
  return kKinds[code];
}

std::string_view to_string(Origin origin) {
  switch (origin) {
  case Origin::Stdio:
    return "stdio";
  case Origin::Preopen:
    return "preopen";
  case Origin::Path:
    return "path";
  case Origin::Socket:
    return "socket";
  }
  return "?";
}

std::string guest_name_of(const std::string& root, const std::string& path) {
  if (path.empty()) return root;
  if (root.ends_with('/')) return root + path;
  return root + "/" + path;
}

std::string mtime_text(int64_t ns) {
  const std::time_t secs = static_cast<std::time_t>(ns / 1000000000 - (ns % 1000000000 < 0));
  const int64_t frac = ((ns % 1000000000) + 1000000000) % 1000000000;
  std::tm tm{};
  if (!::gmtime_r(&secs, &tm)) return fmt::format("{} ns", ns);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:09}Z", date, frac);
}

std::vector<uint8_t> encode(const SavedState& s) {
  PayloadWriter w;
  write_strings(w, s.args);
  write_strings(w, s.env);
  w.u32(static_cast<uint32_t>(s.preopens.size()));
  for (const Preopen& p : s.preopens) {
    w.string(p.guest_path);
    w.string(p.host_path);
  }
  w.u64(s.monotonic_ns);
  w.u64(s.process_cputime_ns);
  w.u64(s.thread_cputime_ns);
  write_pending_poll(w, s.pending_poll);
  w.u32(static_cast<uint32_t>(s.fds.size()));
  for (const SavedFd& f : s.fds) write_fd(w, f);
  w.u32(static_cast<uint32_t>(s.files.size()));
  for (const BundledFile& f : s.files) write_file(w, f);
  return std::move(w.out());
}

SavedState decode(std::span<const uint8_t> payload) {
  PayloadReader r(payload, "section WASI");
  SavedState s;
  s.args = read_strings(r, "arguments");
  s.env = read_strings(r, "environment variables");
  s.preopens.resize(r.count(8, "preopens"));
  for (Preopen& p : s.preopens) {
    p.guest_path = r.string();
    p.host_path = r.string();
  }
  s.monotonic_ns = r.u64();
  s.process_cputime_ns = r.u64();
  s.thread_cputime_ns = r.u64();
  s.pending_poll = read_pending_poll(r);
  // The smallest fd record is a preopen's: u32, 2 × u8, u32, 2 × u64, an
  // empty string, u32.
  s.fds.resize(r.count(4 + 2 + 4 + 16 + 4 + 4, "fds"));
  for (size_t i = 0; i < s.fds.size(); ++i) {
    s.fds[i] = read_fd(r, s.preopens.size());
    if (i > 0 && s.fds[i].fd <= s.fds[i - 1].fd)
      r.fail(fmt::format("fd {} follows fd {}: fds must increase", s.fds[i].fd, s.fds[i - 1].fd));
  }
  s.files.resize(r.count(4 + 4 + 4 + 8 + 8 + 4, "bundled files"));
  for (BundledFile& f : s.files) f = read_file(r, s.preopens.size());
  r.expect_end();
  return s;
}

} // namespace tern::wasi::state
