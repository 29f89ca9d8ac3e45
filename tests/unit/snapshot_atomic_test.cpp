// Writing snapshot files: a writer killed with SIGKILL in the middle leaves
// the previous snapshot intact, and a forked background writer saves the
// state as of the fork even while the parent keeps changing it.
#include "snapshot/background.h"
#include "snapshot/format.h"
#include "snapshot_test_util.h"
#include "tern/error.h"
#include "util/file.h"

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <gtest/gtest.h>
#include <random>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace tern::test {
namespace {

// A fresh directory of its own for each test (not the shared TempDir()).
std::string fresh_dir() {
  std::string base = ::testing::TempDir();
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  std::string pattern = base + "/tern-atomic-XXXXXX";
  EXPECT_NE(::mkdtemp(pattern.data()), nullptr);
  return pattern;
}

uint64_t file_size(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// The size of the largest unnamed file (O_TMPFILE) process `pid` has open
// in `dir`, seen through /proc: "DIR/#INODE (deleted)".
uint64_t unnamed_file_size(pid_t pid, const std::string& dir) {
  uint64_t largest = 0;
  const std::string fds = fmt::format("/proc/{}/fd", pid);
  for (const auto& e : std::filesystem::directory_iterator(fds)) {
    std::error_code ec;
    const std::string target = std::filesystem::read_symlink(e.path(), ec).string();
    if (!ec && target.starts_with(dir + "/#"))
      largest = std::max(largest, file_size(e.path().string()));
  }
  return largest;
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

TEST(SnapshotAtomicWrite, KilledWriterLeavesThePreviousSnapshotAndNothingElse) {
  const std::string dir = fresh_dir();
  const std::string path = dir + "/killed.snap";
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
  // The new snapshot is half written, in a file no name reaches.
  EXPECT_GE(unnamed_file_size(child, dir), 1u << 20);
  EXPECT_EQ(entries(dir), std::vector<std::string>{"killed.snap"});
  ::kill(child, SIGKILL);
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status));

  EXPECT_EQ(util::read_file(path), previous);
  const snapshot::Snapshot s = snapshot::read_snapshot_file(path);
  EXPECT_EQ(s.threads.size(), 3u);
  EXPECT_EQ(s.memories[0].pages, 3u);
  EXPECT_EQ(entries(dir), std::vector<std::string>{"killed.snap"}) << "nothing left behind";
  std::filesystem::remove_all(dir);
}

TEST(SnapshotAtomicWrite, FailedWriteLeavesNothing) {
  const std::string dir = fresh_dir();
  const std::string path = dir + "/failed.snap";
  snapshot::write_snapshot_file(path, sample_snapshot());
  const auto previous = util::read_file(path);
  snapshot::Snapshot bad = sample_snapshot();
  bad.memories[0].contents = {}; // the writer refuses this after a few sections
  EXPECT_THROW(snapshot::write_snapshot_file(path, bad), Error);
  EXPECT_EQ(util::read_file(path), previous);
  EXPECT_EQ(entries(dir), std::vector<std::string>{"failed.snap"});
  std::filesystem::remove_all(dir);
}

TEST(SnapshotAtomicWrite, SnapshotsArePrivate) {
  const std::string dir = fresh_dir();
  const std::string path = dir + "/private.snap";
  const mode_t old_umask = ::umask(0);
  snapshot::write_snapshot_file(path, sample_snapshot());
  ::umask(old_umask);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u) << "even under umask 0";
  std::filesystem::remove_all(dir);
}

// What a writer killed between naming its file and renaming it leaves
// (or one on a file system without O_TMPFILE) is removed by the next write
// of the same file, once its writer is gone; nothing else is.
TEST(SnapshotAtomicWrite, StaleTemporaryFilesOfDeadWritersAreRemoved) {
  const std::string dir = fresh_dir();
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(dead, nullptr, 0), dead);
  auto temp = [](const std::string& target, pid_t pid) {
    return fmt::format(".{}.tern-tmp.{}.0123456789abcdef", target, pid);
  };
  const std::string stale = temp("x.snap", dead), alive = temp("x.snap", ::getppid()),
                    other = temp("y.snap", dead), link = temp("x.snap", dead + 1);
  for (const std::string& name : {stale, alive, other})
    ASSERT_TRUE(std::ofstream(dir + "/" + name) << "old");
  ASSERT_EQ(::symlink("x.snap", (dir + "/" + link).c_str()), 0);
  EXPECT_EQ(util::atomic_temp_owner(stale, "x.snap"), dead);
  EXPECT_EQ(util::atomic_temp_owner(other, "x.snap"), std::nullopt);
  EXPECT_EQ(util::atomic_temp_owner("x.snap.tmp.12", "x.snap"), std::nullopt);

  snapshot::write_snapshot_file(dir + "/x.snap", sample_snapshot());
  auto left = entries(dir);
  EXPECT_EQ(std::count(left.begin(), left.end(), stale), 0) << "its writer is gone";
  EXPECT_EQ(std::count(left.begin(), left.end(), alive), 1) << "its writer may be at work";
  EXPECT_EQ(std::count(left.begin(), left.end(), other), 1) << "another file's";
  EXPECT_EQ(std::count(left.begin(), left.end(), link), 1) << "not a file tern made";
  std::filesystem::remove_all(dir);
}

// Names planted in the directory are never written through: the old
// predictable temporary name and the target itself as symlinks to a file
// elsewhere.
TEST(SnapshotAtomicWrite, PlantedSymlinksAreNotFollowed) {
  const std::string dir = fresh_dir(), elsewhere = fresh_dir();
  const std::string victim = elsewhere + "/victim";
  ASSERT_TRUE(std::ofstream(victim) << "precious");
  const std::string path = dir + "/s.snap";
  ASSERT_EQ(::symlink(victim.c_str(), (path + ".tmp." + std::to_string(::getpid())).c_str()), 0);
  ASSERT_EQ(::symlink(victim.c_str(), path.c_str()), 0);
  snapshot::write_snapshot_file(path, sample_snapshot());
  EXPECT_EQ(util::read_file(victim),
            std::vector<uint8_t>({'p', 'r', 'e', 'c', 'i', 'o', 'u', 's'}));
  struct stat st;
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode)) << "the planted link is replaced, not followed";
  EXPECT_EQ(snapshot::read_snapshot_file(path).threads.size(), 3u);
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(elsewhere);
}

TEST(SnapshotBackgroundWrite, WritesTheStateAsOfTheFork) {
  const std::string dir = fresh_dir();
  const std::string path = dir + "/background.snap";
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
  std::filesystem::remove_all(dir);
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
