// A snapshot in memory: the wasm view of a stopped program (docs/design.md §1).
// capture.h fills it from an instance and puts it back; format.h writes and
// reads it as bytes (docs/snapshot-format.md). Nothing here is a native
// address or a host-endian word.
#pragma once

#include "runtime/wait_queue.h"
#include "runtime/wasm_view.h"
#include "util/sha256.h"
#include "util/unique_fd.h"
#include "wasm/types.h"

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tern::snapshot {

// Section tags: four ASCII characters (docs/snapshot-format.md).
using Tag = std::array<char, 4>;

// By memory index, where set: the pages a snapshot written as a delta
// carries, one flag per page (WriteOptions::carried_pages).
using CarriedPages = std::vector<std::optional<std::vector<bool>>>;
constexpr Tag make_tag(const char (&s)[5]) {
  return {s[0], s[1], s[2], s[3]};
}
inline std::string_view to_string_view(const Tag& t) {
  return {t.data(), t.size()};
}
// The tag spelled by `s`, which must have four characters.
inline std::optional<Tag> tag_from(std::string_view s) {
  if (s.size() != 4) return std::nullopt;
  return Tag{s[0], s[1], s[2], s[3]};
}

// Where the snapshot was taken. Informative only: restore never depends on it.
struct HostInfo {
  std::string tern_version;
  std::string arch; // "x86_64", "aarch64", "s390x", ...
  bool big_endian = false;
  std::string engine; // execution mode: "interp", "aot", ...
  uint64_t unix_time_ns = 0;
};

// Bytes a snapshot refers to without copying: borrowed from a live instance
// (valid while the program stays stopped, or in a forked writer) or owned
// through `owner` (decoded snapshots).
struct Bytes {
  std::span<const uint8_t> data;
  std::shared_ptr<const void> owner;
};

struct ModuleIdentity {
  // SHA-256 of the module binary. Always set in a snapshot that was read;
  // a capture leaves it unset (hashing is too slow for the pause) and the
  // writer computes it from `binary`.
  std::optional<util::Sha256Digest> sha256;
  // The binary: always set by a capture (for hashing); in a read snapshot
  // only when the snapshot carries it.
  Bytes binary;
  bool embed_binary = false; // the writer includes `binary` in the snapshot
};

struct MemoryImage {
  uint64_t pages = 0; // of 64 KiB
  std::optional<uint64_t> max_pages;
  bool shared = false;
  Bytes contents; // pages * 64 KiB; empty when read with keep_memory = false
  // Whether `contents` is a private anonymous mapping, whose pages the page
  // map shows untouched read as zero (pages.h, find_nonzero_pages). False
  // for a mirrored memory (a shared mapping) and for decoded snapshots.
  bool private_mapping = false;
  // Filled by the reader: pages the stream carries (in a self-contained
  // snapshot, the non-zero ones), and the bytes their chunks took
  // (compressed).
  uint64_t nonzero_pages = 0;
  uint64_t stored_bytes = 0;
};

struct GlobalImage {
  bool mut = false;
  runtime::ViewValue value; // funcref: function index + 1, 0 = null
};

struct TableImage {
  wasm::ValType elem_type = wasm::ValType::FuncRef;
  std::optional<uint32_t> max;
  // One per element: function index + 1, 0 = null (externref tables: all 0).
  std::vector<uint32_t> elements;
};

// Segments dropped by elem.drop / data.drop (or by instantiation: active
// and declarative ones), one flag per segment of the module.
struct SegmentState {
  std::vector<bool> elem_dropped;
  std::vector<bool> data_dropped;
};

struct ThreadImage {
  uint32_t id = 0; // 0: the main thread
  runtime::ViewThread view;
};

// The waiters of memory.atomic.wait on one shared memory (WAIT section):
// per address the threads in queue order with the time they had left, and
// the threads notified that had not returned from their wait yet.
struct WaitQueueImage {
  uint32_t memory = 0; // index in the memory index space
  runtime::WaitQueues::State state;
};

// Thread ids of wasi-threads are 1..2^29-1 (0 is the main thread here).
inline constexpr uint32_t kMaxSpawnedTid = (1u << 29) - 1;

// A thread started with wasi-threads' thread-spawn (SPWN section): its own
// instance of the module shares the memory but has its own globals (its
// __stack_pointer), tables and segment state. Its frames are the THRD
// section whose id is `tid`.
struct SpawnedThreadImage {
  uint32_t tid = 0; // 1..2^29-1
  uint32_t start_arg = 0;
  std::vector<GlobalImage> globals;
  std::vector<TableImage> tables;
  SegmentState segments;
};

// Every spawned thread still running (stopped for the snapshot), by
// increasing tid, and the tid the next thread-spawn returns.
struct SpawnedThreads {
  uint32_t next_tid = 1;
  std::vector<SpawnedThreadImage> threads;
};

// State owned by other parts (WASI fd table, sockets, ...), encoded by them:
// one section each, written between the threads and the memories.
// `optional` sections may be ignored by a reader that does not know the tag;
// a restore must refuse a required section nobody understands.
struct ExtensionSection {
  Tag tag{};
  bool optional = false;
  std::vector<uint8_t> payload;
};

// The snapshot an incremental one is a difference against: a file beside
// it (a plain file name, never a path: docs/snapshot-format.md), and its
// exact bytes, by length and SHA-256.
struct ParentRef {
  std::string name;
  uint64_t size = 0;
  util::Sha256Digest sha256{};
};

// Whether `name` may name a parent: a file name without a directory part
// ("/"), not "." or "..", not empty, at most 255 bytes, without NUL.
inline bool is_plain_file_name(std::string_view name) {
  return !name.empty() && name.size() <= 255 && name != "." && name != ".." &&
         name.find('/') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

// Where a reader left a memory's pages for lazy loading
// (ReadOptions::defer_pages, snapshot/lazy.h): the stream offset of the
// first section after the memory's MEMD, and how many sections came before
// that offset (the TAIL counts them).
struct DeferredPages {
  uint32_t index = 0;
  uint64_t offset = 0;
  uint32_t sections = 0;
  uint64_t memd_offset = 0; // of the memory's MEMD section
  // The header announces a chunk index (MIDX) before the TAIL.
  bool indexed = false;
  // The file read (set by read_snapshot_chain): the pages are read from
  // the very file whose other sections were checked.
  std::shared_ptr<util::UniqueFd> file;
};

struct Snapshot {
  HostInfo host;
  ModuleIdentity module;
  // Set in an incremental snapshot: its memories carry only the pages that
  // changed since this parent (written with WriteOptions::carried_pages).
  std::optional<ParentRef> parent;
  std::vector<MemoryImage> memories; // the instance's memory index space
  std::vector<GlobalImage> globals;  // the global index space (imports first)
  std::vector<TableImage> tables;    // the table index space
  SegmentState segments;
  std::vector<ThreadImage> threads;
  // Only memories with waiters, by increasing index.
  std::vector<WaitQueueImage> wait_queues;
  // Set for a wasi-threads program (SPWN), even with no thread running.
  std::optional<SpawnedThreads> spawned;
  std::vector<ExtensionSection> extensions;

  // Filled by the reader: the stream's length and SHA-256, which a child
  // snapshot names its parent by.
  uint64_t stream_bytes = 0;
  util::Sha256Digest stream_sha256{};
  // Set when the reader stopped at a memory whose pages are loaded later
  // (then stream_bytes and stream_sha256 cover only what was read).
  std::optional<DeferredPages> deferred_pages;
  // The stream has a chunk index (MIDX, format.h's kIndexedFlag): read and
  // checked against the memory sections, or, with deferred pages, announced
  // by the header (the lazy reader checks it).
  bool chunk_index = false;

  const ExtensionSection* find_extension(const Tag& tag) const {
    for (const auto& e : extensions)
      if (e.tag == tag) return &e;
    return nullptr;
  }
};

} // namespace tern::snapshot
