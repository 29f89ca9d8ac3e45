#include "snapshot/pages.h"

#include "snapshot/payload.h"
#include "tern/error.h"
#include "util/pagemap.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <sys/mman.h>
#include <thread>
#include <zstd.h>

namespace tern::snapshot {
namespace {

enum Encoding : uint8_t { kStored = 0, kZstd = 1 };

bool all_zero(const uint8_t* p, size_t n) {
  // OR a block of words together before testing: one branch per 256 bytes.
  for (size_t i = 0; i < n; i += 256) {
    uint64_t acc = 0;
    for (size_t j = 0; j < 256; j += 8) {
      uint64_t w;
      std::memcpy(&w, p + i + j, 8);
      acc |= w;
    }
    if (acc != 0) return false;
  }
  return true;
}

// Bit i: page first + i is non-zero.
uint64_t chunk_bitmap(const std::vector<bool>& nonzero, uint64_t first, uint32_t count) {
  uint64_t bits = 0;
  for (uint32_t i = 0; i < count; ++i)
    if (nonzero[first + i]) bits |= uint64_t(1) << i;
  return bits;
}

// The set bits form one run: the pages can be used in place.
bool contiguous(uint64_t bitmap) {
  uint64_t shifted = bitmap >> std::countr_zero(bitmap);
  return (shifted & (shifted + 1)) == 0;
}

struct ChunkEncoder {
  ZSTD_CCtx* cctx = nullptr;
  std::vector<uint8_t> gathered;
  ChunkEncoder() = default;
  ChunkEncoder(const ChunkEncoder&) = delete;
  ~ChunkEncoder() { ZSTD_freeCCtx(cctx); }

  void encode(uint32_t index, std::span<const uint8_t> memory, uint64_t first, uint32_t count,
              uint64_t bitmap, const ChunkOptions& options, std::vector<uint8_t>& out) {
    std::span<const uint8_t> raw = gather(memory, first, bitmap, options.input_may_change);
    PayloadWriter header;
    header.u32(index);
    header.u32(static_cast<uint32_t>(first));
    header.u32(count);
    header.u64(bitmap);
    out.resize(kChunkHeaderBytes + ZSTD_compressBound(raw.size()));
    std::memcpy(out.data(), header.out().data(), kChunkHeaderBytes - 1);
    if (options.compress && compress(raw, options.zstd_level, out)) return;
    out[kChunkHeaderBytes - 1] = kStored;
    out.resize(kChunkHeaderBytes + raw.size());
    std::memcpy(out.data() + kChunkHeaderBytes, raw.data(), raw.size());
  }

  // The pages of the chunk, in order, as one span: in place when they are
  // contiguous, unless `copy` (the memory may change meanwhile).
  std::span<const uint8_t> gather(std::span<const uint8_t> memory, uint64_t first, uint64_t bitmap,
                                  bool copy) {
    const uint64_t n = std::popcount(bitmap);
    if (contiguous(bitmap) && !copy)
      return memory.subspan((first + std::countr_zero(bitmap)) * kPageSize, n * kPageSize);
    gathered.resize(n * kPageSize);
    uint8_t* dst = gathered.data();
    for (uint64_t bits = bitmap; bits != 0; bits &= bits - 1) {
      std::memcpy(dst, memory.data() + (first + std::countr_zero(bits)) * kPageSize, kPageSize);
      dst += kPageSize;
    }
    return gathered;
  }

