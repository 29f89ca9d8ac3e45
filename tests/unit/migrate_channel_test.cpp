// The authenticated channel (migrate/channel.h) on loopback: keys on disk,
// a handshake with the same key, refusals of another key, of a client
// without TLS and of garbage, timeouts, cancellation, and both ways of
// ending a connection.
#include "migrate/channel.h"

#include <atomic>
#include <fcntl.h>
#include <future>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <random>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace tern::test {
namespace {

using migrate::Channel;
using migrate::ChannelError;
using migrate::ChannelOptions;
using migrate::Key;
using migrate::Listener;
using namespace std::chrono_literals;

std::string temp_path(const std::string& name) {
  std::string path = ::testing::TempDir() + "/" + name + "." + std::to_string(::getpid());
  ::unlink(path.c_str());
  return path;
}

ChannelOptions quick(std::chrono::milliseconds timeout = 5000ms) {
  ChannelOptions o;
  o.timeout = timeout;
  return o;
}

// A raw TCP connection to the listener (no TLS).
int raw_connect(const Listener& l) {
  const std::string& a = l.address();
  const int port = std::stoi(a.substr(a.rfind(':') + 1));
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  return fd;
}

// Runs the server side of one connection; returns its channel or error.
struct Served {
  std::unique_ptr<Channel> channel;
  std::string error;
};
std::future<Served> serve_one(Listener& l, const Key& key, ChannelOptions options = quick()) {
  return std::async(std::launch::async, [&l, key, options] {
    Served s;
    std::string peer;
    try {
      s.channel = Channel::accept(l.accept(peer), peer, key, options);
    } catch (const ChannelError& e) {
      s.error = e.what();
    }
    return s;
  });
}

TEST(MigrateKey, SavedKeyLoadsBackWithMode0600) {
  const std::string path = temp_path("k1");
  const Key key = Key::generate();
  key.save_new(path);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const Key back = Key::load(path);
  EXPECT_TRUE(std::equal(key.bytes().begin(), key.bytes().end(), back.bytes().begin()));
  EXPECT_EQ(key.id(), back.id());
  EXPECT_EQ(key.id().size(), 16u);
  EXPECT_NE(key.id(), Key::generate().id());
  ::unlink(path.c_str());
}

TEST(MigrateKey, NeverOverwritesAFile) {
  const std::string path = temp_path("k2");
  Key::generate().save_new(path);
  try {
    Key::generate().save_new(path);
    FAIL() << "overwrote a key";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("never overwritten"), std::string::npos) << e.what();
  }
  ::unlink(path.c_str());
}

TEST(MigrateKey, RefusesKeysOthersCanReadAndMalformedOnes) {
  const std::string path = temp_path("k3");
  Key::generate().save_new(path);
  ::chmod(path.c_str(), 0644);
  EXPECT_THROW(Key::load(path), Error);
  ::chmod(path.c_str(), 0600);
  EXPECT_NO_THROW(Key::load(path));
  for (const std::string& text :
       std::vector<std::string>{"", "abc\n", std::string(63, 'a') + "g\n", std::string(66, 'a')}) {
    ::unlink(path.c_str());
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0600);
    ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ::close(fd);
    EXPECT_THROW(Key::load(path), Error) << text;
  }
  ::unlink(path.c_str());
  EXPECT_THROW(Key::load(path), Error); // missing
}

TEST(MigrateChannel, SameKeyCarriesBytesBothWays) {
  const Key key = Key::generate();
  Listener l("127.0.0.1:0", "--listen");
  auto server = serve_one(l, key);
  auto client = Channel::connect(l.address(), key, quick());
  Served s = server.get();
  ASSERT_TRUE(s.channel) << s.error;

  // 8 MiB one way (several TLS records and socket buffers full) while the
  // reader runs in another thread, then a reply.
  std::vector<uint8_t> data(8 << 20);
  std::mt19937 rng(1);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  auto reader = std::async(std::launch::async, [&] {
    std::vector<uint8_t> got(data.size());
    EXPECT_TRUE(s.channel->read_exact(got));
    s.channel->write(std::vector<uint8_t>{'o', 'k'});
    s.channel->flush();
    return got;
  });
  client->write(data);
  client->flush();
  EXPECT_EQ(reader.get(), data);
  uint8_t reply[2];
  ASSERT_TRUE(client->read_exact(reply));
  EXPECT_EQ(reply[0], 'o');
  EXPECT_GE(client->bytes_written(), data.size());

  // A clean close is the end of the stream for the other side.
  client->close();
  uint8_t byte;
  EXPECT_EQ(s.channel->read_some({&byte, 1}), 0u);
}

