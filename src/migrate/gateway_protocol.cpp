#include "migrate/gateway_protocol.h"

#include "snapshot/payload.h"
#include "tern/error.h"

#include <algorithm>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace tern::migrate::gateway {
namespace {

using snapshot::PayloadReader;
using snapshot::PayloadWriter;

const std::array<uint8_t, kMagicSize> kOfferMagic = {'T', 'G', 'W', 'O', 'F', 'F', 'E', 'R'};
const std::array<uint8_t, kMagicSize> kTakeMagic = {'T', 'G', 'W', 'T', 'A', 'K', 'E', 'N'};
const std::array<uint8_t, kMagicSize> kReplyMagic = {'T', 'G', 'W', 'R', 'E', 'P', 'L', 'Y'};

// An address in 24 bytes: family u8, a zero byte, port u16, ip 16 bytes
// (network order), 4 zero bytes.
void put_address(PayloadWriter& w, const wasi::SocketAddress& a) {
  w.u8(a.family);
  w.u8(0);
  w.u8(uint8_t(a.port));
  w.u8(uint8_t(a.port >> 8));
  w.bytes(a.ip);
  w.u32(0);
}

wasi::SocketAddress get_address(PayloadReader& r) {
  wasi::SocketAddress a;
  a.family = r.u8();
  if (a.family != 0 && a.family != 4 && a.family != 6)
    r.fail(fmt::format("unknown address family {}", a.family));
  r.u8();
  a.port = uint16_t(r.u8() | r.u8() << 8);
  auto ip = r.bytes(16);
  std::copy(ip.begin(), ip.end(), a.ip.begin());
  r.u32();
  return a;
}

// HMAC-SHA256 (OpenSSL, as the channel's TLS).
Mac mac_of(std::span<const uint8_t> bytes, const SessionKey& key) {
  Mac mac;
  size_t length = 0;
  if (!EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(), bytes.data(),
                 bytes.size(), mac.data(), mac.size(), &length) ||
      length != mac.size())
    throw Error("gateway: HMAC-SHA256 failed (OpenSSL)");
  return mac;
}

// Appends the MAC of everything written so far.
std::vector<uint8_t> sealed(PayloadWriter& w, const SessionKey& key) {
  Mac mac = mac_of(w.out(), key);
  w.bytes(mac);
  return std::move(w.out());
}

// The handshake's bytes without its MAC, if `bytes` has the size, the magic
// and a MAC that matches.
std::optional<std::span<const uint8_t>> opened(std::span<const uint8_t> bytes, size_t size,
                                               const std::array<uint8_t, kMagicSize>& magic,
                                               const SessionKey& key) {
  if (bytes.size() != size || !std::equal(magic.begin(), magic.end(), bytes.begin()))
    return std::nullopt;
  auto body = bytes.first(size - sizeof(Mac));
  Mac expected = mac_of(body, key);
  if (CRYPTO_memcmp(expected.data(), bytes.data() + body.size(), expected.size()) != 0)
    return std::nullopt;
  return body;
}

// An authenticated handshake's fields after its magic, read by `read`;
// nullopt when its size, magic or MAC is wrong, or a field is.
template <typename T, typename Read>
std::optional<T> decode_sealed(std::span<const uint8_t> bytes, size_t size,
                               const std::array<uint8_t, kMagicSize>& magic, const SessionKey& key,
                               Read read) {
  auto body = opened(bytes, size, magic, key);
  if (!body) return std::nullopt;
  try {
    PayloadReader r(body->subspan(kMagicSize), "handshake");
    return read(r);
  } catch (const Error&) {
    return std::nullopt;
  }
}

template <typename T>
T decode_with(std::span<const uint8_t> payload, const char* what, T (*read)(PayloadReader&)) {
  PayloadReader r(payload, fmt::format("gateway message {}", what));
  T out = read(r);
  r.expect_end();
  return out;
}

} // namespace

const std::array<uint8_t, kMagicSize> kJoinMagic = {'T', 'G', 'W', 'J', 'O', 'I', 'N', '1'};
const std::array<uint8_t, kMagicSize> kConnectMagic = {'T', 'G', 'W', 'C', 'O', 'N', 'N', '1'};

Id128 random_id() {
  Id128 id;
  if (RAND_bytes(id.data(), int(id.size())) != 1) throw Error("gateway: no random bytes (OpenSSL)");
  return id;
}

Id128 read_id(PayloadReader& r) {
  Id128 id;
  auto b = r.bytes(id.size());
  std::copy(b.begin(), b.end(), id.begin());
  return id;
}

