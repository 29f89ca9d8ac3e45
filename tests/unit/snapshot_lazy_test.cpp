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
  // The last byte of the last chunk's payload: before its checksum (8
  // bytes) and the TAIL section (16 + 20 + 8 bytes).
  bad[bad.size() - 44 - 8 - 1] ^= 0x01;
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

INSTANTIATE_TEST_SUITE_P(PrivateAndMirrored, Lazy, ::testing::Bool());

} // namespace
} // namespace tern::test
