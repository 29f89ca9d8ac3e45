// The chunk index (MIDX section, docs/snapshot-format.md §6.15): where each
// MEMP section of a snapshot is and which pages it carries, so that a lazy
// reader of a file finds a memory's chunks with one read from the end of
// the file instead of one read per chunk. It comes after the memories,
// just before the TAIL, so that a writer that cannot seek back (it learns
// each chunk's size only once it is compressed) still writes it; the file
// header's INDEXED flag says it is there. Each entry is the chunk's section
// offset and payload length and a copy of its 21-byte chunk header.
#pragma once

#include "snapshot/pages.h"
#include "snapshot/payload.h"

#include <cstdint>
#include <string>
#include <vector>

namespace tern::snapshot {

// A MEMD section: frame, its 22-byte payload, payload check.
inline constexpr uint64_t kMemoryHeaderSectionBytes = 16 + 22 + 8;
// One index entry: offset u64, length u32, chunk header (21 bytes).
inline constexpr size_t kIndexEntryBytes = 8 + 4 + kChunkHeaderBytes;

struct IndexedChunk {
  uint64_t offset = 0; // of the MEMP section's header
  uint32_t length = 0; // of its payload
  ChunkHeader header;  // its first 21 payload bytes
  bool operator==(const IndexedChunk&) const = default;
};

struct IndexedMemory {
  uint64_t memd_offset = 0; // of the memory's MEMD section
  std::vector<IndexedChunk> chunks;
};

struct ChunkIndex {
  std::vector<IndexedMemory> memories; // in memory index order
  uint64_t offset = 0;                 // of the MIDX section itself
};

// The MIDX payload; `index.offset` is where the section will be written.
std::vector<uint8_t> encode_chunk_index(const ChunkIndex& index);

// Reads a MIDX payload found at `section_offset` and checks what it can on
// its own: counts fit the payload; each chunk header as §6.10 requires
// (memory index, 1-64 pages, forward without overlap, below 65536 pages,
// bitmap, encoding) with a length that can hold it (exactly, for a stored
// chunk or one without pages); the sections it lists follow each other
// without a gap (each memory's first chunk right after its MEMD, each
// memory's MEMD right after the previous memory's last chunk, the last one
// ending where the MIDX starts); its closing offset is `section_offset`;
// the payload is consumed exactly. Whether the sections really are there
// is for the caller to check.
ChunkIndex decode_chunk_index(PayloadReader& reader, uint64_t section_offset);

// "section MEMP at byte N (L bytes): pages F..L, bitmap 0x.., encoding E"
std::string describe_chunk(const IndexedChunk& chunk);

} // namespace tern::snapshot
