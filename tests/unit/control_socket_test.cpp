// The control socket's parser and server (program/control_socket.h) on
// their own, with a command table of the test's: what a request line may
// hold, and that clients are served concurrently and always answered.
// End to end with tern: tests/checkpoint/control_socket.py.
#include "program/control_socket.h"
#include "tern/error.h"
#include "util/unique_fd.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <mutex>
#include <optional>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace tern::program {
namespace {

std::vector<ControlCommandSpec> table() {
  return {{"checkpoint", {"--stop"}, true, {}}, {"status", {}, false, {}}};
}

ControlCommand parsed(std::string_view line) {
  auto specs = table();
  auto result = parse_control_line(line, specs);
  if (auto* message = std::get_if<std::string>(&result)) {
    ADD_FAILURE() << "refused: " << *message;
    return {};
  }
  return std::get<ControlCommand>(result);
}

std::string refused(std::string_view line) {
  auto specs = table();
  auto result = parse_control_line(line, specs);
  if (auto* message = std::get_if<std::string>(&result)) return *message;
  ADD_FAILURE() << "accepted: " << line;
  return {};
}

TEST(ControlProtocol, Parses) {
  ControlCommand c = parsed("checkpoint --stop /tmp/a b.snap");
  EXPECT_EQ(c.name, "checkpoint");
  EXPECT_TRUE(c.has_flag("--stop"));
  EXPECT_EQ(c.argument, "/tmp/a b.snap"); // the rest of the line, spaces included
  EXPECT_EQ(parsed("checkpoint -- --stop").argument, "--stop");
  EXPECT_FALSE(parsed("checkpoint -- --stop").has_flag("--stop"));
  EXPECT_EQ(parsed("checkpoint - x").argument, "- x"); // a lone dash is no flag
  EXPECT_EQ(parsed("checkpoint").argument, "");
  EXPECT_EQ(parsed("  status  ").name, "status");
}

TEST(ControlProtocol, RefusesWhatItDoesNotKnow) {
  EXPECT_EQ(refused("checkpoint --sotp"), "checkpoint: unknown flag '--sotp' (it takes --stop)");
  EXPECT_EQ(refused("checkpoint -o x"), "checkpoint: unknown flag '-o' (it takes --stop)");
  EXPECT_EQ(refused("status --all"), "status: unknown flag '--all' (it takes none)");
  EXPECT_EQ(refused("status now"), "status takes no argument");
  EXPECT_EQ(refused("migrate host:1"), "unknown command 'migrate' (commands: checkpoint, status)");
  EXPECT_EQ(refused(""), "empty request");
  EXPECT_EQ(refused("checkpoint a\tb"), "the request holds a control character");
  EXPECT_EQ(refused(std::string_view("checkpoint a\0b", 14)),
            "the request holds a control character");
}

// --- the server ------------------------------------------------------------------

std::string temp_socket_path(const char* name) {
  return fmt::format("{}/tern-ctl-{}-{}.sock", ::testing::TempDir(), ::getpid(), name);
}

util::UniqueFd connect_to(const std::string& path) {
  util::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return {};
  return fd;
}

std::string read_all(int fd) {
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

// A table whose `checkpoint` holds its reply until the test releases it.
struct Held {
  std::mutex mutex;
  std::optional<ControlReply> reply;
  std::vector<ControlCommandSpec> table() {
    auto specs = tern::program::table();
    specs[0].handle = [this](const ControlCommand&, ControlReply r) {
      std::lock_guard lock(mutex);
      reply = r;
    };
    specs[1].handle = [](const ControlCommand&, ControlReply r) { r.send("running test"); };
    return specs;
  }
  bool has_reply() {
    std::lock_guard lock(mutex);
    return reply.has_value();
  }
};

TEST(ControlServer, ServesConcurrentlyAndAnswersEveryoneAtClose) {
  const std::string path = temp_socket_path("concurrent");
  const mode_t old_umask = ::umask(0);
  Held held;
  std::optional<ControlServer> server;
  server.emplace(path, held.table());
  ::umask(old_umask);
  struct stat st;
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u) << "mode under umask 0";

  util::UniqueFd silent = connect_to(path); // connects, sends nothing
  ASSERT_TRUE(silent);
  util::UniqueFd waiting = connect_to(path);
  ASSERT_TRUE(waiting);
  ASSERT_EQ(::write(waiting.get(), "checkpoint x\n", 13), 13);
  util::UniqueFd status = connect_to(path);
  ASSERT_EQ(::write(status.get(), "status\n", 7), 7);
  EXPECT_EQ(read_all(status.get()), "running test\n") << "answered beside a silent client";
  while (!held.has_reply()) ::usleep(1000);

  server->close("the program has ended");
  EXPECT_EQ(read_all(waiting.get()), "error the program has ended\n");
  EXPECT_EQ(read_all(silent.get()), "error the program has ended\n");
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "socket file left behind";
  EXPECT_FALSE(connect_to(path)) << "connected after close";
  held.reply->send("ok x"); // too late: dropped, no crash
}

TEST(ControlServer, RefusesLongAndUnterminatedLines) {
  const std::string path = temp_socket_path("lines");
  Held held;
  ControlServer server(path, held.table());
  util::UniqueFd fd = connect_to(path);
  const std::string line = "status" + std::string(kMaxControlLine, ' ') + "\n";
  // Written from here while the server answers: it may close before the end.
  ::send(fd.get(), line.data(), line.size(), MSG_NOSIGNAL);
  EXPECT_EQ(read_all(fd.get()).rfind("error the request line is longer than 8191 bytes", 0), 0u);
  fd = connect_to(path);
  ASSERT_EQ(::write(fd.get(), "status", 6), 6);
  ::shutdown(fd.get(), SHUT_WR);
  EXPECT_EQ(read_all(fd.get()), "error the request line has no newline\n");
  EXPECT_FALSE(held.has_reply());
}

TEST(ControlServer, ALiveSocketIsNotTakenOver) {
  const std::string path = temp_socket_path("taken");
  Held held;
  ControlServer first(path, held.table());
  try {
    ControlServer second(path, held.table());
    ADD_FAILURE() << "a second server took over a live socket";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("in use by another process"), std::string::npos);
  }
}

} // namespace
} // namespace tern::program
