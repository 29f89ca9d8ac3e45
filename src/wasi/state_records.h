// The records of the WASI snapshot section (docs/snapshot-format.md §10.1)
// as plain data, and their byte encoding. state.cpp fills them from a live
// context and builds a context from them; the describe functions render
// them. Nothing here touches the host.
#pragma once

#include "wasi/context.h"
#include "wasi/fd_table.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace tern::wasi::state {

// How an fd came to be, which decides how a restore re-creates it.
enum class Origin : uint8_t {
  Stdio = 0,   // one of tern's standard streams, inherited or redirected
  Preopen = 1, // a preopened directory itself
  Path = 2,    // opened by path (path_open) beneath a preopen
  Socket = 3,  // a socket: listening (re-bound) or connected (comes back reset)
};

struct SavedFd {
  uint32_t fd = 0;
  FdKind kind = FdKind::Unknown;
  Origin origin = Origin::Stdio;
  uint16_t fdflags = 0;
  Rights rights_base = 0;
  Rights rights_inheriting = 0;
  // The fd's name: Path: relative to the preopen's root; Stdio: "<stdout>"
  // or the redirection's host path; Socket: the --listen spec, or empty.
  std::string path;

  // Stdio
  uint8_t stream = 0;      // 0 stdin, 1 stdout, 2 stderr
  bool redirected = false; // to the host file `path` (absolute)

  // Preopen, Path
  uint32_t preopen = 0;

  // Path
  uint16_t oflags = 0;
  uint32_t lookupflags = 0;
  uint64_t position = 0;             // regular files (Path, Stdio); 0 otherwise
  uint64_t size = 0;                 // regular files: at the checkpoint
  int64_t mtime_ns = 0;              // regular files: at the checkpoint
  std::optional<DirListing> listing; // a directory being read (fd_readdir cookies)

  // Socket
  SocketState socket;
};

// A regular file the program had open for writing, carried in the snapshot
// (SaveOptions::bundle_files) and written back before the fds are reopened.
struct BundledFile {
  uint32_t preopen = 0;
  std::string path;  // relative to the preopen's root
  uint32_t mode = 0; // permission bits
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::vector<uint8_t> zstd; // the contents, zstd frames
};

struct SavedState {
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::vector<Preopen> preopens;
  // The guest's clock readings at the checkpoint.
  uint64_t monotonic_ns = 0;
  uint64_t process_cputime_ns = 0;
  uint64_t thread_cputime_ns = 0;
  std::optional<PendingPoll> pending_poll;
  std::vector<SavedFd> fds; // increasing fd numbers
  std::vector<BundledFile> files;
};

std::vector<uint8_t> encode(const SavedState& state);
// Verifies every field (docs/snapshot-format.md §10.1); throws tern::Error
// naming the section and the reason.
SavedState decode(std::span<const uint8_t> payload);

// The kind codes of the format (not FdKind's numbering, which may change).
uint8_t kind_code(FdKind kind);
std::optional<FdKind> kind_from_code(uint8_t code);
std::string_view to_string(Origin origin);

// The guest's name for `path` beneath the preopen it calls `root`:
// "/data" and "out.txt" make "/data/out.txt".
std::string guest_name_of(const std::string& root, const std::string& path);

// A modification time for people: "2024-05-01T12:00:00.123456789Z".
std::string mtime_text(int64_t ns);

} // namespace tern::wasi::state
