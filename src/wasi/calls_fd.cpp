// fd_* calls.
#include "wasi/blocking.h"
#include "wasi/calls.h"
#include "wasi/posix_errno.h"
#include "wasi/socket.h"
#include "wasi/times.h"

#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tern::wasi {

Errno write_filestat(GuestMemory& mem, uint32_t out, const struct stat& st) {
  namespace L = layout::filestat;
  Record<L::size> rec;
  rec.put<uint64_t>(L::dev, st.st_dev);
  rec.put<uint64_t>(L::ino, st.st_ino);
  rec.put(L::filetype, file_type_of(st));
  rec.put<uint64_t>(L::nlink, st.st_nlink);
  rec.put<uint64_t>(L::fsize, st.st_size);
  rec.put<uint64_t>(L::atim, timestamp_of(st.st_atim));
  rec.put<uint64_t>(L::mtim, timestamp_of(st.st_mtim));
  rec.put<uint64_t>(L::ctim, timestamp_of(st.st_ctim));
  return rec.write_to(mem, out);
}

namespace {

// Moves the iovecs past `n` transferred bytes (partial transfers).
void advance(std::vector<iovec>& iov, size_t n) {
  size_t drop = 0;
  while (drop < iov.size() && n >= iov[drop].iov_len) n -= iov[drop++].iov_len;
  iov.erase(iov.begin(), iov.begin() + long(drop));
  if (!iov.empty() && n > 0) {
    iov[0].iov_base = static_cast<uint8_t*>(iov[0].iov_base) + n;
    iov[0].iov_len -= n;
  }
}

size_t total_length(const std::vector<iovec>& iov) {
  size_t sum = 0;
  for (const auto& v : iov) sum += v.iov_len;
  return sum;
}

ssize_t read_once(const FdEntry& e, std::vector<iovec>& iov, int msg_flags) {
  if (!e.is_socket()) return ::readv(e.host.get(), iov.data(), int(iov.size()));
  msghdr msg{};
  msg.msg_iov = iov.data();
  msg.msg_iovlen = iov.size();
  return ::recvmsg(e.host.get(), &msg, (msg_flags & ~MSG_WAITALL) | MSG_DONTWAIT);
}

ssize_t write_once(const FdEntry& e, std::vector<iovec>& iov) {
  if (!e.is_socket()) return ::writev(e.host.get(), iov.data(), int(iov.size()));
  msghdr msg{};
  msg.msg_iov = iov.data();
  msg.msg_iovlen = iov.size();
  return ::sendmsg(e.host.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

// The iovecs of a read or write call, in the context's scratch vector.
Errno gather(Call& c, uint32_t iovs, uint32_t iovs_len, std::vector<iovec>*& out,
             GuestMemory::Transfer transfer) {
  out = &c.ctx.iov_scratch();
  return c.mem.iovecs(iovs, iovs_len, *out, transfer);
}

Errno seek_rights(uint64_t offset, uint32_t whence, Rights& needed) {
  if (whence > static_cast<uint32_t>(Whence::end)) return Errno::inval;
  bool tell_only = offset == 0 && whence == static_cast<uint32_t>(Whence::cur);
  needed = tell_only ? right::fd_tell : right::fd_seek;
  return Errno::success;
}

FileType file_type_of_dirent(unsigned char d_type) {
  switch (d_type) {
  case DT_REG:
    return FileType::regular_file;
  case DT_DIR:
    return FileType::directory;
  case DT_LNK:
    return FileType::symbolic_link;
  case DT_CHR:
    return FileType::character_device;
  case DT_BLK:
    return FileType::block_device;
  case DT_SOCK:
    return FileType::socket_stream;
  default:
    return FileType::unknown;
  }
}

Errno load_listing(FdEntry& dir) {
  util::UniqueFd fd(::openat(dir.host.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return last_errno();
  DIR* stream = ::fdopendir(fd.get());
  if (!stream) return last_errno();
  fd.release(); // the DIR owns it now
  auto listing = std::make_unique<DirListing>();
  errno = 0;
  while (const dirent* d = ::readdir(stream)) {
    DirListing::Entry entry{d->d_name, d->d_ino, file_type_of_dirent(d->d_type)};
    struct stat st;
    if (d->d_type == DT_UNKNOWN &&
        ::fstatat(::dirfd(stream), d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
      entry.type = file_type_of(st);
    listing->entries.push_back(std::move(entry));
  }
  int err = errno;
  ::closedir(stream);
  if (err != 0) return errno_from_posix(err);
  dir.listing = std::move(listing);
  return Errno::success;
}

// Bytes may move on a connection through the gateway once the gateway has
// answered its connect (its answer is not the program's to read).
bool gateway_connecting(const FdEntry& e) {
  return e.gateway && e.kind == FdKind::TcpSocket;
}

} // namespace

Ret stream_read(Call& c, FdEntry& e, std::vector<iovec>& iov, int msg_flags, size_t& n) {
  size_t wanted = total_length(iov);
  n = 0;
  if (gateway_connecting(e)) {
    WASI_TRY(wait_gateway_connect(c, e, Errno::again));
  }
  const bool peek = (msg_flags & MSG_PEEK) != 0;
  const bool wait_all = (msg_flags & MSG_WAITALL) != 0 && !peek;
  // A gateway connection's bytes drained at a checkpoint come first.
  if (e.gateway && e.gateway->unread_size() > 0) {
    n = take_unread(*e.gateway, iov, peek);
    if (!wait_all || n == wanted) return Errno::success;
    advance(iov, n);
  }
  // A socket is read first (its receive never blocks) and polled only when
  // it had nothing: one system call fewer per read than polling first.
  for (bool ready = e.is_socket();;) {
    if (!ready) {
      Wait w = wait_ready(c, e, POLLIN, e.recv_timeout_us());
      if (w == Wait::Interrupted) return n > 0 ? Ret(Errno::success) : Ret::suspend();
      if (w == Wait::NotReady) return n > 0 ? Errno::success : Errno::again;
    }
    const bool polled = !ready;
    ready = false;
    ssize_t got = read_once(e, iov, msg_flags);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return n > 0 ? Errno::success : last_errno();
      // Readable but nothing there: a socket shut down for reading, which
      // poll calls readable for ever. Linux's blocking receive returns 0.
      if (polled && n == 0 && e.socket && shut_for_reading(e.host.get()))
        return e.nonblocking() ? Errno::again : Errno::success;
      continue;
    }
    n += size_t(got);
    if (e.gateway && !peek) e.gateway->received += uint64_t(got);
    if (!wait_all || got == 0 || n == wanted) return Errno::success;
    advance(iov, size_t(got));
  }
}

Ret stream_write(Call& c, FdEntry& e, std::vector<iovec>& iov, size_t& n) {
  n = 0;
  if (gateway_connecting(e)) {
    WASI_TRY(wait_gateway_connect(c, e, Errno::again));
  }
  for (;;) {
    ssize_t put = write_once(e, iov);
    if (put >= 0) {
      n = size_t(put);
      if (e.gateway) e.gateway->sent += n;
      return Errno::success;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return last_errno();
    Wait w = wait_ready(c, e, POLLOUT, e.send_timeout_us());
    if (w == Wait::Interrupted) return Ret::suspend();
    if (w == Wait::NotReady) return Errno::again;
  }
}

namespace calls {

Ret fd_advise(Call& c, uint32_t fd, uint64_t offset, uint64_t len, uint32_t advice) {
  FdEntry* e;
  WASI_TRY(c.ctx.fds().get(fd, right::fd_advise, e));
  static constexpr int kHostAdvice[] = {POSIX_FADV_NORMAL,   POSIX_FADV_SEQUENTIAL,
                                        POSIX_FADV_RANDOM,   POSIX_FADV_WILLNEED,
                                        POSIX_FADV_DONTNEED, POSIX_FADV_NOREUSE};
  if (advice > static_cast<uint32_t>(Advice::noreuse)) return Errno::inval;
  if (int64_t(offset) < 0 || int64_t(len) < 0) return Errno::inval;
  if (e->kind == FdKind::Directory) return Errno::success; // advice only; nothing to do
  return errno_from_posix(
      ::posix_fadvise(e->host.get(), off_t(offset), off_t(len), kHostAdvice[advice]));
}

Ret fd_allocate(Call& c, uint32_t fd, uint64_t offset, uint64_t len) {
  FdEntry* e;
  WASI_TRY(c.ctx.fds().get(fd, right::fd_allocate, e));
  if (int64_t(offset) < 0 || int64_t(len) <= 0) return Errno::inval;
  return errno_from_posix(::posix_fallocate(e->host.get(), off_t(offset), off_t(len)));
}

namespace {

// A gateway connection the program closes: the gateway hears it first.
void tell_gateway_closing(Call& c, uint32_t fd) {
  const FdEntry* e = c.ctx.fds().find(fd);
  if (e && e->gateway && e->kind == FdKind::TcpStream && c.ctx.gateway_link())
    c.ctx.gateway_link()->closing(*e->gateway, false);
}

} // namespace

Ret fd_close(Call& c, uint32_t fd) {
  tell_gateway_closing(c, fd);
  return c.ctx.fds().close(fd);
}

Ret fd_datasync(Call& c, uint32_t fd) {
  FdEntry* e;
  WASI_TRY(c.ctx.fds().get(fd, right::fd_datasync, e));
  return ::fdatasync(e->host.get()) == 0 ? Errno::success : last_errno();
}

Ret fd_sync(Call& c, uint32_t fd) {
  FdEntry* e;
  WASI_TRY(c.ctx.fds().get(fd, right::fd_sync, e));
  return ::fsync(e->host.get()) == 0 ? Errno::success : last_errno();
}

Ret fd_fdstat_get(Call& c, uint32_t fd, uint32_t stat_out) {
  namespace L = layout::fdstat;
  FdEntry* e;
  WASI_TRY(c.ctx.fds().get(fd, 0, e));
  Record<L::size> rec;
  rec.put(L::filetype, file_type_of(e->kind));
  rec.put<uint16_t>(L::flags, e->fdflags);
  rec.put<uint64_t>(L::rights_base, e->rights_base);
  rec.put<uint64_t>(L::rights_inheriting, e->rights_inheriting);
  return rec.write_to(c.mem, stat_out);
}

Ret fd_fdstat_set_flags(Call& c, uint32_t fd, uint32_t flags) {
  FdEntry* e;
  WASI_TRY(c.ctx.fds().get(fd, right::fd_fdstat_set_flags, e));
  if (flags & ~uint32_t(fdflag::all)) return Errno::inval;
  // Linux cannot change O_SYNC / O_DSYNC on an open file.
  constexpr uint16_t kSyncFlags = fdflag::dsync | fdflag::rsync | fdflag::sync;
  if ((flags & kSyncFlags) != (e->fdflags & kSyncFlags)) return Errno::notsup;
  if ((flags ^ e->fdflags) & fdflag::append) {
    int host = ::fcntl(e->host.get(), F_GETFL);
    host = (flags & fdflag::append) ? host | O_APPEND : host & ~O_APPEND;
    if (host < 0 || ::fcntl(e->host.get(), F_SETFL, host) != 0) return last_errno();
  }
  // Non-blocking is the guest's view only: host streams are waited on with
  // poll so that waits stay interruptible.
  e->fdflags = static_cast<uint16_t>(flags);
  return Errno::success;
}

Ret fd_fdstat_set_rights(Call& c, uint32_t fd, uint64_t base, uint64_t inheriting) {
  FdEntry* e;
  WASI_TRY(c.ctx.fds().get(fd, 0, e));
  // Rights can only be dropped.
  if ((base & ~e->rights_base) || (inheriting & ~e->rights_inheriting)) return Errno::notcapable;
  e->rights_base = base;
  e->rights_inheriting = inheriting;
  return Errno::success;
}

Ret fd_filestat_get(Call& c, uint32_t fd, uint32_t stat_out) {
  FdEntry* e;
  WASI_TRY(c.ctx.fds().get(fd, right::fd_filestat_get, e));
  struct stat st;
  if (::fstat(e->host.get(), &st) != 0) return last_errno();
  WASI_TRY(write_filestat(c.mem, stat_out, st));
  // fstat cannot tell a datagram socket from a stream socket; the fd's kind can.
  if (!e->is_socket()) return Errno::success;
  return c.mem.store<uint8_t>(stat_out + layout::filestat::filetype,
                              static_cast<uint8_t>(file_type_of(e->kind)));
}

Ret fd_filestat_set_size(Call& c, uint32_t fd, uint64_t size) {
  FdEntry* e;
  WASI_TRY(c.ctx.fds().get(fd, right::fd_filestat_set_size, e));
  if (int64_t(size) < 0) return Errno::inval;
  return ::ftruncate(e->host.get(), off_t(size)) == 0 ? Errno::success : last_errno();
}

Ret fd_filestat_set_times(Call& c, uint32_t fd, uint64_t atim, uint64_t mtim, uint32_t fst_flags) {
  FdEntry* e;
  WASI_TRY(c.ctx.fds().get(fd, right::fd_filestat_set_times, e));
  timespec times[2];
  WASI_TRY(host_times(atim, mtim, fst_flags, times));
  return ::futimens(e->host.get(), times) == 0 ? Errno::success : last_errno();
}

Ret fd_pread(Call& c, uint32_t fd, uint32_t iovs, uint32_t iovs_len, uint64_t offset,
             uint32_t nread_out) {
  FdEntry* e;
  WASI_TRY(c.ctx.fds().get(fd, right::fd_read | right::fd_seek, e));
  std::vector<iovec>* iov;
  WASI_TRY(gather(c, iovs, iovs_len, iov, GuestMemory::Transfer::IntoGuest));
  if (!c.mem.in_bounds(nread_out, 4)) return Errno::fault;
  if (int64_t(offset) < 0) return Errno::inval;
  ssize_t n = ::preadv(e->host.get(), iov->data(), int(iov->size()), off_t(offset));
  if (n < 0) return last_errno();
  return c.mem.store<uint32_t>(nread_out, uint32_t(n));
}

Ret fd_pwrite(Call& c, uint32_t fd, uint32_t iovs, uint32_t iovs_len, uint64_t offset,
              uint32_t nwritten_out) {
  FdEntry* e;
  WASI_TRY(c.ctx.fds().get(fd, right::fd_write | right::fd_seek, e));
  std::vector<iovec>* iov;
  WASI_TRY(gather(c, iovs, iovs_len, iov, GuestMemory::Transfer::FromGuest));
  if (!c.mem.in_bounds(nwritten_out, 4)) return Errno::fault;
  if (int64_t(offset) < 0) return Errno::inval;
  ssize_t n = ::pwritev(e->host.get(), iov->data(), int(iov->size()), off_t(offset));
  if (n < 0) return last_errno();
  return c.mem.store<uint32_t>(nwritten_out, uint32_t(n));
}

Ret fd_read(Call& c, uint32_t fd, uint32_t iovs, uint32_t iovs_len, uint32_t nread_out) {
  FdEntry* e;
  WASI_TRY(c.ctx.fds().get(fd, right::fd_read, e));
  std::vector<iovec>* iov;
  WASI_TRY(gather(c, iovs, iovs_len, iov, GuestMemory::Transfer::IntoGuest));
  if (!c.mem.in_bounds(nread_out, 4)) return Errno::fault;
  size_t n = 0;
  if (e->is_stream()) {
    WASI_TRY(stream_read(c, *e, *iov, 0, n));
  } else {
    ssize_t got = ::readv(e->host.get(), iov->data(), int(iov->size()));
    if (got < 0) return last_errno();
    n = size_t(got);
  }
  return c.mem.store<uint32_t>(nread_out, uint32_t(n));
}

Ret fd_write(Call& c, uint32_t fd, uint32_t iovs, uint32_t iovs_len, uint32_t nwritten_out) {
  FdEntry* e;
  WASI_TRY(c.ctx.fds().get(fd, right::fd_write, e));
  std::vector<iovec>* iov;
  WASI_TRY(gather(c, iovs, iovs_len, iov, GuestMemory::Transfer::FromGuest));
  if (!c.mem.in_bounds(nwritten_out, 4)) return Errno::fault;
  size_t n = 0;
  if (e->is_socket()) {
    WASI_TRY(stream_write(c, *e, *iov, n));
  } else {
    ssize_t put = ::writev(e->host.get(), iov->data(), int(iov->size()));
    if (put < 0) return last_errno();
    n = size_t(put);
  }
  return c.mem.store<uint32_t>(nwritten_out, uint32_t(n));
}

Ret fd_prestat_get(Call& c, uint32_t fd, uint32_t prestat_out) {
  namespace L = layout::prestat;
  FdEntry* e = c.ctx.fds().find(fd);
  if (!e || !e->is_preopen) return Errno::badf;
  Record<L::size> rec;
  rec.put<uint8_t>(L::tag, kPreopenTypeDir);
  rec.put<uint32_t>(L::pr_name_len, uint32_t(c.ctx.preopens()[*e->preopen].guest_path.size()));
  return rec.write_to(c.mem, prestat_out);
}

Ret fd_prestat_dir_name(Call& c, uint32_t fd, uint32_t path, uint32_t path_len) {
  FdEntry* e = c.ctx.fds().find(fd);
  if (!e || !e->is_preopen) return Errno::badf;
  const std::string& name = c.ctx.preopens()[*e->preopen].guest_path;
  if (path_len < name.size()) return Errno::nametoolong;
  return c.mem.write(path, {reinterpret_cast<const uint8_t*>(name.data()), name.size()});
}

Ret fd_readdir(Call& c, uint32_t fd, uint32_t buf, uint32_t buf_len, uint64_t cookie,
               uint32_t bufused_out) {
  namespace L = layout::dirent;
  FdEntry* e;
  WASI_TRY(c.ctx.fds().get(fd, right::fd_readdir, e));
  if (e->kind != FdKind::Directory) return Errno::notdir;
  std::span<uint8_t> out;
  WASI_TRY(c.mem.bytes(buf, buf_len, out));
  if (!c.mem.in_bounds(bufused_out, 4)) return Errno::fault;
  // Cookie 0 starts over and sees the directory as it is now; other cookies
  // are positions in the listing taken then.
  if (cookie == 0 || !e->listing) {
    WASI_TRY(load_listing(*e));
  }
  const auto& entries = e->listing->entries;
  size_t used = 0;
  for (uint64_t i = cookie; i < entries.size() && used < out.size(); ++i) {
    const auto& entry = entries[i];
    Record<L::size> header;
    header.put<uint64_t>(L::d_next, i + 1);
    header.put<uint64_t>(L::d_ino, entry.inode);
    header.put<uint32_t>(L::d_namlen, uint32_t(entry.name.size()));
    header.put(L::d_type, entry.type);
    // The last entry may be cut short: the guest sees a full buffer and
    // asks again from that entry's cookie with a larger one.
    size_t n = std::min(header.bytes.size(), out.size() - used);
    std::copy_n(header.bytes.begin(), n, out.begin() + long(used));
    used += n;
    n = std::min(entry.name.size(), out.size() - used);
    std::copy_n(entry.name.begin(), n, out.begin() + long(used));
    used += n;
  }
  return c.mem.store<uint32_t>(bufused_out, uint32_t(used));
}

Ret fd_renumber(Call& c, uint32_t fd, uint32_t to) {
  if (fd != to && c.ctx.fds().find(fd)) tell_gateway_closing(c, to);
  return c.ctx.fds().renumber(fd, to);
}

Ret fd_seek(Call& c, uint32_t fd, uint64_t offset, uint32_t whence, uint32_t newoffset_out) {
  Rights needed;
  WASI_TRY(seek_rights(offset, whence, needed));
  FdEntry* e;
  WASI_TRY(c.ctx.fds().get(fd, needed, e));
  if (!c.mem.in_bounds(newoffset_out, 8)) return Errno::fault;
  static constexpr int kHostWhence[] = {SEEK_SET, SEEK_CUR, SEEK_END};
  off_t pos = ::lseek(e->host.get(), off_t(int64_t(offset)), kHostWhence[whence]);
  if (pos < 0) return last_errno();
  return c.mem.store<uint64_t>(newoffset_out, uint64_t(pos));
}

Ret fd_tell(Call& c, uint32_t fd, uint32_t offset_out) {
  FdEntry* e;
  WASI_TRY(c.ctx.fds().get(fd, right::fd_tell, e));
  if (!c.mem.in_bounds(offset_out, 8)) return Errno::fault;
  off_t pos = ::lseek(e->host.get(), 0, SEEK_CUR);
  if (pos < 0) return last_errno();
  return c.mem.store<uint64_t>(offset_out, uint64_t(pos));
}

} // namespace calls
} // namespace tern::wasi
