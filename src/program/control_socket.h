// The control socket of `tern run/restore --control SOCKET`: a local
// (AF_UNIX) stream socket on which processes of tern's own user ask the
// running program for checkpoints. One request line per connection, one
// reply line, then the connection closes:
//
//   request:  NAME [--FLAG...] [--] [ARGUMENT]    (at most kMaxControlLine bytes with its newline)
//   reply:    ok ... | error MESSAGE | a command's own answer
//
// The ARGUMENT is the rest of the line, spaces included; `--` ends the
// flags when it begins with a dash. A line that is too long, has no
// newline, holds a control byte, names an unknown command or a flag the
// command does not take is answered with `error ...` and never executed.
//
// The server is one component with one job: it owns the socket and its
// connections, parses every line against the command table it was given
// (one place) and dispatches the command to that command's handler, which
// answers through the ControlReply it is handed — at once or later, from
// any thread. Connections are served concurrently by one thread that never
// blocks on a client: a client that sends nothing is dropped after
// kControlLineTimeout and delays nobody, and close() never waits for one.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace tern::program {

// A request line, newline included; longer lines are refused.
inline constexpr size_t kMaxControlLine = 8192;
// How long a connection may take to send its request line.
inline constexpr std::chrono::seconds kControlLineTimeout{10};
// Connections served at once; more are answered with an error.
inline constexpr size_t kMaxControlConnections = 64;

struct ControlCommand {
  std::string name;
  std::vector<std::string> flags; // each one the command takes
  std::string argument;           // "" when none was given
  bool has_flag(std::string_view flag) const;
};

namespace detail {
struct Outbox;
}

// Where a command's answer goes. send() may be called from any thread;
// the first call answers, later ones are ignored, and a reply to a client
// that has gone (or after the server closed) is dropped.
class ControlReply {
public:
  void send(std::string_view line) const;
  void error(std::string_view message) const;

private:
  friend class ControlServer;
  ControlReply(std::shared_ptr<detail::Outbox> outbox, uint64_t connection)
      : outbox_(std::move(outbox)), connection_(connection) {}
  std::shared_ptr<detail::Outbox> outbox_;
  uint64_t connection_ = 0;
};

struct ControlCommandSpec {
  std::string name;
  std::vector<std::string> flags; // e.g. {"--stop"}
  bool takes_argument = false;
  // Runs on the server's thread: must not block (hand the reply on to
  // whoever will answer it).
  std::function<void(const ControlCommand&, ControlReply)> handle;
};

// Parses one request line (without its newline) against `commands`: the
// command, or the message of the `error` reply.
std::variant<ControlCommand, std::string>
parse_control_line(std::string_view line, std::span<const ControlCommandSpec> commands);

class ControlServer {
public:
  // Listens at `path`: the socket file is created with mode 0600 whatever
  // the umask, and only tern's own user (or root) is served (SO_PEERCRED).
  // A socket file left by a tern that died is replaced; one that another
  // process serves, or anything else at `path`, is an error (tern::Error).
  ControlServer(const std::string& path, std::vector<ControlCommandSpec> commands);
  // close("the program has ended") unless closed already.
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Stops serving: replies already sent are delivered, the socket file is
  // removed, and every connection not answered yet (also those still in
  // the listen queue) gets `error REASON`. Returns when the server's thread
  // has ended, which never waits for a client.
  void close(const std::string& reason);

private:
  class Loop;
  std::unique_ptr<Loop> loop_;
};

// The client: sends `command` as one line to the control socket at
// `socket_path` and returns the reply line. Throws tern::Error when the
// socket cannot be reached, the line is too long, or no reply comes.
std::string control_request(const std::string& socket_path, const std::string& command);

} // namespace tern::program
