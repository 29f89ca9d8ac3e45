// The snapshot byte format, version 1 (docs/snapshot-format.md): a header,
// then self-describing sections (tag, flags, length, header check, payload,
// xxh64 of the payload), ending with a TAIL section that checks the whole
// stream. Written and read strictly forward, so the same bytes can go to a
// file, a socket or a buffer.
#pragma once

#include "snapshot/model.h"
#include "util/byte_stream.h"

#include <array>
#include <cstdint>
#include <functional>
#include <string>

namespace tern::snapshot {

inline constexpr std::array<uint8_t, 8> kMagic = {0x89, 'T', 'E', 'R', 'N', 'S', 'N', 'P'};
inline constexpr uint32_t kFormatVersion = 1;

// Section tags of version 1.
inline constexpr Tag kHostTag = make_tag("HOST");
inline constexpr Tag kModuleTag = make_tag("MODL");
inline constexpr Tag kWasmTag = make_tag("WASM");
inline constexpr Tag kGlobalsTag = make_tag("GLOB");
inline constexpr Tag kTableTag = make_tag("TABL");
inline constexpr Tag kSegmentsTag = make_tag("SEGS");
inline constexpr Tag kThreadTag = make_tag("THRD");
inline constexpr Tag kMemoryTag = make_tag("MEMD");
inline constexpr Tag kPagesTag = make_tag("MEMP");
inline constexpr Tag kTailTag = make_tag("TAIL");
// Whether `tag` is one of the above (any other tag is an extension).
bool is_core_tag(const Tag& tag);

struct WriteOptions {
  bool compress = true; // zstd for memory pages (else stored as they are)
  int zstd_level = 1;
  unsigned threads = 1; // compression threads
  // Called after each section with the bytes written so far.
  std::function<void(uint64_t)> progress;
};

struct ReadOptions {
  // false: memory chunks are verified and counted but their contents are not
  // kept (MemoryImage::contents stays empty), for inspecting big snapshots.
  bool keep_memory = true;
  // Where memory `index` is decoded, asked when its MEMD section arrives
  // (`so_far` holds every section before it, the module identity included):
  // zero-filled, header.pages * 64 KiB. Restore returns the fresh instance's
  // own memory (prepare_memory_for_restore, capture.h) so pages are decoded
  // in place, with no copy. Unset: a buffer owned by the snapshot.
  std::function<std::span<uint8_t>(uint32_t index, const MemoryImage& header,
                                   const Snapshot& so_far)>
      memory_target;
};

void write_snapshot(const Snapshot& snapshot, util::ByteSink& sink,
                    const WriteOptions& options = {});
// Reads exactly one snapshot, stopping after its TAIL section. Every
// malformed input throws tern::Error naming the byte offset and the problem.
Snapshot read_snapshot(util::ByteSource& source, const ReadOptions& options = {});

// Atomically replaces `path` (temp file, fsync, rename, fsync of the
// directory): a crash leaves the old file or the new one, never a torn one.
void write_snapshot_file(const std::string& path, const Snapshot& snapshot,
                         const WriteOptions& options = {});
// Errors start with the path; bytes after the TAIL section are an error.
Snapshot read_snapshot_file(const std::string& path, const ReadOptions& options = {});

// Restore must understand every required section: throws tern::Error naming
// the first required extension section whose tag is not in `known`.
void check_extensions_understood(const Snapshot& snapshot, std::span<const Tag> known);

} // namespace tern::snapshot
