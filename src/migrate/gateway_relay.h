// The gateway's connections (migrate/gateway.h): one per client (or per
// outgoing connection a program made), with its two buffers and its byte
// counts, and the link to whichever backend holds it now. Plain data and
// the non-blocking moves between sockets and buffers; the event loop in
// gateway.cpp decides when to call them.
#pragma once

#include "migrate/gateway_protocol.h"
#include "util/unique_fd.h"
#include "wasi/fd_table.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <sys/types.h>
#include <vector>

namespace tern::migrate::gateway {

using Clock = std::chrono::steady_clock;

// Bytes on their way from one socket to another. The storage is not
// zero-filled: a recv asks for up to kMaxMove bytes, and clearing that much
// before each one (std::vector::resize) was a fifth of the gateway's CPU
// time per small request.
class ByteQueue {
public:
  // One recv or send moves at most this much: a busy connection cannot keep
  // the loop from the others for long.
  static constexpr size_t kMaxMove = size_t(256) << 10;

  size_t size() const { return tail_ - head_; }
  bool empty() const { return size() == 0; }
  std::span<const uint8_t> data() const { return {bytes_.get() + head_, size()}; }
  void push(std::span<const uint8_t> b);
  void consume(size_t n);

  // What the socket calls returned, boiled down.
  enum class Io { Moved, End, Again, Failed };
  // Reads at most `room` bytes from `fd` (one recv); `n` is how many, and
  // `drained` says the socket had no more (a short read).
  Io read_from(int fd, size_t room, size_t& n, bool& drained);
  // Writes from the front to `fd` (one send); `n` is how many.
  Io write_to(int fd, size_t& n);

private:
  // Room for `more` bytes after the tail (moving the bytes to the front
  // or into a larger block).
  void reserve(size_t more);

  std::unique_ptr<uint8_t[]> bytes_;
  size_t capacity_ = 0, head_ = 0, tail_ = 0;
};

// Where a connection's backend side stands.
enum class LinkState {
  None,     // no backend holds it: held (bytes from the peer are buffered)
  Dialing,  // connecting to the program's listener to offer it
  Offered,  // the offer is out; waiting for the backend's answer
  Attached, // a backend holds it: bytes flow
};

struct Program;

struct Conn {
  uint64_t id = 0;
  Program* program = nullptr; // null: a client waiting for a program to publish
  bool outgoing = false;      // a program's connection out; the peer is its target
  wasi::SocketAddress peer_address;
  Clock::time_point accepted = Clock::now();

  // The outside party: a client, or an outgoing connection's target.
  util::UniqueFd peer;
  bool peer_connecting = false; // an outgoing connect still in progress
  bool peer_eof = false;        // it finished sending
  bool peer_shut = false;       // it was sent our end of stream

  // Bytes in flight, and the two offsets a re-join must agree on: bytes of
  // the peer's stream written to backends (`forwarded`), bytes of the
  // program's stream read from them (`received`).
  ByteQueue to_backend, to_peer;
  uint64_t forwarded = 0;
  uint64_t received = 0;

  LinkState link_state = LinkState::None;
  util::UniqueFd link;
  // Joined by a program's standby backend (a migration's target): not used
  // until that backend takes the program over, when it becomes `link`.
  util::UniqueFd standby_link;
  std::vector<uint8_t> link_out; // a handshake to send before any data
  size_t link_out_at = 0;
  std::vector<uint8_t> take;  // the answer to an offer, as far as it came
  bool backend_eof = false;   // the program finished sending
  bool link_shut = false;     // this link was sent the peer's end of stream
  bool ever_attached = false; // some backend held it (it is in the program's state)
  // The program said it closed the connection or shut down its sending
  // side (ClosedMsg): an end of stream on the link is its own.
  bool program_closed = false;
  // The link ended without that word: the program may have crashed. It is
  // no longer read; the connection waits for the word or a restore.
  bool unexplained_end = false;
  uint32_t peer_events = 0, link_events = 0; // epoll interest as registered

  // A checkpoint: the program sent `freeze_sent` bytes in all; read every
  // one of them whatever the buffer bound.
  bool frozen = false;
  uint64_t freeze_sent = 0;
  // Registered again with this connection in its snapshot: its backend's
  // re-join is expected in session `rejoin_session`.
  bool rejoin_expected = false;
  uint64_t rejoin_session = 0;
  // An outgoing connection's reply goes out once its target connected.
  bool reply_pending = false;

  std::optional<Clock::time_point> dial_after; // retry an offer that failed
  // Closing cleanly: our end of stream was sent; close at the peer's end or
  // at this time.
  std::optional<Clock::time_point> closing_until;

  bool absorbing() const { return frozen && received < freeze_sent; }
  bool handshake_pending() const { return link_out_at < link_out.size(); }
};

} // namespace tern::migrate::gateway
