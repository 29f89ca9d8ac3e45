// Lazy restore (snapshot/lazy.h): a memory registered for missing-page
// faults gets exactly the snapshot's bytes whichever page is touched first
// and in whatever order, from the program's side or a system call's, in a
// private and in a mirrored memory; a snapshot whose chunks cannot be
// indexed is refused before anything runs, and a chunk that fails its
// checksum when loaded ends the process with one error.
#include "runtime/memory.h"
#include "snapshot/format.h"
#include "snapshot/lazy.h"
#include "snapshot_test_util.h"
#include "tern/error.h"
#include "util/file.h"

#include <algorithm>
#include <atomic>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <gtest/gtest.h>
#include <numeric>
#include <random>
#include <thread>
#include <unistd.h>

namespace tern::test {
namespace {

namespace fs = std::filesystem;

// Page p of the snapshot's memory: zero where p % 5 == 3, else bytes
// derived from p and the offset.
uint8_t expected_byte(uint64_t page, uint64_t offset) {
  if (page % 5 == 3) return 0;
  return static_cast<uint8_t>(page * 131 + offset / 8191 + 1);
}

snapshot::Snapshot one_memory_snapshot(uint64_t pages) {
  snapshot::Snapshot s = sample_snapshot();
  s.memories = {owned_memory(pages, 4 * pages)};
  uint8_t* m = mutable_bytes(s.memories[0]);
  for (uint64_t p = 0; p < pages; ++p)
    for (uint64_t i = 0; i < kWasmPage; ++i) m[p * kWasmPage + i] = expected_byte(p, i);
  return s;
}

SpecSection last_chunk(const std::vector<uint8_t>& bytes) {
  SpecSection last;
  for (const SpecSection& s : spec_sections(bytes))
    if (s.tag == "MEMP") last = s;
  return last;
}

// The snapshot as tern wrote it before the chunk index: a stream's bytes.
void write_without_index(const std::string& path, const snapshot::Snapshot& s) {
  util::write_file_atomic(path, to_bytes(s));
}

bool lazy_restore_works(bool mirrored) {
  wasm::MemoryType t;
  t.limits.min = 0;
  t.limits.max = 1;
  runtime::Memory probe(t, mirrored);
  probe.grow(1);
  std::string why_not;
  return snapshot::LazyMemory::prepare(probe, 0, 1, why_not) != nullptr;
}

class Lazy : public ::testing::TestWithParam<bool> { // mirrored memory?
protected:
  void SetUp() override {
    path_ = (fs::temp_directory_path() / ("tern-lazy-test-" + std::to_string(::getpid()) + "-" +
                                          std::to_string(reinterpret_cast<uintptr_t>(this))))
                .string();
  }
  void TearDown() override { fs::remove(path_); }

  // Reads path_ into a fresh memory, its pages left to a LazyMemory
  // (nullptr and the memory decoded when the host cannot).
  std::unique_ptr<snapshot::LazyMemory> open_lazily(runtime::Memory& memory) {
    std::unique_ptr<snapshot::LazyMemory> lazy;
    snapshot::ReadOptions read;
    read.memory_target = [&](uint32_t, const snapshot::MemoryImage& header,
                             const snapshot::Snapshot&) {
      memory.grow(header.pages - memory.pages());
      return std::span<uint8_t>(memory.base(), header.pages * kWasmPage);
    };
    read.defer_pages = [&](uint32_t index, const snapshot::MemoryImage& header) {
      std::string why_not;
      lazy = snapshot::LazyMemory::prepare(memory, index, header.pages, why_not);
      return lazy != nullptr;
    };
    const snapshot::Snapshot s = snapshot::read_snapshot_file(path_, read);
    if (s.deferred_pages) {
      lazy->start(util::UniqueFd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC)), path_,
                  *s.deferred_pages);
      EXPECT_GT(lazy->chunks(), 0u);
    }
    return lazy;
  }

  static wasm::MemoryType type(uint64_t pages) {
    wasm::MemoryType t;
    t.limits.min = 0;
    t.limits.max = 4 * pages;
    return t;
  }

  static void expect_contents(const uint8_t* base, uint64_t pages) {
    for (uint64_t p = 0; p < pages; ++p)
      for (uint64_t i = 0; i < kWasmPage; i += 997)
        ASSERT_EQ(base[p * kWasmPage + i], expected_byte(p, i)) << "page " << p << " byte " << i;
  }

  std::string path_;
};

