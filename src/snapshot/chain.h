// Chains of incremental snapshots. An incremental snapshot (format version
// 2) carries only the memory pages written since its parent, which it names
// by file name and SHA-256; the parent may be incremental too, down to a
// self-contained snapshot. Reading the head of a chain reads every link:
// the head's state (globals, tables, threads, host state) and the memory
// composed from all of them.
//
// Where parents are looked for: beside the snapshot that names them (the
// directory it was opened from), or in ChainOptions::parents_dir when the
// user gives one. A parent's name is a plain file name (no directory part),
// opened without following a symbolic link, and must be a regular file of
// the recorded size and SHA-256: a snapshot never makes tern open a path
// outside those directories, nor use a parent that changed.
//
// Order of work: first every link's identity (header, MODL, PRNT) from the
// head down, so that a missing, resized or foreign parent is one error
// before anything is decoded; then the links from the head down, each page
// decoded from the newest link that carries it (ReadOptions::filled), each
// parent's bytes hashed and compared with its child's record.
#pragma once

#include "snapshot/format.h"

#include <string>
#include <vector>

namespace tern::snapshot {

struct ChainOptions {
  std::string parents_dir; // where parents are looked for; "": beside their child
};

// One snapshot of a chain, head first.
struct ChainLink {
  std::string path;                  // where it was read from
  std::optional<ParentRef> parent;   // unset: the self-contained root
  uint64_t bytes = 0;                // its length
  util::Sha256Digest sha256{};       // of its bytes
  std::vector<MemoryImage> memories; // headers and page counts (no contents)
};

// The longest chain read (a guard against a cycle of hard links).
inline constexpr size_t kMaxChainLength = 10000;

// Reads the snapshot at `path` and, when it is incremental, its parents:
// the head's state with each memory composed from the chain (decoded where
// options.memory_target says, as read_snapshot does). With keep_memory =
// false every link is verified but no memory is composed. `links`, when
// given, receives the chain, head first. Errors name the snapshot at fault
// (a parent by the name its child gives and the path tried).
Snapshot read_snapshot_chain(const std::string& path, const ReadOptions& options,
                             const ChainOptions& chain, std::vector<ChainLink>* links = nullptr);

} // namespace tern::snapshot