std::optional<Message> read_message(util::ByteSource& in) {
  std::vector<uint8_t> buffer(4);
  if (!in.read_exact(buffer)) return std::nullopt;
  const uint32_t length = PayloadReader(buffer, "gateway channel").u32();
  if (length == 0 || length > kMaxMessage)
    throw Error(fmt::format("gateway channel: a message of {} bytes", length));
  buffer.resize(4 + length);
  if (!in.read_exact(std::span<uint8_t>(buffer).subspan(4)))
    throw Error("gateway channel: it ended in the middle of a message");
  return unframe(buffer);
}

std::vector<uint8_t> frame(MsgType type, std::span<const uint8_t> payload) {
  PayloadWriter w;
  w.u32(uint32_t(payload.size() + 1));
  w.u8(uint8_t(type));
  w.bytes(payload);
  return std::move(w.out());
}

std::optional<Message> unframe(std::vector<uint8_t>& buffer) {
  if (buffer.size() < 4) return std::nullopt;
  PayloadReader r(buffer, "gateway channel");
  const uint32_t length = r.u32();
  if (length == 0 || length > kMaxMessage)
    throw Error(fmt::format("gateway channel: a message of {} bytes", length));
  if (buffer.size() - 4 < length) return std::nullopt;
  const uint8_t type = buffer[4];
  if (type < uint8_t(MsgType::Register) || type > uint8_t(MsgType::Closed))
    throw Error(fmt::format("gateway channel: unknown message type {}", type));
  Message m{MsgType(type), std::vector<uint8_t>(buffer.begin() + 5, buffer.begin() + 4 + length)};
  buffer.erase(buffer.begin(), buffer.begin() + 4 + length);
  return m;
}

std::vector<uint8_t> encode(const RegisterMsg& m) {
  PayloadWriter w;
  w.bytes(m.program);
  w.bytes(m.gateway);
  w.boolean(m.publishes);
  w.boolean(m.standby);
  put_address(w, m.listener);
  w.u32(uint32_t(m.connections.size()));
  for (const HeldConnection& c : m.connections) {
    w.u64(c.id);
    w.boolean(c.outgoing);
    w.u64(c.received);
    w.u64(c.sent);
  }
  return std::move(w.out());
}

RegisterMsg decode_register(std::span<const uint8_t> payload) {
  return decode_with<RegisterMsg>(payload, "REGISTER", [](PayloadReader& r) {
    RegisterMsg m;
    m.program = read_id(r);
    m.gateway = read_id(r);
    m.publishes = r.boolean();
    m.standby = r.boolean();
    m.listener = get_address(r);
    m.connections.resize(r.count(25, "connections"));
    for (HeldConnection& c : m.connections) {
      c.id = r.u64();
      c.outgoing = r.boolean();
      c.received = r.u64();
      c.sent = r.u64();
    }
    return m;
  });
}

std::vector<uint8_t> encode(const RegisteredMsg& m) {
  PayloadWriter w;
  w.bytes(m.gateway);
  w.u64(m.session);
  w.u32(uint32_t(m.connections.size()));
  for (auto [id, status] : m.connections) {
    w.u64(id);
    w.u8(uint8_t(status));
  }
  return std::move(w.out());
}

RegisteredMsg decode_registered(std::span<const uint8_t> payload) {
  return decode_with<RegisteredMsg>(payload, "REGISTERED", [](PayloadReader& r) {
    RegisteredMsg m;
    m.gateway = read_id(r);
    m.session = r.u64();
    m.connections.resize(r.count(9, "connections"));
    for (auto& [id, status] : m.connections) {
      id = r.u64();
      const uint8_t s = r.u8();
      if (s > uint8_t(JoinStatus::Mismatch)) r.fail(fmt::format("unknown join status {}", s));
      status = JoinStatus(s);
    }
    return m;
  });
}

std::vector<uint8_t> encode(const FreezeMsg& m) {
  PayloadWriter w;
  w.u32(uint32_t(m.sent.size()));
  for (auto [id, sent] : m.sent) {
    w.u64(id);
    w.u64(sent);
  }
  return std::move(w.out());
}

FreezeMsg decode_freeze(std::span<const uint8_t> payload) {
  return decode_with<FreezeMsg>(payload, "FREEZE", [](PayloadReader& r) {
    FreezeMsg m;
    m.sent.resize(r.count(16, "connections"));
    for (auto& [id, sent] : m.sent) {
      id = r.u64();
      sent = r.u64();
    }
    return m;
  });
}

