// The WASI snapshot section: a context written down by save_state and built
// again by restore_state keeps its fd numbers, files (reopened by guest path
// under the matching preopen, at their offsets), clocks and listening
// sockets; changed and missing files are errors that name them; malformed
// payloads are tern::Error.
#include "snapshot/payload.h"
#include "tern/error.h"
#include "wasi/socket.h"
#include "wasi/state.h"
#include "wasi/state_records.h"
#include "wasi_fixture.h"

#include <algorithm>
#include <arpa/inet.h>
#include <fmt/format.h>
#include <map>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <sys/stat.h>

namespace tern::test {
namespace {

using wasi::Errno;
namespace calls = wasi::calls;
namespace right = wasi::right;
namespace oflag = wasi::oflag;

constexpr wasi::Rights kReadOnly = right::fd_read | right::fd_seek | right::fd_tell;
constexpr wasi::Rights kReadWrite = right::regular_file;

// The message of the tern::Error `f` throws ("" if it throws none).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

int connect_to(uint16_t port) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  return s;
}

class WasiStateTest : public WasiTest {
protected:
  snapshot::ExtensionSection save(bool bundle = false) {
    wasi::SaveOptions o;
    o.bundle_files = bundle;
    return wasi::save_state(*ctx_, o);
  }
  // A restore that accepts what the snapshot names (--dir-from-snapshot,
  // --stdio-from-snapshot): these tests move state, not grants.
  static wasi::RestoreOptions trusting() {
    wasi::RestoreOptions o;
    o.dirs_from_snapshot = true;
    o.stdio_from_snapshot = true;
    return o;
  }
  // trusting(), with the listening socket on 127.0.0.1:port granted
  // (--listen).
  static wasi::RestoreOptions listening(uint16_t port) {
    wasi::RestoreOptions o = trusting();
    o.listen = {fmt::format("127.0.0.1:{}", port)};
    return o;
  }
  // Replaces the context with the one restored from `section` (the old one
  // is closed first, so that its sockets' ports are free).
  void restore(const snapshot::ExtensionSection& section, wasi::RestoreOptions o = trusting()) {
    ctx_.reset();
    ctx_ = wasi::restore_state(section, o);
  }
  uint64_t tell(uint32_t fd) {
    auto c = call();
    EXPECT_EQ(calls::fd_tell(c, fd, kOut).err, Errno::success);
    return load<uint64_t>(kOut);
  }
  void seek(uint32_t fd, uint64_t offset) {
    auto c = call();
    ASSERT_EQ(calls::fd_seek(c, fd, offset, uint32_t(wasi::Whence::set), kOut).err, Errno::success);
  }
  wasi::Errno accept(uint32_t listener, uint32_t& conn) {
    auto c = call();
    Errno e = calls::sock_accept(c, listener, 0, kOut).err;
    conn = load<uint32_t>(kOut);
    return e;
  }
  wasi::Errno recv(uint32_t fd) {
    auto c = call();
    iovec_at(kIov, kBuf, 64);
    return calls::sock_recv(c, fd, kIov, 1, 0, kOut, kOut2).err;
  }
  wasi::Errno send(uint32_t fd, const std::string& data) {
    auto c = call();
    iovec_at(kIov, kBuf, put(kBuf, data));
    return calls::sock_send(c, fd, kIov, 1, 0, kOut).err;
  }
  // Sets a file's mtime back by a second, as another writer would move it.
  void touch_back(const std::string& rel) {
    struct stat st;
    ASSERT_EQ(::stat((dir_ / rel).c_str(), &st), 0);
    timespec times[2] = {st.st_atim, st.st_mtim};
    times[1].tv_sec -= 1;
    ASSERT_EQ(::utimensat(AT_FDCWD, (dir_ / rel).c_str(), times, 0), 0);
  }
};

TEST_F(WasiStateTest, RecordsArgsEnvPreopensAndEveryFdKind) {
  dir_.mkdir("outside/elsewhere");
  wasi::WasiOptions options;
  options.args = {"prog", "a b"};
  options.env = {"K=V"};
  options.preopens = {{dir_ / "outside/elsewhere", "/other"}};
  options.listen = {"127.0.0.1:0"};
  start(options); // fd 3 /sandbox, fd 4 /other, fd 5 the listener
  dir_.write("sandbox/in.txt", "0123456789");
  dir_.mkdir("sandbox/sub");
  ASSERT_EQ(::mkfifo((dir_ / "sandbox/fifo").c_str(), 0600), 0);
  int fifo_writer = ::open((dir_ / "sandbox/fifo").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fifo_writer, 0);
  uint32_t file = open("in.txt", 0, kReadOnly);
  seek(file, 4);
  uint32_t dir = open("sub", oflag::directory, right::directory);
  uint32_t fifo = open("fifo", 0, right::fd_read);
  uint16_t port = ctx_->fds().find(5)->socket->local.port;
  int peer = connect_to(port);
  uint32_t conn;
  ASSERT_EQ(accept(5, conn), Errno::success);

  const auto section = save();
  const std::vector<uint8_t>& payload = section.payload;
  const wasi::state::SavedState s = wasi::state::decode(payload);
  EXPECT_EQ(s.args, (std::vector<std::string>{"prog", "a b"}));
  EXPECT_EQ(s.env, (std::vector<std::string>{"K=V"}));
  ASSERT_EQ(s.preopens.size(), 2u);
  EXPECT_EQ(s.preopens[0].guest_path, "/sandbox");
  EXPECT_EQ(s.preopens[1].host_path, dir_ / "outside/elsewhere");
  std::map<uint32_t, const wasi::state::SavedFd*> by_fd;
  for (const auto& f : s.fds) by_fd[f.fd] = &f;
  using wasi::state::Origin;
  ASSERT_TRUE(by_fd.count(3) && by_fd.count(4) && by_fd.count(5));
  EXPECT_EQ(by_fd[3]->origin, Origin::Preopen);
  EXPECT_EQ(by_fd[4]->preopen, 1u);
  EXPECT_EQ(by_fd[5]->kind, wasi::FdKind::TcpListener);
  EXPECT_EQ(by_fd[5]->socket.local.port, port);
  EXPECT_EQ(by_fd[5]->path, "127.0.0.1:0");
  ASSERT_TRUE(by_fd.count(file) && by_fd.count(dir) && by_fd.count(fifo) && by_fd.count(conn));
  EXPECT_EQ(by_fd[file]->origin, Origin::Path);
  EXPECT_EQ(by_fd[file]->path, "in.txt");
  EXPECT_EQ(by_fd[file]->position, 4u);
  EXPECT_EQ(by_fd[file]->size, 10u);
  EXPECT_EQ(by_fd[file]->rights_base, kReadOnly);
  EXPECT_EQ(by_fd[dir]->kind, wasi::FdKind::Directory);
  EXPECT_EQ(by_fd[dir]->oflags, oflag::directory);
  EXPECT_EQ(by_fd[fifo]->kind, wasi::FdKind::Fifo);
  EXPECT_EQ(by_fd[conn]->kind, wasi::FdKind::TcpStream);
  EXPECT_EQ(by_fd[conn]->socket.peer.family, 4);
  for (uint32_t fd = 0; fd < 3; ++fd) {
    if (!by_fd.count(fd)) continue; // the test runner may have closed one
    EXPECT_EQ(by_fd[fd]->origin, Origin::Stdio);
    EXPECT_EQ(by_fd[fd]->stream, fd);
    EXPECT_FALSE(by_fd[fd]->redirected);
  }

  // Encoding what was decoded gives the same bytes.
  EXPECT_EQ(wasi::state::encode(s), payload);

  // Every fd comes back at its number as the same kind.
  restore(section, listening(port));
  EXPECT_EQ(ctx_->fds().open_fds().size(), s.fds.size());
  for (const auto& f : s.fds) {
    const wasi::FdEntry* e = ctx_->fds().find(f.fd);
    ASSERT_NE(e, nullptr) << "fd " << f.fd;
    EXPECT_EQ(e->kind, f.kind) << "fd " << f.fd;
    EXPECT_EQ(e->rights_base & ~f.rights_base, 0u) << "fd " << f.fd << ": no new rights";
  }
  EXPECT_EQ(read(file, 3), "456");
  ASSERT_EQ(::write(fifo_writer, "via fifo", 8), 8);
  EXPECT_EQ(read(fifo, 8), "via fifo") << "the same named pipe";
  ::close(peer);
  ::close(fifo_writer);
}

TEST_F(WasiStateTest, PreopenHostPathsAreRecordedAbsolute) {
  wasi::WasiOptions options;
  const auto relative = std::filesystem::relative(dir_ / "outside");
  ASSERT_TRUE(relative.is_relative());
  options.preopens = {{relative.string(), "/rel"}};
  start(options);
  const auto saved = wasi::state::decode(save().payload);
  ASSERT_EQ(saved.preopens.size(), 2u);
  EXPECT_EQ(saved.preopens[1].guest_path, "/rel");
  EXPECT_TRUE(saved.preopens[1].host_path.starts_with('/')) << saved.preopens[1].host_path;
  EXPECT_TRUE(std::filesystem::equivalent(saved.preopens[1].host_path, dir_ / "outside"));
}

TEST_F(WasiStateTest, RestoreKeepsFdNumbersKindsFlagsAndRights) {
  dir_.write("sandbox/in.txt", "0123456789");
  dir_.mkdir("sandbox/sub");
  uint32_t file = open("in.txt", 0, kReadOnly);
  uint32_t dir;
  {
    auto c = call();
    uint32_t len = put(kPath, "sub");
    ASSERT_EQ(calls::path_open(c, kPreopenFd, 0, kPath, len, oflag::directory,
                               right::directory & ~right::path_unlink_file, kReadOnly, 0, kOut)
                  .err,
              Errno::success);
    dir = load<uint32_t>(kOut);
  }
  uint32_t log = open("log.txt", oflag::creat, kReadWrite, wasi::fdflag::append);
  {
    auto c = call();
    ASSERT_EQ(calls::fd_close(c, file - 0).err, Errno::success); // a gap in the numbers
  }
  file = open("in.txt", 0, kReadOnly);
  auto section = save();
  EXPECT_EQ(section.tag, wasi::kStateTag);
  EXPECT_FALSE(section.optional);
  restore(section);

  for (auto [fd, kind] :
       {std::pair{file, wasi::FileType::regular_file}, std::pair{dir, wasi::FileType::directory},
        std::pair{log, wasi::FileType::regular_file},
        std::pair{kPreopenFd, wasi::FileType::directory}}) {
    auto c = call();
    ASSERT_EQ(calls::fd_fdstat_get(c, fd, kOut).err, Errno::success) << "fd " << fd;
    EXPECT_EQ(load<uint8_t>(kOut), uint8_t(kind)) << "fd " << fd;
  }
  auto c = call();
  ASSERT_EQ(calls::fd_fdstat_get(c, dir, kOut).err, Errno::success);
  EXPECT_EQ(load<uint64_t>(kOut + 8), right::directory & ~right::path_unlink_file);
  EXPECT_EQ(load<uint64_t>(kOut + 16), kReadOnly);
  ASSERT_EQ(calls::fd_fdstat_get(c, log, kOut).err, Errno::success);
  EXPECT_EQ(load<uint16_t>(kOut + 2), wasi::fdflag::append);
  EXPECT_EQ(read(file, 4), "0123");
  // The preopen is still a preopen with its name.
  ASSERT_EQ(calls::fd_prestat_get(c, kPreopenFd, kOut).err, Errno::success);
  EXPECT_EQ(load<uint32_t>(kOut + 4), std::string("/sandbox").size());
  // The restored directory resolves paths beneath itself.
  dir_.write("sandbox/sub/x", "x");
  EXPECT_NE(ctx_->fds().find(dir), nullptr);
  uint32_t len = put(kPath, "x");
  EXPECT_EQ(calls::path_open(c, dir, 0, kPath, len, 0, kReadOnly, 0, 0, kOut).err, Errno::success);
}

TEST_F(WasiStateTest, OffsetsAndAppendModeAreRestored) {
  dir_.write("sandbox/in.txt", "0123456789");
  dir_.write("sandbox/log.txt", "old\n");
  uint32_t in = open("in.txt", 0, kReadOnly);
  EXPECT_EQ(read(in, 3), "012");
  uint32_t log = open("log.txt", 0, kReadWrite, wasi::fdflag::append);
  ASSERT_EQ(write(log, "one\n"), Errno::success);
  seek(log, 1); // reads follow the position; appends still go to the end
  restore(save());

  EXPECT_EQ(tell(in), 3u);
  EXPECT_EQ(read(in, 4), "3456");
  EXPECT_EQ(tell(log), 1u);
  ASSERT_EQ(write(log, "two\n"), Errno::success);
  EXPECT_EQ(dir_.read("sandbox/log.txt"), "old\none\ntwo\n");
}

TEST_F(WasiStateTest, FilesTheProgramCreatedAreNotTruncatedAgain) {
  uint32_t out = open("out.txt", oflag::creat | oflag::trunc | oflag::excl, kReadWrite);
  ASSERT_EQ(write(out, "written before"), Errno::success);
  restore(save());
  EXPECT_EQ(dir_.read("sandbox/out.txt"), "written before");
  EXPECT_EQ(tell(out), 14u);
  ASSERT_EQ(write(out, ", and after"), Errno::success);
  EXPECT_EQ(dir_.read("sandbox/out.txt"), "written before, and after");
  EXPECT_EQ(ctx_->fds().find(out)->oflags, oflag::creat | oflag::trunc | oflag::excl)
      << "the record keeps how the program opened it";
}

TEST_F(WasiStateTest, DirRemappedByGuestNameAtRestore) {
  dir_.write("sandbox/in.txt", "0123456789");
  uint32_t in = open("in.txt", 0, kReadOnly);
  EXPECT_EQ(read(in, 2), "01");
  auto section = save();
  // The files move to another host directory (rename keeps their mtimes).
  ctx_.reset();
  ASSERT_EQ(::rename((dir_ / "sandbox").c_str(), (dir_ / "moved").c_str()), 0);

  std::string missing = error_of([&] { restore(section); });
  EXPECT_NE(missing.find("preopen /sandbox"), std::string::npos) << missing;
  EXPECT_NE(missing.find(dir_ / "sandbox"), std::string::npos) << missing;

  wasi::RestoreOptions o;
  o.dirs = {wasi::parse_dir_option(dir_ / "moved" + "::/sandbox")};
  restore(section, o);
  EXPECT_EQ(read(in, 3), "234");
  EXPECT_EQ(ctx_->preopens()[0].host_path, dir_ / "moved");

  o.dirs = {wasi::parse_dir_option(dir_ / "moved" + "::/nope")};
  std::string unknown = error_of([&] { restore(section, o); });
  EXPECT_NE(unknown.find("no preopen named /nope"), std::string::npos) << unknown;
}

// A snapshot is untrusted input: its host paths are not grants.
TEST_F(WasiStateTest, APreopenTheRestoreDoesNotGrantIsRefused) {
  dir_.write("sandbox/in.txt", "0123456789");
  uint32_t in = open("in.txt", 0, kReadOnly);
  auto section = save();
  std::string message = error_of([&] { restore(section, {}); });
  EXPECT_NE(message.find("grants no directory for preopen /sandbox"), std::string::npos) << message;
  EXPECT_NE(message.find("--dir HOST::/sandbox"), std::string::npos) << message;
  EXPECT_NE(message.find("--dir-from-snapshot"), std::string::npos) << message;
  EXPECT_NE(message.find(dir_ / "sandbox"), std::string::npos) << message;

  wasi::RestoreOptions o;
  o.dirs_from_snapshot = true;
  restore(section, o);
  EXPECT_EQ(read(in, 2), "01");
}

TEST_F(WasiStateTest, AForgedPreopenIsRefusedBesideGrantedOnes) {
  dir_.mkdir("secret");
  dir_.write("secret/key", "k");
  auto state = wasi::state::decode(save().payload);
  // An extra preopen of a host directory the user never gave, and a file
  // opened beneath it.
  state.preopens.push_back({dir_ / "secret", "/evil"});
  wasi::state::SavedFd f;
  f.fd = 9;
  f.kind = wasi::FdKind::File;
  f.origin = wasi::state::Origin::Path;
  f.preopen = 1;
  f.path = "key";
  f.rights_base = kReadOnly;
  f.size = 1;
  struct stat st;
  ASSERT_EQ(::stat((dir_ / "secret/key").c_str(), &st), 0);
  f.mtime_ns = wasi::FileIdentity::of(st).mtime_ns;
  state.fds.push_back(f);
  snapshot::ExtensionSection forged{wasi::kStateTag, false, wasi::state::encode(state)};
  wasi::RestoreOptions o;
  o.dirs = {{dir_ / "sandbox", "/sandbox"}};
  std::string message = error_of([&] { restore(forged, o); });
  EXPECT_NE(message.find("fd 9 (/evil/key)"), std::string::npos) << message;
  EXPECT_NE(message.find("grants no directory for preopen /evil"), std::string::npos) << message;
}

TEST_F(WasiStateTest, ARedirectedStreamNeedsTheRestoresConsent) {
  dir_.write("in.txt", "0123456789");
  wasi::WasiOptions options;
  options.stdin_path = dir_ / "in.txt";
  start(options);
  EXPECT_EQ(read(0, 3), "012");
  auto state = wasi::state::decode(save().payload);
  // A forged stream record: stdin again at fd 7, from a file the user
  // never named.
  dir_.write("passwd", "root:x:0:0");
  wasi::state::SavedFd forged = state.fds[0];
  ASSERT_EQ(forged.origin, wasi::state::Origin::Stdio);
  forged.fd = 7;
  forged.path = dir_ / "passwd";
  forged.position = 0;
  state.fds.push_back(forged);
  snapshot::ExtensionSection section{wasi::kStateTag, false, wasi::state::encode(state)};
  wasi::RestoreOptions o;
  o.dirs_from_snapshot = true;
  std::string message = error_of([&] { restore(section, o); });
  EXPECT_NE(message.find("fd 0 (stdin redirected to " + dir_ / "in.txt" + ")"), std::string::npos)
      << message;
  EXPECT_NE(message.find("--stdin FILE"), std::string::npos) << message;
  EXPECT_NE(message.find("--stdio-from-snapshot"), std::string::npos) << message;

  // The restore's own --stdin replaces every record of the stream.
  dir_.write("mine.txt", "mine");
  o.stdin_path = dir_ / "mine.txt";
  restore(section, o);
  EXPECT_EQ(read(7, 4), "mine");
}

TEST_F(WasiStateTest, ChangedFileIsRefusedWithItsName) {
  dir_.write("sandbox/data.txt", "0123456789");
  uint32_t fd = open("data.txt", 0, kReadOnly);
  auto section = save();
  dir_.write("sandbox/data.txt", "01234567890123");
  std::string message = error_of([&] { restore(section); });
  EXPECT_NE(message.find(fmt::format("fd {} (/sandbox/data.txt)", fd)), std::string::npos)
      << message;
  EXPECT_NE(message.find("changed since the checkpoint"), std::string::npos) << message;
  EXPECT_NE(message.find(dir_ / "sandbox/data.txt"), std::string::npos) << message;
}

TEST_F(WasiStateTest, SameSizeButOtherMtimeIsAChange) {
  dir_.write("sandbox/data.txt", "0123456789");
  open("data.txt", 0, kReadOnly);
  auto section = save();
  touch_back("sandbox/data.txt");
  EXPECT_NE(error_of([&] { restore(section); }).find("changed since the checkpoint"),
            std::string::npos);
}

TEST_F(WasiStateTest, AllowChangedFilesRestoresThemAnyway) {
  dir_.write("sandbox/data.txt", "0123456789");
  uint32_t fd = open("data.txt", 0, kReadOnly);
  EXPECT_EQ(read(fd, 5), "01234");
  auto section = save();
  dir_.write("sandbox/data.txt", "abcdefghijklmn");
  wasi::RestoreOptions o = trusting();
  o.allow_changed_files = true;
  restore(section, o);
  EXPECT_EQ(read(fd, 3), "fgh");
}

TEST_F(WasiStateTest, MissingFileIsNamed) {
  dir_.write("sandbox/gone.txt", "x");
  uint32_t fd = open("gone.txt", 0, kReadOnly);
  auto section = save();
  ::unlink((dir_ / "sandbox/gone.txt").c_str());
  std::string message = error_of([&] { restore(section); });
  EXPECT_NE(message.find(fmt::format("fd {} (/sandbox/gone.txt)", fd)), std::string::npos)
      << message;
  EXPECT_NE(message.find("missing"), std::string::npos) << message;
  EXPECT_NE(message.find(dir_ / "sandbox/gone.txt"), std::string::npos) << message;
}

TEST_F(WasiStateTest, AFileThatBecameADirectoryIsRefused) {
  dir_.write("sandbox/x", "x");
  uint32_t fd = open("x", 0, kReadOnly);
  auto section = save();
  ::unlink((dir_ / "sandbox/x").c_str());
  dir_.mkdir("sandbox/x");
  std::string message = error_of([&] { restore(section); });
  EXPECT_NE(message.find(fmt::format("fd {} (/sandbox/x)", fd)), std::string::npos) << message;
}

TEST_F(WasiStateTest, BundledFilesAreWrittenBackBeforeReopening) {
  dir_.write("sandbox/in.txt", "read only, not bundled");
  open("in.txt", 0, kReadOnly);
  uint32_t out = open("out.txt", oflag::creat | oflag::trunc, kReadWrite);
  uint32_t again = open("out.txt", 0, right::fd_write | right::fd_seek | right::fd_tell);
  ASSERT_EQ(write(out, std::string(30000, 'a') + "end"), Errno::success);
  auto section = save(true);
  const auto saved = wasi::state::decode(section.payload);
  ASSERT_EQ(saved.files.size(), 1u) << "once, though two fds have it; read-only files are not";
  EXPECT_EQ(saved.files[0].path, "out.txt");
  EXPECT_EQ(saved.files[0].size, 30003u);
  EXPECT_LT(saved.files[0].zstd.size(), 1000u) << "compressed";

  // The program's output is lost or overwritten on this host.
  dir_.write("sandbox/out.txt", "clobbered");
  ASSERT_EQ(::chmod((dir_ / "sandbox/out.txt").c_str(), 0600), 0);
  restore(section);
  EXPECT_EQ(dir_.read("sandbox/out.txt"), std::string(30000, 'a') + "end");
  EXPECT_EQ(tell(out), 30003u);
  EXPECT_EQ(tell(again), 0u);
  ASSERT_EQ(write(out, "!"), Errno::success);
  EXPECT_EQ(dir_.read("sandbox/out.txt"), std::string(30000, 'a') + "end!");
  EXPECT_FALSE(dir_.exists("sandbox/out.txt.tmp." + std::to_string(::getpid())));
}

TEST_F(WasiStateTest, BundledFilesTravelToAnEmptyDirectory) {
  dir_.mkdir("sandbox/logs");
  uint32_t out = open("logs/out.txt", oflag::creat, kReadWrite);
  ASSERT_EQ(write(out, "hello"), Errno::success);
  ASSERT_EQ(::fchmod(ctx_->fds().find(out)->host.get(), 0640), 0);
  auto section = save(true);
  dir_.mkdir("target/logs");
  wasi::RestoreOptions o;
  o.dirs = {{dir_ / "target", "/sandbox"}};
  restore(section, o);
  EXPECT_EQ(dir_.read("target/logs/out.txt"), "hello");
  struct stat st;
  ASSERT_EQ(::stat((dir_ / "target/logs/out.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  ASSERT_EQ(write(out, " world"), Errno::success);
  EXPECT_EQ(dir_.read("target/logs/out.txt"), "hello world");
}

// A bundle is untrusted: it chooses no special mode bits and no owner, and
// a name planted where a temporary file used to be is not written through.
TEST_F(WasiStateTest, BundledFilesGetNoSpecialBitsAndFollowNoPlantedLink) {
  uint32_t out = open("out.txt", oflag::creat, kReadWrite);
  ASSERT_EQ(write(out, "data"), Errno::success);
  auto state = wasi::state::decode(save(true).payload);
  ASSERT_EQ(state.files.size(), 1u);
  state.files[0].mode = 07777;
  snapshot::ExtensionSection section{wasi::kStateTag, false, wasi::state::encode(state)};
  dir_.mkdir("outside");
  dir_.write("outside/victim", "precious");
  ctx_.reset();
  ASSERT_EQ(::symlink("../outside/victim",
                      (dir_ / "sandbox/out.txt.tmp." + std::to_string(::getpid())).c_str()),
            0);
  restore(section);
  struct stat st;
  ASSERT_EQ(::stat((dir_ / "sandbox/out.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0777u);
  EXPECT_EQ(st.st_uid, ::geteuid());
  EXPECT_EQ(dir_.read("sandbox/out.txt"), "data");
  EXPECT_EQ(dir_.read("outside/victim"), "precious");
}

TEST_F(WasiStateTest, StdioFollowsTheRestoresOwnOptions) {
  wasi::WasiOptions options;
  options.stdout_path = dir_ / "first.txt";
  start(options);
  ASSERT_EQ(write(1, "before"), Errno::success);
  {
    auto c = call();
    ASSERT_EQ(calls::fd_fdstat_set_rights(c, 1, right::fd_write, 0).err, Errno::success);
  }
  auto section = save();
  const auto saved = wasi::state::decode(section.payload);
  const auto& out =
      *std::find_if(saved.fds.begin(), saved.fds.end(), [](const auto& f) { return f.fd == 1; });
  EXPECT_TRUE(out.redirected);
  EXPECT_EQ(out.path, dir_ / "first.txt");

  wasi::RestoreOptions o = trusting();
  o.stdout_path = dir_ / "second.txt";
  restore(section, o);
  ASSERT_EQ(write(1, "after"), Errno::success);
  EXPECT_EQ(dir_.read("first.txt"), "before");
  EXPECT_EQ(dir_.read("second.txt"), "after");
  auto c = call();
  ASSERT_EQ(calls::fd_fdstat_get(c, 1, kOut).err, Errno::success);
  EXPECT_EQ(load<uint64_t>(kOut + 8), right::fd_write) << "dropped rights stay dropped";
}

TEST_F(WasiStateTest, RedirectedStreamsContinueInTheirFiles) {
  dir_.write("in.txt", "0123456789");
  wasi::WasiOptions options;
  options.stdin_path = dir_ / "in.txt";
  options.stdout_path = dir_ / "out.txt";
  start(options);
  EXPECT_EQ(read(0, 3), "012");
  ASSERT_EQ(write(1, "before"), Errno::success);
  auto section = save();
  ASSERT_EQ(write(1, "-the run went on"), Errno::success);

  // The restore names no stream: the program's files, where it was in them.
  restore(section);
  EXPECT_EQ(read(0, 3), "345");
  ASSERT_EQ(write(1, "+after"), Errno::success);
  EXPECT_EQ(dir_.read("out.txt"), "before+afterun went on")
      << "not truncated: the restored program writes over what the run wrote after the "
         "checkpoint, from the checkpoint's offset";
  EXPECT_EQ(ctx_->options().stdout_path, dir_ / "out.txt");

  // And again from the restored program: still the same files.
  restore(save());
  EXPECT_EQ(read(0, 2), "67");

  ::unlink((dir_ / "in.txt").c_str());
  std::string message = error_of([&] { restore(save()); });
  EXPECT_NE(message.find("fd 0 (stdin redirected to " + dir_ / "in.txt" + ")"), std::string::npos)
      << message;
  EXPECT_NE(message.find("--stdin FILE"), std::string::npos) << message;
}

TEST_F(WasiStateTest, RenumberedStdioKeepsItsStream) {
  wasi::WasiOptions options;
  options.stderr_path = dir_ / "err.txt";
  start(options);
  uint32_t file = open("f", oflag::creat, kReadWrite);
  {
    auto c = call();
    ASSERT_EQ(calls::fd_renumber(c, 2, file).err, Errno::success); // stderr now at `file`
  }
  wasi::RestoreOptions o = trusting();
  o.stderr_path = dir_ / "err2.txt";
  restore(save(), o);
  ASSERT_EQ(write(file, "to stderr"), Errno::success);
  EXPECT_EQ(dir_.read("err2.txt"), "to stderr");
  EXPECT_EQ(ctx_->fds().find(2), nullptr);
}

TEST_F(WasiStateTest, MonotonicClockContinuesFromTheCheckpoint) {
  // A long-running program: its monotonic clock is far ahead of this host's.
  constexpr uint64_t kFarAhead = uint64_t(1) << 62;
  ctx_->clocks().continue_from(wasi::ClockId::monotonic, kFarAhead);
  ctx_->clocks().continue_from(wasi::ClockId::process_cputime, kFarAhead);
  auto section = save();
  const uint64_t saved = wasi::state::decode(section.payload).monotonic_ns;
  EXPECT_GE(saved, kFarAhead);
  restore(section);
  EXPECT_GE(ctx_->clocks().monotonic_now(), saved) << "never backwards";
  auto c = call();
  ASSERT_EQ(calls::clock_time_get(c, uint32_t(wasi::ClockId::process_cputime), 0, kOut).err,
            Errno::success);
  EXPECT_GE(load<uint64_t>(kOut), kFarAhead);
  // Realtime is the host's.
  ASSERT_EQ(calls::clock_time_get(c, uint32_t(wasi::ClockId::realtime), 0, kOut).err,
            Errno::success);
  EXPECT_LT(load<uint64_t>(kOut), kFarAhead);
}

TEST_F(WasiStateTest, PendingPollKeepsItsDeadlines) {
  ctx_->pending_poll() = wasi::PendingPoll{0x40, std::vector<uint8_t>(96, 7), {123, 456}};
  restore(save());
  ASSERT_TRUE(ctx_->pending_poll().has_value());
  EXPECT_EQ(ctx_->pending_poll()->in, 0x40u);
  EXPECT_EQ(ctx_->pending_poll()->subscriptions, std::vector<uint8_t>(96, 7));
  EXPECT_EQ(ctx_->pending_poll()->deadlines, (std::vector<uint64_t>{123, 456}));
}

TEST_F(WasiStateTest, DirectoryListingBeingReadIsKept) {
  dir_.mkdir("sandbox/d");
  for (const char* name : {"a", "b", "c"}) dir_.write(std::string("sandbox/d/") + name, "");
  uint32_t d = open("d", oflag::directory, right::directory);
  auto c = call();
  ASSERT_EQ(calls::fd_readdir(c, d, kBuf, 256, 0, kOut).err, Errno::success);
  auto listing = *ctx_->fds().find(d)->listing;
  restore(save());
  dir_.write("sandbox/d/new", "");
  const wasi::FdEntry* e = ctx_->fds().find(d);
  ASSERT_NE(e, nullptr);
  ASSERT_TRUE(e->listing);
  ASSERT_EQ(e->listing->entries.size(), listing.entries.size());
  for (size_t i = 0; i < listing.entries.size(); ++i)
    EXPECT_EQ(e->listing->entries[i].name, listing.entries[i].name) << "cookies keep their meaning";
}

TEST_F(WasiStateTest, ListeningSocketIsBoundAgainAndAccepts) {
  wasi::WasiOptions options;
  options.listen = {"127.0.0.1:0"};
  start(options); // the listener is fd 4
  const uint16_t port = ctx_->fds().find(4)->socket->local.port;
  auto section = save();

  // While the original still listens, the port is taken: a clear error.
  std::string busy = error_of([&] { wasi::restore_state(section, listening(port)); });
  EXPECT_NE(busy.find("fd 4"), std::string::npos) << busy;
  EXPECT_NE(busy.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << busy;
  EXPECT_NE(busy.find("in use"), std::string::npos) << busy;

  // The restore's own options grant the address, not the snapshot.
  const std::string at = "127.0.0.1:" + std::to_string(port);
  std::string refused = error_of([&] { restore(section); });
  EXPECT_NE(refused.find("fd 4 (tcp-listener " + at + ")"), std::string::npos) << refused;
  EXPECT_NE(refused.find("give --listen " + at + " or --allow-bind " + at), std::string::npos)
      << refused;
  wasi::RestoreOptions by_policy = trusting();
  by_policy.allow_bind = {"127.0.0.0/8"};
  restore(section, by_policy);
  restore(save(), listening(port));
  const wasi::FdEntry* e = ctx_->fds().find(4);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->kind, wasi::FdKind::TcpListener);
  EXPECT_EQ(wasi::local_address(e->host.get()).port, port);
  int peer = connect_to(port);
  uint32_t conn;
  ASSERT_EQ(accept(4, conn), Errno::success);
  ASSERT_EQ(::send(peer, "ping", 4, 0), 4);
  auto c = call();
  iovec_at(kIov, kBuf, 64);
  ASSERT_EQ(calls::sock_recv(c, conn, kIov, 1, 0, kOut, kOut2).err, Errno::success);
  EXPECT_EQ(get(kBuf, load<uint32_t>(kOut)), "ping");
  ::close(peer);
}

TEST_F(WasiStateTest, AForgedListenerIsRefusedBesideGrantedOnes) {
  wasi::WasiOptions options;
  options.listen = {"127.0.0.1:0"};
  start(options);
  const uint16_t port = ctx_->fds().find(4)->socket->local.port;
  auto state = wasi::state::decode(save().payload);
  // A second listener on every interface, which the user never asked for.
  wasi::state::SavedFd forged =
      *std::find_if(state.fds.begin(), state.fds.end(), [](const auto& f) { return f.fd == 4; });
  forged.fd = 20;
  forged.socket.local.ip = {};
  forged.socket.local.port = 0;
  state.fds.push_back(forged);
  snapshot::ExtensionSection section{wasi::kStateTag, false, wasi::state::encode(state)};
  std::string message = error_of([&] { restore(section, listening(port)); });
  EXPECT_NE(message.find("fd 20 (tcp-listener 0.0.0.0:0)"), std::string::npos) << message;
  EXPECT_NE(message.find("does not allow binding it again"), std::string::npos) << message;

  // A --listen that names no listener of the snapshot does nothing: an error.
  state.fds.pop_back();
  section.payload = wasi::state::encode(state);
  wasi::RestoreOptions o = listening(port);
  o.listen.push_back("127.0.0.1:1");
  message = error_of([&] { restore(section, o); });
  EXPECT_NE(message.find("--listen 127.0.0.1:1: the snapshot has no listening socket"),
            std::string::npos)
      << message;
}

TEST_F(WasiStateTest, ConnectedSocketsComeBackResetByThePeer) {
  wasi::WasiOptions options;
  options.listen = {"127.0.0.1:0"};
  start(options);
  const uint16_t port = ctx_->fds().find(4)->socket->local.port;
  int peer1 = connect_to(port), peer2 = connect_to(port);
  uint32_t conn1, conn2;
  ASSERT_EQ(accept(4, conn1), Errno::success);
  ASSERT_EQ(accept(4, conn2), Errno::success);
  const std::string peer_address = ctx_->fds().find(conn1)->socket->peer.to_string();
  restore(save(), listening(port));

  EXPECT_EQ(recv(conn1), Errno::connreset);
  EXPECT_EQ(recv(conn1), Errno::success) << "then end of stream";
  EXPECT_EQ(load<uint32_t>(kOut), 0u);
  EXPECT_EQ(send(conn2, "x"), Errno::connreset);
  EXPECT_EQ(send(conn2, "x"), Errno::pipe) << "then a broken pipe";
  // The record still says who the program was talking to.
  EXPECT_EQ(ctx_->fds().find(conn1)->socket->peer.to_string(), peer_address);
  ::close(peer1);
  ::close(peer2);
}

TEST_F(WasiStateTest, SocketsTheProgramOpenedComeBackWithTheirOptions) {
  // A UDP socket bound to a port and connected to a peer, and a TCP socket
  // bound but not connected, as the socket extension leaves them.
  wasi::FdEntry udp;
  ASSERT_EQ(wasi::open_socket(4, true, udp), Errno::success);
  sockaddr_in any{};
  any.sin_family = AF_INET;
  any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(udp.host.get(), reinterpret_cast<sockaddr*>(&any), sizeof any), 0);
  udp.socket->local = wasi::local_address(udp.host.get());
  udp.socket->peer = udp.socket->local; // talking to itself
  udp.socket->options.broadcast = true;
  udp.socket->options.recv_buf = 65536;
  udp.socket->options.recv_timeout_us = 1500;
  wasi::FdEntry tcp;
  ASSERT_EQ(wasi::open_socket(4, false, tcp), Errno::success);
  ASSERT_EQ(::bind(tcp.host.get(), reinterpret_cast<sockaddr*>(&any), sizeof any), 0);
  tcp.socket->local = wasi::local_address(tcp.host.get());
  tcp.socket->options.keep_alive = true;
  tcp.socket->options.keep_idle_s = 77;
  tcp.socket->connecting = true;
  tcp.socket->peer = tcp.socket->local;
  const wasi::SocketAddress udp_at = udp.socket->local, tcp_at = tcp.socket->local;
  ctx_->fds().insert_at(10, std::move(udp));
  ctx_->fds().insert_at(11, std::move(tcp));
  auto section = save();
  std::string refused = error_of([&] { restore(section); });
  EXPECT_NE(refused.find("fd 10 (udp-socket " + udp_at.to_string() + ")"), std::string::npos)
      << refused;
  EXPECT_NE(refused.find("give --allow-bind " + udp_at.to_string()), std::string::npos) << refused;
  wasi::RestoreOptions o = trusting();
  o.allow_bind = {"127.0.0.1"};
  refused = error_of([&] { restore(section, o); });
  EXPECT_NE(refused.find("connecting it to " + udp_at.to_string()), std::string::npos) << refused;
  EXPECT_NE(refused.find("give --allow-connect " + udp_at.to_string()), std::string::npos)
      << refused;
  o.allow_connect = {"127.0.0.1"};
  restore(section, o);

  auto option = [](int fd, int level, int name) {
    int value = 0;
    socklen_t len = sizeof value;
    EXPECT_EQ(::getsockopt(fd, level, name, &value, &len), 0);
    return value;
  };
  const wasi::FdEntry* u = ctx_->fds().find(10);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->kind, wasi::FdKind::UdpSocket);
  EXPECT_EQ(wasi::local_address(u->host.get()), udp_at) << "bound where it was";
  EXPECT_EQ(wasi::peer_address(u->host.get()), udp_at) << "connected to the same peer";
  EXPECT_EQ(option(u->host.get(), SOL_SOCKET, SO_BROADCAST), 1);
  EXPECT_GE(option(u->host.get(), SOL_SOCKET, SO_RCVBUF), 65536);
  EXPECT_EQ(u->recv_timeout_us(), 1500u);
  EXPECT_EQ(send(10, "self"), Errno::success);
  EXPECT_EQ(recv(10), Errno::success);
  EXPECT_EQ(get(kBuf, load<uint32_t>(kOut)), "self");

  const wasi::FdEntry* t = ctx_->fds().find(11);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->kind, wasi::FdKind::TcpSocket);
  EXPECT_EQ(wasi::local_address(t->host.get()), tcp_at);
  EXPECT_EQ(option(t->host.get(), SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(option(t->host.get(), IPPROTO_TCP, TCP_KEEPIDLE), 77);
  EXPECT_FALSE(t->socket->connecting) << "a connect in progress starts over when re-issued";
}

TEST_F(WasiStateTest, NetworkSandboxIsTheRestoresOwn) {
  wasi::WasiOptions options;
  options.allow_connect = {"127.0.0.1"};
  start(options);
  auto section = save();
  wasi::SocketAddress local;
  local.family = 4;
  local.ip = {127, 0, 0, 1};
  local.port = 80;
  restore(section);
  EXPECT_FALSE(ctx_->net_policy().may_connect(local)) << "nothing allowed unless the restore says";
  wasi::RestoreOptions o = trusting();
  o.allow_connect = {"127.0.0.1"};
  restore(section, o);
  EXPECT_TRUE(ctx_->net_policy().may_connect(local));
}

TEST_F(WasiStateTest, DescribeNamesEveryFd) {
  wasi::WasiOptions options;
  options.args = {"prog", "two words"};
  options.env = {"A=1"};
  options.listen = {"127.0.0.1:0"};
  start(options);
  dir_.write("sandbox/in.txt", "0123456789");
  uint32_t in = open("in.txt", 0, kReadOnly);
  EXPECT_EQ(read(in, 3), "012");
  uint32_t out = open("out.txt", oflag::creat | oflag::trunc, kReadWrite, wasi::fdflag::append);
  ASSERT_EQ(write(out, "hi"), Errno::success);
  const uint16_t port = ctx_->fds().find(4)->socket->local.port;
  auto section = save(true);

  const auto lines = wasi::describe_state(section);
  auto has = [&](const std::string& text) {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.find(text) != std::string::npos; });
  };
  EXPECT_TRUE(has("args: prog \"two words\""));
  EXPECT_TRUE(has("env: A=1"));
  EXPECT_TRUE(has("preopen 0: /sandbox (host " + dir_ / "sandbox" + ")"));
  EXPECT_TRUE(has("clocks: monotonic "));
  EXPECT_TRUE(has("fd 3: directory /sandbox (preopen 0)"));
  EXPECT_TRUE(has(fmt::format("fd {}: file /sandbox/in.txt (preopen 0), offset 3, size 10", in)));
  EXPECT_TRUE(has(fmt::format("fd {}: file /sandbox/out.txt (preopen 0), offset 2, size 2", out)));
  EXPECT_TRUE(has("oflags creat|trunc, fdflags append"));
  EXPECT_TRUE(has(fmt::format("fd 4: tcp-listener 127.0.0.1:{} (backlog 128, reuse_addr), bound "
                              "again on restore",
                              port)));
  EXPECT_TRUE(has("bundled file /sandbox/out.txt: 2 bytes"));

  const auto json = nlohmann::json::parse(wasi::describe_state_json(section));
  EXPECT_EQ(json["args"][1], "two words");
  bool found = false;
  for (const auto& fd : json["fds"]) {
    if (fd["fd"] != in) continue;
    found = true;
    EXPECT_EQ(fd["kind"], "file");
    EXPECT_EQ(fd["path"], "/sandbox/in.txt");
    EXPECT_EQ(fd["offset"], 3);
    EXPECT_EQ(fd["rights_base"], fmt::format("0x{:x}", kReadOnly));
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(json["bundled_files"][0]["size"], 2);
}

// A payload with one fd, a standard stream, and nothing else; the offsets
// of its fields for the tests that damage them.
std::vector<uint8_t> one_stdio_fd() {
  wasi::state::SavedState s;
  wasi::state::SavedFd f;
  f.fd = 1;
  f.kind = wasi::FdKind::CharDevice;
  f.stream = 1;
  f.path = "<stdout>";
  s.fds.push_back(f);
  return wasi::state::encode(s);
}
constexpr size_t kFdCountAt = 4 + 4 + 4 + 24 + 1; // args, env, preopens, clocks, pending poll
constexpr size_t kKindAt = kFdCountAt + 4 + 4;
constexpr size_t kOriginAt = kKindAt + 1;
constexpr size_t kStreamAt = kOriginAt + 1 + 4 + 16 + 4 + 8; // ... fdflags, rights, "<stdout>"

std::string decode_error(const std::vector<uint8_t>& payload) {
  return error_of([&] { wasi::state::decode(payload); });
}

TEST(WasiStatePayload, WellFormedBaseline) {
  auto payload = one_stdio_fd();
  ASSERT_EQ(payload.size(), kStreamAt + 2 + 8 + 4); // stream, redirected, position; no files
  EXPECT_EQ(payload[kKindAt], 3);                   // char-device
  EXPECT_EQ(payload[kStreamAt], 1);
  EXPECT_EQ(decode_error(payload), "");
}

TEST(WasiStatePayload, EveryTruncationIsAnError) {
  wasi::state::SavedState s;
  s.args = {"prog"};
  s.preopens = {{"/host", "/guest"}};
  s.pending_poll = wasi::PendingPoll{8, std::vector<uint8_t>(48, 1), {5}};
  wasi::state::SavedFd file;
  file.fd = 4;
  file.kind = wasi::FdKind::File;
  file.origin = wasi::state::Origin::Path;
  file.path = "f";
  file.listing = std::nullopt;
  wasi::state::SavedFd sock;
  sock.fd = 5;
  sock.kind = wasi::FdKind::TcpListener;
  sock.origin = wasi::state::Origin::Socket;
  sock.socket.family = 4;
  sock.socket.local.family = 4;
  sock.socket.options.reuse_addr = true;
  sock.socket.options.ttl = 9;
  sock.socket.options.memberships = {{sock.socket.local, 7}};
  s.fds = {file, sock};
  s.files = {{0, "f", 0644, 3, 0, {1, 2, 3}}};
  const auto payload = wasi::state::encode(s);
  ASSERT_EQ(decode_error(payload), "");
  for (size_t n = 0; n < payload.size(); ++n) {
    std::vector<uint8_t> cut(payload.begin(), payload.begin() + long(n));
    EXPECT_NE(decode_error(cut), "") << "cut at " << n;
    snapshot::ExtensionSection section{wasi::kStateTag, false, cut};
    EXPECT_NE(error_of([&] { wasi::describe_state(section); }), "");
  }
  auto longer = payload;
  longer.push_back(0);
  EXPECT_NE(decode_error(longer).find("unexpected bytes at the end"), std::string::npos);
}

TEST(WasiStatePayload, BadCountsKindsAndOriginsAreErrors) {
  auto huge_count = one_stdio_fd();
  huge_count[kFdCountAt + 3] = 0x7f;
  EXPECT_NE(decode_error(huge_count).find("cannot fit"), std::string::npos);

  auto bad_kind = one_stdio_fd();
  bad_kind[kKindAt] = 200;
  EXPECT_NE(decode_error(bad_kind).find("unknown kind 200"), std::string::npos);

  auto bad_origin = one_stdio_fd();
  bad_origin[kOriginAt] = 9;
  EXPECT_NE(decode_error(bad_origin).find("unknown origin 9"), std::string::npos);

  auto socket_file = one_stdio_fd();
  socket_file[kOriginAt] = 3; // a char device as a socket
  EXPECT_NE(decode_error(socket_file).find("cannot have origin socket"), std::string::npos);

  auto bad_stream = one_stdio_fd();
  bad_stream[kStreamAt] = 3;
  EXPECT_NE(decode_error(bad_stream).find("standard stream 3"), std::string::npos);

  auto bad_bool = one_stdio_fd();
  bad_bool[kStreamAt + 1] = 2;
  EXPECT_NE(decode_error(bad_bool).find("neither 0 nor 1"), std::string::npos);

  auto bad_preopen = one_stdio_fd();
  bad_preopen[kOriginAt] = 1; // a preopen of a char device, and there are no preopens
  EXPECT_NE(decode_error(bad_preopen), "");
}

TEST(WasiStatePayload, RecordsOutOfRangeAreErrors) {
  wasi::state::SavedState s;
  s.preopens = {{"/h", "/g"}};
  wasi::state::SavedFd f;
  f.fd = 3;
  f.kind = wasi::FdKind::Directory;
  f.origin = wasi::state::Origin::Preopen;
  s.fds = {f, f};
  EXPECT_NE(decode_error(wasi::state::encode(s)).find("fds must increase"), std::string::npos);
  s.fds = {f};
  s.fds[0].preopen = 1;
  EXPECT_NE(decode_error(wasi::state::encode(s)).find("preopen 1 does not exist"),
            std::string::npos);
  s.fds[0].preopen = 0;
  s.fds[0].fdflags = 0x100;
  EXPECT_NE(decode_error(wasi::state::encode(s)).find("unknown fdflags"), std::string::npos);
  s.fds[0].fdflags = 0;
  s.fds[0].rights_base = uint64_t(1) << 40;
  EXPECT_NE(decode_error(wasi::state::encode(s)).find("unknown rights"), std::string::npos);
  s.fds[0].rights_base = 0;
  s.fds[0].fd = wasi::FdTable::kMaxFds;
  EXPECT_NE(decode_error(wasi::state::encode(s)).find("above the limit"), std::string::npos);

  s.fds.clear();
  s.files = {{0, "f", 0644, 5, 0, {1, 2, 3}}};
  s.files[0].mode = 070000;
  EXPECT_NE(decode_error(wasi::state::encode(s)).find("mode"), std::string::npos);
}

TEST_F(WasiStateTest, DamagedBundleIsAnErrorNamingTheFile) {
  uint32_t out = open("out.txt", oflag::creat, kReadWrite);
  ASSERT_EQ(write(out, "some contents"), Errno::success);
  auto state = wasi::state::decode(save(true).payload);
  ASSERT_EQ(state.files.size(), 1u);
  for (auto damage : {+[](wasi::state::BundledFile& f) { f.size += 1; },
                      +[](wasi::state::BundledFile& f) { f.size -= 1; },
                      +[](wasi::state::BundledFile& f) { f.zstd.resize(f.zstd.size() / 2); },
                      +[](wasi::state::BundledFile& f) { f.zstd[0] ^= 0xff; }}) {
    auto damaged = state;
    damage(damaged.files[0]);
    snapshot::ExtensionSection section{wasi::kStateTag, false, wasi::state::encode(damaged)};
    std::string message = error_of([&] { wasi::restore_state(section, trusting()); });
    EXPECT_NE(message.find("bundled file /sandbox/out.txt"), std::string::npos) << message;
    EXPECT_EQ(dir_.read("sandbox/out.txt"), "some contents") << "left as it was";
  }
}

} // namespace
} // namespace tern::test
