#include "program/control_socket.h"

#include "tern/error.h"
#include "util/unique_fd.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <map>
#include <mutex>
#include <poll.h>
#include <set>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace tern::program {

using Clock = std::chrono::steady_clock;

// --- Parsing -------------------------------------------------------------------

bool ControlCommand::has_flag(std::string_view flag) const {
  return std::find(flags.begin(), flags.end(), flag) != flags.end();
}

namespace {

std::string command_names(std::span<const ControlCommandSpec> commands) {
  std::string names;
  for (const auto& c : commands) names += (names.empty() ? "" : ", ") + c.name;
  return names;
}

std::string flag_names(const ControlCommandSpec& spec) {
  if (spec.flags.empty()) return "it takes none";
  std::string names;
  for (const auto& f : spec.flags) names += (names.empty() ? "" : ", ") + f;
  return "it takes " + names;
}

} // namespace

std::variant<ControlCommand, std::string>
parse_control_line(std::string_view line, std::span<const ControlCommandSpec> commands) {
  if (std::any_of(line.begin(), line.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
    return std::string("the request holds a control character");
  size_t pos = 0;
  // The next space-separated word, or "" at the end of the line.
  auto next_word = [&](size_t& start) {
    while (pos < line.size() && line[pos] == ' ') ++pos;
    start = pos;
    while (pos < line.size() && line[pos] != ' ') ++pos;
    return line.substr(start, pos - start);
  };
  size_t start = 0;
  const std::string_view name = next_word(start);
  if (name.empty()) return std::string("empty request");
  auto spec = std::find_if(commands.begin(), commands.end(),
                           [&](const ControlCommandSpec& c) { return c.name == name; });
  if (spec == commands.end())
    return fmt::format("unknown command '{:.100}' (commands: {})", name, command_names(commands));
  ControlCommand command;
  command.name = spec->name;
  for (;;) {
    const std::string_view word = next_word(start);
    if (word.empty()) break;
    if (word == "--") {
      if (pos < line.size()) command.argument = line.substr(pos + 1);
      break;
    }
    if (word.size() > 1 && word[0] == '-') {
      if (std::find(spec->flags.begin(), spec->flags.end(), word) == spec->flags.end())
        return fmt::format("{}: unknown flag '{:.100}' ({})", spec->name, word, flag_names(*spec));
      command.flags.emplace_back(word);
      continue;
    }
    command.argument = line.substr(start);
    break;
  }
  if (!command.argument.empty() && !spec->takes_argument)
    return fmt::format("{} takes no argument", spec->name);
  return command;
}

// --- Replies -------------------------------------------------------------------

namespace detail {

// Replies on their way from handlers (any thread) to the server's thread,
// which the eventfd wakes. Also carries the request to close.
struct Outbox {
  Outbox() : wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!wake) throw Error(fmt::format("eventfd: {}", std::strerror(errno)));
  }
  void notify() const {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake.get(), &one, sizeof one);
  }
  void post(uint64_t connection, std::string line) {
    {
      std::lock_guard lock(mutex);
      // Only the first reply to a connection still waiting for one.
      if (awaiting.erase(connection) == 0) return;
      replies.emplace_back(connection, std::move(line));
    }
    notify();
  }

  util::UniqueFd wake;
  std::mutex mutex;
  std::set<uint64_t> awaiting; // dispatched connections not answered yet
  std::vector<std::pair<uint64_t, std::string>> replies;
  bool closing = false;
  std::string close_reason;
};

} // namespace detail

void ControlReply::send(std::string_view line) const {
  // One line: a message with a newline in it would end the reply early.
  std::string text(line);
  std::replace(text.begin(), text.end(), '\n', ' ');
  outbox_->post(connection_, std::move(text));
}

void ControlReply::error(std::string_view message) const {
  send(fmt::format("error {}", message));
}

// --- The server --------------------------------------------------------------------

namespace {

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path))
    throw Error(fmt::format("control socket path '{}': expected 1 to {} bytes", path,
                            sizeof(addr.sun_path) - 1));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// On a socket; a peer that went away is not a SIGPIPE, and a peer that
