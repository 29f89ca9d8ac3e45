#include "wasi/context.h"

#include "tern/error.h"
#include "wasi/socket.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

namespace tern::wasi {
namespace {

Rights rights_of(FdKind kind) {
  switch (kind) {
  case FdKind::File:
    return right::regular_file;
  case FdKind::Directory:
    return right::directory;
  case FdKind::TcpStream:
    return right::socket_stream;
  case FdKind::TcpListener:
    return right::socket_listener;
  case FdKind::TcpSocket:
    return right::socket_tcp;
  case FdKind::UdpSocket:
    return right::socket_udp;
  default:
    return right::stream;
  }
}

constexpr Rights kWriteRights = right::fd_write | right::fd_allocate | right::fd_datasync |
                                right::fd_filestat_set_size | right::fd_filestat_set_times;

} // namespace

FdEntry stdio_entry(int which, const std::string& redirect) {
  static constexpr const char* kNames[] = {"<stdin>", "<stdout>", "<stderr>"};
  static constexpr const char* kOptions[] = {"--stdin", "--stdout", "--stderr"};
  if (redirect.empty())
    return stdio_entry(which, util::UniqueFd(::fcntl(which, F_DUPFD_CLOEXEC, 3)), kNames[which]);
  int flags = which == 0 ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC;
  util::UniqueFd host(::open(redirect.c_str(), flags | O_CLOEXEC, 0666));
  if (!host) throw Error(fmt::format("{} {}: {}", kOptions[which], redirect, std::strerror(errno)));
  // A directory opens read-only, but the program could never read it.
  struct stat st;
  if (which == 0 && ::fstat(host.get(), &st) == 0 && S_ISDIR(st.st_mode))
    throw Error(fmt::format("{} {}: {}", kOptions[which], redirect, std::strerror(EISDIR)));
  return stdio_entry(which, std::move(host), redirect);
}

FdEntry stdio_entry(int which, util::UniqueFd host, std::string name) {
  FdEntry entry;
  entry.host = std::move(host);
  entry.guest_path = std::move(name);
  if (!entry.host) return entry; // tern was started with this stream closed
  struct stat st {};
  ::fstat(entry.host.get(), &st);
  entry.kind = kind_of(entry.host.get(), st);
  entry.identity = FileIdentity::of(st);
  Rights rights = rights_of(entry.kind);
  entry.rights_base = which == 0 ? rights & ~kWriteRights : rights & ~right::fd_read;
  entry.stdio = static_cast<uint8_t>(which);
  if (::fcntl(entry.host.get(), F_GETFL) & O_APPEND) entry.fdflags |= fdflag::append;
  return entry;
}

FdEntry preopen_entry(util::UniqueFd dir, uint32_t index) {
  struct stat st {};
  ::fstat(dir.get(), &st);
  FdEntry entry;
  entry.kind = FdKind::Directory;
  entry.host = std::move(dir);
  entry.preopen = index;
  entry.is_preopen = true;
  entry.rights_base = right::directory;
  entry.rights_inheriting = right::directory | right::regular_file;
  entry.identity = FileIdentity::of(st);
  return entry;
}

Preopen parse_dir_option(std::string_view spec) {
  size_t sep = spec.find("::");
  if (sep == std::string_view::npos) return {std::string(spec), std::string(spec)};
  return {std::string(spec.substr(0, sep)), std::string(spec.substr(sep + 2))};
}

WasiContext::WasiContext(WasiOptions options) : WasiContext(std::move(options), EmptyFdTable{}) {
  open_stdio();
  open_preopens();
  open_listeners();
}

WasiContext::WasiContext(WasiOptions options, EmptyFdTable)
    : options_(std::move(options)), resolver_(options_.resolve_mode),
      net_policy_(options_.allow_connect, options_.allow_bind, options_.allow_resolve) {}

void WasiContext::open_stdio() {
  const std::string* redirects[] = {&options_.stdin_path, &options_.stdout_path,
                                    &options_.stderr_path};
  for (int which = 0; which < 3; ++which) {
    FdEntry entry = stdio_entry(which, *redirects[which]);
    if (entry.host) fds_.insert_at(which, std::move(entry));
  }
}

void WasiContext::open_preopens() {
  for (uint32_t i = 0; i < options_.preopens.size(); ++i) {
    const Preopen& p = options_.preopens[i];
    if (p.host_path.empty() || p.guest_path.empty())
      throw Error(fmt::format("--dir {}::{}: empty path", p.host_path, p.guest_path));
    util::UniqueFd fd(::open(p.host_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) throw Error(fmt::format("--dir {}: {}", p.host_path, std::strerror(errno)));
    fds_.insert_at(3 + i, preopen_entry(std::move(fd), i));
  }
}

void WasiContext::open_listeners() {
  uint32_t fd = 3 + static_cast<uint32_t>(options_.preopens.size());
  for (const auto& spec : options_.listen) fds_.insert_at(fd++, open_listener(spec));
}

std::vector<iovec>& WasiContext::iov_scratch() {
  thread_local std::vector<iovec> scratch;
  return scratch;
}

} // namespace tern::wasi
