// The wasi_snapshot_preview1 calls against a real directory and a guest
// memory: structure layouts byte by byte, errno results, rights, EFAULT.
#include "wasi/abi.h"
#include "wasi/calls.h"
#include "wasi_fixture.h"

#include <algorithm>
#include <set>
#include <sys/resource.h>
#include <sys/socket.h>

namespace tern::test {
namespace {

using wasi::Errno;
namespace calls = wasi::calls;
namespace right = wasi::right;
namespace oflag = wasi::oflag;

constexpr wasi::Rights kReadWrite = right::fd_read | right::fd_write | right::fd_seek |
                                    right::fd_tell | right::fd_filestat_get |
                                    right::fd_fdstat_set_flags;

TEST_F(WasiTest, PreopenIsFdThreeWithItsGuestName) {
  auto c = call();
  ASSERT_EQ(calls::fd_prestat_get(c, kPreopenFd, kOut).err, Errno::success);
  EXPECT_EQ(load<uint8_t>(kOut), 0);                                   // tag: dir
  EXPECT_EQ(load<uint32_t>(kOut + 4), std::string("/sandbox").size()); // pr_name_len
  ASSERT_EQ(calls::fd_prestat_dir_name(c, kPreopenFd, kPath, 8).err, Errno::success);
  EXPECT_EQ(get(kPath, 8), "/sandbox");
  EXPECT_EQ(calls::fd_prestat_dir_name(c, kPreopenFd, kPath, 3).err, Errno::nametoolong);
  // Not preopens: stdout, and a number nothing is open at.
  EXPECT_EQ(calls::fd_prestat_get(c, 1, kOut).err, Errno::badf);
  EXPECT_EQ(calls::fd_prestat_get(c, 4, kOut).err, Errno::badf);
}

TEST_F(WasiTest, FdstatLayout) {
  auto c = call();
  std::memset(mem() + kOut, 0xAA, 24);
  ASSERT_EQ(calls::fd_fdstat_get(c, kPreopenFd, kOut).err, Errno::success);
  EXPECT_EQ(load<uint8_t>(kOut + 0), uint8_t(wasi::FileType::directory));
  EXPECT_EQ(load<uint16_t>(kOut + 2), 0); // fdflags
  EXPECT_EQ(load<uint64_t>(kOut + 8), right::directory);
  EXPECT_EQ(load<uint64_t>(kOut + 16), right::directory | right::regular_file);

  uint32_t fd = open("f.txt", oflag::creat, kReadWrite, wasi::fdflag::append);
  ASSERT_EQ(calls::fd_fdstat_get(c, fd, kOut).err, Errno::success);
  EXPECT_EQ(load<uint8_t>(kOut), uint8_t(wasi::FileType::regular_file));
  EXPECT_EQ(load<uint16_t>(kOut + 2), wasi::fdflag::append);
  EXPECT_EQ(load<uint64_t>(kOut + 8), kReadWrite);
}

TEST_F(WasiTest, FilestatLayout) {
  dir_.write("sandbox/data.bin", std::string(1234, 'x'));
  struct stat host;
  ASSERT_EQ(::stat((dir_ / "sandbox/data.bin").c_str(), &host), 0);
  auto c = call();
  const uint32_t kStat = kBuf + 256; // apart from where open() leaves its fd
  uint32_t len = put(kPath, "data.bin");
  ASSERT_EQ(calls::path_filestat_get(c, kPreopenFd, 0, kPath, len, kStat).err, Errno::success);
  EXPECT_EQ(load<uint64_t>(kStat + 0), uint64_t(host.st_dev));
  EXPECT_EQ(load<uint64_t>(kStat + 8), uint64_t(host.st_ino));
  EXPECT_EQ(load<uint8_t>(kStat + 16), uint8_t(wasi::FileType::regular_file));
  EXPECT_EQ(load<uint64_t>(kStat + 24), 1u); // nlink
  EXPECT_EQ(load<uint64_t>(kStat + 32), 1234u);
  EXPECT_EQ(load<uint64_t>(kStat + 48),
            uint64_t(host.st_mtim.tv_sec) * 1000000000u + uint64_t(host.st_mtim.tv_nsec));

  uint32_t fd = open("data.bin", 0, right::fd_read | right::fd_filestat_get);
  std::memset(mem() + kBuf, 0, 64);
  ASSERT_EQ(calls::fd_filestat_get(c, fd, kBuf).err, Errno::success);
  EXPECT_EQ(0, std::memcmp(mem() + kStat, mem() + kBuf, 64)) << "path and fd stat differ";
}

TEST_F(WasiTest, ReadWriteSeekTell) {
  uint32_t fd = open("rw.txt", oflag::creat | oflag::trunc, kReadWrite);
  ASSERT_EQ(write(fd, "hello, world"), Errno::success);
  auto c = call();
  ASSERT_EQ(calls::fd_seek(c, fd, 7, uint32_t(wasi::Whence::set), kOut).err, Errno::success);
  EXPECT_EQ(load<uint64_t>(kOut), 7u);
  EXPECT_EQ(read(fd), "world");
  ASSERT_EQ(calls::fd_seek(c, fd, uint64_t(-5), uint32_t(wasi::Whence::end), kOut).err,
            Errno::success);
  EXPECT_EQ(load<uint64_t>(kOut), 7u);
  ASSERT_EQ(calls::fd_tell(c, fd, kOut).err, Errno::success);
  EXPECT_EQ(load<uint64_t>(kOut), 7u);
  EXPECT_EQ(calls::fd_seek(c, fd, 0, 3, kOut).err, Errno::inval); // no such whence
  EXPECT_EQ(dir_.read("sandbox/rw.txt"), "hello, world");
}

TEST_F(WasiTest, ScatterGatherAcrossIovecs) {
  uint32_t fd = open("iov.txt", oflag::creat, kReadWrite);
  auto c = call();
  put(kBuf, "abc");
  put(kBuf + 100, "defg");
  iovec_at(kIov, kBuf, 3);
  iovec_at(kIov + 8, kBuf + 100, 0); // empty ones are skipped
  iovec_at(kIov + 16, kBuf + 100, 4);
  ASSERT_EQ(calls::fd_pwrite(c, fd, kIov, 3, 0, kOut).err, Errno::success);
  EXPECT_EQ(load<uint32_t>(kOut), 7u);
  iovec_at(kIov, kBuf + 200, 2);
  iovec_at(kIov + 8, kBuf + 300, 10);
  ASSERT_EQ(calls::fd_pread(c, fd, kIov, 2, 1, kOut).err, Errno::success);
  EXPECT_EQ(load<uint32_t>(kOut), 6u);
  EXPECT_EQ(get(kBuf + 200, 2) + get(kBuf + 300, 4), "bcdefg");
}

TEST_F(WasiTest, OutOfBoundsPointersAreEfault) {
  uint32_t fd = open("f", oflag::creat, kReadWrite);
  auto c = call();
  uint32_t end = mem_size();
  iovec_at(kIov, end - 2, 4); // buffer runs past the end
  EXPECT_EQ(calls::fd_write(c, fd, kIov, 1, kOut).err, Errno::fault);
  EXPECT_EQ(calls::fd_read(c, fd, kIov, 1, kOut).err, Errno::fault);
  iovec_at(kIov, kBuf, 4);
  EXPECT_EQ(calls::fd_write(c, fd, end - 4, 2, kOut).err, Errno::fault); // iovec array
  EXPECT_EQ(calls::fd_write(c, fd, kIov, 1, end - 3).err, Errno::fault); // result pointer
  EXPECT_EQ(calls::fd_write(c, fd, kIov, 1, 0xFFFFFFFF).err, Errno::fault);
  EXPECT_EQ(dir_.read("sandbox/f"), "") << "nothing may be written when a pointer is bad";
  EXPECT_EQ(calls::path_open(c, kPreopenFd, 0, end - 2, 10, 0, 0, 0, 0, kOut).err, Errno::fault);
  EXPECT_EQ(calls::fd_fdstat_get(c, fd, end - 10).err, Errno::fault);
  EXPECT_EQ(calls::args_sizes_get(c, end, kOut).err, Errno::fault);
  EXPECT_EQ(calls::random_get(c, end - 10, 11).err, Errno::fault);
  EXPECT_EQ(calls::clock_time_get(c, 0, 0, end - 4).err, Errno::fault);
  EXPECT_EQ(calls::poll_oneoff(c, end - 40, kOut, 1, kOut2).err, Errno::fault);
}

TEST_F(WasiTest, ArgsAndEnvironment) {
  wasi::WasiOptions o;
  o.args = {"prog.wasm", "one", ""};
  o.env = {"A=1", "LONGER=value"};
  start(std::move(o));
  auto c = call();
  ASSERT_EQ(calls::args_sizes_get(c, kOut, kOut + 4).err, Errno::success);
  EXPECT_EQ(load<uint32_t>(kOut), 3u);
  EXPECT_EQ(load<uint32_t>(kOut + 4), 10u + 4u + 1u);
  ASSERT_EQ(calls::args_get(c, kOut2, kBuf).err, Errno::success);
  EXPECT_EQ(load<uint32_t>(kOut2), kBuf);
  EXPECT_EQ(load<uint32_t>(kOut2 + 4), kBuf + 10);
  EXPECT_EQ(load<uint32_t>(kOut2 + 8), kBuf + 14);
  EXPECT_EQ(get(kBuf, 15), std::string("prog.wasm\0one\0\0", 15));
  ASSERT_EQ(calls::environ_sizes_get(c, kOut, kOut + 4).err, Errno::success);
  EXPECT_EQ(load<uint32_t>(kOut), 2u);
  EXPECT_EQ(load<uint32_t>(kOut + 4), 4u + 13u);
  ASSERT_EQ(calls::environ_get(c, kOut2, kBuf).err, Errno::success);
  EXPECT_EQ(load<uint32_t>(kOut2 + 4), kBuf + 4);
  EXPECT_EQ(get(kBuf, 17), std::string("A=1\0LONGER=value\0", 17));
}

TEST_F(WasiTest, RightsAreEnforced) {
  dir_.write("sandbox/ro.txt", "read only");
  uint32_t fd = open("ro.txt", 0, right::fd_read | right::fd_seek);
  EXPECT_EQ(write(fd, "x"), Errno::notcapable);
  EXPECT_EQ(read(fd), "read only");
  auto c = call();
  EXPECT_EQ(calls::fd_filestat_set_size(c, fd, 0).err, Errno::notcapable);
  EXPECT_EQ(calls::fd_tell(c, fd, kOut).err, Errno::notcapable);
  // Rights can be dropped, never raised.
  EXPECT_EQ(calls::fd_fdstat_set_rights(c, fd, right::fd_read | right::fd_write, 0).err,
            Errno::notcapable);
  EXPECT_EQ(calls::fd_fdstat_set_rights(c, fd, right::fd_seek, 0).err, Errno::success);
  EXPECT_EQ(read(fd), "<errno 76>"); // notcapable
  // A new fd gets at most what its directory may hand down.
  ASSERT_EQ(calls::fd_fdstat_set_rights(c, kPreopenFd, right::directory, right::fd_read).err,
            Errno::success);
  open("ro.txt", 0, right::fd_read | right::fd_write, 0, Errno::notcapable);
  open("ro.txt", 0, right::fd_read);
  // Creating needs path_create_file on the directory.
  ASSERT_EQ(calls::fd_fdstat_set_rights(c, kPreopenFd, right::path_open, right::fd_read).err,
            Errno::success);
  open("new.txt", oflag::creat, right::fd_read, 0, Errno::notcapable);
  EXPECT_FALSE(dir_.exists("sandbox/new.txt"));
}

TEST_F(WasiTest, ReaddirWithCookiesAndTruncation) {
  dir_.write("sandbox/a", "");
  dir_.mkdir("sandbox/bb");
  dir_.write("sandbox/ccc", "");
  auto c = call();
  // One big buffer: every entry, d_next counting up.
  ASSERT_EQ(calls::fd_readdir(c, kPreopenFd, kBuf, 4096, 0, kOut).err, Errno::success);
  uint32_t used = load<uint32_t>(kOut);
  std::set<std::string> names;
  uint64_t expected_next = 1;
  for (uint32_t at = kBuf; at < kBuf + used;) {
    EXPECT_EQ(load<uint64_t>(at), expected_next++);
    uint32_t namlen = load<uint32_t>(at + 16);
    std::string name = get(at + 24, namlen);
    names.insert(name);
    uint8_t type = load<uint8_t>(at + 20);
    if (name == "bb" || name == "." || name == "..")
      EXPECT_EQ(type, uint8_t(wasi::FileType::directory)) << name;
    else
      EXPECT_EQ(type, uint8_t(wasi::FileType::regular_file)) << name;
    at += 24 + namlen;
  }
  EXPECT_EQ(names, (std::set<std::string>{".", "..", "a", "bb", "ccc"}));

  // A buffer that holds one entry and a piece of the next: full buffer
  // (truncated), and resuming from the last whole entry's d_next gets the rest.
  std::set<std::string> resumed;
  uint64_t cookie = 0;
  for (int calls_made = 0; calls_made < 20; ++calls_made) {
    ASSERT_EQ(calls::fd_readdir(c, kPreopenFd, kBuf, 30, cookie, kOut).err, Errno::success);
    uint32_t n = load<uint32_t>(kOut);
    if (n == 0) break;
    uint32_t namlen = load<uint32_t>(kBuf + 16);
    ASSERT_LE(24 + namlen, 30u);
    resumed.insert(get(kBuf + 24, namlen));
    cookie = load<uint64_t>(kBuf);
    if (n < 30) {
      EXPECT_EQ(n, 24 + namlen);
      break;
    }
  }
  EXPECT_EQ(resumed, names);
  // A regular file never holds fd_readdir, whatever path_open asked for.
  uint32_t file = open("a", 0, right::fd_read | right::fd_readdir);
  EXPECT_EQ(calls::fd_readdir(c, file, kBuf, 100, 0, kOut).err, Errno::notcapable);
}

TEST_F(WasiTest, RenumberAndClose) {
  uint32_t a = open("a", oflag::creat, kReadWrite);
  uint32_t b = open("b", oflag::creat, kReadWrite);
  auto c = call();
  EXPECT_EQ(calls::fd_renumber(c, a, 77).err, Errno::badf); // `to` must be open
  ASSERT_EQ(calls::fd_renumber(c, a, b).err, Errno::success);
  ASSERT_EQ(write(b, "to a"), Errno::success);
  EXPECT_EQ(dir_.read("sandbox/a"), "to a");
  EXPECT_EQ(write(a, "x"), Errno::badf);
  ASSERT_EQ(calls::fd_close(c, b).err, Errno::success);
  EXPECT_EQ(calls::fd_close(c, b).err, Errno::badf);
  EXPECT_EQ(open("a", 0, right::fd_read), a) << "the lowest free number is reused";
}

TEST_F(WasiTest, FdFlagsAndSizes) {
  uint32_t fd = open("f", oflag::creat,
                     kReadWrite | right::fd_filestat_set_size | right::fd_filestat_set_times |
                         right::fd_allocate);
  auto c = call();
  ASSERT_EQ(calls::fd_fdstat_set_flags(c, fd, wasi::fdflag::append).err, Errno::success);
  ASSERT_EQ(write(fd, "one"), Errno::success);
  ASSERT_EQ(calls::fd_seek(c, fd, 0, 0, kOut).err, Errno::success);
  ASSERT_EQ(write(fd, "two"), Errno::success);
  EXPECT_EQ(dir_.read("sandbox/f"), "onetwo");
  EXPECT_EQ(calls::fd_fdstat_set_flags(c, fd, wasi::fdflag::sync).err, Errno::notsup);
  ASSERT_EQ(calls::fd_filestat_set_size(c, fd, 3).err, Errno::success);
  EXPECT_EQ(dir_.read("sandbox/f"), "one");
  ASSERT_EQ(calls::fd_allocate(c, fd, 0, 100).err, Errno::success);
  EXPECT_EQ(std::filesystem::file_size(dir_ / "sandbox/f"), 100u);
  ASSERT_EQ(calls::fd_filestat_set_times(c, fd, 5'000000000, 7'000000001,
                                         wasi::fstflag::atim | wasi::fstflag::mtim)
                .err,
            Errno::success);
  struct stat st;
  ::stat((dir_ / "sandbox/f").c_str(), &st);
  EXPECT_EQ(st.st_atim.tv_sec, 5);
  EXPECT_EQ(st.st_mtim.tv_sec, 7);
  EXPECT_EQ(st.st_mtim.tv_nsec, 1);
  EXPECT_EQ(
      calls::fd_filestat_set_times(c, fd, 0, 0, wasi::fstflag::mtim | wasi::fstflag::mtim_now).err,
      Errno::inval);
}

TEST_F(WasiTest, PathCalls) {
  auto c = call();
  uint32_t n = put(kPath, "d");
  ASSERT_EQ(calls::path_create_directory(c, kPreopenFd, kPath, n).err, Errno::success);
  EXPECT_EQ(calls::path_create_directory(c, kPreopenFd, kPath, n).err, Errno::exist);
  dir_.write("sandbox/d/f", "content");
  n = put(kPath, "d");
  EXPECT_EQ(calls::path_remove_directory(c, kPreopenFd, kPath, n).err, Errno::notempty);
  uint32_t from = put(kPath, "d/f"), to = put(kPath2, "g");
  ASSERT_EQ(calls::path_rename(c, kPreopenFd, kPath, from, kPreopenFd, kPath2, to).err,
            Errno::success);
  EXPECT_EQ(dir_.read("sandbox/g"), "content");
  from = put(kPath, "g");
  to = put(kPath2, "h");
  ASSERT_EQ(calls::path_link(c, kPreopenFd, 0, kPath, from, kPreopenFd, kPath2, to).err,
            Errno::success);
  from = put(kPath, "h");
  to = put(kPath2, "sym");
  ASSERT_EQ(calls::path_symlink(c, kPath, from, kPreopenFd, kPath2, to).err, Errno::success);
  n = put(kPath, "sym");
  ASSERT_EQ(calls::path_readlink(c, kPreopenFd, kPath, n, kBuf, 64, kOut).err, Errno::success);
  EXPECT_EQ(get(kBuf, load<uint32_t>(kOut)), "h");
  ASSERT_EQ(calls::path_readlink(c, kPreopenFd, kPath, n, kBuf, 0, kOut).err, Errno::success);
  EXPECT_EQ(load<uint32_t>(kOut), 0u) << "truncated to the buffer, as readlink(2)";
  // lstat vs stat through the link
  ASSERT_EQ(calls::path_filestat_get(c, kPreopenFd, 0, kPath, n, kOut).err, Errno::success);
  EXPECT_EQ(load<uint8_t>(kOut + 16), uint8_t(wasi::FileType::symbolic_link));
  ASSERT_EQ(
      calls::path_filestat_get(c, kPreopenFd, wasi::lookupflag::symlink_follow, kPath, n, kOut).err,
      Errno::success);
  EXPECT_EQ(load<uint8_t>(kOut + 16), uint8_t(wasi::FileType::regular_file));
  EXPECT_EQ(load<uint64_t>(kOut + 24), 2u); // g and h
  n = put(kPath, "g/");
  EXPECT_EQ(calls::path_unlink_file(c, kPreopenFd, kPath, n).err, Errno::notdir);
  n = put(kPath, "g");
  ASSERT_EQ(calls::path_unlink_file(c, kPreopenFd, kPath, n).err, Errno::success);
  n = put(kPath, "d");
  EXPECT_EQ(calls::path_unlink_file(c, kPreopenFd, kPath, n).err, Errno::isdir);
  ASSERT_EQ(calls::path_remove_directory(c, kPreopenFd, kPath, n).err, Errno::success);
  EXPECT_FALSE(dir_.exists("sandbox/d"));
  n = put(kPath, std::string("a\0b", 3));
  EXPECT_EQ(calls::path_create_directory(c, kPreopenFd, kPath, n).err, Errno::inval);
  // Paths are relative to a directory fd; a file is not one.
  uint32_t file = open("h", 0, right::fd_read);
  n = put(kPath, "x");
  EXPECT_EQ(calls::path_create_directory(c, file, kPath, n).err, Errno::notcapable);
}

TEST_F(WasiTest, OpenFlags) {
  dir_.write("sandbox/exists", "12345");
  open("exists", oflag::creat | oflag::excl, kReadWrite, 0, Errno::exist);
  open("missing", 0, kReadWrite, 0, Errno::noent);
  open("exists", oflag::directory, right::fd_readdir, 0, Errno::notdir);
  uint32_t fd = open("exists", oflag::trunc, kReadWrite);
  EXPECT_EQ(dir_.read("sandbox/exists"), "");
  dir_.symlink("exists", "sandbox/link");
  auto c = call();
  uint32_t n = put(kPath, "link");
  EXPECT_EQ(calls::path_open(c, kPreopenFd, 0, kPath, n, 0, right::fd_read, 0, 0, kOut).err,
            Errno::loop)
      << "without symlink_follow a final symlink is not opened";
  EXPECT_EQ(calls::path_open(c, kPreopenFd, 0, kPath, n, 0x10, 0, 0, 0, kOut).err, Errno::inval);
  EXPECT_EQ(ctx_->fds().find(fd)->guest_path, "exists");
  EXPECT_EQ(ctx_->fds().find(fd)->preopen, 0u);
}

TEST_F(WasiTest, FdTableKeepsTheRestoreRecord) {
  dir_.mkdir("sandbox/sub");
  auto c = call();
  uint32_t n = put(kPath, "sub");
  ASSERT_EQ(calls::path_open(c, kPreopenFd, 0, kPath, n, oflag::directory, right::directory,
                             right::directory | right::regular_file, 0, kOut)
                .err,
            Errno::success);
  uint32_t sub = load<uint32_t>(kOut);
  n = put(kPath, "file.txt");
  ASSERT_EQ(calls::path_open(c, sub, wasi::lookupflag::symlink_follow, kPath, n, oflag::creat,
                             kReadWrite, 0, wasi::fdflag::append, kOut)
                .err,
            Errno::success);
  uint32_t fd = load<uint32_t>(kOut);
  const wasi::FdEntry* e = ctx_->fds().find(fd);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->kind, wasi::FdKind::File);
  EXPECT_EQ(e->guest_path, "sub/file.txt");
  EXPECT_EQ(e->preopen, 0u);
  EXPECT_EQ(ctx_->preopens()[*e->preopen].guest_path, "/sandbox");
  EXPECT_EQ(e->oflags, oflag::creat);
  EXPECT_EQ(e->fdflags, wasi::fdflag::append);
  EXPECT_EQ(e->rights_base, kReadWrite);
  struct stat st;
  ::stat((dir_ / "sandbox/sub/file.txt").c_str(), &st);
  EXPECT_EQ(e->identity.inode, uint64_t(st.st_ino));
  EXPECT_EQ(e->identity.device, uint64_t(st.st_dev));
  // The position and the identity as of now, for a checkpoint.
  ASSERT_EQ(write(fd, "12345"), Errno::success);
  EXPECT_EQ(ctx_->fds().find(fd)->position(), 5u);
  ctx_->fds().find(fd)->refresh_identity();
  EXPECT_EQ(ctx_->fds().find(fd)->identity.size, 5u);
  EXPECT_EQ(ctx_->fds().find(sub)->position(), std::nullopt);
  EXPECT_EQ(ctx_->fds().find(sub)->kind, wasi::FdKind::Directory);
  EXPECT_FALSE(ctx_->fds().find(sub)->is_preopen);
}

TEST_F(WasiTest, ClocksAndTheMonotonicOffset) {
  auto c = call();
  ASSERT_EQ(calls::clock_res_get(c, 1, kOut).err, Errno::success);
  EXPECT_GT(load<uint64_t>(kOut), 0u);
  EXPECT_EQ(calls::clock_time_get(c, 4, 0, kOut).err, Errno::inval);
  // A restore makes the guest's monotonic clock continue from its reading.
  const uint64_t far_future = uint64_t(1) << 62;
  ctx_->clocks().continue_from(wasi::ClockId::monotonic, far_future);
  ASSERT_EQ(calls::clock_time_get(c, 1, 0, kOut).err, Errno::success);
  EXPECT_GE(load<uint64_t>(kOut), far_future);
  EXPECT_LT(load<uint64_t>(kOut), far_future + 3600'000000000ull);
}

TEST_F(WasiTest, PollClockEventLayout) {
  auto c = call();
  std::memset(mem() + kBuf, 0, 96);
  // Subscription 0: fd_write on stdout-less fd 99 (EBADF event); 1: a clock.
  store<uint64_t>(kBuf + 0, 0x1111);
  store<uint8_t>(kBuf + 8, uint8_t(wasi::EventType::fd_write));
  store<uint32_t>(kBuf + 16, 99);
  store<uint64_t>(kBuf + 48, 0x2222);
  store<uint8_t>(kBuf + 56, uint8_t(wasi::EventType::clock));
  store<uint32_t>(kBuf + 64, uint32_t(wasi::ClockId::monotonic));
  store<uint64_t>(kBuf + 72, 0); // already due
  std::memset(mem() + kOut, 0xEE, 64);
  ASSERT_EQ(calls::poll_oneoff(c, kBuf, kOut, 2, kOut2).err, Errno::success);
  ASSERT_EQ(load<uint32_t>(kOut2), 2u);
  EXPECT_EQ(load<uint64_t>(kOut + 0), 0x1111u);
  EXPECT_EQ(load<uint16_t>(kOut + 8), uint16_t(Errno::badf));
  EXPECT_EQ(load<uint8_t>(kOut + 10), uint8_t(wasi::EventType::fd_write));
  EXPECT_EQ(load<uint64_t>(kOut + 32), 0x2222u);
  EXPECT_EQ(load<uint16_t>(kOut + 40), 0u);
  EXPECT_EQ(load<uint8_t>(kOut + 42), uint8_t(wasi::EventType::clock));
  EXPECT_EQ(load<uint64_t>(kOut + 48), 0u); // nbytes
  EXPECT_EQ(load<uint16_t>(kOut + 56), 0u); // flags
  store<uint8_t>(kBuf + 8, 7);              // no such event type
  EXPECT_EQ(calls::poll_oneoff(c, kBuf, kOut, 2, kOut2).err, Errno::inval);
}

// When the host's poll fails (here: more descriptors than RLIMIT_NOFILE
// lets ppoll take), every subscription gets one error event, and the
// events found before it (a bad descriptor's) are not counted twice: the
// program's array has room for nsubscriptions events, and a byte after it
// was overwritten.
TEST_F(WasiTest, PollFailureGivesOneEventPerSubscription) {
  auto c = call();
  const uint32_t fd = open("polled.txt", oflag::creat, kReadWrite);
  constexpr uint32_t kSubs = 24;
  constexpr uint32_t kEvents = 0x4000, kCount = 0x3F00;
  std::memset(mem() + kBuf, 0, kSubs * 48);
  for (uint32_t i = 0; i < kSubs; ++i) { // 0: a bad descriptor; then the file
    store<uint64_t>(kBuf + i * 48, i);
    store<uint8_t>(kBuf + i * 48 + 8, uint8_t(wasi::EventType::fd_write));
    store<uint32_t>(kBuf + i * 48 + 16, i == 0 ? 99 : fd);
  }
  std::memset(mem() + kEvents, 0xEE, (kSubs + 2) * 32);
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = 8; // below the 24 descriptors ppoll is given
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  const Errno err = calls::poll_oneoff(c, kBuf, kEvents, kSubs, kCount).err;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  ASSERT_EQ(err, Errno::success);
  EXPECT_EQ(load<uint32_t>(kCount), kSubs);
  for (uint32_t i = 0; i < kSubs; ++i) {
    EXPECT_EQ(load<uint64_t>(kEvents + i * 32), i) << "event " << i;
    EXPECT_EQ(load<uint16_t>(kEvents + i * 32 + 8), uint16_t(Errno::inval)) << "event " << i;
  }
  for (uint32_t b = kSubs * 32; b < (kSubs + 2) * 32; ++b)
    ASSERT_EQ(load<uint8_t>(kEvents + b), 0xEE) << "byte " << b << " after the events";
}

TEST_F(WasiTest, RandomExitRaiseYield) {
  auto c = call();
  std::memset(mem() + kBuf, 0, 64);
  ASSERT_EQ(calls::random_get(c, kBuf, 64).err, Errno::success);
  EXPECT_TRUE(std::any_of(mem() + kBuf, mem() + kBuf + 64, [](uint8_t b) { return b != 0; }));
  runtime::HostResult exit = calls::proc_exit(c, 42);
  EXPECT_EQ(exit.status, runtime::HostStatus::Exit);
  EXPECT_EQ(exit.exit_code, 42);
  wasi::Ret abrt = calls::proc_raise(c, 6);
  ASSERT_TRUE(abrt.stop.has_value());
  EXPECT_EQ(abrt.stop->status, runtime::HostStatus::Trap);
  EXPECT_NE(abrt.stop->message.find("SIGABRT"), std::string::npos);
  EXPECT_EQ(calls::proc_raise(c, 16).err, Errno::success); // SIGCHLD: ignored
  EXPECT_EQ(calls::proc_raise(c, 99).err, Errno::inval);
  EXPECT_EQ(calls::sched_yield(c).err, Errno::success);
}

} // namespace
} // namespace tern::test