// does not read never blocks the caller (one short line fits its buffer).
void send_line(int fd, const std::string& line) {
  const std::string text = line + "\n";
  [[maybe_unused]] ssize_t n = ::send(fd, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

// Only tern's own user and root may ask: the socket file's mode already
// says so, this holds even if someone widened it.
std::string refuse_peer(int fd) {
  ucred cred = {};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return fmt::format("cannot check the client's credentials: {}", std::strerror(errno));
  if (cred.uid != ::geteuid() && cred.uid != 0)
    return fmt::format("permission denied: uid {} is not tern's user", cred.uid);
  return {};
}

} // namespace

class ControlServer::Loop {
public:
  Loop(const std::string& path, std::vector<ControlCommandSpec> commands)
      : path_(path), commands_(std::move(commands)), outbox_(std::make_shared<detail::Outbox>()) {
    listen_fd_ = util::UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!listen_fd_) throw Error(fmt::format("control socket: {}", std::strerror(errno)));
    const sockaddr_un addr = unix_address(path);
    remove_stale_socket();
    // bind() creates the file with the socket's own mode less the umask:
    // set that mode first, so the file is never, even briefly, open to
    // others (chmod after bind would leave a window, and umask 0 made it
    // world-writable).
    if (::fchmod(listen_fd_.get(), S_IRUSR | S_IWUSR) != 0)
      throw Error(fmt::format("control socket {}: {}", path, std::strerror(errno)));
    if (::bind(listen_fd_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
      throw Error(fmt::format("control socket {}: {}", path, std::strerror(errno)));
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode) ||
        (st.st_mode & 07777) != (S_IRUSR | S_IWUSR)) {
      ::unlink(path.c_str());
      throw Error(fmt::format("control socket {}: could not be created with mode 0600", path));
    }
    socket_dev_ = st.st_dev;
    socket_ino_ = st.st_ino;
    if (::listen(listen_fd_.get(), 16) != 0) {
      const int e = errno;
      ::unlink(path.c_str());
      throw Error(fmt::format("control socket {}: {}", path, std::strerror(e)));
    }
    thread_ = std::thread([this] { serve(); });
  }

  void close(const std::string& reason) {
    {
      std::lock_guard lock(outbox_->mutex);
      if (!outbox_->closing) {
        outbox_->closing = true;
        outbox_->close_reason = reason;
      }
    }
    outbox_->notify();
    if (thread_.joinable()) thread_.join();
  }

private:
  struct Connection {
    util::UniqueFd fd;
    std::string buffer;
    Clock::time_point deadline;
    bool dispatched = false; // its command is running; the reply comes through the outbox
  };

  // A socket file left by a tern that died is replaced; a live one is not.
  void remove_stale_socket() {
    struct stat st;
    if (::lstat(path_.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return;
    util::UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    const sockaddr_un addr = unix_address(path_);
    if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 ||
        errno == EAGAIN)
      throw Error(fmt::format("control socket {} is in use by another process", path_));
    ::unlink(path_.c_str());
  }

  void serve() {
    std::vector<pollfd> fds;
    std::vector<uint64_t> ids;
    for (;;) {
      fds.assign({{outbox_->wake.get(), POLLIN, 0}, {listen_fd_.get(), POLLIN, 0}});
      ids.clear();
      const auto now = Clock::now();
      if (now < accept_paused_until_) fds[1].fd = -1; // poll ignores negative fds
      auto wake_at = accept_paused_until_ > now ? accept_paused_until_ : Clock::time_point::max();
      for (auto& [id, c] : connections_) {
        if (c.dispatched) continue;
        fds.push_back({c.fd.get(), POLLIN, 0});
        ids.push_back(id);
        wake_at = std::min(wake_at, c.deadline);
      }
      int timeout = -1;
      if (wake_at != Clock::time_point::max())
        timeout = static_cast<int>(std::clamp<int64_t>(
            std::chrono::ceil<std::chrono::milliseconds>(wake_at - now).count(), 0, 60'000));
      if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) {
        shut_down("the control socket failed: " + std::string(std::strerror(errno)));
        return;
      }
      if (fds[0].revents) {
        uint64_t count;
        [[maybe_unused]] ssize_t n = ::read(outbox_->wake.get(), &count, sizeof count);
      }
      deliver_replies();
      {
        std::unique_lock lock(outbox_->mutex);
        if (outbox_->closing) {
          const std::string reason = outbox_->close_reason;
          lock.unlock();
          shut_down(reason);
          return;
        }
      }
      for (size_t i = 2; i < fds.size(); ++i)
        if (fds[i].revents) read_from(ids[i - 2]);
      drop_silent_clients(Clock::now());
      if (fds[1].fd >= 0 && fds[1].revents) accept_clients();
    }
  }

  void accept_clients() {
    for (;;) {
      util::UniqueFd fd(
          ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (!fd) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        // Out of descriptors or memory: the listen socket stays readable, so
        // leave it alone for a moment instead of spinning on it.
        if (errno != EAGAIN && errno != EWOULDBLOCK)
          accept_paused_until_ = Clock::now() + std::chrono::milliseconds(100);
        return;
      }
      if (std::string why = refuse_peer(fd.get()); !why.empty()) {
        send_line(fd.get(), "error " + why);
        continue;
      }
      if (connections_.size() >= kMaxControlConnections) {
        send_line(fd.get(), "error too many control connections at once; try again");
        continue;
      }
      Connection c;
      c.fd = std::move(fd);
      c.deadline = Clock::now() + kControlLineTimeout;
      connections_.emplace(next_id_++, std::move(c));
    }
  }

  // Reads what the client sent; a complete line is dispatched, anything
  // else that cannot become one is answered with an error.
  void read_from(uint64_t id) {
    Connection& c = connections_.at(id);
    char chunk[1024];
    for (;;) {
      const ssize_t n = ::recv(c.fd.get(), chunk, sizeof chunk, MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n < 0) return drop(id);
      if (n == 0) return answer(id, "error the request line has no newline");
      c.buffer.append(chunk, static_cast<size_t>(n));
      const size_t newline = c.buffer.find('\n');
      if (newline != std::string::npos && newline < kMaxControlLine) {
        std::string line = c.buffer.substr(0, newline);
        if (!line.empty() && line.back() == '\r') line.pop_back(); // from `socat ...,crlf`
        return dispatch(id, line);
      }
      if (c.buffer.size() >= kMaxControlLine)
        return answer(
            id, fmt::format("error the request line is longer than {} bytes", kMaxControlLine - 1));
    }
  }

  void dispatch(uint64_t id, const std::string& line) {
    auto parsed = parse_control_line(line, commands_);
    if (auto* message = std::get_if<std::string>(&parsed)) return answer(id, "error " + *message);
    const auto& command = std::get<ControlCommand>(parsed);
    const auto& spec = *std::find_if(commands_.begin(), commands_.end(),
                                     [&](const auto& s) { return s.name == command.name; });
    connections_.at(id).dispatched = true;
    {
      std::lock_guard lock(outbox_->mutex);
      outbox_->awaiting.insert(id);
    }
    const ControlReply reply(outbox_, id);
    try {
      spec.handle(command, reply);
    } catch (const std::exception& e) {
      reply.error(e.what());
    }
    deliver_replies(); // a handler that answered at once
  }

  void deliver_replies() {
    std::vector<std::pair<uint64_t, std::string>> replies;
    {
      std::lock_guard lock(outbox_->mutex);
      replies.swap(outbox_->replies);
    }
    for (auto& [id, line] : replies)
      if (connections_.count(id)) answer(id, line);
  }

  void drop_silent_clients(Clock::time_point now) {
    std::vector<uint64_t> expired;
    for (const auto& [id, c] : connections_)
      if (!c.dispatched && now >= c.deadline) expired.push_back(id);
    for (uint64_t id : expired)
      answer(id, fmt::format("error no request line within {} s", kControlLineTimeout.count()));
  }

  void answer(uint64_t id, const std::string& line) {
    send_line(connections_.at(id).fd.get(), line);
    drop(id);
  }

  void drop(uint64_t id) {
    connections_.erase(id);
    std::lock_guard lock(outbox_->mutex);
    outbox_->awaiting.erase(id);
  }

  // No new clients: the socket file goes (only if it is still the one this
  // server bound), and shutting the listener down refuses a connect that
  // found it before (ECONNREFUSED); then everyone already connected or
  // queued is told. So a client either gets this reply or cannot connect:
  // none is cut off without an answer.
  void shut_down(const std::string& reason) {
    struct stat st;
    if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == socket_dev_ && st.st_ino == socket_ino_)
      ::unlink(path_.c_str());
    ::shutdown(listen_fd_.get(), SHUT_RD);
    const std::string line = "error " + reason;
    for (;;) {
      util::UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!fd) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        break;
      }
      send_line(fd.get(), line);
    }
    for (auto& [id, c] : connections_) send_line(c.fd.get(), line);
    connections_.clear();
    listen_fd_.reset();
    std::lock_guard lock(outbox_->mutex);
    outbox_->awaiting.clear();
  }

  std::string path_;
  std::vector<ControlCommandSpec> commands_;
  std::shared_ptr<detail::Outbox> outbox_;
  util::UniqueFd listen_fd_;
  dev_t socket_dev_ = 0;
  ino_t socket_ino_ = 0;
  std::map<uint64_t, Connection> connections_;
  uint64_t next_id_ = 1;
  Clock::time_point accept_paused_until_{};
  std::thread thread_;
};

