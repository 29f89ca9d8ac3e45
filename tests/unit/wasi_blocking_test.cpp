// Blocking WASI calls stop for a checkpoint: a request from another thread
// makes a blocked fd_read / poll_oneoff / sock_accept / sock_recv return
// "suspend" without consuming input, and a re-issued poll_oneoff keeps its
// original deadline. Also the preview1 socket calls against a real peer.
#include "wasi/socket.h"
#include "wasi_fixture.h"

#include <arpa/inet.h>
#include <future>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>

namespace tern::test {
namespace {

using wasi::Errno;
namespace calls = wasi::calls;

// Runs `fn` on another thread, requests a checkpoint from this one, and
// returns what the call returned. The request may land before or while the
// call blocks; either way the call must come back with "suspend".
template <typename Fn>
wasi::Ret interrupted(runtime::Interrupt& interrupt, Fn fn) {
  std::promise<void> started;
  auto done = std::async(std::launch::async, [&] {
    started.set_value();
    return fn();
  });
  started.get_future().wait();
  interrupt.request();
  wasi::Ret r = done.get();
  interrupt.clear();
  return r;
}

bool suspended(const wasi::Ret& r) {
  return r.stop && r.stop->status == runtime::HostStatus::Suspend;
}

class WasiBlockingTest : public WasiTest {
protected:
  // A pipe whose read end is guest fd `fd`.
  int add_pipe(uint32_t fd) {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    wasi::FdEntry e;
    e.kind = wasi::FdKind::Fifo;
    e.host.reset(p[0]);
    e.rights_base = wasi::right::stream;
    ctx_->fds().insert_at(fd, std::move(e));
    return p[1];
  }
  // A listening socket on 127.0.0.1 (any port) as guest fd `fd`; its port.
  uint16_t add_listener(uint32_t fd) {
    ctx_->fds().insert_at(fd, wasi::open_listener("127.0.0.1:0"));
    return ctx_->fds().find(fd)->socket->local.port;
  }
  static int connect_to(uint16_t port) {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    return s;
  }
};

TEST_F(WasiBlockingTest, BlockedReadSuspendsWithoutConsumingInput) {
  int writer = add_pipe(10);
  wasi::Ret r = interrupted(interrupt_, [&] {
    auto c = call();
    iovec_at(kIov, kBuf, 64);
    return calls::fd_read(c, 10, kIov, 1, kOut);
  });
  EXPECT_TRUE(suspended(r));
  // The call is issued again after the restore and gets all the data.
  ASSERT_EQ(::write(writer, "abc", 3), 3);
  EXPECT_EQ(read(10), "abc");
  ::close(writer);
  EXPECT_EQ(read(10), "") << "end of file";
}

TEST_F(WasiBlockingTest, NonblockingReadIsEagain) {
  int writer = add_pipe(10);
  auto c = call();
  ASSERT_EQ(calls::fd_fdstat_set_flags(c, 10, wasi::fdflag::nonblock).err, Errno::success);
  EXPECT_EQ(read(10), "<errno 6>"); // again
  ASSERT_EQ(::write(writer, "x", 1), 1);
  EXPECT_EQ(read(10), "x");
  ::close(writer);
}

class WasiPollTest : public WasiBlockingTest {
protected:
  void clock_sub(uint32_t at, uint64_t userdata, uint64_t timeout_ns) {
    std::memset(mem() + at, 0, 48);
    store<uint64_t>(at, userdata);
    store<uint8_t>(at + 8, uint8_t(wasi::EventType::clock));
    store<uint32_t>(at + 16, uint32_t(wasi::ClockId::monotonic));
    store<uint64_t>(at + 24, timeout_ns);
  }
  void fd_read_sub(uint32_t at, uint64_t userdata, uint32_t fd) {
    std::memset(mem() + at, 0, 48);
    store<uint64_t>(at, userdata);
    store<uint8_t>(at + 8, uint8_t(wasi::EventType::fd_read));
    store<uint32_t>(at + 16, fd);
  }
  wasi::Ret poll(uint32_t n) {
    auto c = call();
    return calls::poll_oneoff(c, kBuf, kOut, n, kOut2);
  }
};

constexpr uint64_t kHour = 3600'000000000ull;

TEST_F(WasiPollTest, BlockedPollSuspendsAndResumesWithTheSameDeadline) {
  int writer = add_pipe(10);
  clock_sub(kBuf, 1, kHour);
  fd_read_sub(kBuf + 48, 2, 10);
  uint64_t before = ctx_->clocks().monotonic_now();
  wasi::Ret r = interrupted(interrupt_, [&] { return poll(2); });
  ASSERT_TRUE(suspended(r));
  ASSERT_TRUE(ctx_->pending_poll().has_value());
  const auto& pending = *ctx_->pending_poll();
  ASSERT_EQ(pending.deadlines.size(), 2u);
  uint64_t deadline = pending.deadlines[0];
  EXPECT_GE(deadline, before + kHour);
  EXPECT_LE(deadline, ctx_->clocks().monotonic_now() + kHour);

  // Issued again (as after a restore, while a request is still pending):
  // suspends again and the deadline does not move.
  interrupt_.request();
  ASSERT_TRUE(suspended(poll(2)));
  interrupt_.clear();
  EXPECT_EQ(ctx_->pending_poll()->deadlines[0], deadline);

  // Make the remembered deadline due, as if the hour had passed while the
  // program was checkpointed: the re-issued call returns at once, with the
  // clock event, although the subscription still says "one hour from now".
  ctx_->pending_poll()->deadlines[0] = ctx_->clocks().monotonic_now();
  ASSERT_TRUE(poll(2).ok());
  ASSERT_EQ(load<uint32_t>(kOut2), 1u);
  EXPECT_EQ(load<uint64_t>(kOut), 1u);
  EXPECT_FALSE(ctx_->pending_poll().has_value());
  ::close(writer);
}

TEST_F(WasiPollTest, ReadyFdWinsOverTheClock) {
  int writer = add_pipe(10);
  ASSERT_EQ(::write(writer, "hello", 5), 5);
  clock_sub(kBuf, 1, kHour);
  fd_read_sub(kBuf + 48, 2, 10);
  ASSERT_TRUE(poll(2).ok());
  ASSERT_EQ(load<uint32_t>(kOut2), 1u);
  EXPECT_EQ(load<uint64_t>(kOut), 2u);
  EXPECT_EQ(load<uint8_t>(kOut + 10), uint8_t(wasi::EventType::fd_read));
  EXPECT_EQ(load<uint64_t>(kOut + 16), 5u); // nbytes available
  ::close(writer);
  ASSERT_TRUE(poll(2).ok());
  EXPECT_EQ(load<uint16_t>(kOut + 24) & wasi::eventrwflag::hangup, wasi::eventrwflag::hangup);
}

TEST_F(WasiBlockingTest, BlockedAcceptAndRecvSuspend) {
  uint16_t port = add_listener(20);
  wasi::Ret r = interrupted(interrupt_, [&] {
    auto c = call();
    return calls::sock_accept(c, 20, 0, kOut);
  });
  EXPECT_TRUE(suspended(r));

  int peer = connect_to(port);
  auto c = call();
  ASSERT_EQ(calls::sock_accept(c, 20, 0, kOut).err, Errno::success);
  uint32_t conn = load<uint32_t>(kOut);
  r = interrupted(interrupt_, [&] {
    auto c2 = call();
    iovec_at(kIov, kBuf, 64);
    return calls::sock_recv(c2, conn, kIov, 1, 0, kOut, kOut2);
  });
  EXPECT_TRUE(suspended(r));
  ASSERT_EQ(::send(peer, "ping", 4, 0), 4);
  iovec_at(kIov, kBuf, 64);
  ASSERT_EQ(calls::sock_recv(c, conn, kIov, 1, 0, kOut, kOut2).err, Errno::success);
  EXPECT_EQ(get(kBuf, load<uint32_t>(kOut)), "ping") << "nothing was lost to the suspension";
  ::close(peer);
}

TEST_F(WasiBlockingTest, SocketCallsTalkToARealPeer) {
  uint16_t port = add_listener(20);
  auto c = call();
  // A non-blocking listener has nothing to accept yet.
  ASSERT_EQ(calls::fd_fdstat_set_flags(c, 20, wasi::fdflag::nonblock).err, Errno::success);
  EXPECT_EQ(calls::sock_accept(c, 20, 0, kOut).err, Errno::again);
  ASSERT_EQ(calls::fd_fdstat_set_flags(c, 20, 0).err, Errno::success);
  EXPECT_EQ(calls::sock_accept(c, kPreopenFd, 0, kOut).err, Errno::notcapable)
      << "a directory has no sock_accept right";
  int peer = connect_to(port);
  ASSERT_EQ(calls::sock_accept(c, 20, 0, kOut).err, Errno::success);
  uint32_t conn = load<uint32_t>(kOut);
  const wasi::FdEntry* e = ctx_->fds().find(conn);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->kind, wasi::FdKind::TcpStream);
  EXPECT_EQ(e->socket->local.to_string(), "127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(e->socket->peer.family, 4);
  ASSERT_EQ(calls::fd_fdstat_get(c, conn, kOut2).err, Errno::success);
  EXPECT_EQ(load<uint8_t>(kOut2), uint8_t(wasi::FileType::socket_stream));

  // send: two iovecs; the peer reads them as one stream.
  put(kBuf, "hello ");
  put(kBuf + 64, "peer");
  iovec_at(kIov, kBuf, 6);
  iovec_at(kIov + 8, kBuf + 64, 4);
  ASSERT_EQ(calls::sock_send(c, conn, kIov, 2, 0, kOut).err, Errno::success);
  EXPECT_EQ(load<uint32_t>(kOut), 10u);
  char got[32] = {};
  size_t n = 0;
  while (n < 10) n += size_t(::recv(peer, got + n, sizeof got - n, 0));
  EXPECT_EQ(std::string(got, n), "hello peer");

  // recv with PEEK leaves the data; WAITALL waits for all of it.
  ASSERT_EQ(::send(peer, "abc", 3, 0), 3);
  iovec_at(kIov, kBuf, 3);
  ASSERT_EQ(calls::sock_recv(c, conn, kIov, 1, wasi::riflag::recv_peek, kOut, kOut2).err,
            Errno::success);
  uint32_t peeked = load<uint32_t>(kOut);
  EXPECT_TRUE(peeked > 0 && std::string("abc").starts_with(get(kBuf, peeked)));
  std::thread later([&] { ::send(peer, "def", 3, 0); });
  iovec_at(kIov, kBuf, 6);
  ASSERT_EQ(calls::sock_recv(c, conn, kIov, 1, wasi::riflag::recv_waitall, kOut, kOut2).err,
            Errno::success);
  later.join();
  EXPECT_EQ(get(kBuf, load<uint32_t>(kOut)), "abcdef");
  EXPECT_EQ(load<uint16_t>(kOut2), 0u); // ro_flags

  EXPECT_EQ(calls::sock_shutdown(c, conn, 0).err, Errno::inval);
  ASSERT_EQ(calls::sock_shutdown(c, conn, wasi::sdflag::wr).err, Errno::success);
  EXPECT_TRUE(ctx_->fds().find(conn)->socket->shut_write);
  EXPECT_EQ(::recv(peer, got, sizeof got, 0), 0) << "the peer sees end of stream";
  ::close(peer);
  iovec_at(kIov, kBuf, 6);
  ASSERT_EQ(calls::sock_recv(c, conn, kIov, 1, 0, kOut, kOut2).err, Errno::success);
  EXPECT_EQ(load<uint32_t>(kOut), 0u);
  EXPECT_EQ(calls::sock_recv(c, 20, kIov, 1, 0, kOut, kOut2).err, Errno::notsock);
}

} // namespace
} // namespace tern::test
