#include "util/file.h"

#include "tern/error.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tern::util {
namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw Error(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
}

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::string parent_dir(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

} // namespace

std::vector<uint8_t> read_file(const std::string& path) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) fail("cannot open", path);
  struct stat st;
  if (::fstat(f.fd, &st) != 0) fail("cannot stat", path);
  if (S_ISDIR(st.st_mode)) throw Error(fmt::format("cannot read {}: is a directory", path));
  std::vector<uint8_t> out;
  out.reserve(static_cast<size_t>(st.st_size));
  uint8_t buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(f.fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot read", path);
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  return out;
}

void create_directories(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(path, error);
  if (error) throw Error(fmt::format("cannot create directory {}: {}", path, error.message()));
}

std::string atomic_temp_path(const std::string& path) {
  return fmt::format("{}.tmp.{}", path, ::getpid());
}

void write_file_atomic(const std::string& path, std::span<const uint8_t> bytes) {
  write_file_atomic(path, [&](ByteSink& sink) { sink.write(bytes); });
}

void write_file_atomic(const std::string& path, const std::function<void(ByteSink&)>& write) {
  const std::string tmp = atomic_temp_path(path);
  {
    Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    // Errors name the file asked for; the temporary one is an implementation detail.
    if (f.fd < 0) fail("cannot create", path);
    try {
      FdSink sink(f.fd, path);
      write(sink);
      sink.flush();
      if (::fsync(f.fd) != 0) fail("cannot fsync", path);
    } catch (...) {
      ::unlink(tmp.c_str());
      throw;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int saved = errno;
    ::unlink(tmp.c_str());
    errno = saved;
    fail("cannot rename into", path);
  }
  Fd dir{::open(parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (dir.fd >= 0) ::fsync(dir.fd);
}

} // namespace tern::util
