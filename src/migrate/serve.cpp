#include "migrate/serve.h"

#include "tern/error.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace tern::migrate {
namespace {

// What a receiving process tells serve over its link (one byte each).
constexpr char kAskToRun = 'R'; // rebuilt: may I run it when the source commits?
constexpr char kStarted = 'S';  // the program runs here
constexpr char kYes = 'Y', kNo = 'N';

void log(const std::string& line) {
  fmt::print(stderr, "tern: serve: {}\n", line);
}

int exit_status_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

bool send_byte(int fd, char c) {
  return ::send(fd, &c, 1, MSG_NOSIGNAL) == 1;
}

char receive_byte(int fd) {
  char c = 0;
  ssize_t n;
  do n = ::recv(fd, &c, 1, 0);
  while (n < 0 && errno == EINTR);
  return n == 1 ? c : 0;
}

struct Child {
  pid_t pid = -1;
  util::UniqueFd link;
  std::string peer;
  bool started = false;
};

// The receiving process: never returns.
[[noreturn]] void receive_and_run(util::UniqueFd connection, const std::string& peer, int link,
                                  const Key& key, const ServeOptions& o) {
  int status = 1;
  try {
    auto channel = Channel::accept(std::move(connection), peer, key, ChannelOptions{});
    auto may_run = [link] { return send_byte(link, kAskToRun) && receive_byte(link) == kYes; };
    Received received = receive_program(*channel, o.target, may_run);
    channel->close();
    channel.reset();
    send_byte(link, kStarted);
    if (o.verbose)
      log(fmt::format("{}: the program runs here ({} mode, {} rounds)", peer, received.mode,
                      received.rounds));
    status = o.run(*received.program, received.mode);
  } catch (const std::exception& e) {
    log(e.what());
  }
  std::fflush(nullptr);
  ::_exit(status);
}

class Server {
public:
  explicit Server(const ServeOptions& o)
      : o_(o), key_(Key::load(o.key_file)), listener_(o.listen, "--listen") {
    if (o_.verbose) log(fmt::format("listening on {} (key id {})", listener_.address(), key_.id()));
  }

  int run() {
    for (;;) {
      std::vector<pollfd> fds;
      const bool accepting = !(o_.once && chosen_);
      if (accepting) fds.push_back({listener_.fd(), POLLIN, 0});
      for (const Child& c : children_) fds.push_back({c.link.get(), POLLIN, 0});
      if (::poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        throw Error(fmt::format("poll: {}", std::strerror(errno)));
      }
      size_t i = 0;
      if (accepting && fds[i++].revents) start_child();
      // Links of children started by start_child() above are not in fds.
      for (size_t k = 0; i < fds.size(); ++i, ++k)
        if (fds[i].revents) children_[k].pid = handle(children_[k]);
      std::erase_if(children_, [](const Child& c) { return c.pid < 0; });
      if (finished_) return end_once();
    }
  }

private:
  void start_child() {
    std::string peer;
    util::UniqueFd connection = listener_.accept(peer);
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
      throw Error(fmt::format("socketpair: {}", std::strerror(errno)));
    util::UniqueFd ours(pair[0]), theirs(pair[1]);
    const pid_t parent = ::getpid();
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
      log(fmt::format("{}: cannot fork: {}", peer, std::strerror(errno)));
      return;
    }
    if (pid == 0) {
      // Dies with serve: no program outlives the server that received it.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      ours.reset();
      ::close(listener_.fd()); // never destroyed here: receive_and_run exits
      for (Child& c : children_) c.link.reset();
      receive_and_run(std::move(connection), peer, theirs.get(), key_, o_);
    }
    if (o_.verbose) log(fmt::format("{}: connected (process {})", peer, pid));
    children_.push_back({pid, std::move(ours), peer, false});
  }

  // A message from a child, or its end; returns its pid, or -1 once it has
  // been reaped.
  pid_t handle(Child& c) {
    const char message = receive_byte(c.link.get());
    if (message == kAskToRun) {
      const bool yes = !(o_.once && chosen_);
      if (yes && o_.once) chosen_ = c.pid;
      send_byte(c.link.get(), yes ? kYes : kNo);
      return c.pid;
    }
    if (message == kStarted) {
      c.started = true;
      return c.pid;
    }
    // The link closed: the child has ended (or is about to).
    int status = 0;
    while (::waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
    }
    const int code = exit_status_of(status);
    if (c.started && o_.verbose)
      log(fmt::format("{}: the program ended with status {}", c.peer, code));
    if (chosen_ && *chosen_ == c.pid) {
      if (c.started) {
        finished_ = code;
      } else {
        chosen_.reset(); // no commit, or it could not confirm: wait for the next one
      }
    }
    return -1;
  }

  // --once: the program has ended; what else is connected is dropped
  // (those sources keep their programs).
  int end_once() {
    for (Child& c : children_) {
      ::kill(c.pid, SIGKILL);
      int status;
      while (::waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
    return *finished_;
  }

  const ServeOptions& o_;
  Key key_;
  Listener listener_;
  std::vector<Child> children_;
  // --once: the receiving process that may run its program (it asked
  // first); no other connection is accepted while it lives.
  std::optional<pid_t> chosen_;
  std::optional<int> finished_;
};

} // namespace

int serve(const ServeOptions& options) {
  ServeOptions o = options;
  if (const char* fault = std::getenv(kFaultVariable)) {
    const std::string phase = fault;
    o.target.at_phase = [phase](const char* at) {
      if (phase == at) ::raise(SIGSTOP);
    };
  }
  if (o.verbose) o.target.log = log;
  return Server(o).run();
}

} // namespace tern::migrate