// Both ends derive the same secret per label; another channel with the same
// key derives another one (it is the session's, not the key's).
TEST(MigrateChannel, ExportedSecretIsSharedByTheEndsOfOneChannelOnly) {
  const Key key = Key::generate();
  Listener l("127.0.0.1:0", "--listen");
  auto first_server = serve_one(l, key);
  auto first = Channel::connect(l.address(), key, quick());
  Served a = first_server.get();
  ASSERT_TRUE(a.channel) << a.error;
  auto second_server = serve_one(l, key);
  auto second = Channel::connect(l.address(), key, quick());
  Served b = second_server.get();
  ASSERT_TRUE(b.channel) << b.error;

  EXPECT_EQ(first->export_secret("EXPORTER-test"), a.channel->export_secret("EXPORTER-test"));
  EXPECT_EQ(second->export_secret("EXPORTER-test"), b.channel->export_secret("EXPORTER-test"));
  EXPECT_NE(first->export_secret("EXPORTER-test"), second->export_secret("EXPORTER-test"));
  EXPECT_NE(first->export_secret("EXPORTER-test"), first->export_secret("EXPORTER-other"));
}

TEST(MigrateChannel, AnotherKeyIsRefusedByBothEnds) {
  const Key key = Key::generate(), other = Key::generate();
  Listener l("127.0.0.1:0", "--listen");
  auto server = serve_one(l, key);
  try {
    Channel::connect(l.address(), other, quick());
    FAIL() << "connected with another key";
  } catch (const ChannelError& e) {
    EXPECT_NE(std::string(e.what()).find("does not hold this key"), std::string::npos) << e.what();
  }
  Served s = server.get();
  EXPECT_FALSE(s.channel);
  EXPECT_NE(s.error.find("holds another key"), std::string::npos) << s.error;
  EXPECT_NE(s.error.find(other.id()), std::string::npos) << s.error;
}

TEST(MigrateChannel, GarbageAndSilenceAreRefused) {
  const Key key = Key::generate();
  Listener l("127.0.0.1:0", "--listen");
  {
    auto server = serve_one(l, key);
    int fd = raw_connect(l);
    const std::string garbage = "GET / HTTP/1.0\r\n\r\n" + std::string(4000, '\x17');
    [[maybe_unused]] auto n = ::send(fd, garbage.data(), garbage.size(), MSG_NOSIGNAL);
    Served s = server.get();
    EXPECT_FALSE(s.channel);
    EXPECT_NE(s.error.find("offered no pre-shared key"), std::string::npos) << s.error;
    ::close(fd);
  }
  {
    auto server = serve_one(l, key, quick(300ms));
    int fd = raw_connect(l); // says nothing
    Served s = server.get();
    EXPECT_FALSE(s.channel);
    EXPECT_NE(s.error.find("did not answer"), std::string::npos) << s.error;
    ::close(fd);
  }
}

TEST(MigrateChannel, ClientTimesOutOnASilentServerAndCanBeCancelled) {
  const Key key = Key::generate();
  Listener silent("127.0.0.1:0", "--listen"); // accepts in the kernel, never answers
  EXPECT_THROW(Channel::connect(silent.address(), key, quick(200ms)), migrate::ChannelTimeout);

  Listener l("127.0.0.1:0", "--listen");
  auto server = serve_one(l, key);
  auto client = Channel::connect(l.address(), key, quick(60'000ms));
  Served s = server.get();
  ASSERT_TRUE(s.channel) << s.error;
  std::thread canceller([&] {
    std::this_thread::sleep_for(50ms);
    client->cancel();
  });
  uint8_t byte;
  EXPECT_THROW(client->read_some({&byte, 1}), migrate::ChannelCancelled);
  canceller.join();
}

TEST(MigrateChannel, ConnectionThatJustEndsIsAnError) {
  const Key key = Key::generate();
  Listener l("127.0.0.1:0", "--listen");
  auto server = serve_one(l, key);
  auto client = Channel::connect(l.address(), key, quick());
  Served s = server.get();
  ASSERT_TRUE(s.channel) << s.error;
  s.channel.reset(); // no close_notify
  uint8_t byte;
  EXPECT_THROW(client->read_some({&byte, 1}), ChannelError);
  EXPECT_THROW(Channel::connect("127.0.0.1:1", key, quick()), ChannelError);
  EXPECT_THROW(Channel::connect("no-port", key, quick()), Error);
}

} // namespace
} // namespace tern::test
