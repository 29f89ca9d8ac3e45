#include "util/file.h"

#include "tern/error.h"
#include "util/unique_fd.h"

#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <fmt/format.h>
#include <random>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tern::util {
namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw Error(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
}

std::string parent_dir(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_name(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Temporary files are ".TARGET.tern-tmp.PID.RANDOM" next to TARGET: hidden,
// recognisable as tern's (atomic_temp_owner) and impossible to guess, so a
// name planted in advance (a symlink to a file elsewhere) is never the one
// used. TARGET is shortened so that the name stays within NAME_MAX.
constexpr std::string_view kTempMarker = ".tern-tmp.";
constexpr size_t kMaxTargetInTempName = 128;

std::string temp_prefix(std::string_view target) {
  return fmt::format(".{}{}", target.substr(0, kMaxTargetInTempName), kTempMarker);
}

std::string random_hex() {
  uint64_t value = 0;
  if (::getrandom(&value, sizeof value, GRND_NONBLOCK) != sizeof value) {
    std::random_device device; // getrandom is missing or not seeded yet
    value = (uint64_t(device()) << 32) | device();
  }
  return fmt::format("{:016x}", value);
}

std::string temp_name(std::string_view target) {
  return fmt::format("{}{}.{}", temp_prefix(target), ::getpid(), random_hex());
}

// linkat() of an O_TMPFILE file needs its /proc/self/fd link (AT_EMPTY_PATH
// would need CAP_DAC_READ_SEARCH).
bool can_link_anonymous_files() {
  static const bool available = ::access("/proc/self/fd", X_OK) == 0;
  return available;
}

// Removes the temporary files of earlier writes of `target` whose writer
// is gone (killed in the moment between naming its file and renaming it,
// or a writer without O_TMPFILE killed while writing). Only regular files:
// a name planted by someone else is left alone.
void remove_stale_temporaries(int dir, std::string_view target) {
  UniqueFd listing(::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!listing) return;
  DIR* stream = ::fdopendir(listing.get());
  if (!stream) return;
  listing.release(); // the DIR owns it now
  std::vector<std::string> stale;
  while (const dirent* d = ::readdir(stream)) {
    const std::optional<pid_t> owner = atomic_temp_owner(d->d_name, target);
    if (!owner || *owner == ::getpid()) continue;
    if (::kill(*owner, 0) == 0 || errno != ESRCH) continue; // its writer may still be at work
    struct stat st;
    if (::fstatat(::dirfd(stream), d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
      stale.emplace_back(d->d_name);
  }
  ::closedir(stream);
  for (const std::string& name : stale) ::unlinkat(dir, name.c_str(), 0);
}

// The file being written: anonymous (O_TMPFILE) until publish() gives it
// its temporary name and renames it over the target, or named from the
// start where the file system has no O_TMPFILE. Destroyed unpublished, it
// leaves nothing behind.
class NewFile {
public:
  NewFile(int dir, const std::string& target, const std::string& display, mode_t mode)
      : dir_(dir), target_(target), display_(display) {
    if (can_link_anonymous_files()) {
      fd_.reset(::openat(dir, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, mode));
      if (fd_) return;
    }
    for (int attempt = 0; attempt < 16 && !fd_; ++attempt) {
      name_ = temp_name(target);
      fd_.reset(
          ::openat(dir, name_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
      if (!fd_ && errno != EEXIST) break;
    }
    if (!fd_) {
      name_.clear();
      fail("cannot create", display);
    }
  }
  NewFile(const NewFile&) = delete;
  NewFile& operator=(const NewFile&) = delete;
  ~NewFile() {
    if (!name_.empty() && !published_) ::unlinkat(dir_, name_.c_str(), 0);
  }

  int fd() const { return fd_.get(); }

  void publish() {
    if (name_.empty()) link_anonymous();
    if (::renameat(dir_, name_.c_str(), dir_, target_.c_str()) != 0)
      fail("cannot rename into", display_);
    published_ = true;
    // The name was ours from linkat to rename; if someone swapped another
    // file in at that moment, the target is not what was written.
    struct stat ours, now;
    if (::fstat(fd_.get(), &ours) != 0 ||
        ::fstatat(dir_, target_.c_str(), &now, AT_SYMLINK_NOFOLLOW) != 0 ||
        ours.st_ino != now.st_ino || ours.st_dev != now.st_dev)
      throw Error(fmt::format("cannot write {}: it was replaced while it was written", display_));
  }

private:
  void link_anonymous() {
    const std::string self = fmt::format("/proc/self/fd/{}", fd_.get());
    for (int attempt = 0; attempt < 16; ++attempt) {
      name_ = temp_name(target_);
      if (::linkat(AT_FDCWD, self.c_str(), dir_, name_.c_str(), AT_SYMLINK_FOLLOW) == 0) return;
      if (errno != EEXIST) break;
    }
    name_.clear();
    fail("cannot create", display_);
  }

  int dir_;
  std::string target_, display_;
  UniqueFd fd_;
  std::string name_; // empty while the file has no name
  bool published_ = false;
};

void set_mode_and_mtime(int fd, const AtomicWriteOptions& o, const std::string& display) {
  if (o.exact_mode && ::fchmod(fd, *o.exact_mode & 0777) != 0)
    fail("cannot set the mode of", display);
  if (o.mtime_ns) {
    const timespec times[2] = {{0, UTIME_OMIT},
                               {*o.mtime_ns / 1000000000, *o.mtime_ns % 1000000000}};
    if (::futimens(fd, times) != 0) fail("cannot set the mtime of", display);
  }
}

} // namespace

std::vector<uint8_t> read_file(const std::string& path) {
  UniqueFd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!f) fail("cannot open", path);
  struct stat st;
  if (::fstat(f.get(), &st) != 0) fail("cannot stat", path);
  if (S_ISDIR(st.st_mode)) throw Error(fmt::format("cannot read {}: is a directory", path));
  std::vector<uint8_t> out;
  out.reserve(static_cast<size_t>(st.st_size));
  uint8_t buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(f.get(), buf, sizeof buf);
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

std::optional<pid_t> atomic_temp_owner(std::string_view entry, std::string_view target) {
  const std::string prefix = temp_prefix(target);
  if (!entry.starts_with(prefix)) return std::nullopt;
  entry.remove_prefix(prefix.size());
  const size_t dot = entry.find('.');
  if (dot == std::string_view::npos || entry.size() - dot - 1 != 16) return std::nullopt;
  pid_t pid = 0;
  auto [end, ec] = std::from_chars(entry.data(), entry.data() + dot, pid);
  if (ec != std::errc() || end != entry.data() + dot || pid <= 0) return std::nullopt;
  return pid;
}

void write_file_atomic(const std::string& path, std::span<const uint8_t> bytes,
                       const AtomicWriteOptions& options) {
  write_file_atomic(
      path, [&](ByteSink& sink) { sink.write(bytes); }, options);
}

void write_file_atomic(const std::string& path, const std::function<void(ByteSink&)>& write,
                       const AtomicWriteOptions& options) {
  const std::string name = base_name(path);
  if (name.empty() || name == "." || name == "..") {
    errno = EISDIR;
    fail("cannot create", path);
  }
  UniqueFd dir(::open(parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) fail("cannot create", path);
  write_file_atomic_at(dir.get(), name, path, write, options);
}

void write_file_atomic_at(int dir, const std::string& name, const std::string& display,
                          const std::function<void(ByteSink&)>& write,
                          const AtomicWriteOptions& options) {
  remove_stale_temporaries(dir, name);
  NewFile file(dir, name, display, options.mode);
  FdSink sink(file.fd(), display);
  write(sink);
  sink.flush();
  set_mode_and_mtime(file.fd(), options, display);
  if (::fsync(file.fd()) != 0) fail("cannot fsync", display);
  file.publish();
  ::fsync(dir);
}

void link_file_atomic(const std::string& target, const std::string& path) {
  const std::string name = base_name(path);
  UniqueFd dir(::open(parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) fail("cannot create", path);
  remove_stale_temporaries(dir.get(), name);
  std::string temp;
  for (int attempt = 0; attempt < 16; ++attempt) {
    temp = temp_name(name);
    if (::linkat(AT_FDCWD, target.c_str(), dir.get(), temp.c_str(), 0) == 0) break;
    if (errno == EEXIST) continue;
    if (errno != EPERM && errno != EXDEV && errno != EMLINK && errno != EOPNOTSUPP)
      fail("cannot link " + target + " as", path);
    // No hard links here: a copy, written the one safe way.
    UniqueFd from(::open(target.c_str(), O_RDONLY | O_CLOEXEC));
    if (!from) fail("cannot open", target);
    write_file_atomic_at(dir.get(), name, path, [&](ByteSink& sink) {
      FdSource source(from.get(), target);
      uint8_t buf[1 << 16];
      while (size_t n = source.read_some(buf)) sink.write({buf, n});
    });
    return;
  }
  if (::renameat(dir.get(), temp.c_str(), dir.get(), name.c_str()) != 0) {
    const int saved = errno;
    ::unlinkat(dir.get(), temp.c_str(), 0);
    errno = saved;
    fail("cannot rename into", path);
  }
  ::fsync(dir.get());
}

} // namespace tern::util
