// Path resolution never leaves the preopened directory, with openat2 and
// with the component walk: `..`, absolute paths, symlinks out (absolute and
// relative, direct and chained), loops, and a directory swapped for a
// symlink while paths are being resolved. Plus the same escapes through the
// path_* calls, checking that nothing outside is created or changed.
#include "wasi/sandbox.h"
#include "wasi_fixture.h"

#include <atomic>
#include <climits>
#include <thread>

namespace tern::test {
namespace {

using wasi::Errno;
using wasi::ResolveMode;

class SandboxTest : public ::testing::TestWithParam<ResolveMode> {
protected:
  void SetUp() override {
    dir_.mkdir("root/sub/deeper");
    dir_.mkdir("outside");
    dir_.write("root/inside.txt", "inside");
    dir_.write("root/sub/deeper/f", "deep");
    dir_.write("outside/secret", "outside");
    dir_.symlink(dir_ / "outside", "root/abs_dir");
    dir_.symlink("../outside", "root/rel_dir");
    dir_.symlink("../../outside/secret", "root/sub/rel_file");
    dir_.symlink(dir_ / "outside/secret", "root/abs_file");
    dir_.symlink("rel_dir/secret", "root/chain");
    dir_.symlink("loop_b", "root/loop_a");
    dir_.symlink("loop_a", "root/loop_b");
    dir_.symlink("sub/deeper/../../inside.txt", "root/inner_link");
    dir_.symlink("sub/deeper", "root/inner_dir");
    root_.reset(::open((dir_ / "root").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(root_);
    if (GetParam() == ResolveMode::Openat2 && !resolver_.uses_openat2())
      GTEST_SKIP() << "the kernel has no openat2";
  }

  Errno open(const std::string& path, int flags = O_RDONLY) {
    util::UniqueFd fd;
    return resolver_.open(root_.get(), path, flags, 0644, fd);
  }
  std::string read(const std::string& path) {
    util::UniqueFd fd;
    if (resolver_.open(root_.get(), path, O_RDONLY, 0, fd) != Errno::success) return "<refused>";
    char buf[64];
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    return std::string(buf, size_t(std::max<ssize_t>(n, 0)));
  }

  TempDir dir_;
  util::UniqueFd root_;
  wasi::PathResolver resolver_{GetParam()};
};

TEST_P(SandboxTest, InsidePathsResolve) {
  EXPECT_EQ(read("inside.txt"), "inside");
  EXPECT_EQ(read("./sub/../inside.txt"), "inside");
  EXPECT_EQ(read("sub//deeper/./f"), "deep");
  EXPECT_EQ(read("inner_link"), "inside");
  EXPECT_EQ(read("inner_dir/f"), "deep");
  EXPECT_EQ(read("inner_dir/../../inside.txt"), "inside") << ".. after a symlink leaves its target";
  EXPECT_EQ(open(".", O_RDONLY | O_DIRECTORY), Errno::success);
  EXPECT_EQ(open("missing"), Errno::noent);
  EXPECT_EQ(open("inside.txt/"), Errno::notdir);
  EXPECT_EQ(open(""), Errno::noent);
}

TEST_P(SandboxTest, EscapesAreRefused) {
  for (const char* path :
       {"..", "../outside/secret", "sub/../../outside/secret", "sub/deeper/../../../outside",
        "/etc/passwd", "/", "abs_dir/secret", "rel_dir/secret", "abs_file", "sub/rel_file", "chain",
        "rel_dir", "inner_dir/../../../outside/secret"}) {
    EXPECT_EQ(open(path), Errno::notcapable) << path;
  }
  EXPECT_EQ(open("loop_a"), Errno::loop);
  EXPECT_EQ(open("rel_dir/new", O_WRONLY | O_CREAT), Errno::notcapable);
  EXPECT_EQ(open("../outside/new", O_WRONLY | O_CREAT), Errno::notcapable);
  EXPECT_FALSE(dir_.exists("outside/new"));
  // Without following, a final symlink is refused rather than followed.
  EXPECT_EQ(open("abs_file", O_RDONLY | O_NOFOLLOW), Errno::loop);
}

TEST_P(SandboxTest, ParentOfAPath) {
  wasi::ParentDir p;
  ASSERT_EQ(resolver_.parent(root_.get(), "sub/deeper/f", false, p), Errno::success);
  EXPECT_EQ(p.name, "f");
  struct stat st;
  EXPECT_EQ(::fstatat(p.fd, p.name.c_str(), &st, 0), 0);
  ASSERT_EQ(resolver_.parent(root_.get(), "top", false, p), Errno::success);
  EXPECT_EQ(p.fd, root_.get()) << "a single name's parent is the root itself";
  ASSERT_EQ(resolver_.parent(root_.get(), "sub/deeper/", false, p), Errno::success);
  EXPECT_EQ(p.name, "deeper");
  EXPECT_TRUE(p.trailing_slash);
  ASSERT_EQ(resolver_.parent(root_.get(), "sub/..", false, p), Errno::success);
  EXPECT_EQ(p.name, ".");
  // Following the final symlink: to inside targets only.
  ASSERT_EQ(resolver_.parent(root_.get(), "inner_link", true, p), Errno::success);
  EXPECT_EQ(p.name, "inside.txt");
  ASSERT_EQ(resolver_.parent(root_.get(), "abs_file", false, p), Errno::success);
  EXPECT_EQ(p.name, "abs_file") << "not following: the link itself";
  EXPECT_EQ(resolver_.parent(root_.get(), "abs_file", true, p), Errno::notcapable);
  EXPECT_EQ(resolver_.parent(root_.get(), "sub/rel_file", true, p), Errno::notcapable);
  EXPECT_EQ(resolver_.parent(root_.get(), "loop_a", true, p), Errno::loop);
  EXPECT_EQ(resolver_.parent(root_.get(), "../x", false, p), Errno::notcapable);
  EXPECT_EQ(resolver_.parent(root_.get(), "/x", false, p), Errno::notcapable);
}

// Both resolvers answer a path the kernel would refuse whole the same way,
// though the walk hands the kernel one short component at a time; a long
// name is too long for both.
TEST_P(SandboxTest, OverlongPathsAreRefusedAlike) {
  std::string deep;
  while (deep.size() < 5000) deep += "sub/../";
  EXPECT_EQ(open(deep + "inside.txt"), Errno::nametoolong);
  EXPECT_EQ(open(deep + "new", O_WRONLY | O_CREAT), Errno::nametoolong);
  wasi::ParentDir p;
  EXPECT_EQ(resolver_.parent(root_.get(), deep + "inside.txt", false, p), Errno::nametoolong);
  EXPECT_EQ(open(std::string(300, 'n')), Errno::nametoolong);
  EXPECT_EQ(open("sub/" + std::string(300, 'n') + "/f"), Errno::nametoolong);
  // Just below the limit, a long path still resolves.
  std::string fits;
  while (fits.size() + 7 + 10 < PATH_MAX) fits += "sub/../";
  EXPECT_EQ(read(fits + "inside.txt"), "inside");
}

// A directory on the path is swapped for symlinks out (absolute and
// relative) while the resolver keeps opening through it: every open either
// fails or reads the inside file.
TEST_P(SandboxTest, DirectorySwappedForSymlinkMidResolution) {
  dir_.mkdir("root/swap_real");
  dir_.write("root/swap_real/secret", "inside-swap");
  dir_.symlink(dir_ / "outside", "root/swap_abs");
  dir_.symlink("../outside", "root/swap_rel");
  std::atomic<bool> stop{false};
  std::atomic<int> swaps{0};
  std::thread swapper([&] {
    auto p = [&](const char* name) { return dir_ / (std::string("root/") + name); };
    while (!stop) {
      for (const char* aside : {"swap_real", "swap_abs", "swap_real", "swap_rel"}) {
        ::rename(p(aside).c_str(), p("swap").c_str());
        ::rename(p("swap").c_str(), p(aside).c_str());
      }
      ++swaps;
    }
  });
  int opened = 0, escaped = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string got = read("swap/secret");
    if (got == "<refused>") continue;
    ++opened;
    if (got != "inside-swap") ++escaped;
  }
  stop = true;
  swapper.join();
  EXPECT_EQ(escaped, 0) << "read a file outside the root (" << opened << " opens)";
  EXPECT_GT(swaps.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Resolvers, SandboxTest,
                         ::testing::Values(ResolveMode::Openat2, ResolveMode::Walk),
                         [](const auto& info) {
                           return info.param == ResolveMode::Walk ? "walk" : "openat2";
                         });

TEST(LexicallyBeneath, SymlinkTargets) {
  using wasi::lexically_beneath;
  EXPECT_TRUE(lexically_beneath("", "a/b"));
  EXPECT_TRUE(lexically_beneath("sub/", "../a"));
  EXPECT_TRUE(lexically_beneath("sub/x/", "../../a"));
  EXPECT_FALSE(lexically_beneath("", "../a"));
  EXPECT_FALSE(lexically_beneath("sub/", "../../a"));
  EXPECT_FALSE(lexically_beneath("", "/etc"));
  EXPECT_FALSE(lexically_beneath("", "a/../../b"));
  EXPECT_TRUE(lexically_beneath("", "a/../b"));
}

// The path_* calls refuse to act outside, and nothing outside changes.
class WasiEscapeTest : public WasiTest, public ::testing::WithParamInterface<ResolveMode> {
protected:
  void SetUp() override {
    wasi::WasiOptions o;
    o.resolve_mode = GetParam();
    start(std::move(o));
    dir_.write("outside/secret", "outside");
    dir_.write("sandbox/inside", "inside");
    dir_.symlink(dir_ / "outside", "sandbox/abs_dir");
    dir_.symlink("../outside/secret", "sandbox/rel_file");
  }
};

TEST_P(WasiEscapeTest, PathCallsRefuseToLeave) {
  auto c = call();
  auto one = [&](const std::string& path, auto fn) {
    uint32_t len = put(kPath, path);
    return fn(len).err;
  };
  auto two = [&](const std::string& a, const std::string& b, auto fn) {
    uint32_t la = put(kPath, a), lb = put(kPath2, b);
    return fn(la, lb).err;
  };
  using namespace wasi::calls;
  const uint32_t fd = kPreopenFd, follow = wasi::lookupflag::symlink_follow;
  for (std::string out : {"../outside/x", "abs_dir/x", "/tmp/x"}) {
    EXPECT_EQ(one(out, [&](uint32_t n) { return path_create_directory(c, fd, kPath, n); }),
              Errno::notcapable)
        << out;
    EXPECT_EQ(one(out,
                  [&](uint32_t n) {
                    return path_open(c, fd, follow, kPath, n, wasi::oflag::creat,
                                     wasi::right::fd_write, 0, 0, kOut);
                  }),
              Errno::notcapable)
        << out;
    EXPECT_EQ(
        two("inside", out,
            [&](uint32_t a, uint32_t b) { return path_rename(c, fd, kPath, a, fd, kPath2, b); }),
        Errno::notcapable)
        << out;
    EXPECT_EQ(
        two("inside", out,
            [&](uint32_t a, uint32_t b) { return path_link(c, fd, 0, kPath, a, fd, kPath2, b); }),
        Errno::notcapable)
        << out;
  }
  EXPECT_EQ(
      two("../outside/secret", "stolen",
          [&](uint32_t a, uint32_t b) { return path_link(c, fd, 0, kPath, a, fd, kPath2, b); }),
      Errno::notcapable);
  EXPECT_EQ(two("rel_file", "stolen",
                [&](uint32_t a, uint32_t b) {
                  return path_link(c, fd, follow, kPath, a, fd, kPath2, b);
                }),
            Errno::notcapable);
  EXPECT_EQ(
      two("abs_dir/secret", "moved_in",
          [&](uint32_t a, uint32_t b) { return path_rename(c, fd, kPath, a, fd, kPath2, b); }),
      Errno::notcapable);
  EXPECT_EQ(two("/etc/passwd", "evil",
                [&](uint32_t a, uint32_t b) { return path_symlink(c, kPath, a, fd, kPath2, b); }),
            Errno::notcapable);
  EXPECT_EQ(two("../outside", "evil",
                [&](uint32_t a, uint32_t b) { return path_symlink(c, kPath, a, fd, kPath2, b); }),
            Errno::notcapable);
  EXPECT_EQ(one("../outside/secret", [&](uint32_t n) { return path_unlink_file(c, fd, kPath, n); }),
            Errno::notcapable);
  EXPECT_EQ(one("abs_dir/secret", [&](uint32_t n) { return path_unlink_file(c, fd, kPath, n); }),
            Errno::notcapable);
  EXPECT_EQ(one("rel_file",
                [&](uint32_t n) {
                  return path_filestat_set_times(c, fd, follow, kPath, n, 0, 0,
                                                 wasi::fstflag::mtim_now);
                }),
            Errno::notcapable);
  EXPECT_EQ(
      one("rel_file", [&](uint32_t n) { return path_filestat_get(c, fd, follow, kPath, n, kOut); }),
      Errno::notcapable);

  // Nothing outside was created, removed or changed; nothing came inside.
  std::vector<std::string> outside;
  for (const auto& e : std::filesystem::directory_iterator(dir_ / "outside"))
    outside.push_back(e.path().filename());
  EXPECT_EQ(outside, std::vector<std::string>{"secret"});
  EXPECT_EQ(dir_.read("outside/secret"), "outside");
  EXPECT_TRUE(dir_.exists("sandbox/inside"));
  EXPECT_FALSE(dir_.exists("sandbox/stolen"));
  EXPECT_FALSE(dir_.exists("sandbox/moved_in"));
  EXPECT_FALSE(dir_.exists("sandbox/evil"));
}

INSTANTIATE_TEST_SUITE_P(Resolvers, WasiEscapeTest,
                         ::testing::Values(ResolveMode::Openat2, ResolveMode::Walk),
                         [](const auto& info) {
                           return info.param == ResolveMode::Walk ? "walk" : "openat2";
                         });

} // namespace
} // namespace tern::test
