#include "wasi/state.h"

#include "tern/error.h"
#include "wasi/socket.h"
#include "wasi/state_files.h"
#include "wasi/state_records.h"
#include "wasi/state_sockets.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fmt/format.h>
#include <map>
#include <set>

namespace tern::wasi {
namespace {

using state::Origin;
using state::SavedFd;
using state::SavedState;

template <typename Options>
const std::string& stdio_redirect(const Options& o, uint8_t stream) {
  const std::string* paths[] = {&o.stdin_path, &o.stdout_path, &o.stderr_path};
  return *paths[stream];
}

uint64_t clock_reading(const Clocks& clocks, ClockId id) {
  uint64_t now = 0;
  clocks.now(static_cast<uint32_t>(id), now);
  return now;
}

std::string name_of(const WasiContext& ctx, const FdEntry& e) {
  if (!e.preopen || *e.preopen >= ctx.preopens().size()) return e.guest_path;
  return state::guest_name_of(ctx.preopens()[*e.preopen].guest_path, e.guest_path);
}

// The record of a file opened by path (path_open), as of now.
void save_path(FdEntry& e, const std::string& name, SavedFd& f) {
  f.preopen = *e.preopen;
  f.oflags = e.oflags;
  f.lookupflags = e.lookupflags;
  if (e.kind == FdKind::File) {
    auto position = e.position();
    if (!position)
      throw Error(fmt::format("fd {} ({}): cannot read its file position: {}", f.fd, name,
                              std::strerror(errno)));
    f.position = *position;
    e.refresh_identity(); // the program may have written since it opened it
    f.size = e.identity.size;
    f.mtime_ns = e.identity.mtime_ns;
  }
  if (e.listing) f.listing = *e.listing;
}

SavedFd save_fd(WasiContext& ctx, uint32_t fd, FdEntry& e) {
  SavedFd f;
  f.fd = fd;
  f.kind = e.kind;
  f.fdflags = e.fdflags;
  f.rights_base = e.rights_base;
  f.rights_inheriting = e.rights_inheriting;
  f.path = e.guest_path;
  if (e.stdio) {
    f.origin = Origin::Stdio;
    f.stream = *e.stdio;
    f.redirected = !stdio_redirect(ctx.options(), f.stream).empty();
    if (f.redirected) f.path = std::filesystem::absolute(f.path).string();
    f.position = e.position().value_or(0);
  } else if (e.socket) {
    f.origin = Origin::Socket;
    f.socket = *e.socket;
  } else if (e.preopen && e.is_preopen) {
    f.origin = Origin::Preopen;
    f.preopen = *e.preopen;
  } else if (e.preopen) {
    f.origin = Origin::Path;
    save_path(e, name_of(ctx, e), f);
  } else {
    throw Error(fmt::format("fd {} ({}, {}): tern does not know how to save it", fd,
                            to_string(e.kind), e.guest_path));
  }
  return f;
}

bool open_for_writing(const FdEntry& e) {
  const int mode = ::fcntl(e.host.get(), F_GETFL);
  return mode >= 0 && (mode & O_ACCMODE) != O_RDONLY;
}

// Each regular file open for writing, once even if several fds have it.
std::vector<state::BundledFile> bundle_written_files(WasiContext& ctx) {
  std::vector<state::BundledFile> files;
  std::set<std::pair<uint32_t, std::string>> seen;
  for (uint32_t fd : ctx.fds().open_fds()) {
    const FdEntry& e = *ctx.fds().find(fd);
    if (e.kind != FdKind::File || !e.preopen || e.is_preopen || !open_for_writing(e)) continue;
    if (!seen.insert({*e.preopen, e.guest_path}).second) continue;
    files.push_back(state::bundle_file(e, fd, name_of(ctx, e)));
  }
  return files;
}

// Preopens by guest name: a --dir given to the restore maps a guest name to
// a host directory. The snapshot's own host path is used only where the
// restore accepts it (dirs_from_snapshot); other preopens keep it as a record
// (a later checkpoint writes it down again) but are not granted: a record
// that needs one is refused (Restorer::root).
struct MappedPreopens {
  std::vector<Preopen> preopens;
  std::vector<bool> granted;
};

MappedPreopens map_preopens(const std::vector<Preopen>& saved, const RestoreOptions& options) {
  std::map<std::string, std::string> host_of;
  for (const Preopen& d : options.dirs) host_of[d.guest_path] = d.host_path;
  for (const auto& [guest, host] : host_of) {
    auto named = [&](const Preopen& p) { return p.guest_path == guest; };
    if (std::none_of(saved.begin(), saved.end(), named))
      throw Error(
          fmt::format("--dir {}::{}: the snapshot has no preopen named {}", host, guest, guest));
  }
  MappedPreopens mapped{saved, std::vector<bool>(saved.size(), options.dirs_from_snapshot)};
  for (size_t i = 0; i < saved.size(); ++i) {
    if (auto it = host_of.find(saved[i].guest_path); it != host_of.end()) {
      mapped.preopens[i].host_path = it->second;
      mapped.granted[i] = true;
    }
  }
  return mapped;
}

// Builds the fd table of a restored context, one saved fd at a time.
class Restorer {
public:
  Restorer(WasiContext& ctx, const RestoreOptions& options, std::vector<bool> granted)
      : ctx_(ctx), options_(options), granted_(std::move(granted)),
        roots_(ctx.preopens().size()), sockets_{ctx.net_policy(), {}, {}} {
    for (const std::string& spec : options.listen) sockets_.listen.push_back(listen_address(spec));
    sockets_.listen_used.assign(sockets_.listen.size(), false);
  }

