// path_* calls. Every path is resolved beneath its directory fd by the
// context's PathResolver; the final operation acts on (parent fd, name) and
// never follows a symlink itself.
#include "wasi/calls.h"
#include "wasi/posix_errno.h"
#include "wasi/times.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tern::wasi {

int host_open_flags(uint32_t oflags, Rights base, uint32_t fdflags, bool follow) {
  bool read = base & (right::fd_read | right::fd_readdir);
  bool write = base & (right::fd_write | right::fd_allocate | right::fd_filestat_set_size);
  int flags = write ? (read ? O_RDWR : O_WRONLY) : O_RDONLY;
  if (oflags & oflag::creat) flags |= O_CREAT;
  if (oflags & oflag::directory) flags |= O_DIRECTORY;
  if (oflags & oflag::excl) flags |= O_EXCL;
  if (oflags & oflag::trunc) flags |= O_TRUNC;
  if (fdflags & fdflag::append) flags |= O_APPEND;
  if (fdflags & fdflag::dsync) flags |= O_DSYNC;
  if (fdflags & fdflag::rsync) flags |= O_RSYNC;
  if (fdflags & fdflag::sync) flags |= O_SYNC;
  if (!follow) flags |= O_NOFOLLOW;
  return flags;
}

} // namespace tern::wasi

