// Dirty-page tracking (runtime/dirty_pages.h), each mechanism forced in
// turn: what a collect reports after writes by host code, by system calls,
// by each engine's code (memory.fill, memory.grow, stores through a
// mirrored memory's views); growth; independent logs; a forked child; and
// pre-copy rounds racing a writer thread, which must converge on the exact
// memory.
#include "runtime/dirty_pages.h"
#include "runtime/memory.h"
#include "runtime/store.h"
#include "runtime/thread.h"
#include "tern/error.h"
#include "test_engines.h"
#include "util/pagemap.h"
#include "wasm/decoder.h"
#include "wasm/validator.h"
#include "wat.h"

#include <atomic>
#include <cstdlib>
#include <gtest/gtest.h>
#include <random>
#include <set>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace tern {
namespace {

using runtime::DirtyMechanism;
using runtime::DirtyPages;
using runtime::Memory;

constexpr uint64_t kPage = wasm::kPageSize;

wasm::MemoryType memory_type(uint64_t pages, std::optional<uint64_t> max = std::nullopt) {
  wasm::MemoryType t;
  t.limits.min = pages;
  t.limits.max = max;
  return t;
}

// The wasm pages a collect reported.
std::set<uint64_t> wasm_pages(const DirtyPages& d) {
  std::set<uint64_t> out;
  const std::vector<bool> pages = d.wasm_pages();
  for (uint64_t i = 0; i < pages.size(); ++i)
    if (pages[i]) out.insert(i);
  return out;
}

std::set<uint64_t> all_pages(uint64_t n) {
  std::set<uint64_t> out;
  for (uint64_t i = 0; i < n; ++i) out.insert(i);
  return out;
}

class DirtyPagesTest : public ::testing::TestWithParam<DirtyMechanism> {
protected:
  void SetUp() override {
    if (GetParam() == DirtyMechanism::Userfaultfd) {
      std::string why_not;
      if (!util::KernelWriteTracker::open(why_not))
        GTEST_SKIP() << "userfaultfd write tracking is not available here: " << why_not;
    }
  }
  runtime::DirtyLog open(Memory& m) { return m.open_dirty_log(GetParam()); }
};

TEST_P(DirtyPagesTest, FirstCollectReportsEveryPageThenOnlyWhatWasWritten) {
  Memory m(memory_type(8));
  m.base()[3 * kPage] = 1; // before tracking
  auto log = open(m);
  EXPECT_EQ(log.mechanism(), GetParam());
  DirtyPages first = log.collect();
  EXPECT_EQ(first.pages * first.page_size, 8 * kPage);
  EXPECT_EQ(first.previous_pages, 0u);
  EXPECT_EQ(wasm_pages(first), all_pages(8));
  EXPECT_TRUE(wasm_pages(log.collect()).empty());

  m.base()[0] = 1;
  m.base()[5 * kPage + 1234] = 7;
  m.base()[7 * kPage + kPage - 1] = 9;
  DirtyPages d = log.collect();
  EXPECT_EQ(wasm_pages(d), (std::set<uint64_t>{0, 5, 7}));
  EXPECT_EQ(d.previous_pages, d.pages);
  EXPECT_TRUE(wasm_pages(log.collect()).empty());
}

// userfaultfd and hashing see single host pages; mprotect whole wasm pages.
TEST_P(DirtyPagesTest, ReportsHostPagesAtTheMechanismsGranularity) {
  Memory m(memory_type(2));
  auto log = open(m);
  log.collect();
  const uint64_t host = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  m.base()[kPage + host + 5] = 1;
  DirtyPages d = log.collect();
  const uint64_t expected = GetParam() == DirtyMechanism::Mprotect ? kPage / host : 1;
  EXPECT_EQ(d.count(), expected);
  EXPECT_TRUE(d.test((kPage + host) / host));
  EXPECT_TRUE(d.any(kPage + host + 5, 1));
  EXPECT_FALSE(d.any(0, kPage));
}

// A system call writing into memory (fd_read) is a write like any other,
// once announced: mprotect tracking needs the announcement, or the kernel
// finds the page read-only and fails the call.
TEST_P(DirtyPagesTest, SystemCallsWritingIntoMemoryAreTracked) {
  Memory m(memory_type(4));
  auto log = open(m);
  log.collect();
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ASSERT_EQ(::write(fds[1], "hello", 5), 5);
  m.before_host_write(2 * kPage + 100, 5);
  EXPECT_EQ(::read(fds[0], m.base() + 2 * kPage + 100, 5), 5);
  EXPECT_EQ(std::memcmp(m.base() + 2 * kPage + 100, "hello", 5), 0);
  EXPECT_EQ(wasm_pages(log.collect()), std::set<uint64_t>{2});
  if (GetParam() == DirtyMechanism::Mprotect) {
    ASSERT_EQ(::write(fds[1], "again", 5), 5);
    EXPECT_EQ(::read(fds[0], m.base() + 2 * kPage + 100, 5), -1); // not announced
    EXPECT_EQ(errno, EFAULT);
  }
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_P(DirtyPagesTest, GrownPagesAreReportedAsNewThenTracked) {
  Memory m(memory_type(2, 16));
  auto log = open(m);
  log.collect();
  ASSERT_EQ(m.grow(3), 2);
  DirtyPages d = log.collect();
  EXPECT_EQ(d.previous_pages * d.page_size, 2 * kPage);
  EXPECT_EQ(d.pages * d.page_size, 5 * kPage);
  EXPECT_EQ(wasm_pages(d), (std::set<uint64_t>{2, 3, 4}));
  m.base()[4 * kPage + 8] = 1;
  m.base()[kPage] = 1;
  EXPECT_EQ(wasm_pages(log.collect()), (std::set<uint64_t>{1, 4}));
  EXPECT_TRUE(wasm_pages(log.collect()).empty());
}

// A thread of a shared memory grows it while another collects: each
// collect reports within the size it started from (the pages added
// meanwhile come as new in a later one), so nothing is written past its
// bits (ASan) and, at the end, every page written was reported.
TEST_P(DirtyPagesTest, CollectsWhileAnotherThreadGrows) {
  constexpr uint64_t kMax = 64;
  wasm::MemoryType type = memory_type(1, kMax);
  type.limits.shared = true;
  Memory m(type);
  auto log = open(m);
  std::set<uint64_t> reported = wasm_pages(log.collect());
  std::atomic<bool> done{false};
  std::thread grower([&] {
    for (uint64_t p = 1; p < kMax; ++p) {
      ASSERT_EQ(m.grow(1), static_cast<int64_t>(p));
      m.base()[p * kPage + 16] = 1;
    }
    done = true;
  });
  while (!done) reported.merge(wasm_pages(log.collect()));
  grower.join();
  reported.merge(wasm_pages(log.collect()));
  EXPECT_EQ(reported, all_pages(kMax));
}

// Compiled code with wide addresses writes through the mirror views.
TEST_P(DirtyPagesTest, MirroredMemoryIsTrackedInEveryView) {
  Memory m(memory_type(4, 16), /*mirrored=*/true);
  if (!m.mirrored()) GTEST_SKIP() << "no mirrored memory on this host";
  auto log = open(m);
  log.collect();
  m.mirror_base()[1 * kPage] = 1;
  m.mirror_base()[2 * Memory::kMirrorStride + 3 * kPage] = 2;
  EXPECT_EQ(wasm_pages(log.collect()), (std::set<uint64_t>{1, 3}));
  EXPECT_EQ(m.base()[3 * kPage], 2);
  ASSERT_EQ(m.grow(2), 4);
  EXPECT_EQ(wasm_pages(log.collect()), (std::set<uint64_t>{4, 5}));
  m.mirror_base()[Memory::kMirrorStride + 5 * kPage] = 3;
  m.base()[2 * kPage] = 4;
  EXPECT_EQ(wasm_pages(log.collect()), (std::set<uint64_t>{2, 5}));
}

TEST_P(DirtyPagesTest, LogsAreIndependent) {
  Memory m(memory_type(4));
  auto a = open(m);
  a.collect();
  auto b = open(m);
  EXPECT_EQ(wasm_pages(b.collect()), all_pages(4)); // a new log knows nothing
  m.base()[1 * kPage] = 1;
  EXPECT_EQ(wasm_pages(a.collect()), std::set<uint64_t>{1});
  m.base()[2 * kPage] = 1;
  EXPECT_EQ(wasm_pages(b.collect()), (std::set<uint64_t>{1, 2}));
  EXPECT_EQ(wasm_pages(a.collect()), std::set<uint64_t>{2});
}

TEST_P(DirtyPagesTest, ClosingTheLastLogStopsTracking) {
  Memory m(memory_type(2));
  {
    auto log = open(m);
    log.collect();
  }
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ASSERT_EQ(::write(fds[1], "x", 1), 1);
  EXPECT_EQ(::read(fds[0], m.base() + kPage, 1), 1); // writable without announcement
  ::close(fds[0]);
  ::close(fds[1]);
  auto log = open(m);
  EXPECT_EQ(wasm_pages(log.collect()), all_pages(2));
}

// A background checkpoint's child writes nothing that the parent's tracking
// sees, and the parent's writes while the child lives are tracked.
TEST_P(DirtyPagesTest, ForkedChildrenDoNotDisturbTracking) {
  Memory m(memory_type(8));
  auto log = open(m);
  log.collect();
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    char c;
    if (::read(go[0], &c, 1) != 1) ::_exit(2);
    // The parent wrote page 6 after the fork: the child sees its own copy.
    ::_exit(m.base()[6 * kPage] == 0 ? 0 : 3);
  }
  ASSERT_GT(pid, 0);
  m.base()[6 * kPage] = 1;
  ASSERT_EQ(::write(go[1], "g", 1), 1);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(wasm_pages(log.collect()), std::set<uint64_t>{6});
  ::close(go[0]);
  ::close(go[1]);
}

// Pre-copy: rounds of "collect, then copy what it reports" while a thread
// writes; after the writer stops, one last round makes the copy exact.
TEST_P(DirtyPagesTest, PreCopyRoundsConvergeOnTheMemory) {
  constexpr uint64_t kPages = 64;
  Memory m(memory_type(kPages, 128));
  std::vector<uint8_t> copy(kPages * kPage);
  auto log = open(m);
  auto copy_round = [&] {
    DirtyPages d = log.collect();
    for (uint64_t p = 0; p < d.pages; ++p)
      if (d.test(p))
        std::memcpy(copy.data() + p * d.page_size, m.base() + p * d.page_size, d.page_size);
  };
  copy_round();
  std::atomic<bool> done{false};
  std::thread writer([&] {
    std::mt19937_64 rng(42);
    for (int i = 0; i < 20'000; ++i) {
      const uint64_t at = rng() % (kPages * kPage - 8);
      const uint64_t v = rng();
      std::memcpy(m.base() + at, &v, 8);
    }
    done = true;
  });
  int rounds = 0;
  while (!done) {
    copy_round();
    ++rounds;
  }
  writer.join();
  copy_round(); // the program is stopped: exact
  EXPECT_EQ(std::memcmp(copy.data(), m.base(), copy.size()), 0) << "after " << rounds << " rounds";
}

INSTANTIATE_TEST_SUITE_P(Mechanisms, DirtyPagesTest,
                         ::testing::Values(DirtyMechanism::Userfaultfd, DirtyMechanism::Mprotect,
                                           DirtyMechanism::Hash),
                         [](const auto& info) {
                           return std::string(runtime::mechanism_name(info.param));
                         });

TEST(DirtyPages, TheEnvironmentChoosesTheMechanism) {
  ::setenv("TERN_DIRTY_TRACKING", "hash", 1);
  {
    Memory m(memory_type(1));
    EXPECT_EQ(m.open_dirty_log().mechanism(), DirtyMechanism::Hash);
  }
  ::setenv("TERN_DIRTY_TRACKING", "bogus", 1);
  {
    Memory m(memory_type(1));
    EXPECT_THROW(m.open_dirty_log(), Error);
  }
  ::unsetenv("TERN_DIRTY_TRACKING");
  Memory m(memory_type(1));
  auto log = m.open_dirty_log();
  std::string why_not;
  const bool kernel = util::KernelWriteTracker::open(why_not) != nullptr;
  EXPECT_EQ(log.mechanism(), kernel ? DirtyMechanism::Userfaultfd : DirtyMechanism::Mprotect)
      << log.description();
  EXPECT_THROW(m.open_dirty_log(DirtyMechanism::Hash), Error); // one mechanism at a time
}

// --- In every engine ------------------------------------------------------

// Stores, memory.fill (a helper in compiled code), memory.grow and a store
// to a new page; then an out-of-bounds store, which must trap, not be taken
// for a tracked write.
constexpr const char* kWriter = R"(
(module
  (memory (export "memory") 4 16)
  (func (export "write") (param $page i32)
    (i32.store (i32.mul (local.get $page) (i32.const 65536)) (i32.const 7)))
  (func (export "fill")
    (memory.fill (i32.const 131072) (i32.const 1) (i32.const 100)))
  (func (export "grow_and_write")
    (drop (memory.grow (i32.const 2)))
    (i32.store8 (i32.const 327680) (i32.const 5)))
  (func (export "out_of_bounds")
    (i32.store (i32.const 1000000) (i32.const 1))))
)";

