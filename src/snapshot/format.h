// The snapshot byte format (docs/snapshot-format.md): a header, then
// self-describing sections (tag, flags, length, header check, payload,
// xxh64 of the payload), ending with a TAIL section that checks the whole
// stream. Written and read strictly forward, so the same bytes can go to a
// file, a socket or a buffer. Version 1 is a self-contained snapshot;
// version 2 an incremental one, which names its parent (PRNT) and carries
// only the memory pages written since (chain.h reads whole chains).
#pragma once

#include "snapshot/model.h"
#include "snapshot/payload.h"
#include "util/byte_stream.h"

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace tern::snapshot {

inline constexpr std::array<uint8_t, 8> kMagic = {0x89, 'T', 'E', 'R', 'N', 'S', 'N', 'P'};
inline constexpr uint32_t kFormatVersion = 1;            // self-contained
inline constexpr uint32_t kIncrementalFormatVersion = 2; // with a parent
// File header flag: a MIDX section (the chunk index) precedes the TAIL.
inline constexpr uint32_t kIndexedFlag = 1;

// Section tags of version 1.
inline constexpr Tag kHostTag = make_tag("HOST");
inline constexpr Tag kModuleTag = make_tag("MODL");
inline constexpr Tag kParentTag = make_tag("PRNT");
inline constexpr Tag kWasmTag = make_tag("WASM");
inline constexpr Tag kGlobalsTag = make_tag("GLOB");
inline constexpr Tag kTableTag = make_tag("TABL");
inline constexpr Tag kSegmentsTag = make_tag("SEGS");
inline constexpr Tag kThreadTag = make_tag("THRD");
inline constexpr Tag kWaitQueuesTag = make_tag("WAIT");
inline constexpr Tag kSpawnedTag = make_tag("SPWN");
inline constexpr Tag kMemoryTag = make_tag("MEMD");
inline constexpr Tag kPagesTag = make_tag("MEMP");
inline constexpr Tag kChunkIndexTag = make_tag("MIDX");
inline constexpr Tag kTailTag = make_tag("TAIL");
// Whether `tag` is one of the above (any other tag is an extension).
bool is_core_tag(const Tag& tag);

struct WriteOptions {
  bool compress = true; // zstd for memory pages (else stored as they are)
  int zstd_level = 1;
  unsigned threads = 1; // compression threads
  // By memory index, where set: exactly the flagged pages (one flag per
  // page, all-zero ones too) instead of the non-zero ones. The receiver
  // keeps what it has of the others: a live migration's final state, whose
  // memory went ahead in pre-copy rounds (docs/migration-stream.md §6).
  std::vector<std::optional<std::vector<bool>>> carried_pages;
  // Write the chunk index (MIDX, with the header's INDEXED flag) after the
  // memories, for lazy restore (snapshot/lazy.h). Unset: into files
  // (write_snapshot_file), not into streams (write_snapshot), whose
  // reader reads forward and needs none: a migration stream stays as
  // readers without the index expect it.
  std::optional<bool> chunk_index;
  // Called after each section with the bytes written so far.
  std::function<void(uint64_t)> progress;
};

struct ReadOptions {
  // false: memory chunks are verified and counted but their contents are not
  // kept (MemoryImage::contents stays empty), for inspecting big snapshots.
  bool keep_memory = true;
  // Stop after the sections that identify the snapshot (HOST, MODL, PRNT,
  // WASM): what a chain's links are checked by before anything is decoded.
  // Nothing after them is read or verified.
  bool identity_only = false;
  // The module binary, for a snapshot that does not carry it while a link
  // of its chain does (chain.h): set as the snapshot's embedded module when
  // MODL arrives, after checking its hash.
  Bytes inherited_module;
  // Reading a chain (chain.h), later links first: per memory, the pages a
  // later link already set. Only the others are decoded (and then marked);
  // set pages are verified but left alone.
  std::vector<std::vector<bool>>* filled = nullptr;
  // Lazy restore (snapshot/lazy.h): asked after memory_target for each
  // memory; true stops the reader right after that MEMD section, leaving
  // the memory's pages and the TAIL unread (Snapshot::deferred_pages says
  // where they start). Every section before was read and checked.
  std::function<bool(uint32_t index, const MemoryImage& header)> defer_pages;
  // Where memory `index` is decoded, asked when its MEMD section arrives
  // (`so_far` holds every section before it, the module identity included):
  // zero-filled, header.pages * 64 KiB. Restore returns the fresh instance's
  // own memory (prepare_memory_for_restore, capture.h) so pages are decoded
  // in place, with no copy. Unset: a buffer owned by the snapshot.
  std::function<std::span<uint8_t>(uint32_t index, const MemoryImage& header,
                                   const Snapshot& so_far)>
      memory_target;
};

// One framed section (docs/snapshot-format.md §3), for streams that carry
// snapshot sections outside a snapshot (the migration stream,
// docs/migration-stream.md).
struct Section {
  Tag tag{};
  bool optional = false;
  uint64_t offset = 0;          // of the section header in the stream, for messages
  uint32_t declared_length = 0; // of the payload, by the header
  std::vector<uint8_t> storage;
  size_t length = 0;
  std::span<const uint8_t> payload() const { return {storage.data(), length}; }
  // "section TAG at byte OFFSET"
  std::string name() const;
};
void write_section(util::ByteSink& sink, const Tag& tag, bool optional,
                   std::span<const uint8_t> payload);
// Reads the section at `offset` (counted by the caller), checking its
// header and payload; false when the source ends cleanly before it. Throws
// tern::Error for a malformed or truncated section.
bool read_section(util::ByteSource& source, uint64_t offset, Section& out);
// The bytes a section with `payload_bytes` of payload occupies.
constexpr uint64_t section_bytes(uint64_t payload_bytes) {
  return 16 + payload_bytes + 8;
}

// Random access to a snapshot file's sections, for lazy restore
// (snapshot/lazy.h), which reads a memory's chunks when they are needed.
struct SectionFrame {
  Tag tag{};
  uint64_t offset = 0; // of the section header
  uint32_t length = 0; // of the payload
};
// The frame of the section at `offset` of the file open at `fd`, whose
// size is `file_size`: its header checked, its end within the file. The
// same read fills `payload_start` with the payload's first bytes (as many
// as the payload has).
SectionFrame read_frame_at(int fd, uint64_t offset, uint64_t file_size,
                           std::span<uint8_t> payload_start = {});
// The section `frame` locates, read with pread (any thread), its header
// and payload checked as read_section does.
void read_section_at(int fd, const SectionFrame& frame, Section& out);

// The little-endian u32 and u64 at `p` (file header, section frames, TAIL).
uint32_t get_u32(const uint8_t* p);
uint64_t get_u64(const uint8_t* p);

// Payloads of the sections a migration stream shares with snapshots
// (docs/migration-stream.md): HOST (§6.1), MODL (§6.2) and MEMD (§6.9).
// Decoders check every field and consume the whole payload.
std::vector<uint8_t> encode_host(const HostInfo& host);
HostInfo decode_host(PayloadReader& reader);
std::vector<uint8_t> encode_module(const util::Sha256Digest& digest, uint64_t size);
// Returns the module's size.
uint64_t decode_module(PayloadReader& reader, util::Sha256Digest& digest);
// The MEMD payload of memory `index`; its contents must be loaded.
std::vector<uint8_t> encode_memory_header(uint32_t index, const MemoryImage& memory);
// Reads and checks one (limits, maximum, shared); contents stay empty.
MemoryImage decode_memory_header(PayloadReader& reader, uint32_t& index);

// What was written: the stream's length and SHA-256 (a child snapshot names
// its parent by them).
struct WrittenSnapshot {
  uint64_t bytes = 0;
  util::Sha256Digest sha256{};
};

// Writes version 1, or version 2 when `snapshot.parent` is set.
WrittenSnapshot write_snapshot(const Snapshot& snapshot, util::ByteSink& sink,
                               const WriteOptions& options = {});
// Reads exactly one snapshot, stopping after its TAIL section. Every
// malformed input throws tern::Error naming the byte offset and the problem.
Snapshot read_snapshot(util::ByteSource& source, const ReadOptions& options = {});

// Atomically replaces `path` (temp file, fsync, rename, fsync of the
// directory): a crash leaves the old file or the new one, never a torn one.
WrittenSnapshot write_snapshot_file(const std::string& path, const Snapshot& snapshot,
                                    const WriteOptions& options = {});
// Errors start with the path; bytes after the TAIL section are an error.
Snapshot read_snapshot_file(const std::string& path, const ReadOptions& options = {});

// For the fuzz targets (fuzz/) only, before their first input: section
// checksums and the stream trailer's totals are no longer checked, so that
// mutated inputs reach the payload parsers behind them. tern never calls it.
void accept_wrong_checksums_for_fuzzing();

// Restore must understand every required section: throws tern::Error naming
// the first required extension section whose tag is not in `known`.
void check_extensions_understood(const Snapshot& snapshot, std::span<const Tag> known);

} // namespace tern::snapshot
