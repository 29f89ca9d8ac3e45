#include "wasi/sandbox.h"

#include "wasi/posix_errno.h"

#include <cerrno>
#include <climits>
#include <deque>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

#ifdef SYS_openat2
#include <linux/openat2.h>
#endif

namespace tern::wasi {
namespace {

struct LastComponent {
  std::string dir; // everything before the name, with its trailing '/' ("" for none)
  std::string name;
  bool trailing_slash = false;
};

LastComponent split_last(std::string_view path) {
  size_t end = path.size();
  bool trailing = false;
  while (end > 0 && path[end - 1] == '/') {
    --end;
    trailing = true;
  }
  std::string_view trimmed = path.substr(0, end);
  size_t slash = trimmed.rfind('/');
  if (slash == std::string_view::npos) return {"", std::string(trimmed), trailing};
  return {std::string(trimmed.substr(0, slash + 1)), std::string(trimmed.substr(slash + 1)),
          trailing};
}

std::vector<std::string> components(std::string_view path) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > pos) parts.emplace_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  return parts;
}

// readlinkat into a string; Errno::inval when `name` is not a symlink.
Errno read_link(int dir, const char* name, std::string& out) {
  std::vector<char> buf(256);
  for (;;) {
    ssize_t n = ::readlinkat(dir, name, buf.data(), buf.size());
    if (n < 0) return last_errno();
    if (size_t(n) < buf.size()) {
      out.assign(buf.data(), size_t(n));
      return Errno::success;
    }
    buf.resize(buf.size() * 2);
  }
}

bool is_absolute(std::string_view path) {
  return !path.empty() && path[0] == '/';
}

// A path the kernel would refuse whole (ENAMETOOLONG): openat2 does, and
// the walk, which hands the kernel one component at a time, must too.
bool too_long(std::string_view path) {
  return path.size() >= PATH_MAX;
}

#ifdef SYS_openat2
long raw_openat2(int dir, const char* path, int flags, mode_t mode) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  // O_TMPFILE includes O_DIRECTORY's bit: test it whole.
  if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) how.mode = mode;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  return ::syscall(SYS_openat2, dir, path, &how, sizeof how);
}
#endif

bool kernel_has_openat2() {
#ifdef SYS_openat2
  long fd = raw_openat2(AT_FDCWD, ".", O_PATH | O_DIRECTORY, 0);
  if (fd < 0) return false;
  ::close(static_cast<int>(fd));
  return true;
#else
  return false;
#endif
}

} // namespace

PathResolver::PathResolver(ResolveMode mode)
    : use_openat2_(mode != ResolveMode::Walk && kernel_has_openat2()) {}

Errno PathResolver::openat2_beneath(int root, const std::string& path, int flags, mode_t mode,
                                    util::UniqueFd& out) {
#ifdef SYS_openat2
  // The kernel answers EAGAIN when a rename raced with a `..` lookup.
  for (int attempt = 0; attempt < 16; ++attempt) {
    long fd = raw_openat2(root, path.c_str(), flags, mode);
    if (fd >= 0) {
      out.reset(static_cast<int>(fd));
      return Errno::success;
    }
    if (errno == EAGAIN) continue;
    if (errno == EXDEV) return Errno::notcapable; // the path tried to leave root
    if (errno == ENOSYS) use_openat2_ = false;    // seccomp may hide it
    return last_errno();
  }
  return Errno::again;
#else
  (void)root, (void)path, (void)flags, (void)mode, (void)out;
  use_openat2_ = false;
  return Errno::nosys;
#endif
}