class DirtyPagesInEngines
    : public ::testing::TestWithParam<std::tuple<std::string, DirtyMechanism>> {};

TEST_P(DirtyPagesInEngines, CompiledAndInterpretedWritesAreTrackedAndTrapsStayTraps) {
  const auto& [mode, mechanism] = GetParam();
  if (mechanism == DirtyMechanism::Userfaultfd) {
    std::string why_not;
    if (!util::KernelWriteTracker::open(why_not)) GTEST_SKIP() << why_not;
  }
  auto module = std::make_shared<wasm::Module>(wasm::decode_module(test::wat_to_wasm(kWriter)));
  wasm::validate_module(*module);
  runtime::Store store(test::make_engine(mode));
  runtime::Thread thread(store);
  runtime::ModuleInstance* inst = store.instantiate(module, {}, thread);
  Memory& mem = *inst->memory0();
  EXPECT_EQ(mem.mirrored(), mode == "aot-wide");
  auto log = mem.open_dirty_log(mechanism);
  log.collect();
  auto call = [&](const char* name, std::vector<runtime::Slot> args = {}) {
    return store.engine().call(thread, inst->find_func_export(name), args, {});
  };
  using Kind = runtime::ExecOutcome::Kind;
  ASSERT_EQ(call("write", {1}).kind, Kind::Returned);
  ASSERT_EQ(call("write", {3}).kind, Kind::Returned);
  EXPECT_EQ(wasm_pages(log.collect()), (std::set<uint64_t>{1, 3}));
  ASSERT_EQ(call("fill").kind, Kind::Returned);
  EXPECT_EQ(wasm_pages(log.collect()), std::set<uint64_t>{2});
  ASSERT_EQ(call("grow_and_write").kind, Kind::Returned);
  DirtyPages d = log.collect();
  EXPECT_EQ(d.previous_pages * d.page_size, 4 * kPage);
  EXPECT_EQ(wasm_pages(d), (std::set<uint64_t>{4, 5}));
  ASSERT_EQ(call("write", {5}).kind, Kind::Returned);
  EXPECT_EQ(wasm_pages(log.collect()), std::set<uint64_t>{5});
  runtime::ExecOutcome trap = call("out_of_bounds");
  ASSERT_EQ(trap.kind, Kind::Trapped);
  EXPECT_EQ(trap.trap.message, "out of bounds memory access");
  EXPECT_EQ(mem.base()[5 * kPage], 7);
  EXPECT_EQ(mem.base()[2 * kPage + 99], 1);
}

INSTANTIATE_TEST_SUITE_P(Engines, DirtyPagesInEngines,
                         ::testing::Combine(::testing::ValuesIn(test::engine_modes()),
                                            ::testing::Values(DirtyMechanism::Userfaultfd,
                                                              DirtyMechanism::Mprotect,
                                                              DirtyMechanism::Hash)),
                         [](const auto& info) {
                           std::string mode = std::get<0>(info.param);
                           std::replace(mode.begin(), mode.end(), '-', '_');
                           return mode + "_" +
                                  std::string(runtime::mechanism_name(std::get<1>(info.param)));
                         });

} // namespace
} // namespace tern
