#include "program/supervisor.h"

#include "snapshot/background.h"
#include "tern/error.h"
#include "util/unique_fd.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <fmt/format.h>
#include <future>
#include <mutex>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace tern::program {
namespace {

using Clock = std::chrono::steady_clock;

// --- Requests ----------------------------------------------------------------

enum class Reason { Signal, Terminate, Timer, Control, Guest, Count };

const char* reason_name(Reason r) {
  switch (r) {
  case Reason::Signal:
    return "signal";
  case Reason::Terminate:
    return "SIGTERM";
  case Reason::Timer:
    return "timer";
  case Reason::Control:
    return "control socket";
  case Reason::Guest:
    return "tern.checkpoint()";
  case Reason::Count:
    return "--checkpoint-at";
  }
  return "?";
}

struct Request {
  Reason reason = Reason::Signal;
  std::string path; // "" = the policy's
  bool stop = false;
  std::shared_ptr<std::promise<std::string>> reply; // control requests: "ok PATH" / "error ..."
};

// Signal handlers can only touch atomics and the interrupt (whose request()
// is async-signal-safe), so signals are bits folded into requests later.
std::atomic<runtime::Interrupt*> g_interrupt{nullptr};
std::atomic<uint32_t> g_signals{0};
constexpr uint32_t kSignalCheckpoint = 1, kSignalTerminate = 2;

extern "C" void on_checkpoint_signal(int) {
  g_signals.fetch_or(kSignalCheckpoint);
  if (auto* i = g_interrupt.load()) i->request();
}
extern "C" void on_terminate_signal(int) {
  g_signals.fetch_or(kSignalTerminate);
  if (auto* i = g_interrupt.load()) i->request();
}

class SignalTriggers {
public:
  SignalTriggers(runtime::Interrupt& interrupt, const CheckpointPolicy& policy) {
    g_interrupt.store(&interrupt);
    g_signals.store(0);
    for (int sig : policy.continue_signals) install(sig, on_checkpoint_signal);
    if (policy.checkpoint_on_sigterm) install(SIGTERM, on_terminate_signal);
  }
  ~SignalTriggers() {
    for (auto& [sig, old] : saved_) sigaction(sig, &old, nullptr);
    g_interrupt.store(nullptr);
  }
  SignalTriggers(const SignalTriggers&) = delete;
  SignalTriggers& operator=(const SignalTriggers&) = delete;

private:
  void install(int sig, void (*handler)(int)) {
    struct sigaction sa = {};
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    struct sigaction old = {};
    if (sigaction(sig, &sa, &old) != 0)
      throw Error(fmt::format("cannot handle signal {}: {}", sig, std::strerror(errno)));
    saved_.emplace_back(sig, old);
  }
  std::vector<std::pair<int, struct sigaction>> saved_;
};

class RequestQueue {
public:
  explicit RequestQueue(runtime::Interrupt& interrupt) : interrupt_(interrupt) {}
  void push(Request r) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(r));
    }
    interrupt_.request();
  }
  std::vector<Request> take() {
    std::lock_guard lock(mutex_);
    std::vector<Request> out(std::make_move_iterator(queue_.begin()),
                             std::make_move_iterator(queue_.end()));
    queue_.clear();
    return out;
  }

private:
  runtime::Interrupt& interrupt_;
  std::mutex mutex_;
  std::deque<Request> queue_;
};

// What the control socket's `status` reports, updated by the main loop.
struct Status {
  std::atomic<uint64_t> checkpoints{0};
  std::mutex mutex;
  std::string last_path;
  std::string last_error;
};

// --- Periodic checkpoints ----------------------------------------------------

class Timer {
public:
  Timer(std::chrono::milliseconds period, RequestQueue& queue)
      : thread_([this, period, &queue] { loop(period, queue); }) {}
  ~Timer() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

private:
  void loop(std::chrono::milliseconds period, RequestQueue& queue) {
    std::unique_lock lock(mutex_);
    while (!cv_.wait_for(lock, period, [this] { return done_; }))
      queue.push(Request{Reason::Timer, "", false, nullptr});
  }
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// --- The control socket --------------------------------------------------------

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path))
    throw Error(fmt::format("control socket path too long: {}", path));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// Reads one line (without its newline); false on EOF or error.
bool read_line(int fd, std::string& line) {
  line.clear();
  char c;
  while (line.size() < 4096) {
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return !line.empty();
    if (c == '\n') return true;
    line.push_back(c);
  }
  return true;
}