TEST_P(Lazy, EveryPageIsTheSnapshotsWhateverIsTouchedFirst) {
  const uint64_t pages = 200; // 13 chunks, some pages zero
  snapshot::write_snapshot_file(path_, one_memory_snapshot(pages));
  runtime::Memory memory(type(pages), GetParam());
  auto lazy = open_lazily(memory);
  if (!lazy) GTEST_SKIP() << "userfaultfd missing-page handling is not available here";
  // Touch pages in a random order, some through a view of another kind:
  // a system call's write (read(2) from a pipe) into a missing page.
  std::vector<uint64_t> order(pages);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(7));
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const uint64_t written_by_kernel = order[3];
  const uint8_t byte = 0x5A;
  ASSERT_EQ(::write(pipe_fds[1], &byte, 1), 1);
  ASSERT_EQ(::read(pipe_fds[0], memory.base() + written_by_kernel * kWasmPage + 100, 1), 1);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  for (uint64_t p : order) {
    // Every other page first through a mirror view (the fault is there).
    if (GetParam() && p % 2) {
      ASSERT_EQ(memory.mirror_base()[p * kWasmPage + 5], expected_byte(p, 5)) << "page " << p;
    }
    const uint8_t* page = memory.base() + p * kWasmPage;
    ASSERT_EQ(page[kWasmPage - 1], expected_byte(p, kWasmPage - 1)) << "page " << p;
    if (GetParam()) { // the same bytes through the last view
      ASSERT_EQ(memory.mirror_base()[3 * runtime::Memory::kMirrorStride + p * kWasmPage + 7],
                expected_byte(p, 7))
          << "page " << p;
    }
  }
  lazy->finish();
  lazy.reset();
  EXPECT_EQ(memory.base()[written_by_kernel * kWasmPage + 100], byte);
  memory.base()[written_by_kernel * kWasmPage + 100] = expected_byte(written_by_kernel, 100);
  expect_contents(memory.base(), pages);
  // Growing after the load gives zero pages as usual.
  ASSERT_EQ(memory.grow(2), static_cast<int64_t>(pages));
  EXPECT_EQ(memory.base()[(pages + 1) * kWasmPage + 9], 0);
}

TEST_P(Lazy, BackgroundLoadingAloneFillsTheMemory) {
  const uint64_t pages = 70;
  snapshot::write_snapshot_file(path_, one_memory_snapshot(pages));
  runtime::Memory memory(type(pages), GetParam());
  auto lazy = open_lazily(memory);
  if (!lazy) GTEST_SKIP() << "userfaultfd missing-page handling is not available here";
  lazy->finish(); // nothing touched meanwhile
  lazy.reset();
  expect_contents(memory.base(), pages);
}

TEST_P(Lazy, ADestroyedLoaderLeavesAUsableMemory) {
  const uint64_t pages = 40;
  snapshot::write_snapshot_file(path_, one_memory_snapshot(pages));
  runtime::Memory memory(type(pages), GetParam());
  auto lazy = open_lazily(memory);
  if (!lazy) GTEST_SKIP() << "userfaultfd missing-page handling is not available here";
  EXPECT_EQ(memory.base()[5], expected_byte(0, 5));
  lazy.reset(); // the program ended early: no thread left, nothing registered
  memory.base()[kWasmPage * 39] = 1;
  EXPECT_EQ(memory.base()[kWasmPage * 39], 1);
}

TEST_P(Lazy, MemoryGrowsWhileLoadingAndTrackingWaitsForTheLoad) {
  const uint64_t pages = 40;
  snapshot::write_snapshot_file(path_, one_memory_snapshot(pages));
  runtime::Memory memory(type(pages), GetParam());
  auto lazy = open_lazily(memory);
  if (!lazy) GTEST_SKIP() << "userfaultfd missing-page handling is not available here";
  // memory.grow before most pages are in: new pages are zero and writable.
  ASSERT_EQ(memory.grow(3), static_cast<int64_t>(pages));
  EXPECT_EQ(memory.base()[(pages + 1) * kWasmPage + 9], 0);
  memory.base()[(pages + 2) * kWasmPage] = 7;
  memory.base()[10 * kWasmPage + 1] = 0xEE; // a loaded page written
  memory.load_lazily(std::move(lazy));
  // Dirty-page tracking waits for the whole memory (one userfaultfd per
  // range), then reports every page first.
  runtime::DirtyLog log = memory.open_dirty_log();
  EXPECT_EQ(log.collect().count(), memory.size() / static_cast<uint64_t>(::getpagesize()));
  memory.base()[10 * kWasmPage + 1] = expected_byte(10, 1);
  expect_contents(memory.base(), pages);
  EXPECT_EQ(memory.base()[(pages + 2) * kWasmPage], 7);
  memory.base()[5 * kWasmPage] = 1;
  EXPECT_TRUE(log.collect().any(5 * kWasmPage, 1));
}