Errno PathResolver::walk_dir(int root, std::string_view path, util::UniqueFd& out, int& links) {
  std::vector<util::UniqueFd> stack; // stack[i + 1] was opened inside stack[i] (stack[-1] = root)
  std::deque<std::string> pending;
  for (auto& c : components(path)) pending.push_back(std::move(c));
  while (!pending.empty()) {
    std::string name = std::move(pending.front());
    pending.pop_front();
    if (name == ".") continue;
    if (name == "..") {
      if (stack.empty()) return Errno::notcapable;
      stack.pop_back();
      continue;
    }
    int cur = stack.empty() ? root : stack.back().get();
    util::UniqueFd fd(::openat(cur, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return last_errno();
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return last_errno();
    if (S_ISLNK(st.st_mode)) {
      if (++links > kMaxSymlinks) return Errno::loop;
      std::string target;
      // Read the link we opened, not whatever the name points to now.
      WASI_TRY(read_link(fd.get(), "", target));
      if (target.empty()) return Errno::noent;
      if (is_absolute(target)) return Errno::notcapable;
      auto parts = components(target);
      pending.insert(pending.begin(), parts.begin(), parts.end());
      continue;
    }
    if (!S_ISDIR(st.st_mode)) return Errno::notdir;
    stack.push_back(std::move(fd));
  }
  if (!stack.empty()) {
    out = std::move(stack.back());
    return Errno::success;
  }
  out.reset(::fcntl(root, F_DUPFD_CLOEXEC, 0));
  return out ? Errno::success : last_errno();
}

Errno PathResolver::open_dir(int root, std::string_view path, util::UniqueFd& out, int& links) {
  if (path.empty()) return Errno::success; // the root itself; `out` stays empty
  if (use_openat2_) {
    Errno e = openat2_beneath(root, std::string(path), O_PATH | O_DIRECTORY, 0, out);
    if (e != Errno::nosys) return e;
  }
  return walk_dir(root, path, out, links);
}

Errno PathResolver::parent(int root, const std::string& path, bool follow_final, ParentDir& out) {
  if (path.empty()) return Errno::noent;
  if (is_absolute(path)) return Errno::notcapable;
  if (too_long(path)) return Errno::nametoolong;
  std::string current = path;
  int links = 0;
  for (;;) {
    LastComponent last = split_last(current);
    util::UniqueFd dir;
    if (last.name == "." || last.name == "..") {
      // The path names a directory by itself: act on "." inside it.
      WASI_TRY(open_dir(root, current, dir, links));
      last.name = ".";
    } else if (Errno e = open_dir(root, last.dir, dir, links); e != Errno::success) {
      return e;
    }
    out.owned = std::move(dir);
    out.fd = out.owned ? out.owned.get() : root;
    out.name = last.name;
    out.trailing_slash = last.trailing_slash;
    if (!follow_final || out.name == ".") return Errno::success;

    std::string target;
    Errno e = read_link(out.fd, out.name.c_str(), target);
    if (e == Errno::inval || e == Errno::noent) return Errno::success; // not a symlink
    if (e != Errno::success) return e;
    if (++links > kMaxSymlinks) return Errno::loop;
    if (target.empty()) return Errno::noent;
    if (is_absolute(target)) return Errno::notcapable;
    current = last.dir + target + (last.trailing_slash ? "/" : "");
  }
}

Errno PathResolver::open(int root, const std::string& path, int flags, mode_t mode,
                         util::UniqueFd& out) {
  if (path.empty()) return Errno::noent;
  if (is_absolute(path)) return Errno::notcapable;
  if (too_long(path)) return Errno::nametoolong;
  if (use_openat2_) {
    Errno e = openat2_beneath(root, path, flags, mode, out);
    if (e != Errno::nosys) return e;
  }
  ParentDir parent_dir;
  WASI_TRY(parent(root, path, (flags & O_NOFOLLOW) == 0, parent_dir));
  // O_NOFOLLOW: a symlink swapped in after parent() is refused, not followed.
  int final_flags = flags | O_NOFOLLOW | O_CLOEXEC;
  if (parent_dir.trailing_slash) final_flags |= O_DIRECTORY;
  int fd = ::openat(parent_dir.fd, parent_dir.name.c_str(), final_flags, mode);
  if (fd < 0) return last_errno();
  out.reset(fd);
  return Errno::success;
}

bool lexically_beneath(std::string_view link_dir, std::string_view target) {
  if (is_absolute(target) || is_absolute(link_dir)) return false;
  int depth = 0;
  for (std::string_view part : {link_dir, target}) {
    for (const auto& c : components(part)) {
      if (c == ".") continue;
      if (c == "..") {
        if (--depth < 0) return false;
      } else {
        ++depth;
      }
    }
  }
  return true;
}

} // namespace tern::wasi
