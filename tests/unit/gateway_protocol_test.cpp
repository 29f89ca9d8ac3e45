// The gateway's wire formats (migrate/gateway_protocol.h) and its snapshot
// section (migrate/gateway_records.h): round trips, authentication of the
// data-connection handshakes (a wrong key, a flipped byte, a replay under
// another session fail), and malformed input of every kind ending in one
// tern::Error rather than a crash or a huge allocation.
#include "migrate/gateway_protocol.h"
#include "migrate/gateway_records.h"
#include "migrate/gateway_relay.h"
#include "tern/error.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>

namespace tern::test {
namespace {

using namespace migrate::gateway;

wasi::SocketAddress address(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
  wasi::SocketAddress s;
  s.family = 4;
  s.ip[0] = a, s.ip[1] = b, s.ip[2] = c, s.ip[3] = d;
  s.port = port;
  return s;
}

// A session key as a channel would export it: 32 unpredictable bytes.
SessionKey some_key() {
  SessionKey key;
  Id128 a = random_id(), b = random_id();
  std::copy(a.begin(), a.end(), key.begin());
  std::copy(b.begin(), b.end(), key.begin() + a.size());
  return key;
}

TEST(GatewayProtocol, ControlMessagesRoundTrip) {
  RegisterMsg r;
  r.program = random_id();
  r.gateway = random_id();
  r.publishes = true;
  r.standby = true;
  r.listener = address(10, 0, 0, 2, 7000);
  r.connections = {{7, false, 100, 200}, {9, true, 0, 5}};
  RegisterMsg r2 = decode_register(encode(r));
  EXPECT_EQ(r2.program, r.program);
  EXPECT_EQ(r2.gateway, r.gateway);
  EXPECT_TRUE(r2.publishes);
  EXPECT_TRUE(r2.standby);
  EXPECT_EQ(r2.listener, r.listener);
  ASSERT_EQ(r2.connections.size(), 2u);
  EXPECT_EQ(r2.connections[1].id, 9u);
  EXPECT_TRUE(r2.connections[1].outgoing);
  EXPECT_EQ(r2.connections[0].received, 100u);
  EXPECT_EQ(r2.connections[0].sent, 200u);

  RegisteredMsg g{random_id(), 42, {{7, JoinStatus::Rejoin}, {9, JoinStatus::Mismatch}}};
  RegisteredMsg g2 = decode_registered(encode(g));
  EXPECT_EQ(g2.gateway, g.gateway);
  EXPECT_EQ(g2.session, 42u);
  EXPECT_EQ(g2.connections, g.connections);

  FreezeMsg f{{{1, 10}, {2, 20}}};
  EXPECT_EQ(decode_freeze(encode(f)).sent, f.sent);
  FrozenMsg z{{{1, FrozenStatus::Held, 11}, {2, FrozenStatus::Broken, 0}}};
  FrozenMsg z2 = decode_frozen(encode(z));
  ASSERT_EQ(z2.connections.size(), 2u);
  EXPECT_EQ(z2.connections[0].forwarded, 11u);
  EXPECT_EQ(z2.connections[1].status, FrozenStatus::Broken);
}

TEST(GatewayProtocol, FramesComeWholeOrNotAtAll) {
  std::vector<uint8_t> payload = {1, 2, 3};
  std::vector<uint8_t> bytes = frame(MsgType::Thaw, payload);
  std::vector<uint8_t> buffer(bytes.begin(), bytes.end() - 1);
  EXPECT_FALSE(unframe(buffer).has_value());
  buffer.push_back(bytes.back());
  buffer.push_back(0xAA); // the next message's first byte stays
  std::optional<Message> m = unframe(buffer);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type, MsgType::Thaw);
  EXPECT_EQ(m->payload, payload);
  EXPECT_EQ(buffer, std::vector<uint8_t>{0xAA});
  std::vector<uint8_t> huge = {0xFF, 0xFF, 0xFF, 0x7F, 1};
  EXPECT_THROW(unframe(huge), Error);
  std::vector<uint8_t> unknown = frame(MsgType::Thaw, {});
  unknown[4] = 99;
  EXPECT_THROW(unframe(unknown), Error);
}

TEST(GatewayProtocol, MalformedMessagesAreErrors) {
  RegisterMsg r;
  r.connections = {{7, false, 100, 200}};
  std::vector<uint8_t> bytes = encode(r);
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    std::vector<uint8_t> truncated(bytes.begin(), bytes.begin() + long(cut));
    EXPECT_THROW(decode_register(truncated), Error) << "cut at " << cut;
  }
  bytes.push_back(0);
  EXPECT_THROW(decode_register(bytes), Error); // trailing bytes
  std::vector<uint8_t> lying = encode(FreezeMsg{});
  lying[0] = 0xFF, lying[1] = 0xFF, lying[2] = 0xFF, lying[3] = 0x0F; // a huge count
  EXPECT_THROW(decode_freeze(lying), Error);
}

