// Files in the WASI snapshot section: bundling the contents of files the
// program writes (zstd), writing them back on restore, and reopening a file
// by its guest path beneath its preopen with the identity check.
#pragma once

#include "wasi/context.h"
#include "wasi/state_records.h"

#include <fcntl.h>
#include <string>

namespace tern::wasi::state {

// Where a preopen's files are on this host, for resolving and for messages.
struct RestoreRoot {
  int fd = -1;            // the preopen's directory
  std::string host_path;  // as mapped for this restore
  std::string guest_path; // the guest's name for it
  std::string host_path_of(const std::string& path) const;
};

// What a restore adds to the flags of every file it opens again: it must
// not wait (opening a FIFO waits for its other end, and a file may have
// become one since the checkpoint) nor gain a controlling terminal. Once the
// kind is checked, make_blocking() undoes the first where the fd should
// block.
inline constexpr int kNoWait = O_NONBLOCK | O_NOCTTY;
void make_blocking(int fd);

// The contents of the regular file open as `entry` (guest fd `fd`, called
// `name` in messages), read through a new read-only open of the same file.
BundledFile bundle_file(const FdEntry& entry, uint32_t fd, const std::string& name);

// Writes `file` back beneath `root`, atomically (temporary file + rename),
// with its saved permission bits and mtime, so the identity check that
// follows sees the file as it was at the checkpoint.
void write_back(const BundledFile& file, const RestoreRoot& root, PathResolver& resolver);

// Reopens `saved` (origin Path) beneath `root`: same flags except that
// nothing is created or truncated, at the same offset, after checking that
// a regular file's size and mtime are as at the checkpoint (unless
// `allow_changed`). Throws tern::Error naming the fd, the guest path and
// the host path tried.
FdEntry reopen_path(const SavedFd& saved, const RestoreRoot& root, PathResolver& resolver,
                    bool allow_changed);

} // namespace tern::wasi::state