namespace tern::wasi::calls {
namespace {

// The directory fd a path is relative to (with the rights the call needs)
// and the path itself.
Errno dir_and_path(Call& c, uint32_t fd, Rights needed, uint32_t path, uint32_t path_len,
                   FdEntry*& dir, std::string& path_out) {
  WASI_TRY(c.ctx.fds().get(fd, needed, dir));
  if (dir->kind != FdKind::Directory) return Errno::notdir;
  return c.mem.string(path, path_len, path_out);
}

Errno resolve_parent(Call& c, FdEntry& dir, const std::string& path, bool follow, ParentDir& out) {
  return c.ctx.resolver().parent(dir.host.get(), path, follow, out);
}

std::string join_guest_path(const std::string& base, const std::string& path) {
  if (base.empty()) return path;
  return base + "/" + path;
}

// The kernel would follow a symlink named with a trailing slash, so names
// are passed without it; this gives the answers a trailing slash would.
Errno check_trailing_slash(const ParentDir& p) {
  if (!p.trailing_slash) return Errno::success;
  struct stat st;
  if (::fstatat(p.fd, p.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return last_errno();
  return S_ISDIR(st.st_mode) ? Errno::success : Errno::notdir;
}

// link / symlink may not create "name/": EEXIST if something is there,
// else ENOENT (as Linux answers).
Errno refuse_trailing_slash(const ParentDir& p) {
  if (!p.trailing_slash) return Errno::success;
  struct stat st;
  return ::fstatat(p.fd, p.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 ? Errno::exist
                                                                        : Errno::noent;
}

Rights rights_for_kind(FdKind kind) {
  switch (kind) {
  case FdKind::File:
    return right::regular_file;
  case FdKind::Directory:
    return right::directory;
  default:
    return right::stream;
  }
}

Rights open_rights_needed(uint32_t oflags) {
  Rights needed = right::path_open;
  if (oflags & oflag::creat) needed |= right::path_create_file;
  if (oflags & oflag::trunc) needed |= right::path_filestat_set_size;
  return needed;
}

} // namespace

Ret path_open(Call& c, uint32_t fd, uint32_t dirflags, uint32_t path, uint32_t path_len,
              uint32_t oflags, uint64_t rights_base, uint64_t rights_inheriting, uint32_t fdflags,
              uint32_t fd_out) {
  if ((oflags & ~uint32_t(oflag::all)) || (fdflags & ~uint32_t(fdflag::all))) return Errno::inval;
  FdEntry* dir;
  std::string guest_path;
  WASI_TRY(dir_and_path(c, fd, open_rights_needed(oflags), path, path_len, dir, guest_path));
  // A new fd gets at most what its directory may hand down.
  rights_base &= right::all;
  rights_inheriting &= right::all;
  if ((rights_base & ~dir->rights_inheriting) || (rights_inheriting & ~dir->rights_inheriting))
    return Errno::notcapable;
  if (!c.mem.in_bounds(fd_out, 4)) return Errno::fault;

  bool follow = dirflags & lookupflag::symlink_follow;
  util::UniqueFd host;
  int flags = host_open_flags(oflags, rights_base, fdflags, follow);
  WASI_TRY(c.ctx.resolver().open(dir->host.get(), guest_path, flags, 0666, host));
  struct stat st;
  if (::fstat(host.get(), &st) != 0) return last_errno();

  FdEntry entry;
  entry.kind = kind_of(host.get(), st);
  entry.host = std::move(host);
  entry.guest_path = join_guest_path(dir->guest_path, guest_path);
  entry.preopen = dir->preopen;
  entry.oflags = static_cast<uint16_t>(oflags);
  entry.lookupflags = dirflags;
  entry.fdflags = static_cast<uint16_t>(fdflags);
  entry.rights_base = rights_base & rights_for_kind(entry.kind);
  entry.rights_inheriting = entry.kind == FdKind::Directory ? rights_inheriting : 0;
  entry.identity = FileIdentity::of(st);
  uint32_t new_fd;
  WASI_TRY(c.ctx.fds().insert(std::move(entry), new_fd));
  return c.mem.store<uint32_t>(fd_out, new_fd);
}

Ret path_create_directory(Call& c, uint32_t fd, uint32_t path, uint32_t path_len) {
  FdEntry* dir;
  std::string p;
  WASI_TRY(dir_and_path(c, fd, right::path_create_directory, path, path_len, dir, p));
  ParentDir parent;
  WASI_TRY(resolve_parent(c, *dir, p, false, parent));
  return ::mkdirat(parent.fd, parent.name.c_str(), 0777) == 0 ? Errno::success : last_errno();
}

Ret path_filestat_get(Call& c, uint32_t fd, uint32_t flags, uint32_t path, uint32_t path_len,
                      uint32_t stat_out) {
  FdEntry* dir;
  std::string p;
  WASI_TRY(dir_and_path(c, fd, right::path_filestat_get, path, path_len, dir, p));
  if (!c.mem.in_bounds(stat_out, layout::filestat::size)) return Errno::fault;
  bool follow = flags & lookupflag::symlink_follow;
  ParentDir parent;
  WASI_TRY(resolve_parent(c, *dir, p, follow || p.ends_with('/'), parent));
  struct stat st;
  if (::fstatat(parent.fd, parent.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return last_errno();
  if (parent.trailing_slash && !S_ISDIR(st.st_mode)) return Errno::notdir;
  return write_filestat(c.mem, stat_out, st);
}

Ret path_filestat_set_times(Call& c, uint32_t fd, uint32_t flags, uint32_t path, uint32_t path_len,
                            uint64_t atim, uint64_t mtim, uint32_t fst_flags) {
  FdEntry* dir;
  std::string p;
  WASI_TRY(dir_and_path(c, fd, right::path_filestat_set_times, path, path_len, dir, p));
  timespec times[2];
  WASI_TRY(host_times(atim, mtim, fst_flags, times));
  bool follow = flags & lookupflag::symlink_follow;
  ParentDir parent;
  WASI_TRY(resolve_parent(c, *dir, p, follow, parent));
  WASI_TRY(check_trailing_slash(parent));
  if (::utimensat(parent.fd, parent.name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
    return last_errno();
  return Errno::success;
}

Ret path_link(Call& c, uint32_t old_fd, uint32_t old_flags, uint32_t old_path,
              uint32_t old_path_len, uint32_t new_fd, uint32_t new_path, uint32_t new_path_len) {
  FdEntry* old_dir;
  FdEntry* new_dir;
  std::string from, to;
  WASI_TRY(dir_and_path(c, old_fd, right::path_link_source, old_path, old_path_len, old_dir, from));
  WASI_TRY(dir_and_path(c, new_fd, right::path_link_target, new_path, new_path_len, new_dir, to));
  ParentDir src, dst;
  bool follow = old_flags & lookupflag::symlink_follow;
  WASI_TRY(resolve_parent(c, *old_dir, from, follow, src));
  WASI_TRY(resolve_parent(c, *new_dir, to, false, dst));
  if (src.trailing_slash) {
    // Directories cannot be hard-linked; "file/" is not a directory.
    Errno e = check_trailing_slash(src);
    return e == Errno::success ? Errno::perm : e;
  }
  WASI_TRY(refuse_trailing_slash(dst));
  if (::linkat(src.fd, src.name.c_str(), dst.fd, dst.name.c_str(), 0) != 0) return last_errno();
  return Errno::success;
}

Ret path_readlink(Call& c, uint32_t fd, uint32_t path, uint32_t path_len, uint32_t buf,
                  uint32_t buf_len, uint32_t bufused_out) {
  FdEntry* dir;
  std::string p;
  WASI_TRY(dir_and_path(c, fd, right::path_readlink, path, path_len, dir, p));
  std::span<uint8_t> out;
  WASI_TRY(c.mem.bytes(buf, buf_len, out));
  if (!c.mem.in_bounds(bufused_out, 4)) return Errno::fault;
  ParentDir parent;
  WASI_TRY(resolve_parent(c, *dir, p, false, parent));
  // Read into a host buffer big enough for any link, then truncate to the
  // guest's buffer as readlink(2) does.
  std::vector<char> target(PATH_MAX);
  ssize_t n = ::readlinkat(parent.fd, parent.name.c_str(), target.data(), target.size());
  if (n < 0) return last_errno();
  size_t copied = std::min(size_t(n), out.size());
  std::copy_n(target.begin(), copied, out.begin());
  return c.mem.store<uint32_t>(bufused_out, uint32_t(copied));
}

Ret path_remove_directory(Call& c, uint32_t fd, uint32_t path, uint32_t path_len) {
  FdEntry* dir;
  std::string p;
  WASI_TRY(dir_and_path(c, fd, right::path_remove_directory, path, path_len, dir, p));
  ParentDir parent;
  WASI_TRY(resolve_parent(c, *dir, p, false, parent));
  if (::unlinkat(parent.fd, parent.name.c_str(), AT_REMOVEDIR) != 0) return last_errno();
  return Errno::success;
}

Ret path_rename(Call& c, uint32_t fd, uint32_t old_path, uint32_t old_path_len, uint32_t new_fd,
                uint32_t new_path, uint32_t new_path_len) {
  FdEntry* old_dir;
  FdEntry* new_dir;
  std::string from, to;
  WASI_TRY(dir_and_path(c, fd, right::path_rename_source, old_path, old_path_len, old_dir, from));
  WASI_TRY(dir_and_path(c, new_fd, right::path_rename_target, new_path, new_path_len, new_dir, to));
  ParentDir src, dst;
  WASI_TRY(resolve_parent(c, *old_dir, from, false, src));
  WASI_TRY(resolve_parent(c, *new_dir, to, false, dst));
  if (src.trailing_slash || dst.trailing_slash) {
    // Only directories may be renamed with a trailing slash.
    WASI_TRY(check_trailing_slash({{}, src.fd, src.name, true}));
  }
  if (::renameat(src.fd, src.name.c_str(), dst.fd, dst.name.c_str()) != 0) return last_errno();
  return Errno::success;
}

Ret path_symlink(Call& c, uint32_t old_path, uint32_t old_path_len, uint32_t fd, uint32_t new_path,
                 uint32_t new_path_len) {
  std::string target;
  WASI_TRY(c.mem.string(old_path, old_path_len, target));
  FdEntry* dir;
  std::string link;
  WASI_TRY(dir_and_path(c, fd, right::path_symlink, new_path, new_path_len, dir, link));
  // The link's own directory, relative to the preopen root.
  std::string link_path = join_guest_path(dir->guest_path, link);
  std::string link_dir = link_path.substr(0, link_path.find_last_of('/') + 1);
  if (!lexically_beneath(link_dir, target)) return Errno::notcapable;
  ParentDir parent;
  WASI_TRY(resolve_parent(c, *dir, link, false, parent));
  WASI_TRY(refuse_trailing_slash(parent));
  if (::symlinkat(target.c_str(), parent.fd, parent.name.c_str()) != 0) return last_errno();
  return Errno::success;
}

Ret path_unlink_file(Call& c, uint32_t fd, uint32_t path, uint32_t path_len) {
  FdEntry* dir;
  std::string p;
  WASI_TRY(dir_and_path(c, fd, right::path_unlink_file, path, path_len, dir, p));
  ParentDir parent;
  WASI_TRY(resolve_parent(c, *dir, p, false, parent));
  if (parent.trailing_slash) {
    // "x/" names a directory, which unlink_file does not remove.
    Errno e = check_trailing_slash(parent);
    return e == Errno::success ? Errno::isdir : e;
  }
  if (::unlinkat(parent.fd, parent.name.c_str(), 0) != 0) return last_errno();
  return Errno::success;
}

} // namespace tern::wasi::calls
