#include "wasi/fd_table.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <sys/socket.h>
#include <unistd.h>

namespace tern::wasi {

std::string_view to_string(FdKind kind) {
  switch (kind) {
  case FdKind::Unknown:
    return "unknown";
  case FdKind::File:
    return "file";
  case FdKind::Directory:
    return "directory";
  case FdKind::CharDevice:
    return "char-device";
  case FdKind::BlockDevice:
    return "block-device";
  case FdKind::Fifo:
    return "fifo";
  case FdKind::TcpListener:
    return "tcp-listener";
  case FdKind::TcpStream:
    return "tcp-stream";
  case FdKind::TcpSocket:
    return "tcp-socket";
  case FdKind::UdpSocket:
    return "udp-socket";
  }
  return "unknown";
}

FileType file_type_of(FdKind kind) {
  switch (kind) {
  case FdKind::File:
    return FileType::regular_file;
  case FdKind::Directory:
    return FileType::directory;
  case FdKind::CharDevice:
    return FileType::character_device;
  case FdKind::BlockDevice:
    return FileType::block_device;
  case FdKind::TcpListener:
  case FdKind::TcpStream:
  case FdKind::TcpSocket:
    return FileType::socket_stream;
  case FdKind::UdpSocket:
    return FileType::socket_dgram;
  case FdKind::Fifo:
  case FdKind::Unknown:
    return FileType::unknown;
  }
  return FileType::unknown;
}

FileType file_type_of(const struct stat& st) {
  if (S_ISREG(st.st_mode)) return FileType::regular_file;
  if (S_ISDIR(st.st_mode)) return FileType::directory;
  if (S_ISCHR(st.st_mode)) return FileType::character_device;
  if (S_ISBLK(st.st_mode)) return FileType::block_device;
  if (S_ISLNK(st.st_mode)) return FileType::symbolic_link;
  if (S_ISSOCK(st.st_mode)) return FileType::socket_stream;
  return FileType::unknown;
}

FdKind kind_of(int host_fd, const struct stat& st) {
  if (S_ISREG(st.st_mode)) return FdKind::File;
  if (S_ISDIR(st.st_mode)) return FdKind::Directory;
  if (S_ISCHR(st.st_mode)) return FdKind::CharDevice;
  if (S_ISBLK(st.st_mode)) return FdKind::BlockDevice;
  if (S_ISFIFO(st.st_mode)) return FdKind::Fifo;
  if (S_ISSOCK(st.st_mode)) {
    int value = 0;
    socklen_t len = sizeof value;
    if (::getsockopt(host_fd, SOL_SOCKET, SO_TYPE, &value, &len) == 0 && value == SOCK_DGRAM)
      return FdKind::UdpSocket;
    len = sizeof value;
    if (::getsockopt(host_fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &len) == 0 && value)
      return FdKind::TcpListener;
    return FdKind::TcpStream;
  }
  return FdKind::Unknown;
}

FileIdentity FileIdentity::of(const struct stat& st) {
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
          static_cast<uint64_t>(st.st_size),
          int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

std::string SocketAddress::to_string() const {
  char text[INET6_ADDRSTRLEN] = "?";
  if (family == 4) {
    ::inet_ntop(AF_INET, ip.data(), text, sizeof text);
    return fmt::format("{}:{}", text, port);
  }
  if (family == 6) {
    ::inet_ntop(AF_INET6, ip.data(), text, sizeof text);
    return fmt::format("[{}]:{}", text, port);
  }
  return "?";
}

bool FdEntry::is_stream() const {
  return is_socket() || kind == FdKind::CharDevice || kind == FdKind::Fifo ||
         kind == FdKind::Unknown;
}

bool FdEntry::is_socket() const {
  switch (kind) {
  case FdKind::TcpListener:
  case FdKind::TcpStream:
  case FdKind::TcpSocket:
  case FdKind::UdpSocket:
    return true;
  default:
    return false;
  }
}

std::optional<uint64_t> FdEntry::position() const {
  if (kind != FdKind::File) return std::nullopt;
  off_t pos = ::lseek(host.get(), 0, SEEK_CUR);
  if (pos < 0) return std::nullopt;
  return uint64_t(pos);
}

void FdEntry::refresh_identity() {
  struct stat st;
  if (::fstat(host.get(), &st) == 0) identity = FileIdentity::of(st);
}

FdEntry* FdTable::find(uint32_t fd) {
  return fd < slots_.size() ? slots_[fd].get() : nullptr;
}

Errno FdTable::get(uint32_t fd, Rights needed, FdEntry*& out) {
  FdEntry* entry = find(fd);
  if (!entry) return Errno::badf;
  if ((entry->rights_base & needed) != needed) return Errno::notcapable;
  out = entry;
  return Errno::success;
}

Errno FdTable::insert(FdEntry entry, uint32_t& fd_out) {
  uint32_t fd = first_free_hint_;
  while (fd < slots_.size() && slots_[fd]) ++fd;
  if (fd >= kMaxFds) return Errno::mfile;
  insert_at(fd, std::move(entry));
  fd_out = fd;
  return Errno::success;
}

void FdTable::insert_at(uint32_t fd, FdEntry entry) {
  if (fd >= slots_.size()) slots_.resize(fd + 1);
  slots_[fd] = std::make_shared<FdEntry>(std::move(entry));
  if (fd == first_free_hint_) ++first_free_hint_;
}

Errno FdTable::close(uint32_t fd) {
  if (!find(fd)) return Errno::badf;
  slots_[fd].reset(); // closes the host fd, unless a waiting call shares the entry
  if (fd < first_free_hint_) first_free_hint_ = fd;
  return Errno::success;
}

Errno FdTable::renumber(uint32_t from, uint32_t to) {
  if (!find(from) || !find(to)) return Errno::badf;
  if (from == to) return Errno::success;
  slots_[to] = std::move(slots_[from]);
  if (from < first_free_hint_) first_free_hint_ = from;
  return Errno::success;
}

std::vector<uint32_t> FdTable::open_fds() const {
  std::vector<uint32_t> fds;
  for (uint32_t fd = 0; fd < slots_.size(); ++fd)
    if (slots_[fd]) fds.push_back(fd);
  return fds;
}

std::shared_ptr<FdEntry> FdTable::share(const FdEntry& e) const {
  for (const std::shared_ptr<FdEntry>& slot : slots_)
    if (slot.get() == &e) return slot;
  return nullptr;
}

} // namespace tern::wasi
