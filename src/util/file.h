// Whole-file reads and atomic whole-file writes.
#pragma once

#include "util/byte_stream.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <sys/types.h>
#include <vector>

namespace tern::util {

// Throws tern::Error naming the file and the OS reason.
std::vector<uint8_t> read_file(const std::string& path);

struct AtomicWriteOptions {
  // Permission bits the new file is created with (the umask applies)...
  mode_t mode = 0600;
  // ...or exactly these (a file written back as it was), never more than
  // 0777: no setuid, setgid or sticky bit is ever set this way.
  std::optional<mode_t> exact_mode;
  // The modification time the file gets before it appears (ns since 1970).
  std::optional<int64_t> mtime_ns;
};

// The one way tern writes a file that others read (snapshots, bundled
// files, compiled code, stats): the contents go to a new file that no
// name can reach while it is written (O_TMPFILE, else a name with a random
// part created with O_EXCL | O_NOFOLLOW, so that nothing planted there is
// followed), it is fsynced, given its mode and mtime, then renamed over the
// target and the directory is fsynced: readers see the old or the new
// file, never a torn one, and a writer killed at any moment leaves no file
// behind (at most one of its randomly named ones, which the next write of
// the same target removes once its writer is gone). `write` writes the
// contents to the sink (buffered); if it throws, the new file is removed,
// the target is untouched and the exception propagates. Errors name `path`
// (not the temporary file).
void write_file_atomic(const std::string& path, std::span<const uint8_t> bytes,
                       const AtomicWriteOptions& options = {});
void write_file_atomic(const std::string& path, const std::function<void(ByteSink&)>& write,
                       const AtomicWriteOptions& options = {});

// The same for the file `name` (one path component) in the open directory
// `dir`: nothing but `dir` is resolved, so a caller that resolved `dir`
// safely (beneath a sandbox root) writes nowhere else. `display` names the
// file in errors.
void write_file_atomic_at(int dir, const std::string& name, const std::string& display,
                          const std::function<void(ByteSink&)>& write,
                          const AtomicWriteOptions& options = {});

// Makes `path` a second name of the existing file `target` (a hard link,
// or a copy where the file system has no hard links), replacing what was
// at `path` atomically, as write_file_atomic does.
void link_file_atomic(const std::string& target, const std::string& path);

// mkdir -p: creates path and its missing parents; an Error naming path if
// that fails.
void create_directories(const std::string& path);

// Whether `entry`, a name in a directory, is one of the temporary files
// write_file_atomic_at(dir, target, ...) creates, and if so the pid of the
// process that created it.
std::optional<pid_t> atomic_temp_owner(std::string_view entry, std::string_view target);

} // namespace tern::util
