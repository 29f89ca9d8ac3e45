// The bytes `tern gateway` and the tern processes behind it exchange
// (docs/gateway.md, "Protocol"): control messages over the authenticated
// channel, and the short authenticated handshakes that open each data
// connection (an offer the gateway makes to a published listener, a
// re-join or an outgoing connect the backend asks for). Pure encoding: no
// sockets here.
#pragma once

#include "snapshot/payload.h"
#include "util/byte_stream.h"
#include "wasi/fd_table.h"

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tern::migrate::gateway {

using Id128 = std::array<uint8_t, 16>;
using Mac = std::array<uint8_t, 32>;

// The key that authenticates a session's data connection handshakes
// (HMAC-SHA256): both ends derive it from their control channel
// (Channel::export_secret with this label), so it never travels and only
// the two ends of a channel that proved the key file have it.
using SessionKey = std::array<uint8_t, 32>;
inline constexpr std::string_view kSessionKeyLabel = "EXPORTER-tern-gateway-handshakes";

// 16 random bytes (OpenSSL's generator).
Id128 random_id();
Id128 read_id(snapshot::PayloadReader& r);

// --- Control messages ---------------------------------------------------------

enum class MsgType : uint8_t {
  Register = 1,   // backend: who it is, where it listens, the connections it had
  Registered = 2, // gateway: session id, what becomes of each connection
  Freeze = 3,     // backend: a checkpoint; the bytes it sent on each connection
  Frozen = 4,     // gateway: everything received; the bytes it sent on each
  Thaw = 5,       // backend: the program continues
  Ready = 6,      // backend: re-joins done, offer new clients
  Bye = 7,        // backend: the program ended
  Error = 8,      // gateway: a refusal, as text
  Closed = 9,     // backend: the program closed a connection, or shut down its sending
};

// A record of a connection the backend had at its checkpoint.
struct HeldConnection {
  uint64_t id = 0;
  bool outgoing = false;
  uint64_t received = 0; // bytes of the peer's stream the program has
  uint64_t sent = 0;     // bytes of the program's stream it sent
};

struct RegisterMsg {
  Id128 program{};        // random at `tern run`, kept across moves
  Id128 gateway{};        // the gateway instance the connections belong to (0: none)
  bool publishes = false; // the program takes new clients on `listener`
  // A migration's target, registering before the source commits: it joins
  // the connections, but the frozen backend keeps the program until this
  // one's READY (docs/gateway.md §5).
  bool standby = false;
  wasi::SocketAddress listener;
  std::vector<HeldConnection> connections;
};

enum class JoinStatus : uint8_t {
  Rejoin = 0,   // held at the recorded offsets: join it
  Gone = 1,     // closed by its peer, expired, or unknown here
  Mismatch = 2, // the offsets differ: bytes were exchanged after the snapshot
};

struct RegisteredMsg {
  Id128 gateway{};
  uint64_t session = 0;
  std::vector<std::pair<uint64_t, JoinStatus>> connections; // as in the RegisterMsg
};

struct FreezeMsg {
  std::vector<std::pair<uint64_t, uint64_t>> sent; // connection id, bytes the program sent
};

enum class FrozenStatus : uint8_t {
  Held = 0,    // every byte arrived; `forwarded` is what the gateway sent
  Unknown = 1, // no such connection here
  Broken = 2,  // the connection to the backend broke first
};

// Sent before the kernel closes the backend's side: the end of stream the
// gateway then reads is the program's (else it is a crash's, and the
// connection is held for a restore).
struct ClosedMsg {
  uint64_t id = 0;
  bool write_only = false; // shutdown(SHUT_WR): the program still reads
};

struct FrozenMsg {
  struct Entry {
    uint64_t id = 0;
    FrozenStatus status = FrozenStatus::Held;
    uint64_t forwarded = 0; // bytes of the peer's stream sent to the backend
  };
  std::vector<Entry> connections;
};

// A message as framed on the channel: u32 length (of type + payload), u8
// type, payload.
struct Message {
  MsgType type = MsgType::Error;
  std::vector<uint8_t> payload;
};
constexpr uint32_t kMaxMessage = 16u << 20;

std::vector<uint8_t> frame(MsgType type, std::span<const uint8_t> payload);
// A whole message at the front of `buffer`: removed from it. nullopt when
// incomplete; throws tern::Error for a malformed frame.
std::optional<Message> unframe(std::vector<uint8_t>& buffer);
// The next message on a channel; nullopt when it ends cleanly before one.
// Throws tern::Error for a malformed frame or a channel cut in one.
std::optional<Message> read_message(util::ByteSource& in);

std::vector<uint8_t> encode(const RegisterMsg& m);
std::vector<uint8_t> encode(const RegisteredMsg& m);
std::vector<uint8_t> encode(const FreezeMsg& m);
std::vector<uint8_t> encode(const FrozenMsg& m);
std::vector<uint8_t> encode(const ClosedMsg& m);
// Each throws tern::Error naming the message for malformed bytes.
RegisterMsg decode_register(std::span<const uint8_t> payload);
RegisteredMsg decode_registered(std::span<const uint8_t> payload);
FreezeMsg decode_freeze(std::span<const uint8_t> payload);
FrozenMsg decode_frozen(std::span<const uint8_t> payload);
ClosedMsg decode_closed(std::span<const uint8_t> payload);

// --- Data connection handshakes -------------------------------------------------

// Sent by the gateway on a connection it opens to a published listener: the
// client it carries. Answered by a Take.
struct Offer {
  uint64_t session = 0;
  uint64_t id = 0;
  wasi::SocketAddress peer; // the client's address
};
// Sent by a backend on a connection it opens to the gateway's control
// address: a connection to re-join, or a new outgoing one. Answered by a
// Reply.
struct Join {
  uint64_t session = 0;
  uint64_t id = 0;
  uint64_t received = 0;
  uint64_t sent = 0;
};
struct Connect {
  uint64_t session = 0;
  uint64_t sequence = 0; // increases per session: a replayed request is refused
  wasi::SocketAddress target;
};
struct Reply {
  uint32_t status = 0; // 0 ok, else a POSIX errno from the gateway's host
  uint64_t id = 0;     // a Connect's new connection
};

constexpr size_t kOfferSize = 8 + 8 + 8 + 24 + 32;
constexpr size_t kTakeSize = 16;
constexpr size_t kJoinSize = 8 + 8 + 8 + 8 + 8 + 32;
constexpr size_t kConnectSize = 8 + 8 + 8 + 24 + 32;
constexpr size_t kReplySize = 24;
constexpr size_t kMagicSize = 8;

// Magics that open data connections (the control channel never starts with
// them).
extern const std::array<uint8_t, kMagicSize> kJoinMagic, kConnectMagic;

std::vector<uint8_t> encode(const Offer& m, const SessionKey& key);
std::vector<uint8_t> encode_take(uint64_t id);
std::vector<uint8_t> encode(const Join& m, const SessionKey& key);
std::vector<uint8_t> encode(const Connect& m, const SessionKey& key);
std::vector<uint8_t> encode(const Reply& m);

// The session a handshake names (bytes 8-15), to find its key.
uint64_t session_of(std::span<const uint8_t> handshake);
// Each checks the magic and, where there is one, the MAC under `key`;
// nullopt for anything else.
std::optional<Offer> decode_offer(std::span<const uint8_t> bytes, const SessionKey& key);
std::optional<uint64_t> decode_take(std::span<const uint8_t> bytes);
std::optional<Join> decode_join(std::span<const uint8_t> bytes, const SessionKey& key);
std::optional<Connect> decode_connect(std::span<const uint8_t> bytes, const SessionKey& key);
std::optional<Reply> decode_reply(std::span<const uint8_t> bytes);

} // namespace tern::migrate::gateway
