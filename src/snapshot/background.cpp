#include "snapshot/background.h"

#include "tern/error.h"
#include "tern/internal_error.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace tern::snapshot {
namespace {

constexpr size_t kMaxMessage = 4000; // below PIPE_BUF: the child's write never blocks

// The child runs none of the parent's signal handlers (they would act on the
// parent's state, e.g. request another checkpoint through a shared eventfd),
// lets an interrupt from the terminal finish the write, and turns a closed
// socket into an error instead of a silent death.
void reset_signals_in_child() {
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction sa;
    if (::sigaction(sig, nullptr, &sa) != 0) continue;
    if (!(sa.sa_flags & SA_SIGINFO) && (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN))
      continue;
    ::signal(sig, SIG_DFL);
  }
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);
}

// The pipe carries one message: kSucceeded and the write's result, or
// kFailed and the error.
constexpr char kSucceeded = 'k', kFailed = 'e';

[[noreturn]] void run_child(const std::function<std::string()>& write, int pipe_fd, pid_t parent) {
  // Die with the parent: a writer outliving a killed tern would replace the
  // previous snapshot behind its back.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(1);
  reset_signals_in_child();
  std::string message(1, kFailed);
  int status = 1;
  try {
    message = kSucceeded + write();
    status = 0;
  } catch (const std::exception& e) {
    message += e.what();
  } catch (...) {
    message += "unknown error";
  }
  if (message.size() > kMaxMessage) message.resize(kMaxMessage);
  [[maybe_unused]] ssize_t n = ::write(pipe_fd, message.data(), message.size());
  ::_exit(status);
}

std::string read_all(int fd) {
  std::string out;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

} // namespace

BackgroundWrite::BackgroundWrite(BackgroundWrite&& o) noexcept
    : pid_(o.pid_), error_pipe_(o.error_pipe_), done_(o.done_), error_(std::move(o.error_)),
      result_(std::move(o.result_)) {
  o.pid_ = -1;
  o.error_pipe_ = -1;
  o.done_ = true;
}

BackgroundWrite::~BackgroundWrite() {
  try {
    if (!done_) wait();
  } catch (const Error&) {
    // The outcome was not asked for.
  }
  if (error_pipe_ >= 0) ::close(error_pipe_);
}

BackgroundWrite BackgroundWrite::start(const std::function<std::string()>& write) {
  BackgroundWrite bw;
  int fds[2];
  const pid_t parent = ::getpid();
  if (::pipe2(fds, O_CLOEXEC) == 0) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(fds[0]);
      run_child(write, fds[1], parent);
    }
    ::close(fds[1]);
    if (pid > 0) {
      bw.pid_ = pid;
      bw.error_pipe_ = fds[0];
      return bw;
    }
    ::close(fds[0]);
  }
  // No fork: write here and now.
  bw.done_ = true;
  try {
    bw.result_ = write();
  } catch (const std::exception& e) {
    bw.error_ = e.what();
  }
  return bw;
}

bool BackgroundWrite::finished() {
  if (done_) return true;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == 0) return false;
  collect(r == pid_ ? status : -1);
  return true;
}

void BackgroundWrite::wait() {
  if (!done_) {
    int status = 0;
    pid_t r;
    do r = ::waitpid(pid_, &status, 0);
    while (r < 0 && errno == EINTR);
    collect(r == pid_ ? status : -1);
  }
  if (error_) throw Error(*error_);
}

void BackgroundWrite::collect(int status) {
  done_ = true;
  std::string message = read_all(error_pipe_);
  const char kind = message.empty() ? kFailed : message[0];
  if (!message.empty()) message.erase(0, 1);
  if (status == 0 && kind == kSucceeded) {
    result_ = std::move(message);
    return;
  }
  if (status == -1)
    error_ = "snapshot writer process was lost";
  else if (WIFSIGNALED(status))
    error_ = fmt::format("snapshot writer process was killed by signal {}", WTERMSIG(status));
  else if (!message.empty())
    error_ = message;
  else if (WEXITSTATUS(status) != 0)
    error_ = fmt::format("snapshot writer exited with status {}", WEXITSTATUS(status));
  else
    error_ = "snapshot writer ended without reporting its outcome";
}

BackgroundWrite start_background_write(const std::string& path, const Snapshot& snapshot,
                                       const WriteOptions& options,
                                       const std::function<void()>& then) {
  return BackgroundWrite::start([&] {
    const WrittenSnapshot written = write_snapshot_file(path, snapshot, options);
    if (then) then();
    std::string result(8 + written.sha256.size(), '\0');
    std::memcpy(result.data(), &written.bytes, 8);
    std::memcpy(result.data() + 8, written.sha256.data(), written.sha256.size());
    return result;
  });
}

WrittenSnapshot written_snapshot(const BackgroundWrite& write) {
  WrittenSnapshot written;
  const std::string& r = write.result();
  if (r.size() != 8 + written.sha256.size())
    throw InternalError("the snapshot writer reported no size and hash");
  std::memcpy(&written.bytes, r.data(), 8);
  std::memcpy(written.sha256.data(), r.data() + 8, written.sha256.size());
  return written;
}

} // namespace tern::snapshot
