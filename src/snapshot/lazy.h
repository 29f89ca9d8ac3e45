// Lazy restore: the program continues before its memory is loaded, as a VM
// restored by Firecracker does. The memory's pages are registered with a
// userfaultfd for missing-page faults; the first touch of a page (by the
// program in any engine, by tern, or by a system call writing into it) is
// served by a thread here, which reads the snapshot's chunk (MEMP section)
// holding the page, checks its checksum, decompresses it and places all of
// its pages at once (UFFDIO_COPY); a page no chunk carries is placed as
// zeros (UFFDIO_ZEROPAGE). A second thread loads every chunk in file order
// meanwhile (prefetch); once all are in, the range is unregistered and both
// threads end, so pages never carried are then the kernel's to zero-fill as
// for any fresh memory.
//
// Faults reach the handler through the kernel, never as signals: compiled
// code's SIGSEGV handler (guard pages: out-of-bounds traps) sees none of
// them. A mirrored memory (runtime/memory.h) is registered in every view; a
// page is placed once through base() (the shared page cache shows it in
// every view) and the thread faulting in another view is woken there.
//
// Where the chunks are: a snapshot file written with a chunk index (the
// MIDX section before the TAIL, docs/snapshot-format.md §6.15) gives every
// chunk's offset, length and header in one read from the end of the file
// (two for an index longer than the first read guessed); an older snapshot
// without one is indexed by reading each chunk's frame and chunk header,
// one read per chunk.
//
// Checked before the program continues: every section before the memory's
// pages (as an eager restore reads them), and the TAIL's length and
// section count; with a chunk index, the index itself (its checksum, the
// chunk headers it lists, sections that follow each other up to it);
// without one, each chunk's frame header and chunk header (its place in
// the memory, in order, without overlap). The index is not taken on trust:
// before a page is placed (from a chunk, or as zeros where the index says
// no chunk carries it), every chunk up to the one that carries the page or
// comes after it has had its frame and chunk header read and compared with
// the index (in the background from the start, by the prefetch thread, so
// a fault rarely waits for it), so a page is always what an eager read of
// the file gives. Each chunk's payload is checked against its checksum,
// and its header against the index, when it is loaded. A failure after
// the program continued ends tern with one error naming the snapshot and
// the section (exit status 1), since a program whose memory cannot be read
// cannot continue and no error can be unwound into a thread stopped in a
// page fault.
//
// Whoever needs the whole memory first (a checkpoint, whose writer forks:
// the child would not be served; dirty-page tracking, whose userfaultfd
// cannot share the range) waits with runtime::Memory::wait_loaded().
#pragma once

#include "runtime/memory.h"
#include "snapshot/format.h"
#include "snapshot/model.h"
#include "snapshot/pages.h"
#include "util/unique_fd.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tern::snapshot {

class LazyMemory final : public runtime::PendingContents {
public:
  // Registers pages [0, pages) of `memory` (every view of a mirrored one),
  // which nothing may have touched, for missing-page faults. nullptr with
  // the reason in `why_not` where this host or memory does not allow it
  // (the restore then loads eagerly).
  static std::unique_ptr<LazyMemory> prepare(runtime::Memory& memory, uint32_t index,
                                             uint64_t pages, std::string& why_not);
  // Stops loading and unregisters; the memory must still be mapped.
  ~LazyMemory() override;
  LazyMemory(const LazyMemory&) = delete;
  LazyMemory& operator=(const LazyMemory&) = delete;

  // Indexes the chunks of the snapshot at `path` (open at `file`) from
  // `pages` on, checks its TAIL, and starts serving faults and loading in
  // the background. Throws tern::Error for a malformed or truncated
  // snapshot, before the program continues.
  void start(util::UniqueFd file, const std::string& path, const DeferredPages& pages);

  // Blocks until every chunk is loaded and the memory is unregistered.
  void finish() override;

  // Chunks that carry pages, for --verbose-checkpoints and tests.
  uint64_t chunks() const { return chunks_.size(); }
  // Reads of the file start() made to find the chunks: 1 or 2 with a
  // chunk index, one per chunk (and the TAIL) without (for tests and
  // TERN_TRACE_TIME).
  uint64_t index_reads() const { return index_reads_; }
  // Whether the chunks came from the snapshot's chunk index.
  bool indexed() const { return indexed_; }

private:
  // A MEMP section of the memory, as the index (or the scan) says.
  struct Entry {
    SectionFrame frame;
    ChunkHeader header;
  };
  struct Chunk {        // an entry that carries pages
    uint64_t first = 0; // wasm page
    uint64_t bitmap = 0;
    SectionFrame frame;
    size_t entry = 0; // in entries_
  };
  struct View {
    uint8_t* start;
    uint64_t length;
  };
  class Loader;

  LazyMemory() = default;
  // Without a chunk index: each chunk's frame and header, one read each.
  void index_chunks(const DeferredPages& pages);
  // With one: the TAIL and the MIDX from the end of the file.
  void read_chunk_index(const DeferredPages& pages);
  // Entries [0, n) have been read from the file and agree with the index.
  void verify_entries(size_t n);
  void serve_faults();
  void prefetch();
  void serve(uint64_t address, Loader& loader);
  // Loads chunk c once (whichever thread comes first; the other waits).
  void load(size_t c, Loader& loader);
  // Places `pages` wasm pages from `bytes` (nullptr: zeros) at `page`.
  void place(uint64_t page, uint64_t pages, const uint8_t* bytes);
  void wake(const View& view, uint64_t page);
  void unregister();
  [[noreturn]] void fail(const std::string& message) const;

  uint32_t index_ = 0;
  uint64_t pages_ = 0;
  bool zeropage_ = false;   // UFFDIO_ZEROPAGE works on this memory
  std::vector<View> views_; // views_[0] is base()
  util::UniqueFd uffd_, stop_event_, file_;
  std::string path_;
  uint64_t file_size_ = 0;
  uint64_t index_offset_ = 0; // of the MIDX section, for messages
  uint64_t index_reads_ = 0;
  bool indexed_ = false;
  std::vector<Entry> entries_; // every MEMP, in file order
  std::mutex verify_mutex_;
  std::atomic<size_t> verified_{0};               // entries_ read and compared
  std::vector<Chunk> chunks_;                     // in page order
  std::unique_ptr<std::atomic<uint8_t>[]> state_; // per chunk: 0 new, 1 loading, 2 loaded
  std::atomic<bool> stop_{false};
  std::thread handler_, prefetcher_;
  bool registered_ = false;
};

} // namespace tern::snapshot