// The loader unregisters the memory once every carried page is in, while
// the program may be taking faults on pages no chunk carries. A fault
// taken at that moment must be sent back to the kernel, not left waiting
// for a loader that is gone (a restore hung that way about once in a
// thousand): here threads fault on such pages throughout, many times
// over; a fault left waiting hangs the test.
TEST_P(Lazy, FaultsTakenWhileTheLoaderUnregistersAreNotLeftWaiting) {
  const uint64_t pages = 512; // one carried page, the rest zero
  snapshot::Snapshot s = sample_snapshot();
  s.memories = {owned_memory(pages, pages)};
  std::fill_n(mutable_bytes(s.memories[0]), kWasmPage, uint8_t(0xA5));
  snapshot::write_snapshot_file(path_, s);
  const uint64_t host_page = static_cast<uint64_t>(::getpagesize());
  // Without the fix a private memory hung within 150 rounds in each of 4
  // runs; a mirrored one's rounds cost 8 times as much (its zero pages are
  // copied, and its file is truncated at each round).
  const int rounds = GetParam() ? 20 : 150;
  for (int round = 0; round < rounds; ++round) {
    runtime::Memory memory(type(pages), GetParam());
    auto lazy = open_lazily(memory);
    if (!lazy) GTEST_SKIP() << "userfaultfd missing-page handling is not available here";
    std::atomic<uint64_t> sum{0};
    std::vector<std::thread> touchers;
    for (uint64_t t = 0; t < 3; ++t)
      touchers.emplace_back([&, t] {
        uint64_t local = 0;
        for (uint64_t a = t * host_page; a < pages * kWasmPage; a += 3 * host_page)
          local += memory.base()[a];
        sum += local;
      });
    for (std::thread& t : touchers) t.join();
    EXPECT_EQ(sum.load(), uint64_t(0xA5) * (kWasmPage / host_page)) << "round " << round;
    lazy->finish();
  }
}

TEST_P(Lazy, AMalformedOrTruncatedSnapshotIsRefusedBeforeAnythingRuns) {
  const uint64_t pages = 40;
  snapshot::write_snapshot_file(path_, one_memory_snapshot(pages));
  const std::vector<uint8_t> good = util::read_file(path_);
  for (size_t cut : {good.size() - 1, good.size() - 30, good.size() / 2}) {
    util::write_file_atomic(path_, std::span(good).first(cut));
    runtime::Memory memory(type(pages), GetParam());
    try {
      auto lazy = open_lazily(memory);
      ADD_FAILURE() << "a snapshot cut at byte " << cut << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
    }
  }
  std::vector<uint8_t> longer = good;
  longer.push_back(0);
  util::write_file_atomic(path_, longer);
  runtime::Memory memory(type(pages), GetParam());
  EXPECT_THROW(open_lazily(memory), Error);
}

TEST_P(Lazy, AChunkFailingItsChecksumEndsTheProcessWithOneError) {
  const uint64_t pages = 40;
  snapshot::write_snapshot_file(path_, one_memory_snapshot(pages));
  std::vector<uint8_t> bad = util::read_file(path_);
  // The last byte of the last chunk's payload.
  const SpecSection last = last_chunk(bad);
  bad[last.payload() + last.length - 1] ^= 0x01;
  util::write_file_atomic(path_, bad);
  {
    runtime::Memory probe(type(1), GetParam());
    probe.grow(1);
    std::string why_not;
    if (!snapshot::LazyMemory::prepare(probe, 0, 1, why_not))
      GTEST_SKIP() << "userfaultfd missing-page handling is not available here";
  }
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        runtime::Memory memory(type(pages), GetParam());
        auto lazy = open_lazily(memory);
        lazy->finish();
        ::_exit(0);
      },
      ::testing::ExitedWithCode(1),
      "tern: error: .*loading memory on demand: .*fails its checksum");
}

// ---------------------------------------------------------- chunk index