// On a socket; a peer that went away is not a SIGPIPE.
void write_all(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

class ControlServer {
public:
  ControlServer(const std::string& path, RequestQueue& queue, Status& status, Program& program)
      : path_(path), queue_(queue), status_(status), program_(program) {
    listen_fd_ = util::UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!listen_fd_) throw Error(fmt::format("control socket: {}", std::strerror(errno)));
    sockaddr_un addr = unix_address(path);
    remove_stale_socket();
    if (::bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_.get(), 4) != 0)
      throw Error(fmt::format("control socket {}: {}", path, std::strerror(errno)));
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw Error("pipe: " + std::string(std::strerror(errno)));
    wake_read_ = util::UniqueFd(fds[0]);
    wake_write_ = util::UniqueFd(fds[1]);
    thread_ = std::thread([this] { serve(); });
  }
  ~ControlServer() {
    char b = 0;
    [[maybe_unused]] ssize_t n = ::write(wake_write_.get(), &b, 1);
    thread_.join();
    ::unlink(path_.c_str());
  }
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

private:
  // A socket file left by a tern that died is replaced; a live one is not.
  void remove_stale_socket() {
    struct stat st;
    if (::lstat(path_.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return;
    util::UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr = unix_address(path_);
    if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
      throw Error(fmt::format("control socket {} is in use by another process", path_));
    ::unlink(path_.c_str());
  }

  void serve() {
    for (;;) {
      pollfd fds[2] = {{listen_fd_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents) return;
      util::UniqueFd client(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (client) handle(client.get());
    }
  }

  void handle(int fd) {
    std::string line;
    if (!read_line(fd, line)) return;
    std::vector<std::string> words;
    for (size_t i = 0; i < line.size();) {
      size_t j = line.find(' ', i);
      if (j == std::string::npos) j = line.size();
      if (j > i) words.push_back(line.substr(i, j - i));
      i = j + 1;
    }
    if (words.empty()) return write_all(fd, "error empty command\n");
    if (words[0] == "status") return write_all(fd, status_line());
    if (words[0] != "checkpoint")
      return write_all(fd,
                       fmt::format("error unknown command '{}' (checkpoint, status)\n", words[0]));
    Request r{Reason::Control, "", false, std::make_shared<std::promise<std::string>>()};
    for (size_t i = 1; i < words.size(); ++i) {
      if (words[i] == "--stop")
        r.stop = true;
      else
        r.path = words[i];
    }
    auto reply = r.reply->get_future();
    queue_.push(std::move(r));
    write_all(fd, reply.get() + "\n");
  }

  std::string status_line() {
    std::lock_guard lock(status_.mutex);
    std::string line = fmt::format("running engine={} checkpoints={}", program_.engine_name(),
                                   status_.checkpoints.load());
    if (!status_.last_path.empty()) line += " last=" + status_.last_path;
    if (!status_.last_error.empty()) line += " last_error=" + status_.last_error;
    return line + "\n";
  }

  std::string path_;
  RequestQueue& queue_;
  Status& status_;
  Program& program_;
  util::UniqueFd listen_fd_, wake_read_, wake_write_;
  std::thread thread_;
};

// --- Writing -------------------------------------------------------------------

// Writes snapshots. A background write is watched by its own thread, which
// answers the control requests waiting for it as soon as the child is done
// (the program goes on meanwhile). At most one runs at a time: a new
// checkpoint waits for the previous one, so snapshots land in order.
class Writer {
public:
  explicit Writer(Status& status) : status_(status) {}
  ~Writer() { wait(); }

  // Writes and reports; returns the error message ("" on success).
  std::string write_now(const std::string& path, const snapshot::Snapshot& s,
                        const snapshot::WriteOptions& options) {
    wait();
    std::string error;
    try {
      snapshot::write_snapshot_file(path, s, options);
    } catch (const std::exception& e) {
      error = e.what();
    }
    report(path, error);
    return error;
  }

  void write_in_background(const std::string& path, const snapshot::Snapshot& s,
                           const snapshot::WriteOptions& options,
                           std::vector<std::shared_ptr<std::promise<std::string>>> replies) {
    wait();
    auto write = std::make_shared<snapshot::BackgroundWrite>(
        snapshot::start_background_write(path, s, options));
    watcher_ = std::thread([this, write, path, replies = std::move(replies)] {
      std::string error;
      try {
        write->wait();
      } catch (const std::exception& e) {
        error = e.what();
      }
      report(path, error);
      for (auto& r : replies) r->set_value(error.empty() ? "ok " + path : "error " + error);
    });
  }

  // Waits for the background write, if one is running.
  void wait() {
    if (watcher_.joinable()) watcher_.join();
  }

private:
  void report(const std::string& path, const std::string& error) {
    std::lock_guard lock(status_.mutex);
    if (error.empty()) {
      status_.last_path = path;
      status_.last_error.clear();
      status_.checkpoints.fetch_add(1);
    } else {
      status_.last_error = error;
      fmt::print(stderr, "tern: error: checkpoint to {} failed: {}\n", path, error);
    }
  }

  Status& status_;
  std::thread watcher_;
};

// Folds signal bits, queued requests and a reached --checkpoint-at into the
// list of checkpoints to take at this stop.
std::vector<Request> collect_requests(Program& program, const CheckpointPolicy& policy,
                                      RequestQueue& queue, bool& guest_asked, bool& count_taken) {
  std::vector<Request> requests = queue.take();
  uint32_t bits = g_signals.exchange(0);
  if (bits & kSignalCheckpoint) requests.push_back({Reason::Signal, "", false, nullptr});
  if (bits & kSignalTerminate) requests.push_back({Reason::Terminate, "", true, nullptr});
  if (guest_asked) {
    requests.push_back({Reason::Guest, "", false, nullptr});
    guest_asked = false;
  }
  if (policy.at && !count_taken && program.stable_points() == *policy.at) {
    requests.push_back({Reason::Count, "", false, nullptr});
    count_taken = true;
  }
  return requests;
}

} // namespace

SupervisedOutcome supervise(Program& program, const CheckpointPolicy& policy) {
  SupervisedOutcome result;
  RequestQueue queue(program.interrupt());
  Status status;
  Writer writer(status);
  SignalTriggers signals(program.interrupt(), policy);
  std::optional<Timer> timer;
  if (policy.every) timer.emplace(*policy.every, queue);
  std::optional<ControlServer> control;
  if (!policy.control_socket.empty())
    control.emplace(policy.control_socket, queue, status, program);
  if (policy.at) program.stop_at_stable_point(*policy.at);
  bool guest_asked = false;
  bool count_taken = false;
  program.on_guest_checkpoint([&] {
    if (policy.path.empty()) return false;
    guest_asked = true;
    return true;
  });

  for (;;) {
    result.exec = program.run();
    if (result.exec.kind != runtime::ExecOutcome::Kind::Suspended) break;
    const auto paused = Clock::now();
    std::vector<Request> requests =
        collect_requests(program, policy, queue, guest_asked, count_taken);
    program.interrupt().clear();
    if (requests.empty()) continue;

    snapshot::Snapshot snap = program.capture(policy.capture, policy.save);
    bool stop = false;
    bool guest_written = false;
    // One capture serves every request of this stop; each destination once.
    std::vector<std::pair<std::string, std::vector<Request*>>> destinations;
    for (Request& r : requests) {
      std::string path = r.path.empty() ? policy.path : r.path;
      if (path.empty()) {
        if (r.reply) r.reply->set_value("error no checkpoint path (tern run --checkpoint-to)");
        continue;
      }
      auto it = std::find_if(destinations.begin(), destinations.end(),
                             [&](const auto& d) { return d.first == path; });
      if (it == destinations.end()) it = destinations.insert(destinations.end(), {path, {}});
      it->second.push_back(&r);
      stop = stop || r.stop || policy.stop_after_checkpoint;
    }
    for (auto& [path, reqs] : destinations) {
      std::vector<std::shared_ptr<std::promise<std::string>>> replies;
      bool from_guest = false;
      for (Request* r : reqs) {
        if (r->reply) replies.push_back(r->reply);
        from_guest = from_guest || r->reason == Reason::Guest;
        if (policy.verbose)
          fmt::print(stderr, "tern: checkpoint ({}) at stable point {} to {}\n",
                     reason_name(r->reason), program.stable_points(), path);
      }
      if (stop) { // synchronous: the program ends only once the snapshot is safe
        std::string error = writer.write_now(path, snap, policy.write);
        for (auto& reply : replies)
          reply->set_value(error.empty() ? "ok " + path : "error " + error);
        if (!error.empty())
          stop = false; // never lose the program
        else
          result.last_checkpoint = path;
        guest_written = guest_written || (from_guest && error.empty());
      } else {
        program.detach_shared_memory(snap);
        writer.write_in_background(path, snap, policy.write, std::move(replies));
        result.last_checkpoint = path;
        guest_written = guest_written || from_guest;
      }
    }
    program.finish_guest_checkpoint(guest_written);
    if (stop) {
      result.stopped = true;
      return result;
    }
    if (policy.verbose)
      fmt::print(stderr, "tern: paused {:.3f} ms\n",
                 std::chrono::duration<double, std::milli>(Clock::now() - paused).count());
  }
  writer.wait();
  return result;
}

std::string control_request(const std::string& socket_path, const std::string& command) {
  util::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw Error(fmt::format("socket: {}", std::strerror(errno)));
  sockaddr_un addr = unix_address(socket_path);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw Error(
        fmt::format("cannot reach the control socket {}: {}", socket_path, std::strerror(errno)));
  write_all(fd.get(), command + "\n");
  std::string reply;
  if (!read_line(fd.get(), reply))
    throw Error(fmt::format("{}: the program ended without replying", socket_path));
  return reply;
}

} // namespace tern::program