  // Compresses into out after the header; false when it does not pay.
  bool compress(std::span<const uint8_t> raw, int level, std::vector<uint8_t>& out) {
    if (!cctx) cctx = ZSTD_createCCtx();
    if (!cctx) throw Error("cannot allocate a zstd compression context");
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
    size_t n = ZSTD_compress2(cctx, out.data() + kChunkHeaderBytes, out.size() - kChunkHeaderBytes,
                              raw.data(), raw.size());
    if (ZSTD_isError(n) || n >= raw.size()) return false;
    out[kChunkHeaderBytes - 1] = kZstd;
    out.resize(kChunkHeaderBytes + n);
    return true;
  }
};

struct Chunk {
  uint64_t first = 0;
  uint32_t count = 0;
  uint64_t bitmap = 0;
};

// Chunks of kChunkPages covering the flagged pages.
std::vector<Chunk> chunks_of(const std::vector<bool>& pages) {
  std::vector<Chunk> chunks;
  for (uint64_t first = 0; first < pages.size(); first += kChunkPages) {
    const auto count = static_cast<uint32_t>(std::min<uint64_t>(kChunkPages, pages.size() - first));
    if (uint64_t bits = chunk_bitmap(pages, first, count)) chunks.push_back({first, count, bits});
  }
  return chunks;
}

void encode_chunks(uint32_t index, std::span<const uint8_t> memory,
                   const std::vector<Chunk>& chunks, const ChunkOptions& options,
                   const std::function<void(std::span<const uint8_t>)>& emit) {
  const unsigned threads = std::max(1u, options.threads);
  // Each batch is compressed by all threads, then written in order.
  const size_t batch = threads * 4;
  std::vector<ChunkEncoder> encoders(threads);
  std::vector<std::vector<uint8_t>> out(batch);
  for (size_t begin = 0; begin < chunks.size(); begin += batch) {
    const size_t n = std::min(batch, chunks.size() - begin);
    auto work = [&](unsigned t) {
      for (size_t slot = t; slot < n; slot += threads) {
        const Chunk& c = chunks[begin + slot];
        encoders[t].encode(index, memory, c.first, c.count, c.bitmap, options, out[slot]);
      }
    };
    {
      std::vector<std::jthread> helpers;
      for (unsigned t = 1; t < threads && t < n; ++t) helpers.emplace_back(work, t);
      work(0);
    }
    for (size_t slot = 0; slot < n; ++slot) emit(out[slot]);
  }
}

} // namespace

PageBuffer::PageBuffer(uint64_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    throw Error(fmt::format("cannot allocate {} bytes for memory contents: {}", bytes,
                            std::strerror(errno)));
  data_ = static_cast<uint8_t*>(p);
}

PageBuffer::~PageBuffer() {
  if (data_) ::munmap(data_, size_);
}

std::vector<bool> find_nonzero_pages(std::span<const uint8_t> memory, bool private_mapping) {
  const uint64_t pages = memory.size() / kPageSize;
  std::optional<std::vector<bool>> touched;
  if (private_mapping) touched = util::touched_blocks(memory.data(), memory.size(), kPageSize);
  std::vector<bool> nonzero(pages, false);
  for (uint64_t p = 0; p < pages; ++p) {
    if (touched && !(*touched)[p]) continue;
    nonzero[p] = !all_zero(memory.data() + p * kPageSize, kPageSize);
  }
  return nonzero;
}

void encode_memory_chunks(uint32_t index, std::span<const uint8_t> memory, bool private_mapping,
                          const ChunkOptions& options,
                          const std::function<void(std::span<const uint8_t>)>& emit) {
  encode_chunks(index, memory, chunks_of(find_nonzero_pages(memory, private_mapping)), options,
                emit);
}

void encode_page_chunks(uint32_t index, std::span<const uint8_t> memory,
                        const std::vector<bool>& pages, const ChunkOptions& options,
                        const std::function<void(std::span<const uint8_t>)>& emit) {
  if (pages.size() != memory.size() / kPageSize)
    throw Error(fmt::format("memory {}: {} page flags for {} pages", index, pages.size(),
                            memory.size() / kPageSize));
  encode_chunks(index, memory, chunks_of(pages), options, emit);
}

ChunkDecoder::ChunkDecoder(uint32_t index, uint64_t pages, std::span<uint8_t> memory,
                           std::vector<bool>* filled)
    : index_(index), pages_(pages), memory_(memory), filled_(filled) {
  if (filled_ && filled_->size() < pages) filled_->resize(pages, false);
}

ChunkDecoder::~ChunkDecoder() {
  ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(dctx_));
}