  // A --listen that names no listening socket of the snapshot: a restore
  // cannot add fds, so it would do nothing.
  void check_every_listen_used() const {
    for (size_t i = 0; i < options_.listen.size(); ++i)
      if (!sockets_.listen_used[i])
        throw Error(fmt::format("--listen {}: the snapshot has no listening socket at {}",
                                options_.listen[i], sockets_.listen[i].to_string()));
  }

  void write_back(const state::BundledFile& file) {
    const std::string what =
        fmt::format("bundled file {}",
                    state::guest_name_of(ctx_.preopens()[file.preopen].guest_path, file.path));
    state::write_back(file, root(file.preopen, what), ctx_.resolver());
  }

  FdEntry restore(const SavedFd& f) {
    switch (f.origin) {
    case Origin::Stdio:
      return restore_stdio(f);
    case Origin::Preopen:
      return restore_preopen(f);
    case Origin::Path:
      return state::reopen_path(f, root(f.preopen, fd_name(f)), ctx_.resolver(),
                                options_.allow_changed_files);
    case Origin::Socket:
      if (relayed(f)) return state::relayed_stream(f);
      return state::restore_socket(f, sockets_);
    }
    throw Error(fmt::format("fd {}: unknown origin", f.fd));
  }

  bool relayed(const SavedFd& f) const {
    return f.kind == FdKind::TcpStream && options_.relayed_streams.count(f.fd) != 0;
  }

private:
  std::string fd_name(const SavedFd& f) const {
    return fmt::format("fd {} ({})", f.fd,
                       state::guest_name_of(ctx_.preopens()[f.preopen].guest_path, f.path));
  }