ControlServer::ControlServer(const std::string& path, std::vector<ControlCommandSpec> commands)
    : loop_(std::make_unique<Loop>(path, std::move(commands))) {}

ControlServer::~ControlServer() {
  close("the program has ended");
}

void ControlServer::close(const std::string& reason) {
  loop_->close(reason);
}

// --- The client --------------------------------------------------------------------

std::string control_request(const std::string& socket_path, const std::string& command) {
  if (command.find('\n') != std::string::npos)
    throw Error("a control request cannot hold a newline");
  if (command.size() + 1 > kMaxControlLine)
    throw Error(fmt::format("control request too long ({} bytes; at most {})", command.size(),
                            kMaxControlLine - 1));
  util::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw Error(fmt::format("socket: {}", std::strerror(errno)));
  const sockaddr_un addr = unix_address(socket_path);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
    throw Error(
        fmt::format("cannot reach the control socket {}: {}", socket_path, std::strerror(errno)));
  const std::string line = command + "\n";
  for (size_t done = 0; done < line.size();) {
    const ssize_t n = ::send(fd.get(), line.data() + done, line.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break; // the server may have answered and closed: read its reply
    done += static_cast<size_t>(n);
  }
  std::string reply;
  char chunk[1024];
  for (;;) {
    const ssize_t n = ::recv(fd.get(), chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reply.append(chunk, static_cast<size_t>(n));
    if (const size_t end = reply.find('\n'); end != std::string::npos) return reply.substr(0, end);
    if (reply.size() > 65536) throw Error(fmt::format("{}: the reply is too long", socket_path));
  }
  throw Error(fmt::format("{}: the program ended without replying", socket_path));
}

} // namespace tern::program