ChunkHeader read_chunk_header(PayloadReader& r, uint32_t index, uint64_t pages,
                              uint64_t next_page) {
  ChunkHeader h;
  h.index = r.u32();
  h.first = r.u32();
  h.count = r.u32();
  h.bitmap = r.u64();
  h.encoding = r.u8();
  if (h.index != index)
    r.fail(fmt::format("chunk of memory {} after the header of memory {}", h.index, index));
  if (h.count == 0 || h.count > kMaxChunkPages)
    r.fail(fmt::format("chunk of {} pages (1 to {} allowed)", h.count, kMaxChunkPages));
  if (h.first < next_page)
    r.fail(fmt::format("chunk at page {} overlaps or precedes the previous chunk (ends at {})",
                       h.first, next_page));
  if (h.first + h.count > pages)
    r.fail(fmt::format("chunk of pages {}..{} is outside the memory's {} pages", h.first,
                       h.first + h.count - 1, pages));
  if (h.count < 64 && (h.bitmap >> h.count) != 0) r.fail("bitmap marks pages beyond the chunk");
  if (h.encoding != kStored && h.encoding != kZstd)
    r.fail(fmt::format("unknown chunk encoding {}", h.encoding));
  return h;
}

void ChunkDecoder::decode(std::span<const uint8_t> payload, const std::string& what) {
  PayloadReader r(payload, what);
  const ChunkHeader h = read_chunk_header(r, index_, pages_, any_order_ ? 0 : next_page_);
  const uint64_t first = h.first;
  const uint64_t bitmap = h.bitmap;
  const uint8_t encoding = h.encoding;
  next_page_ = first + h.count;
  const uint64_t n = std::popcount(bitmap);
  nonzero_pages_ += n;
  stored_bytes_ += payload.size();
  const std::span<const uint8_t> data = r.bytes(r.remaining());
  if (n == 0) {
    if (!data.empty()) r.fail("a chunk without pages carries data");
    return;
  }

  // The pages to write: all, but those a later link of a chain set.
  uint64_t wanted = bitmap;
  if (filled_)
    for (uint64_t bits = bitmap; bits != 0; bits &= bits - 1)
      if ((*filled_)[first + std::countr_zero(bits)])
        wanted &= ~(uint64_t(1) << std::countr_zero(bits));
  // Decode in place when the pages are contiguous and all wanted, else
  // through scratch.
  const size_t raw = n * kPageSize;
  const bool in_place = !memory_.empty() && contiguous(bitmap) && wanted == bitmap;
  uint8_t* dst;
  if (in_place) {
    dst = memory_.data() + (first + std::countr_zero(bitmap)) * kPageSize;
  } else {
    scratch_.resize(raw);
    dst = scratch_.data();
  }
  if (encoding == kStored) {
    if (data.size() != raw)
      r.fail(fmt::format("stored chunk holds {} bytes, {} pages need {}", data.size(), n, raw));
    std::memcpy(dst, data.data(), raw);
  } else {
    if (!dctx_) dctx_ = ZSTD_createDCtx();
    if (!dctx_) throw Error("cannot allocate a zstd decompression context");
    size_t got =
        ZSTD_decompressDCtx(static_cast<ZSTD_DCtx*>(dctx_), dst, raw, data.data(), data.size());
    if (ZSTD_isError(got)) r.fail(fmt::format("zstd: {}", ZSTD_getErrorName(got)));
    if (got != raw) r.fail(fmt::format("zstd data holds {} bytes, {} pages need {}", got, n, raw));
  }
  if (memory_.empty()) return;
  if (filled_)
    for (uint64_t bits = wanted; bits != 0; bits &= bits - 1)
      (*filled_)[first + std::countr_zero(bits)] = true;
  if (in_place) return;
  const uint8_t* src = scratch_.data();
  for (uint64_t bits = bitmap; bits != 0; bits &= bits - 1) {
    const uint64_t page = first + std::countr_zero(bits);
    if (wanted >> (page - first) & 1)
      std::memcpy(memory_.data() + page * kPageSize, src, kPageSize);
    src += kPageSize;
  }
}

} // namespace tern::snapshot