TEST_P(Lazy, TheChunkIndexIsOneReadWhateverTheMemorysSize) {
  for (uint64_t pages : {40, 200, 600}) {
    SCOPED_TRACE(pages);
    const snapshot::Snapshot s = one_memory_snapshot(pages);
    uint64_t reads[2] = {};
    for (bool indexed : {true, false}) {
      if (indexed)
        snapshot::write_snapshot_file(path_, s);
      else
        write_without_index(path_, s);
      runtime::Memory memory(type(pages), GetParam());
      auto lazy = open_lazily(memory);
      if (!lazy) GTEST_SKIP() << "userfaultfd missing-page handling is not available here";
      EXPECT_EQ(lazy->indexed(), indexed);
      EXPECT_EQ(lazy->chunks(), (pages + 15) / 16);
      reads[indexed] = lazy->index_reads();
      EXPECT_EQ(memory.base()[(pages - 1) * kWasmPage + 3], expected_byte(pages - 1, 3));
      lazy->finish();
      lazy.reset();
      expect_contents(memory.base(), pages);
    }
    EXPECT_EQ(reads[true], 1u);
    EXPECT_EQ(reads[false], (pages + 15) / 16 + 2); // each chunk's frame, the TAIL's twice
  }
}

TEST_P(Lazy, ASnapshotWithoutAChunkIndexStillLoadsLazily) {
  const uint64_t pages = 200;
  write_without_index(path_, one_memory_snapshot(pages));
  runtime::Memory memory(type(pages), GetParam());
  auto lazy = open_lazily(memory);
  if (!lazy) GTEST_SKIP() << "userfaultfd missing-page handling is not available here";
  EXPECT_FALSE(lazy->indexed());
  std::vector<uint64_t> order(pages);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(11));
  for (uint64_t p : order)
    ASSERT_EQ(memory.base()[p * kWasmPage + 77], expected_byte(p, 77)) << "page " << p;
  lazy->finish();
  lazy.reset();
  expect_contents(memory.base(), pages);
}

// An index written from docs/snapshot-format.md §6.15, of more chunks
// than tern writes for the memory's size (one page each, most without
// pages): longer than the first read takes, so it takes a second.
TEST_P(Lazy, AChunkIndexWrittenFromTheSpecificationLongerThanGuessed) {
  const uint64_t pages = 400;
  auto carried = [](uint64_t p) { return p % 50 == 7; };
  SpecStream out(1, 1); // INDEXED
  out.minimal_instance();
  const uint64_t memd = out.size();
  out.section("MEMD", SpecBytes().u32(0).u64(pages).u8(1).u64(pages).u8(0).b);
  SpecBytes index;
  index.u32(1).u64(memd).u32(uint32_t(pages));
  for (uint64_t p = 0; p < pages; ++p) {
    SpecBytes chunk;
    chunk.u32(0).u32(uint32_t(p)).u32(1).u64(carried(p) ? 1 : 0).u8(0);
    const std::vector<uint8_t> header = chunk.b;
    if (carried(p)) chunk.raw(std::vector<uint8_t>(kWasmPage, uint8_t(p)));
    index.u64(out.size()).u32(uint32_t(chunk.b.size())).raw(header);
    out.section("MEMP", chunk.b);
  }
  index.u64(out.size());
  out.section("MIDX", index.b, 1);
  util::write_file_atomic(path_, out.finish());
  EXPECT_TRUE(snapshot::read_snapshot_file(path_).chunk_index); // a forward reader agrees

  runtime::Memory memory(type(pages), GetParam());
  auto lazy = open_lazily(memory);
  if (!lazy) GTEST_SKIP() << "userfaultfd missing-page handling is not available here";
  EXPECT_TRUE(lazy->indexed());
  EXPECT_EQ(lazy->index_reads(), 2u);
  EXPECT_EQ(lazy->chunks(), 8u);
  for (uint64_t p = pages; p-- > 0;)
    ASSERT_EQ(memory.base()[p * kWasmPage + 1000], carried(p) ? uint8_t(p) : 0) << "page " << p;
  lazy->finish();
}

// Snapshot bytes with a chunk index whose payload `change` alters (its
// checksum and the TAIL's recomputed, as a crafted file would have them).
std::vector<uint8_t>
with_index_changed(const std::vector<uint8_t>& good,
                   const std::function<void(std::vector<uint8_t>&, size_t entries)>& change) {
  std::vector<uint8_t> bad = good;
  const SpecSection index = find_section(bad, "MIDX");
  change(bad, index.payload() + 4 + 8 + 4);
  reseal(bad, index);
  return bad;
}