TEST(GatewayProtocol, HandshakesAuthenticate) {
  const SessionKey key = some_key(), other = some_key();
  Offer offer{5, 77, address(10, 1, 2, 3, 4444)};
  std::vector<uint8_t> bytes = encode(offer, key);
  ASSERT_EQ(bytes.size(), kOfferSize);
  EXPECT_EQ(session_of(bytes), 5u);
  std::optional<Offer> back = decode_offer(bytes, key);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->id, 77u);
  EXPECT_EQ(back->peer, offer.peer);
  EXPECT_FALSE(decode_offer(bytes, other));
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::vector<uint8_t> flipped = bytes;
    flipped[i] ^= 0x01;
    EXPECT_FALSE(decode_offer(flipped, key)) << "byte " << i;
  }

  Join join{5, 77, 1000, 2000};
  std::vector<uint8_t> j = encode(join, key);
  ASSERT_EQ(j.size(), kJoinSize);
  std::optional<Join> jb = decode_join(j, key);
  ASSERT_TRUE(jb);
  EXPECT_EQ(jb->received, 1000u);
  EXPECT_EQ(jb->sent, 2000u);
  EXPECT_FALSE(decode_join(j, other));
  EXPECT_FALSE(decode_connect(j, key)); // another handshake's bytes

  Connect c{5, 3, address(192, 168, 0, 1, 5432)};
  std::vector<uint8_t> cb = encode(c, key);
  ASSERT_EQ(cb.size(), kConnectSize);
  std::optional<Connect> cback = decode_connect(cb, key);
  ASSERT_TRUE(cback);
  EXPECT_EQ(cback->sequence, 3u);
  EXPECT_EQ(cback->target, c.target);

  EXPECT_EQ(decode_take(encode_take(77)), 77u);
  EXPECT_FALSE(decode_take(std::vector<uint8_t>(kTakeSize, 0)));
  std::optional<Reply> reply = decode_reply(encode(Reply{111, 9}));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 111u);
  EXPECT_EQ(reply->id, 9u);
}

GatewayRecords sample_records() {
  GatewayRecords g;
  g.gateway = "10.0.0.1:7001";
  g.program = random_id();
  g.instance = random_id();
  g.listener_fd = 3;
  g.connections = {{4, 1, false, 10, 20, {1, 2, 3}}, {6, 2, true, 0, 0, {}}};
  return g;
}

TEST(GatewayRecords, RoundTrip) {
  GatewayRecords g = sample_records();
  snapshot::ExtensionSection s = encode_section(g);
  EXPECT_EQ(s.tag, kGatewayTag);
  EXPECT_FALSE(s.optional); // a restore that ignored it would lose bytes
  GatewayRecords back = decode_section(s);
  EXPECT_EQ(back.gateway, g.gateway);
  EXPECT_EQ(back.program, g.program);
  EXPECT_EQ(back.listener_fd, g.listener_fd);
  ASSERT_EQ(back.connections.size(), 2u);
  EXPECT_EQ(back.connections[0].unread, (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_TRUE(back.connections[1].outgoing);
  EXPECT_EQ(describe_json(s)["connections"][0]["unread"], 3);
  EXPECT_EQ(describe_text(s).size(), 4u);
}

TEST(GatewayRecords, UntrustedInputIsChecked) {
  snapshot::ExtensionSection s = encode_section(sample_records());
  for (size_t cut = 0; cut < s.payload.size(); ++cut) {
    snapshot::ExtensionSection t = s;
    t.payload.resize(cut);
    EXPECT_THROW(decode_section(t), Error) << "cut at " << cut;
  }
  auto rejects = [](GatewayRecords g, const char* why) {
    EXPECT_THROW(decode_section(encode_section(g)), Error) << why;
  };
  GatewayRecords g = sample_records();
  g.connections[0].unread.assign(11, 0); // more unread than received
  rejects(g, "unread > received");
  g = sample_records();
  std::swap(g.connections[0], g.connections[1]);
  rejects(g, "fds out of order");
  g = sample_records();
  g.connections[0].fd = 70000;
  rejects(g, "fd above the limit");
  g = sample_records();
  g.listener_fd = 4;
  rejects(g, "listener and connection on one fd");
  g = sample_records();
  g.gateway.clear();
  rejects(g, "no gateway address");
}

TEST(GatewayRelay, ByteQueueMovesBytesInOrder) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  util::UniqueFd a(fds[0]), b(fds[1]);
  ByteQueue out, in;
  std::vector<uint8_t> data(300000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i * 7);
  out.push(data);
  std::vector<uint8_t> got;
  while (got.size() < data.size()) {
    size_t n = 0;
    out.write_to(a.get(), n);
    bool drained = false;
    while (in.read_from(b.get(), 1 << 20, n, drained) == ByteQueue::Io::Moved && !drained) {
    }
    got.insert(got.end(), in.data().begin(), in.data().end());
    in.consume(in.size());
  }
  EXPECT_EQ(got, data);
  EXPECT_TRUE(out.empty());
  a.reset();
  size_t n = 0;
  bool drained = false;
  EXPECT_EQ(in.read_from(b.get(), 100, n, drained), ByteQueue::Io::End);
}

} // namespace
} // namespace tern::test
