// The socket extension (WAMR's lib-socket ABI) against real sockets on
// loopback: the address records' bytes, the sandbox policy, the fd table's
// record of each socket (what a checkpoint writes down), blocking calls that
// stop for a checkpoint without consuming anything, options, resolution.
#include "tern/error.h"
#include "wasi/blocking.h"
#include "wasi/net_policy.h"
#include "wasi/socket.h"
#include "wasi_fixture.h"

#include <arpa/inet.h>
#include <future>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

namespace tern::test {
namespace {

using wasi::Errno;
namespace calls = wasi::calls;

wasi::SocketAddress address(const char* ip, uint16_t port) {
  wasi::SocketAddress a;
  if (::inet_pton(AF_INET, ip, a.ip.data()) == 1) {
    a.family = 4;
  } else {
    EXPECT_EQ(::inet_pton(AF_INET6, ip, a.ip.data()), 1) << ip;
    a.family = 6;
  }
  a.port = port;
  return a;
}

// --- NetPolicy ---------------------------------------------------------------

TEST(NetPolicyTest, PatternsMatchAddressesPrefixesAndPorts) {
  wasi::NetPolicy policy(
      {"127.0.0.1:8080", "10.1.0.0/16", "[::1]:443", "fd00::/8", "[fe80::]/10:22"}, {"0.0.0.0/0:0"},
      {});
  EXPECT_TRUE(policy.may_connect(address("127.0.0.1", 8080)));
  EXPECT_FALSE(policy.may_connect(address("127.0.0.1", 8081))) << "another port";
  EXPECT_FALSE(policy.may_connect(address("127.0.0.2", 8080))) << "another address";
  EXPECT_TRUE(policy.may_connect(address("10.1.200.3", 1)));
  EXPECT_FALSE(policy.may_connect(address("10.2.0.1", 1)));
  EXPECT_TRUE(policy.may_connect(address("::1", 443)));
  EXPECT_FALSE(policy.may_connect(address("::1", 80)));
  EXPECT_TRUE(policy.may_connect(address("fd12:3456::1", 9)));
  EXPECT_TRUE(policy.may_connect(address("febf::1", 22))) << "fe80::/10 covers febf::";
  EXPECT_FALSE(policy.may_connect(address("fec0::1", 22)));
  // An IPv4-mapped IPv6 address is the IPv4 address it maps.
  EXPECT_TRUE(policy.may_connect(address("::ffff:127.0.0.1", 8080)));
  EXPECT_FALSE(policy.may_connect(address("::ffff:127.0.0.2", 8080)));
  // Binding: any IPv4 address, ephemeral port only; no IPv6.
  EXPECT_TRUE(policy.may_bind(address("192.0.2.1", 0)));
  EXPECT_FALSE(policy.may_bind(address("192.0.2.1", 80)));
  EXPECT_FALSE(policy.may_bind(address("::", 0)));
  // Nothing is allowed by default.
  wasi::NetPolicy none;
  EXPECT_FALSE(none.may_connect(address("127.0.0.1", 80)));
  EXPECT_FALSE(none.may_bind(address("127.0.0.1", 0)));
  EXPECT_FALSE(none.may_resolve("localhost"));
}

TEST(NetPolicyTest, MalformedPatternsAreErrorsNamingTheOption) {
  for (const char* spec : {"", "nonsense", "localhost:80", "127.0.0.1/33", "127.0.0.1:65536",
                           "127.0.0.1:", "127.0.0.1/", "[::1", "[::1]:x", "::1/129", "1.2.3"}) {
    try {
      wasi::NetPolicy({spec}, {}, {});
      ADD_FAILURE() << "accepted '" << spec << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--allow-connect"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(wasi::NetPolicy({}, {"x"}, {}), Error);
  EXPECT_THROW(wasi::NetPolicy({}, {}, {""}), Error);
}

TEST(NetPolicyTest, ResolveNamesAndWildcards) {
  wasi::NetPolicy policy({}, {}, {"LocalHost", "*.example.com"});
  EXPECT_TRUE(policy.may_resolve("localhost"));
  EXPECT_TRUE(policy.may_resolve("LOCALHOST"));
  EXPECT_TRUE(policy.may_resolve("www.example.com"));
  EXPECT_TRUE(policy.may_resolve("a.b.example.com"));
  EXPECT_FALSE(policy.may_resolve("example.com")) << "*.example.com names subdomains";
  EXPECT_FALSE(policy.may_resolve("badexample.com"));
  EXPECT_FALSE(policy.may_resolve("localhost.evil"));
  EXPECT_TRUE(wasi::NetPolicy({}, {}, {"*"}).may_resolve("anything.at.all"));
}

// --- The calls -----------------------------------------------------------------

class WasiSocketExtTest : public WasiTest {
protected:
  void SetUp() override {
    wasi::WasiOptions o;
    o.allow_connect = {"127.0.0.0/8", "[::1]"};
    o.allow_bind = {"127.0.0.1", "[::1]"};
    o.allow_resolve = {"localhost"};
    start(std::move(o));
  }

  uint32_t open(wasi::AddressFamily af, wasi::SockType type) {
    auto c = call();
    EXPECT_EQ(calls::sock_open(c, uint32_t(-1), uint32_t(af), uint32_t(type), kOut).err,
              Errno::success);
    return load<uint32_t>(kOut);
  }
  uint32_t tcp4() { return open(wasi::AddressFamily::inet4, wasi::SockType::stream); }
  uint32_t udp4() { return open(wasi::AddressFamily::inet4, wasi::SockType::dgram); }

  void put_addr(uint32_t at, const char* ip, uint16_t port) {
    wasi::GuestMemory mem(&memory_);
    ASSERT_EQ(wasi::write_wasi_addr(mem, at, address(ip, port)), Errno::success);
  }
  wasi::SocketAddress get_addr(uint32_t at) {
    wasi::GuestMemory mem(&memory_);
    wasi::SocketAddress a;
    EXPECT_EQ(wasi::read_wasi_addr(mem, at, a), Errno::success);
    return a;
  }
  Errno bind(uint32_t fd, const char* ip, uint16_t port) {
    put_addr(kAddr, ip, port);
    auto c = call();
    return calls::sock_bind(c, fd, kAddr).err;
  }
  wasi::Ret connect(uint32_t fd, const char* ip, uint16_t port) {
    put_addr(kAddr, ip, port);
    auto c = call();
    return calls::sock_connect(c, fd, kAddr);
  }
  wasi::SocketState& state(uint32_t fd) { return *ctx_->fds().find(fd)->socket; }
  wasi::FdKind kind(uint32_t fd) { return ctx_->fds().find(fd)->kind; }

  // A host listening socket on 127.0.0.1 with `backlog`; its port.
  uint16_t host_listener(int backlog = 8) {
    listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(listener_.get(), backlog), 0);
    socklen_t len = sizeof a;
    ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    return ntohs(a.sin_port);
  }
  static util::UniqueFd host_connect(uint16_t port) {
    util::UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    return s;
  }

  static constexpr uint32_t kAddr = 0x700;  // a __wasi_addr_t
  static constexpr uint32_t kAddr2 = 0x740; // another
  util::UniqueFd listener_;
};

// Runs `fn` on another thread and requests a checkpoint from this one; the
// call must come back with "suspend" (the request may land before or while
// it blocks).
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

TEST_F(WasiSocketExtTest, AddressRecordsHaveWamrsLayout) {
  namespace L = wasi::layout::wasi_addr;
  put_addr(kAddr, "127.0.0.1", 8080);
  EXPECT_EQ(load<uint32_t>(kAddr + L::kind), 0u) << "IPv4";
  EXPECT_EQ(get(kAddr + L::ip4, 4), std::string("\x7f\x00\x00\x01", 4)) << "n0..n3 in order";
  EXPECT_EQ(load<uint16_t>(kAddr + L::ip4_port), 8080) << "port as a number";
  put_addr(kAddr2, "fe80::3ba2:893b:4be0:e3dd", 443);
  EXPECT_EQ(load<uint32_t>(kAddr2 + L::kind), 1u) << "IPv6";
  const uint16_t groups[8] = {0xfe80, 0, 0, 0, 0x3ba2, 0x893b, 0x4be0, 0xe3dd};
  for (uint32_t i = 0; i < 8; ++i)
    EXPECT_EQ(load<uint16_t>(kAddr2 + L::ip6 + 2 * i), groups[i]) << "group " << i;
  EXPECT_EQ(load<uint16_t>(kAddr2 + L::ip6_port), 443);
  EXPECT_EQ(get_addr(kAddr2), address("fe80::3ba2:893b:4be0:e3dd", 443)) << "round trip";

  wasi::GuestMemory mem(&memory_);
  wasi::SocketAddress a;
  store<uint32_t>(kAddr, 2);
  EXPECT_EQ(wasi::read_wasi_addr(mem, kAddr, a), Errno::protonosupport);
  EXPECT_EQ(wasi::read_wasi_addr(mem, mem_size() - L::size + 1, a), Errno::fault);
}

TEST_F(WasiSocketExtTest, OpenBindListenAcceptRecordEachStep) {
  uint32_t fd = tcp4();
  EXPECT_EQ(kind(fd), wasi::FdKind::TcpSocket);
  EXPECT_EQ(state(fd).family, 4);
  EXPECT_EQ(state(fd).local.family, 0) << "not bound yet";
  EXPECT_EQ(ctx_->fds().find(fd)->rights_base, wasi::right::socket_tcp);

  ASSERT_EQ(bind(fd, "127.0.0.1", 0), Errno::success);
  uint16_t port = state(fd).local.port;
  EXPECT_NE(port, 0) << "the port the kernel chose is recorded";
  EXPECT_EQ(state(fd).local.to_string(), "127.0.0.1:" + std::to_string(port));

  auto c = call();
  ASSERT_EQ(calls::sock_listen(c, fd, 5).err, Errno::success);
  EXPECT_EQ(kind(fd), wasi::FdKind::TcpListener);
  EXPECT_EQ(state(fd).backlog, 5);

  util::UniqueFd peer = host_connect(port);
  ASSERT_EQ(calls::sock_accept(c, fd, 0, kOut).err, Errno::success);
  uint32_t conn = load<uint32_t>(kOut);
  EXPECT_EQ(kind(conn), wasi::FdKind::TcpStream);
  ASSERT_EQ(calls::sock_addr_remote(c, conn, kAddr).err, Errno::success);
  EXPECT_EQ(get_addr(kAddr), wasi::local_address(peer.get()));
  ASSERT_EQ(calls::sock_addr_local(c, conn, kAddr).err, Errno::success);
  EXPECT_EQ(get_addr(kAddr), address("127.0.0.1", port));
  EXPECT_EQ(calls::sock_addr_local(c, conn, mem_size() - 4).err, Errno::fault);
}

TEST_F(WasiSocketExtTest, OutsideThePolicyIsEacces) {
  uint32_t fd = tcp4();
  EXPECT_EQ(bind(fd, "127.0.0.2", 0), Errno::acces);
  EXPECT_EQ(connect(fd, "192.0.2.1", 80).err, Errno::acces);
  EXPECT_EQ(state(fd).connecting, false) << "nothing was attempted";
  auto c = call();
  EXPECT_EQ(calls::sock_listen(c, fd, 1).err, Errno::acces)
      << "listen on an unbound socket would bind 0.0.0.0";
  EXPECT_EQ(kind(fd), wasi::FdKind::TcpSocket);
  uint32_t udp = udp4();
  put_addr(kAddr, "192.0.2.1", 9);
  put(kBuf, "x");
  iovec_at(kIov, kBuf, 1);
  EXPECT_EQ(calls::sock_send_to(c, udp, kIov, 1, 0, kAddr, kOut).err, Errno::acces);
}

TEST_F(WasiSocketExtTest, ConnectRecordsThePeerAndCarriesData) {
  uint16_t port = host_listener();
  uint32_t fd = tcp4();
  ASSERT_EQ(connect(fd, "127.0.0.1", port).err, Errno::success);
  EXPECT_EQ(kind(fd), wasi::FdKind::TcpStream);
  EXPECT_EQ(state(fd).peer, address("127.0.0.1", port));
  EXPECT_EQ(state(fd).local.family, 4);
  EXPECT_FALSE(state(fd).connecting);
  util::UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_EQ(write(fd, "over the socket"), Errno::success);
  char buf[32] = {};
  ASSERT_EQ(::recv(conn.get(), buf, sizeof buf, 0), 15);
  EXPECT_EQ(std::string(buf), "over the socket");
  EXPECT_EQ(connect(fd, "127.0.0.1", port).err, Errno::isconn);
}

TEST_F(WasiSocketExtTest, PendingConnectSuspendsAndIsResumedByTheSameCall) {
  // With a backlog of 0 and one connection waiting to be accepted, the
  // kernel drops the next SYN: a connect stays in progress.
  uint16_t port = host_listener(0);
  util::UniqueFd first = host_connect(port);
  uint32_t fd = tcp4();
  wasi::Ret r = interrupted(interrupt_, [&] { return connect(fd, "127.0.0.1", port); });
  ASSERT_TRUE(suspended(r));
  EXPECT_EQ(kind(fd), wasi::FdKind::TcpSocket);
  EXPECT_TRUE(state(fd).connecting) << "the record says a connect is under way";
  EXPECT_EQ(state(fd).peer, address("127.0.0.1", port));
  EXPECT_EQ(connect(fd, "127.0.0.1", port + 1).err, Errno::already) << "another target";
  // Room in the queue: the SYN's retransmission gets through and the call,
  // issued again, completes.
  util::UniqueFd accepted(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_EQ(connect(fd, "127.0.0.1", port).err, Errno::success);
  EXPECT_EQ(kind(fd), wasi::FdKind::TcpStream);
  EXPECT_FALSE(state(fd).connecting);
}

TEST_F(WasiSocketExtTest, NonblockingConnectIsInProgressThenAlreadyThenDone) {
  uint16_t port = host_listener(0);
  util::UniqueFd first = host_connect(port);
  uint32_t fd = tcp4();
  auto c = call();
  ASSERT_EQ(calls::fd_fdstat_set_flags(c, fd, wasi::fdflag::nonblock).err, Errno::success);
  EXPECT_EQ(connect(fd, "127.0.0.1", port).err, Errno::inprogress);
  EXPECT_EQ(connect(fd, "127.0.0.1", port).err, Errno::already);
  util::UniqueFd accepted(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  pollfd p{ctx_->fds().find(fd)->host.get(), POLLOUT, 0};
  ASSERT_EQ(::poll(&p, 1, 30'000), 1);
  EXPECT_EQ(connect(fd, "127.0.0.1", port).err, Errno::success);
  EXPECT_EQ(kind(fd), wasi::FdKind::TcpStream);
}

TEST_F(WasiSocketExtTest, DatagramsCarryTheirSource) {
  uint32_t a = udp4(), b = udp4();
  ASSERT_EQ(bind(a, "127.0.0.1", 0), Errno::success);
  ASSERT_EQ(bind(b, "127.0.0.1", 0), Errno::success);
  EXPECT_EQ(kind(a), wasi::FdKind::UdpSocket);
  auto c = call();
  ASSERT_EQ(calls::fd_fdstat_get(c, a, kOut).err, Errno::success);
  EXPECT_EQ(load<uint8_t>(kOut), uint8_t(wasi::FileType::socket_dgram));
  ASSERT_EQ(calls::fd_filestat_get(c, a, kOut).err, Errno::success);
  EXPECT_EQ(load<uint8_t>(kOut + wasi::layout::filestat::filetype),
            uint8_t(wasi::FileType::socket_dgram));

  // A blocked recv_from stops for a checkpoint and consumes nothing.
  wasi::Ret r = interrupted(interrupt_, [&] {
    auto c2 = call();
    iovec_at(kIov + 8, kBuf + 0x100, 64);
    return calls::sock_recv_from(c2, b, kIov + 8, 1, 0, kAddr2, kOut2);
  });
  EXPECT_TRUE(suspended(r));

  wasi::SocketAddress to = state(b).local;
  wasi::GuestMemory mem(&memory_);
  ASSERT_EQ(wasi::write_wasi_addr(mem, kAddr, to), Errno::success);
  uint32_t len = put(kBuf, "datagram");
  iovec_at(kIov, kBuf, len);
  ASSERT_EQ(calls::sock_send_to(c, a, kIov, 1, 0, kAddr, kOut).err, Errno::success);
  EXPECT_EQ(load<uint32_t>(kOut), len);

  iovec_at(kIov, kBuf + 0x100, 64);
  ASSERT_EQ(calls::sock_recv_from(c, b, kIov, 1, wasi::riflag::recv_peek, kAddr2, kOut2).err,
            Errno::success);
  EXPECT_EQ(load<uint32_t>(kOut2), len) << "peeked";
  ASSERT_EQ(calls::sock_recv_from(c, b, kIov, 1, 0, kAddr2, kOut2).err, Errno::success);
  EXPECT_EQ(get(kBuf + 0x100, load<uint32_t>(kOut2)), "datagram");
  EXPECT_EQ(get_addr(kAddr2), state(a).local) << "the source is the sender's address";
  EXPECT_EQ(calls::sock_recv_from(c, b, kIov, 1, wasi::riflag::recv_waitall, kAddr2, kOut2).err,
            Errno::inval);
  EXPECT_EQ(calls::sock_recv_from(c, b, kIov, 1, 0, mem_size() - 8, kOut2).err, Errno::fault);
}

TEST_F(WasiSocketExtTest, ReceiveTimeoutEndsABlockingWaitWithEagain) {
  uint32_t fd = udp4();
  ASSERT_EQ(bind(fd, "127.0.0.1", 0), Errno::success);
  auto c = call();
  ASSERT_EQ(calls::sock_set_recv_timeout(c, fd, 20'000).err, Errno::success);
  EXPECT_EQ(state(fd).options.recv_timeout_us, 20'000u);
  ASSERT_EQ(calls::sock_get_recv_timeout(c, fd, kOut).err, Errno::success);
  EXPECT_EQ(load<uint64_t>(kOut), 20'000u);
  iovec_at(kIov, kBuf, 64);
  EXPECT_EQ(calls::sock_recv_from(c, fd, kIov, 1, 0, kAddr, kOut).err, Errno::again);
  EXPECT_EQ(read(fd), "<errno " + std::to_string(int(Errno::again)) + ">") << "fd_read too";
}

// Timeouts are microseconds as a signed count: negative ones are EDOM, and
// ones beyond what the clock can hold wait for ever instead of overflowing
// (UBSan aborts the asan stage's run on that) or ending at once.
TEST_F(WasiSocketExtTest, ExtremeTimeoutsNeitherOverflowNorEndAtOnce) {
  uint32_t fd = udp4(), peer = udp4();
  ASSERT_EQ(bind(fd, "127.0.0.1", 0), Errno::success);
  ASSERT_EQ(bind(peer, "127.0.0.1", 0), Errno::success);
  auto c = call();
  for (uint64_t negative : {uint64_t(INT64_MIN), uint64_t(-1), uint64_t(INT64_MAX) + 1}) {
    EXPECT_EQ(calls::sock_set_recv_timeout(c, fd, negative).err, Errno::dom);
    EXPECT_EQ(calls::sock_set_send_timeout(c, fd, negative).err, Errno::dom);
  }
  EXPECT_EQ(state(fd).options.recv_timeout_us, 0u) << "a refused timeout is not recorded";
  ASSERT_EQ(calls::sock_set_recv_timeout(c, fd, INT64_MAX).err, Errno::success);
  ASSERT_EQ(calls::sock_set_send_timeout(c, fd, INT64_MAX - 1).err, Errno::success);
  // The wait is real: a checkpoint request ends it, not the timeout.
  wasi::Ret r = interrupted(interrupt_, [&] {
    auto c2 = call();
    iovec_at(kIov + 8, kBuf + 0x100, 64);
    return calls::sock_recv_from(c2, fd, kIov + 8, 1, 0, kAddr2, kOut2);
  });
  EXPECT_TRUE(suspended(r));
  for (uint64_t us : {uint64_t(INT64_MAX), uint64_t(INT64_MAX) / 1000, uint64_t(1) << 62})
    EXPECT_EQ(wasi::wait_ready(ctx_->fds().find(peer)->host.get(), POLLOUT, false, interrupt_, us),
              wasi::Wait::Ready);
}

// shutdown(SHUT_RD) on a UDP socket: Linux answers ENOTCONN when it is not
// connected but shuts it down anyway, and poll then calls it readable for
// ever. A blocking receive returns 0 at once, as Linux's does, instead of
// spinning; a non-blocking one says EAGAIN.
TEST_F(WasiSocketExtTest, ReceiveOnADatagramSocketShutForReadingDoesNotSpin) {
  uint32_t fd = udp4();
  ASSERT_EQ(bind(fd, "127.0.0.1", 0), Errno::success);
  auto c = call();
  EXPECT_EQ(calls::sock_shutdown(c, fd, wasi::sdflag::rd).err, Errno::notconn);
  iovec_at(kIov, kBuf, 64);
  ASSERT_EQ(calls::sock_recv_from(c, fd, kIov, 1, 0, kAddr, kOut).err, Errno::success);
  EXPECT_EQ(load<uint32_t>(kOut), 0u);
  EXPECT_EQ(read(fd), "") << "fd_read too";
  ASSERT_EQ(calls::fd_fdstat_set_flags(c, fd, wasi::fdflag::nonblock).err, Errno::success);
  EXPECT_EQ(calls::sock_recv_from(c, fd, kIov, 1, 0, kAddr, kOut).err, Errno::again);
}

TEST_F(WasiSocketExtTest, OptionsAreSetReadBackAndRecorded) {
  uint32_t fd = tcp4();
  auto c = call();
  ASSERT_EQ(calls::sock_set_reuse_addr(c, fd, 1).err, Errno::success);
  store<uint8_t>(kOut, 0xAA);
  ASSERT_EQ(calls::sock_get_reuse_addr(c, fd, kOut).err, Errno::success);
  EXPECT_EQ(load<uint8_t>(kOut), 1) << "a bool is one byte";
  ASSERT_EQ(calls::sock_set_keep_alive(c, fd, 1).err, Errno::success);
  ASSERT_EQ(calls::sock_set_tcp_no_delay(c, fd, 1).err, Errno::success);
  ASSERT_EQ(calls::sock_set_linger(c, fd, 1, 7).err, Errno::success);
  ASSERT_EQ(calls::sock_get_linger(c, fd, kOut, kOut2).err, Errno::success);
  EXPECT_EQ(load<uint8_t>(kOut), 1);
  EXPECT_EQ(load<int32_t>(kOut2), 7);
  ASSERT_EQ(calls::sock_set_recv_buf_size(c, fd, 50'000).err, Errno::success);
  ASSERT_EQ(calls::sock_get_recv_buf_size(c, fd, kOut).err, Errno::success);
  EXPECT_GE(load<uint32_t>(kOut), 50'000u) << "Linux doubles it";
  ASSERT_EQ(calls::sock_set_tcp_keep_idle(c, fd, 33).err, Errno::success);
  ASSERT_EQ(calls::sock_get_tcp_keep_idle(c, fd, kOut).err, Errno::success);
  EXPECT_EQ(load<uint32_t>(kOut), 33u);
  ASSERT_EQ(calls::sock_set_ip_ttl(c, fd, 9).err, Errno::success);
  ASSERT_EQ(calls::sock_get_ip_ttl(c, fd, kOut).err, Errno::success);
  EXPECT_EQ(load<uint8_t>(kOut), 9);
  EXPECT_EQ(calls::sock_set_ip_ttl(c, fd, 256).err, Errno::inval);
  ASSERT_EQ(calls::sock_set_send_timeout(c, fd, 1'500'000).err, Errno::success);

  const wasi::SocketOptions& o = state(fd).options;
  EXPECT_TRUE(o.reuse_addr);
  EXPECT_TRUE(o.keep_alive);
  EXPECT_TRUE(o.no_delay);
  EXPECT_EQ(o.linger_s, 7u);
  EXPECT_EQ(o.recv_buf, 50'000u) << "as asked, for a restore";
  EXPECT_EQ(o.keep_idle_s, 33u);
  EXPECT_EQ(o.ttl, 9);
  EXPECT_EQ(o.send_timeout_us, 1'500'000u);
  ASSERT_EQ(calls::sock_set_linger(c, fd, 0, 0).err, Errno::success);
  EXPECT_FALSE(state(fd).options.linger_s.has_value());

  EXPECT_EQ(calls::sock_get_keep_alive(c, fd, mem_size()).err, Errno::fault);
  EXPECT_EQ(calls::sock_set_reuse_addr(c, 1, 1).err, Errno::notsock) << "stdout";
  EXPECT_EQ(calls::sock_set_reuse_addr(c, 99, 1).err, Errno::badf);
}

TEST_F(WasiSocketExtTest, MulticastMembershipsAreRecorded) {
  uint32_t fd = udp4();
  namespace L = wasi::layout::wasi_addr_ip;
  store<uint32_t>(kAddr + L::kind, 0);
  std::memcpy(mem() + kAddr + L::ip4, "\xef\x01\x02\x03", 4); // 239.1.2.3
  // The interface as the guest's in_addr.s_addr: 127.0.0.1's bytes, read
  // as a little-endian number.
  uint32_t interface =
      runtime::Memory::load_le<uint32_t>(reinterpret_cast<const uint8_t*>("\x7f\x00\x00\x01"));
  auto c = call();
  ASSERT_EQ(calls::sock_set_ip_add_membership(c, fd, kAddr, interface).err, Errno::success);
  ASSERT_EQ(state(fd).options.memberships.size(), 1u);
  EXPECT_EQ(state(fd).options.memberships[0].group.to_string(), "239.1.2.3:0");
  ASSERT_EQ(calls::sock_set_ip_drop_membership(c, fd, kAddr, interface).err, Errno::success);
  EXPECT_TRUE(state(fd).options.memberships.empty());
  store<uint32_t>(kAddr + L::kind, 5);
  EXPECT_EQ(calls::sock_set_ip_add_membership(c, fd, kAddr, interface).err, Errno::protonosupport);
}

TEST_F(WasiSocketExtTest, ResolveWritesRecordsAndCountsThemAll) {
  namespace L = wasi::layout::addr_info;
  namespace H = wasi::layout::addr_info_hints;
  constexpr uint32_t kHost = 0x100, kService = 0x140, kHints = 0x180, kInfo = 0x2000;
  put(kHost, std::string("127.0.0.1") + '\0');
  put(kService, std::string("8080") + '\0');
  store<int32_t>(kHints + H::type, int32_t(wasi::SockType::stream));
  store<uint32_t>(kHints + H::family, uint32_t(wasi::AddressFamily::inet4));
  store<uint8_t>(kHints + H::hints_enabled, 1);
  auto c = call();
  ASSERT_EQ(calls::sock_addr_resolve(c, kHost, kService, kHints, kInfo, 4, kOut).err,
            Errno::success);
  ASSERT_EQ(load<uint32_t>(kOut), 1u);
  EXPECT_EQ(get_addr(kInfo + L::addr), address("127.0.0.1", 8080));
  EXPECT_EQ(load<int32_t>(kInfo + L::type), int32_t(wasi::SockType::stream));

  // Without hints: stream and datagram answers; with no room, only counted.
  store<uint8_t>(kHints + H::hints_enabled, 0);
  put(kService, std::string("") + '\0');
  store<uint32_t>(kInfo, 0xDEADBEEF);
  ASSERT_EQ(calls::sock_addr_resolve(c, kHost, kService, kHints, kInfo, 0, kOut).err,
            Errno::success);
  EXPECT_EQ(load<uint32_t>(kOut), 2u);
  EXPECT_EQ(load<uint32_t>(kInfo), 0xDEADBEEF) << "nothing written";

  put(kHost, std::string("localhost") + '\0');
  store<uint8_t>(kHints + H::hints_enabled, 1);
  ASSERT_EQ(calls::sock_addr_resolve(c, kHost, kService, kHints, kInfo, 4, kOut).err,
            Errno::success)
      << "an allowed name";
  EXPECT_GE(load<uint32_t>(kOut), 1u);
  put(kHost, std::string("example.com") + '\0');
  EXPECT_EQ(calls::sock_addr_resolve(c, kHost, kService, kHints, kInfo, 4, kOut).err, Errno::acces);

  // A host name running into the end of memory without its NUL.
  uint32_t at_end = mem_size() - 3;
  std::memcpy(mem() + at_end, "abc", 3);
  EXPECT_EQ(calls::sock_addr_resolve(c, at_end, kService, kHints, kInfo, 4, kOut).err,
            Errno::fault);
  put(kHost, std::string("127.0.0.1") + '\0');
  EXPECT_EQ(calls::sock_addr_resolve(c, kHost, kService, kHints, mem_size() - 20, 1, kOut).err,
            Errno::fault);
  EXPECT_EQ(calls::sock_addr_resolve(c, kHost, kService, mem_size() - 4, kInfo, 1, kOut).err,
            Errno::fault)
      << "hints past the end";
}

TEST_F(WasiSocketExtTest, OpenRefusesUnknownFamiliesAndTypes) {
  auto c = call();
  EXPECT_EQ(calls::sock_open(c, 0, 2, 1, kOut).err, Errno::afnosupport) << "INET_UNSPEC";
  EXPECT_EQ(calls::sock_open(c, 0, 0, 2, kOut).err, Errno::prototype);
  EXPECT_EQ(calls::sock_open(c, 0, 0, 1, mem_size()).err, Errno::fault);
  uint32_t fd = open(wasi::AddressFamily::inet6, wasi::SockType::dgram);
  EXPECT_EQ(state(fd).family, 6);
  EXPECT_EQ(ctx_->fds().find(fd)->rights_base & wasi::right::sock_listen, 0u)
      << "a datagram socket cannot listen";
  EXPECT_EQ(calls::sock_close(c, fd).err, Errno::success);
  EXPECT_EQ(ctx_->fds().find(fd), nullptr);
}

} // namespace
} // namespace tern::test