TEST_P(Lazy, AChunkIndexThatCannotBeRightIsRefusedBeforeAnythingRuns) {
  const uint64_t pages = 40;
  snapshot::write_snapshot_file(path_, one_memory_snapshot(pages));
  const std::vector<uint8_t> good = util::read_file(path_);
  const SpecSection index = find_section(good, "MIDX");
  ASSERT_EQ(index.tag, "MIDX");
  if (!lazy_restore_works(GetParam()))
    GTEST_SKIP() << "userfaultfd missing-page handling is not available here";
  auto refused = [&](const std::vector<uint8_t>& bad, const std::string& why) {
    util::write_file_atomic(path_, bad);
    runtime::Memory memory(type(pages), GetParam());
    try {
      auto lazy = open_lazily(memory);
      if (lazy) ADD_FAILURE() << "accepted; expected an error containing: " << why;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find(path_), 0u) << e.what();
    }
  };
  std::vector<uint8_t> flipped = good; // its checksum fails
  flipped[index.payload() + 20] ^= 0x10;
  refused(flipped, "section MIDX at byte " + std::to_string(index.offset) + " fails its checksum");
  // Its own offset, the last field, elsewhere.
  refused(with_index_changed(good,
                             [&](auto& b, size_t) {
                               put_le(b, index.payload() + index.length - 8, index.offset - 33, 8);
                             }),
          "no chunk index (MIDX section)");
  // A gap between chunks.
  refused(with_index_changed(good, [](auto& b, size_t e) { put_le(b, e, get_le(b, e, 8) + 1, 8); }),
          "chunk 0: at byte");
  // Pages beyond the memory (a chunk of 16 pages at 32).
  refused(with_index_changed(good, [](auto& b, size_t e) { put_le(b, e + 2 * 33 + 20, 16, 4); }),
          "outside the memory's 40 pages");
  // The TAIL counting one section more than the index makes.
  std::vector<uint8_t> counted = good;
  put_le(counted, counted.size() - 44 + 16 + 8,
         get_le(counted, counted.size() - 44 + 16 + 8, 4) + 1, 4);
  reseal_tail(counted);
  refused(counted, "sections before it");
}

// An index that passes every check but lies about a chunk: the page it
// gets wrong is never used; tern ends with one error when it finds out
// (on the fault that needs the chunk, or in the background).
TEST_P(Lazy, AChunkIndexThatLiesEndsTheProcessBeforeAWrongPageIsUsed) {
  const uint64_t pages = 40; // chunks of pages 0-15, 16-31, 32-39
  snapshot::write_snapshot_file(path_, one_memory_snapshot(pages));
  const std::vector<uint8_t> good = util::read_file(path_);
  if (!lazy_restore_works(GetParam()))
    GTEST_SKIP() << "userfaultfd missing-page handling is not available here";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const std::string error = "tern: error: .*loading memory on demand: the chunk index \\(section "
                            "MIDX at byte [0-9]+\\) says section MEMP at byte [0-9]+ .*, which the "
                            "file does not have";
  // Chunk 1 without page 17 (not a zero page): served as zeros, it would be wrong.
  const std::vector<uint8_t> hides = with_index_changed(good, [](auto& b, size_t e) {
    put_le(b, e + 33 + 24, get_le(b, e + 33 + 24, 8) & ~2ull, 8);
  });
  // Chunk 1 with page 18 (a zero page, not carried).
  const std::vector<uint8_t> invents = with_index_changed(
      good, [](auto& b, size_t e) { put_le(b, e + 33 + 24, get_le(b, e + 33 + 24, 8) | 4ull, 8); });
  for (const auto* bad : {&hides, &invents}) {
    util::write_file_atomic(path_, *bad);
    const uint64_t touched = bad == &hides ? 17 : 18;
    EXPECT_EXIT(
        {
          ::setenv("TERN_LAZY_PREFETCH", "0", 1); // the fault finds it
          runtime::Memory memory(type(pages), GetParam());
          auto lazy = open_lazily(memory);
          const volatile uint8_t byte = memory.base()[touched * kWasmPage + 5];
          (void)byte;
          ::_exit(0);
        },
        ::testing::ExitedWithCode(1), error);
    EXPECT_EXIT(
        {
          runtime::Memory memory(type(pages), GetParam());
          auto lazy = open_lazily(memory); // the prefetch thread finds it
          lazy->finish();
          ::_exit(0);
        },
        ::testing::ExitedWithCode(1), error);
  }
}

INSTANTIATE_TEST_SUITE_P(PrivateAndMirrored, Lazy, ::testing::Bool());

} // namespace
} // namespace tern::test
