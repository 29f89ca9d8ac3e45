// Writing snapshot files: a writer killed with SIGKILL in the middle leaves
// the previous snapshot intact, and a forked background writer saves the
// state as of the fork even while the parent keeps changing it.
#include <csignal>
#include <random>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "snapshot/background.h"
#include "snapshot/format.h"
#include "snapshot_test_util.h"
#include "tern/error.h"
#include "util/file.h"

namespace tern::test {
namespace {

std::string temp_path(const std::string& name) {
  std::string path = ::testing::TempDir() + "/" + name;
  ::unlink(path.c_str());
  return path;
}

uint64_t file_size(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// 8 MiB of incompressible memory: a write of several chunks.
snapshot::Snapshot large_snapshot() {
  snapshot::Snapshot s = sample_snapshot();
  s.memories = {owned_memory(128)};
  uint8_t* bytes = mutable_bytes(s.memories[0]);
  std::mt19937_64 rng(7);
  for (uint64_t i = 0; i < 128 * kWasmPage; i += 8) {
    uint64_t v = rng();
    std::memcpy(bytes + i, &v, 8);
  }
  return s;
}

TEST(SnapshotAtomicWrite, KilledWriterLeavesThePreviousSnapshotIntact) {
  const std::string path = temp_path("killed.snap");
  snapshot::write_snapshot_file(path, sample_snapshot());
  const auto previous = util::read_file(path);

  const snapshot::Snapshot large = large_snapshot();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Stop (deterministically) once 2 MiB are written; the parent kills us.
    snapshot::WriteOptions options;
    options.compress = false;
    options.progress = [](uint64_t written) {
      if (written >= (2u << 20)) ::raise(SIGSTOP);
    };
    try {
      snapshot::write_snapshot_file(path, large, options);
    } catch (...) {
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, WUNTRACED), child);
  ASSERT_TRUE(WIFSTOPPED(status));
  // The new snapshot is half written next to the old one.
  const std::string tmp = path + ".tmp." + std::to_string(child);
  EXPECT_GE(file_size(tmp), 1u << 20);
  ::kill(child, SIGKILL);
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status));

  EXPECT_EQ(util::read_file(path), previous);
  const snapshot::Snapshot s = snapshot::read_snapshot_file(path);
  EXPECT_EQ(s.threads.size(), 3u);
  EXPECT_EQ(s.memories[0].pages, 3u);
  ::unlink(tmp.c_str());
}

TEST(SnapshotAtomicWrite, FailedWriteRemovesItsTemporaryFile) {
  const std::string path = temp_path("failed.snap");
  snapshot::write_snapshot_file(path, sample_snapshot());
  const auto previous = util::read_file(path);
  snapshot::Snapshot bad = sample_snapshot();
  bad.memories[0].contents = {}; // the writer refuses this after a few sections
  EXPECT_THROW(snapshot::write_snapshot_file(path, bad), Error);
  EXPECT_EQ(util::read_file(path), previous);
  EXPECT_EQ(file_size(util::atomic_temp_path(path)), 0u);
}

TEST(SnapshotBackgroundWrite, WritesTheStateAsOfTheFork) {
  const std::string path = temp_path("background.snap");
  snapshot::Snapshot s = large_snapshot();
  uint8_t* memory = mutable_bytes(s.memories[0]);
  const std::vector<uint8_t> before(memory, memory + s.memories[0].contents.data.size());
  snapshot::WriteOptions options;
  options.threads = 2;
  snapshot::BackgroundWrite writer = snapshot::start_background_write(path, s, options);
  EXPECT_TRUE(writer.forked());
  // The program goes on changing memory while the child writes.
  std::memset(memory, 0x77, before.size());
  writer.wait();
  EXPECT_TRUE(writer.finished());
  const snapshot::Snapshot read = snapshot::read_snapshot_file(path);
  EXPECT_TRUE(std::ranges::equal(read.memories[0].contents.data, before));
}

TEST(SnapshotBackgroundWrite, ReportsTheWritersError) {
  const std::string path = ::testing::TempDir() + "/no-such-dir/x.snap";
  snapshot::BackgroundWrite writer = snapshot::start_background_write(path, sample_snapshot());
  try {
    writer.wait();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot create"), std::string::npos) << e.what();
  }
  EXPECT_THROW(writer.wait(), Error); // the outcome stays
}

} // namespace
} // namespace tern::test