  // The preopen's directory, opened the first time a record (`what`) needs
  // it: a preopen the program no longer uses need not exist on this host,
  // nor be granted. Only a directory the restore grants is opened.
  const state::RestoreRoot& root(uint32_t preopen, const std::string& what) {
    state::RestoreRoot& r = roots_[preopen].root;
    if (r.fd >= 0) return r;
    const Preopen& p = ctx_.preopens()[preopen];
    if (!granted_[preopen])
      throw Error(fmt::format("{}: the restore grants no directory for preopen {} (the snapshot "
                              "names host directory {}): give --dir HOST::{}, or "
                              "--dir-from-snapshot to accept the snapshot's directories",
                              what, p.guest_path, p.host_path, p.guest_path));
    roots_[preopen].dir.reset(::open(p.host_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!roots_[preopen].dir)
      throw Error(fmt::format("preopen {}: cannot open its host directory {}: {} (map it to "
                              "another with --dir HOST::{})",
                              p.guest_path, p.host_path, std::strerror(errno), p.guest_path));
    r = {roots_[preopen].dir.get(), p.host_path, p.guest_path};
    return r;
  }

  // A stream the restore redirects is opened as `tern run` opens it; one
  // the restore leaves alone is tern's own, or, if the program's was
  // redirected to a file and the restore accepts the snapshot's streams,
  // that file again at the same offset.
  FdEntry restore_stdio(const SavedFd& f) {
    const std::string& own = stdio_redirect(options_, f.stream);
    FdEntry e;
    if (!own.empty() || !f.redirected)
      e = stdio_entry(f.stream, own);
    else if (options_.stdio_from_snapshot)
      e = reopen_redirect(f);
    else
      throw Error(fmt::format("fd {} ({} redirected to {}): the restore grants no file for it: "
                              "give --{} FILE, or --stdio-from-snapshot to continue in {}",
                              f.fd, kStreams[f.stream], f.path, kStreams[f.stream], f.path));
    // What the guest had dropped stays dropped; what the new stream cannot
    // do (seek on a terminal) is not given.
    e.rights_base &= f.rights_base;
    e.rights_inheriting &= f.rights_inheriting;
    e.fdflags |= f.fdflags & fdflag::nonblock;
    return e;
  }

  FdEntry reopen_redirect(const SavedFd& f) {
    const std::string what =
        fmt::format("fd {} ({} redirected to {})", f.fd, kStreams[f.stream], f.path);
    if (!f.path.starts_with('/')) throw Error(fmt::format("{}: not an absolute path", what));
    int flags = (f.stream == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC; // never truncated
    if (f.fdflags & fdflag::append) flags |= O_APPEND;
    util::UniqueFd host(::open(f.path.c_str(), flags | state::kNoWait));
    if (!host)
      throw Error(fmt::format("{}: cannot reopen it: {} (redirect it with --{} FILE)", what,
                              std::strerror(errno), kStreams[f.stream]));
    FdEntry e = stdio_entry(f.stream, std::move(host), f.path);
    if (e.kind != f.kind)
      throw Error(
          fmt::format("{}: was a {}, is now a {}", what, to_string(f.kind), to_string(e.kind)));
    state::make_blocking(e.host.get());
    if (e.kind == FdKind::File && ::lseek(e.host.get(), off_t(f.position), SEEK_SET) < 0)
      throw Error(fmt::format("{}: cannot seek to {}: {}", what, f.position, std::strerror(errno)));
    return e;
  }

  FdEntry restore_preopen(const SavedFd& f) {
    const std::string what =
        fmt::format("fd {} (preopen {})", f.fd, ctx_.preopens()[f.preopen].guest_path);
    util::UniqueFd dir(::openat(root(f.preopen, what).fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) throw Error(fmt::format("{}: {}", what, std::strerror(errno)));
    FdEntry e = preopen_entry(std::move(dir), f.preopen);
    e.rights_base &= f.rights_base;
    e.rights_inheriting &= f.rights_inheriting;
    e.fdflags = f.fdflags;
    return e;
  }

  struct OpenRoot {
    util::UniqueFd dir;
    state::RestoreRoot root;
  };
  static constexpr const char* kStreams[] = {"stdin", "stdout", "stderr"};
  WasiContext& ctx_;
  const RestoreOptions& options_;
  std::vector<bool> granted_; // per preopen: the restore may open its directory
  std::vector<OpenRoot> roots_;
  state::SocketGrants sockets_;
};

} // namespace

snapshot::ExtensionSection save_state(WasiContext& ctx, const SaveOptions& options) {
  SavedState s;
  s.args = ctx.options().args;
  s.env = ctx.options().env;
  s.preopens = ctx.preopens();
  // As given on the command line, a relative path means nothing to a
  // restore started elsewhere: record where it was.
  for (Preopen& p : s.preopens) p.host_path = std::filesystem::absolute(p.host_path).string();
  s.monotonic_ns = ctx.clocks().monotonic_now();
  s.process_cputime_ns = clock_reading(ctx.clocks(), ClockId::process_cputime);
  s.thread_cputime_ns = clock_reading(ctx.clocks(), ClockId::thread_cputime);
  s.pending_poll = ctx.pending_poll();
  for (uint32_t fd : ctx.fds().open_fds()) s.fds.push_back(save_fd(ctx, fd, *ctx.fds().find(fd)));
  if (options.bundle_files) s.files = bundle_written_files(ctx);
  return {kStateTag, false, state::encode(s)};
}

std::unique_ptr<WasiContext> restore_state(const snapshot::ExtensionSection& section,
                                           const RestoreOptions& options) {
  if (section.tag != kStateTag)
    throw Error(fmt::format("section {} is not a WASI state section",
                            snapshot::to_string_view(section.tag)));
  SavedState s = state::decode(section.payload);
  WasiOptions o;
  o.args = std::move(s.args);
  o.env = std::move(s.env);
  MappedPreopens mapped = map_preopens(s.preopens, options);
  o.preopens = std::move(mapped.preopens);
  // The streams' redirections as the restored program has them: the
  // restore's own, else the checkpoint's if accepted (a later checkpoint
  // records them).
  std::string* paths[] = {&o.stdin_path, &o.stdout_path, &o.stderr_path};
  if (options.stdio_from_snapshot)
    for (const SavedFd& f : s.fds)
      if (f.origin == Origin::Stdio && f.redirected) *paths[f.stream] = f.path;
  for (uint8_t stream = 0; stream < 3; ++stream)
    if (const std::string& own = stdio_redirect(options, stream); !own.empty())
      *paths[stream] = own;
  o.resolve_mode = options.resolve_mode;
  o.allow_connect = options.allow_connect;
  o.allow_bind = options.allow_bind;
  o.allow_resolve = options.allow_resolve;
  auto ctx = std::make_unique<WasiContext>(std::move(o), WasiContext::EmptyFdTable{});

  Restorer restorer(*ctx, options, std::move(mapped.granted));
  for (const state::BundledFile& file : s.files) restorer.write_back(file);
  for (const SavedFd& f : s.fds) {
    FdEntry entry = restorer.restore(f);
    // tern's own stream may be closed: the guest sees EBADF, as in a run.
    if (entry.host || restorer.relayed(f)) ctx->fds().insert_at(f.fd, std::move(entry));
  }
  restorer.check_every_listen_used();
  ctx->clocks().continue_from(ClockId::monotonic, s.monotonic_ns);
  ctx->clocks().continue_from(ClockId::process_cputime, s.process_cputime_ns);
  ctx->clocks().continue_from(ClockId::thread_cputime, s.thread_cputime_ns);
  ctx->pending_poll() = std::move(s.pending_poll);
  return ctx;
}

} // namespace tern::wasi