std::vector<uint8_t> encode(const FrozenMsg& m) {
  PayloadWriter w;
  w.u32(uint32_t(m.connections.size()));
  for (const FrozenMsg::Entry& e : m.connections) {
    w.u64(e.id);
    w.u8(uint8_t(e.status));
    w.u64(e.forwarded);
  }
  return std::move(w.out());
}

FrozenMsg decode_frozen(std::span<const uint8_t> payload) {
  return decode_with<FrozenMsg>(payload, "FROZEN", [](PayloadReader& r) {
    FrozenMsg m;
    m.connections.resize(r.count(17, "connections"));
    for (FrozenMsg::Entry& e : m.connections) {
      e.id = r.u64();
      const uint8_t s = r.u8();
      if (s > uint8_t(FrozenStatus::Broken)) r.fail(fmt::format("unknown status {}", s));
      e.status = FrozenStatus(s);
      e.forwarded = r.u64();
    }
    return m;
  });
}

std::vector<uint8_t> encode(const ClosedMsg& m) {
  PayloadWriter w;
  w.u64(m.id);
  w.boolean(m.write_only);
  return std::move(w.out());
}

ClosedMsg decode_closed(std::span<const uint8_t> payload) {
  return decode_with<ClosedMsg>(payload, "CLOSED", [](PayloadReader& r) {
    ClosedMsg m;
    m.id = r.u64();
    m.write_only = r.boolean();
    return m;
  });
}

std::vector<uint8_t> encode(const Offer& m, const SessionKey& key) {
  PayloadWriter w;
  w.bytes(kOfferMagic);
  w.u64(m.session);
  w.u64(m.id);
  put_address(w, m.peer);
  return sealed(w, key);
}

std::vector<uint8_t> encode_take(uint64_t id) {
  PayloadWriter w;
  w.bytes(kTakeMagic);
  w.u64(id);
  return std::move(w.out());
}

std::vector<uint8_t> encode(const Join& m, const SessionKey& key) {
  PayloadWriter w;
  w.bytes(kJoinMagic);
  w.u64(m.session);
  w.u64(m.id);
  w.u64(m.received);
  w.u64(m.sent);
  return sealed(w, key);
}

std::vector<uint8_t> encode(const Connect& m, const SessionKey& key) {
  PayloadWriter w;
  w.bytes(kConnectMagic);
  w.u64(m.session);
  w.u64(m.sequence);
  put_address(w, m.target);
  return sealed(w, key);
}

std::vector<uint8_t> encode(const Reply& m) {
  PayloadWriter w;
  w.bytes(kReplyMagic);
  w.u32(m.status);
  w.u32(0);
  w.u64(m.id);
  return std::move(w.out());
}

uint64_t session_of(std::span<const uint8_t> handshake) {
  PayloadReader r(handshake.subspan(kMagicSize, 8), "handshake");
  return r.u64();
}

std::optional<Offer> decode_offer(std::span<const uint8_t> bytes, const SessionKey& key) {
  return decode_sealed<Offer>(bytes, kOfferSize, kOfferMagic, key, [](PayloadReader& r) {
    Offer m;
    m.session = r.u64();
    m.id = r.u64();
    m.peer = get_address(r);
    return m;
  });
}

std::optional<uint64_t> decode_take(std::span<const uint8_t> bytes) {
  if (bytes.size() != kTakeSize || !std::equal(kTakeMagic.begin(), kTakeMagic.end(), bytes.begin()))
    return std::nullopt;
  return PayloadReader(bytes.subspan(kMagicSize), "take").u64();
}

std::optional<Join> decode_join(std::span<const uint8_t> bytes, const SessionKey& key) {
  return decode_sealed<Join>(bytes, kJoinSize, kJoinMagic, key, [](PayloadReader& r) {
    Join m;
    m.session = r.u64();
    m.id = r.u64();
    m.received = r.u64();
    m.sent = r.u64();
    return m;
  });
}

std::optional<Connect> decode_connect(std::span<const uint8_t> bytes, const SessionKey& key) {
  return decode_sealed<Connect>(bytes, kConnectSize, kConnectMagic, key, [](PayloadReader& r) {
    Connect m;
    m.session = r.u64();
    m.sequence = r.u64();
    m.target = get_address(r);
    return m;
  });
}

std::optional<Reply> decode_reply(std::span<const uint8_t> bytes) {
  if (bytes.size() != kReplySize ||
      !std::equal(kReplyMagic.begin(), kReplyMagic.end(), bytes.begin()))
    return std::nullopt;
  PayloadReader r(bytes.subspan(kMagicSize), "reply");
  Reply m;
  m.status = r.u32();
  r.u32();
  m.id = r.u64();
  return m;
}

} // namespace tern::migrate::gateway
