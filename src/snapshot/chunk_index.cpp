#include "snapshot/chunk_index.h"

#include "snapshot/format.h"
#include "wasm/types.h"

#include <bit>
#include <fmt/format.h>

namespace tern::snapshot {
namespace {

// Far beyond any file, low enough that sums of offsets and lengths cannot
// overflow.
constexpr uint64_t kMaxOffset = uint64_t(1) << 56;

} // namespace

std::vector<uint8_t> encode_chunk_index(const ChunkIndex& index) {
  PayloadWriter p;
  p.u32(static_cast<uint32_t>(index.memories.size()));
  for (const IndexedMemory& m : index.memories) {
    p.u64(m.memd_offset);
    p.u32(static_cast<uint32_t>(m.chunks.size()));
    for (const IndexedChunk& c : m.chunks) {
      p.u64(c.offset);
      p.u32(c.length);
      p.u32(c.header.index);
      p.u32(static_cast<uint32_t>(c.header.first));
      p.u32(c.header.count);
      p.u64(c.header.bitmap);
      p.u8(c.header.encoding);
    }
  }
  p.u64(index.offset);
  return std::move(p.out());
}

ChunkIndex decode_chunk_index(PayloadReader& r, uint64_t section_offset) {
  ChunkIndex index;
  index.offset = section_offset;
  const uint32_t memories = r.count(8 + 4, "memories");
  index.memories.reserve(memories);
  uint64_t end = 0; // where the previous memory's sections end
  for (uint32_t m = 0; m < memories; ++m) {
    IndexedMemory memory;
    memory.memd_offset = r.u64();
    if (memory.memd_offset > kMaxOffset)
      r.fail(fmt::format("memory {}: MEMD section at byte {}, beyond any file", m,
                         memory.memd_offset));
    if (m > 0 && memory.memd_offset != end)
      r.fail(fmt::format("memory {}: MEMD section at byte {}, not at byte {} where memory {}'s "
                         "sections end",
                         m, memory.memd_offset, end, m - 1));
    uint64_t next = memory.memd_offset + kMemoryHeaderSectionBytes;
    uint64_t next_page = 0;
    const uint32_t chunks = r.count(kIndexEntryBytes, "chunks");
    memory.chunks.reserve(chunks);
    for (uint32_t c = 0; c < chunks; ++c) {
      IndexedChunk chunk;
      chunk.offset = r.u64();
      chunk.length = r.u32();
      if (chunk.offset != next)
        r.fail(fmt::format("memory {}, chunk {}: at byte {}, not at byte {} where the section "
                           "before it ends",
                           m, c, chunk.offset, next));
      chunk.header = read_chunk_header(r, m, wasm::kMaxPages, next_page);
      const uint64_t n = std::popcount(chunk.header.bitmap);
      const bool exact = n == 0 || chunk.header.encoding == 0;
      if (chunk.length < kChunkHeaderBytes ||
          (exact && chunk.length != kChunkHeaderBytes + n * kPageSize))
        r.fail(fmt::format("memory {}, chunk {}: {} payload bytes cannot hold its {} pages", m, c,
                           chunk.length, n));
      next_page = chunk.header.first + chunk.header.count;
      next = chunk.offset + section_bytes(chunk.length);
      memory.chunks.push_back(chunk);
    }
    end = next;
    index.memories.push_back(std::move(memory));
  }
  const uint64_t self = r.u64();
  r.expect_end();
  if (self != section_offset) r.fail(fmt::format("it says it is at byte {}", self));
  if (memories > 0 && end != section_offset)
    r.fail(fmt::format("the last memory's sections end at byte {}, not where it starts", end));
  return index;
}

std::string describe_chunk(const IndexedChunk& c) {
  return fmt::format("section MEMP at byte {} ({} bytes): memory {}, pages {}..{}, bitmap 0x{:x}, "
                     "encoding {}",
                     c.offset, c.length, c.header.index, c.header.first,
                     c.header.first + c.header.count - 1, c.header.bitmap, c.header.encoding);
}

} // namespace tern::snapshot
