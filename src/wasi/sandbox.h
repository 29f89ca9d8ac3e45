// Path resolution that never leaves a preopened directory. Every path a
// guest passes is resolved beneath a directory fd: absolute paths, `..`
// above the root, and symlinks (absolute, or relative ones climbing out) are
// refused with Errno::notcapable; symlink loops end in Errno::loop.
//
// Two implementations with the same answers: openat2(RESOLVE_BENEATH) where
// the kernel has it (atomic against concurrent renames: the kernel does the
// walk), and otherwise a component walk that opens one component at a time
// with O_NOFOLLOW relative to the previous directory fd and interprets
// symlinks and `..` itself, so a directory swapped for a symlink mid-walk is
// seen as a symlink and resolved under the same rules.
#pragma once

#include "util/unique_fd.h"
#include "wasi/abi.h"

#include <string>
#include <string_view>
#include <sys/types.h>

namespace tern::wasi {

enum class ResolveMode : uint8_t {
  Auto,    // openat2 if the kernel has it, else the walk
  Openat2, // openat2 only (tests; falls back to the walk if unavailable)
  Walk,    // the component walk only (tests, old kernels)
};

// The directory holding a path's final component, and that component: for
// calls that act on a name (mkdir, unlink, rename, link, symlink, readlink,
// stat). The name never contains '/'; "." stands for the directory itself.
struct ParentDir {
  util::UniqueFd owned; // set when the directory is not the root itself
  int fd = -1;          // owned.get() or the root
  std::string name;
  bool trailing_slash = false; // the path ended in '/': the name must be a directory
};

class PathResolver {
public:
  explicit PathResolver(ResolveMode mode = ResolveMode::Auto);

  // True when openat2 is used (the kernel supports it and the mode allows).
  bool uses_openat2() const { return use_openat2_; }

  // open(2) of `path` beneath `root`. O_NOFOLLOW in `flags` applies to the
  // final component only, as in open(2).
  Errno open(int root, const std::string& path, int flags, mode_t mode, util::UniqueFd& out);

  // The parent directory and final name of `path` beneath `root`. With
  // follow_final, a final symlink is followed (beneath root) until the name
  // is not a symlink; callers then act on the name with *_NOFOLLOW, so a
  // symlink swapped in afterwards is acted on, never followed.
  Errno parent(int root, const std::string& path, bool follow_final, ParentDir& out);

  static constexpr int kMaxSymlinks = 40; // as Linux

private:
  Errno open_dir(int root, std::string_view path, util::UniqueFd& out, int& links);
  Errno openat2_beneath(int root, const std::string& path, int flags, mode_t mode,
                        util::UniqueFd& out);
  Errno walk_dir(int root, std::string_view path, util::UniqueFd& out, int& links);

  bool use_openat2_ = false;
};

// Whether a symlink with contents `target`, created in the directory
// `link_dir` (a path relative to the preopen root), names something beneath
// the root when read lexically. path_symlink refuses links that do not:
// resolution through them is refused anyway, but no such link should exist.
bool lexically_beneath(std::string_view link_dir, std::string_view target);

} // namespace tern::wasi
