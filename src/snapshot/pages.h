// Linear memory contents in a snapshot: which pages are non-zero, and the
// chunk records (MEMP sections) that carry them, zstd-compressed. Writing
// needs one chunk of buffering per compression thread; reading decodes each
// chunk straight into its place.
#pragma once

#include "snapshot/model.h"
#include "snapshot/payload.h"
#include "wasm/types.h"

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace tern::snapshot {

inline constexpr uint64_t kPageSize = wasm::kPageSize;
inline constexpr uint32_t kMaxChunkPages = 64; // the bitmap is one u64
inline constexpr uint32_t kChunkPages = 16;    // what tern writes: 1 MiB per chunk

// Zero-filled memory from an anonymous mapping: pages nobody writes cost
// nothing. Holds decoded memory contents.
class PageBuffer {
public:
  explicit PageBuffer(uint64_t bytes);
  ~PageBuffer();
  PageBuffer(const PageBuffer&) = delete;
  PageBuffer& operator=(const PageBuffer&) = delete;
  std::span<uint8_t> bytes() const { return {data_, size_}; }

private:
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

// One flag per 64 KiB page of `memory`: true if it holds a non-zero byte.
// With `private_mapping` (memory of a private anonymous mapping), pages the
// page map shows were never touched are not read at all. A shared mapping
// (a mirrored memory, runtime/memory.h) may have been written through
// another view, which this one's page map does not show: every page is read.
std::vector<bool> find_nonzero_pages(std::span<const uint8_t> memory, bool private_mapping);

struct ChunkOptions {
  bool compress = true;
  int zstd_level = 1;
  unsigned threads = 1; // compression threads
  // The memory may be written while it is encoded (live migration's
  // pre-copy rounds): each chunk's pages are copied before they are
  // compressed. zstd reads its input more than once (a match is found in
  // bytes it has already encoded, then checked against them as they are
  // now), so compressing bytes that change could encode, for a page nobody
  // wrote, bytes of another page as they were earlier: pages written
  // during the encoding are sent again, the others must come out exact.
  bool input_may_change = false;
};

// The MEMP payloads of memory `index`, in page order, to `emit`; chunks
// without a non-zero page are left out.
void encode_memory_chunks(uint32_t index, std::span<const uint8_t> memory, bool private_mapping,
                          const ChunkOptions& options,
                          const std::function<void(std::span<const uint8_t>)>& emit);
// The same for the pages flagged in `pages` (one flag per page of
// `memory`), whatever their contents: chunks without a flagged page are
// left out.
void encode_page_chunks(uint32_t index, std::span<const uint8_t> memory,
                        const std::vector<bool>& pages, const ChunkOptions& options,
                        const std::function<void(std::span<const uint8_t>)>& emit);

// The fixed part of a MEMP payload (docs/snapshot-format.md): memory
// index, first page, page count, bitmap of the pages carried, encoding.
inline constexpr size_t kChunkHeaderBytes = 4 + 4 + 4 + 8 + 1;
struct ChunkHeader {
  uint32_t index = 0;
  uint64_t first = 0;
  uint32_t count = 0;
  uint64_t bitmap = 0;
  uint8_t encoding = 0;
  bool operator==(const ChunkHeader&) const = default;
};
// Reads and checks one for memory `index` of `pages` pages whose previous
// chunk ended at page `next_page` (chunks go forward without overlap).
ChunkHeader read_chunk_header(PayloadReader& reader, uint32_t index, uint64_t pages,
                              uint64_t next_page);

// Decodes MEMP payloads of one memory (in stream order) into `memory`
// (zero-filled, pages * 64 KiB; empty to verify and count only). With
// `filled` (at least `pages` flags; reading a chain of incremental
// snapshots, later ones first), pages flagged there are left alone and the
// pages decoded are flagged.
class ChunkDecoder {
public:
  ChunkDecoder(uint32_t index, uint64_t pages, std::span<uint8_t> memory,
               std::vector<bool>* filled = nullptr);
  ~ChunkDecoder();
  ChunkDecoder(const ChunkDecoder&) = delete;
  ChunkDecoder& operator=(const ChunkDecoder&) = delete;

  // `what` names the section in errors.
  void decode(std::span<const uint8_t> payload, const std::string& what);
  // Chunks may then come in any order (lazy restore loads them as pages
  // are touched): each is still checked against the memory's size.
  void allow_any_order() { any_order_ = true; }
  // With an empty memory: the pages the last chunk decoded carries, in
  // page order (lazy restore places them itself).
  std::span<const uint8_t> decoded() const { return scratch_; }
  uint64_t nonzero_pages() const { return nonzero_pages_; }
  uint64_t stored_bytes() const { return stored_bytes_; }

private:
  uint32_t index_;
  uint64_t pages_;
  std::span<uint8_t> memory_;
  std::vector<bool>* filled_;
  uint64_t next_page_ = 0; // chunks go forward without overlap
  bool any_order_ = false;
  uint64_t nonzero_pages_ = 0;
  uint64_t stored_bytes_ = 0;
  std::vector<uint8_t> scratch_;
  void* dctx_ = nullptr;
};

} // namespace tern::snapshot
