// The authenticated, encrypted channel between two tern processes that hold
// the same key: `tern migrate` to `tern serve`, and backends to `tern
// gateway`. TLS 1.3 (OpenSSL) with an external pre-shared key and an ECDHE
// exchange (RFC 8446 psk_dhe_ke): no certificates; the handshake fails
// unless both ends hold the key, so nothing either side reads afterwards
// comes from a peer without it, and traffic recorded now stays private
// even if the key leaks later.
//
//   Key key = Key::load("site.key");
//   auto ch = Channel::connect("10.0.0.2:7000", key, {});   // client
//   Listener l("0.0.0.0:7000", "--listen");                  // server
//   auto ch = Channel::accept(l.accept(), key, {});
//   ch->write(bytes); ch->flush(); ch->read_exact(buffer);
//
// Every blocking operation gives up when the peer makes no progress for
// ChannelOptions::timeout (ChannelTimeout), and cancel() from another
// thread ends it at once (ChannelCancelled). A peer that goes away is an
// error, never a SIGPIPE.
#pragma once

#include "tern/error.h"
#include "util/byte_stream.h"
#include "util/unique_fd.h"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tern::migrate {

inline constexpr size_t kKeyBytes = 32;

// A shared secret: 32 random bytes. On disk (tern keygen) it is 64
// lower-case hex digits and a newline, in a file only its owner may read
// (the format `openssl s_client -psk` takes).
class Key {
public:
  // A new random key (OpenSSL's CSPRNG).
  static Key generate();
  // Throws tern::Error naming `path` when the file is missing, readable or
  // writable by group or others, or not 64 hex digits.
  static Key load(const std::string& path);
  // Writes the key to a new file `path` with mode 0600; refuses an existing
  // file or symlink (a key is never overwritten by accident).
  void save_new(const std::string& path) const;

  // A public name for the key: 16 hex digits of a hash of it. Sent in the
  // handshake as the PSK identity, so a server can tell a client with
  // another key from a broken handshake, and shown in errors.
  std::string id() const;
  std::span<const uint8_t> bytes() const { return bytes_; }

private:
  std::array<uint8_t, kKeyBytes> bytes_{};
};

// The link or the peer failed: refused or reset connection, a failed
// handshake, a TLS alert, a connection closed in the middle of a message.
class ChannelError : public Error {
public:
  using Error::Error;
};
// The peer made no progress for ChannelOptions::timeout.
class ChannelTimeout : public ChannelError {
public:
  using ChannelError::ChannelError;
};
// Channel::cancel() was called.
class ChannelCancelled : public ChannelError {
public:
  using ChannelError::ChannelError;
};

struct ChannelOptions {
  // How long one operation (connect, handshake, a read, a write) may wait
  // without any byte moving before it fails.
  std::chrono::milliseconds timeout{10'000};
};

// A listening TCP socket for Channel::accept.
class Listener {
public:
  // Binds "ADDR:PORT" (port 0: any free port); errors start with
  // "OPTION SPEC:".
  Listener(std::string_view spec, std::string_view option);
  // The address bound, "ADDR:PORT" ("[ADDR]:PORT" for IPv6), with the real
  // port when 0 was asked.
  const std::string& address() const { return address_; }
  int fd() const { return fd_.get(); }
  // Waits for the next connection (no timeout); sets `peer` to its
  // address. Throws tern::Error if accepting fails for another reason than
  // a connection that went away first.
  util::UniqueFd accept(std::string& peer);

private:
  util::UniqueFd fd_;
  std::string address_;
};

class Channel final : public util::ByteSink, public util::ByteSource {
public:
  // Connects to "HOST:PORT" and runs the handshake as the client.
  static std::unique_ptr<Channel> connect(std::string_view to, const Key& key,
                                          const ChannelOptions& options);
  // Runs the handshake as the server on an accepted connection from `peer`.
  // A client without the key, with another key, or that does not speak
  // TLS 1.3 is refused with a ChannelError saying which.
  static std::unique_ptr<Channel> accept(util::UniqueFd socket, std::string peer, const Key& key,
                                         const ChannelOptions& options);
  ~Channel() override;
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Buffered: bytes leave at flush() or when the buffer is full.
  void write(std::span<const uint8_t> bytes) override;
  void flush() override;
  // Returns 0 only when the peer closed the channel cleanly (TLS
  // close_notify); a connection that just ends is a ChannelError.
  size_t read_some(std::span<uint8_t> out) override;
  // Whether a read would find data (or the end) within `wait`, without
  // reading it.
  bool readable(std::chrono::milliseconds wait);

  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  // Thread-safe: the operation in progress, and every later one, throws
  // ChannelCancelled.
  void cancel();
  // Flushes and sends the TLS close_notify (best effort, bounded by the
  // timeout); the socket is closed by the destructor.
  void close();

  // A secret only the two ends of this channel know, derived from its TLS
  // session (the exporter of RFC 8446 §7.5); `label` names what it is for.
  // tern gateway's data connections prove they belong to a control channel
  // with it, so the key file is checked by this channel's handshake alone.
  std::array<uint8_t, 32> export_secret(std::string_view label) const;

  // "HOST:PORT" of the other end, as given or accepted.
  const std::string& peer() const { return peer_; }
  uint64_t bytes_written() const { return bytes_written_; }
  uint64_t bytes_read() const { return bytes_read_; }

  struct State; // OpenSSL objects and the handshake's bookkeeping

private:
  Channel(util::UniqueFd socket, std::string peer, const ChannelOptions& options);
  void handshake(bool client);
  // Waits until the socket is ready for `events` (POLLIN/POLLOUT); throws
  // on timeout or cancel.
  void wait_for(short events, std::string_view doing);
  [[noreturn]] void fail(std::string_view doing, int ssl_error);
  void write_through(std::span<const uint8_t> bytes);

  util::UniqueFd socket_;
  util::UniqueFd cancel_event_;
  std::atomic<bool> cancelled_{false};
  std::string peer_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<State> state_;
  std::vector<uint8_t> out_;
  uint64_t bytes_written_ = 0;
  uint64_t bytes_read_ = 0;
  bool closed_ = false;
};

} // namespace tern::migrate
