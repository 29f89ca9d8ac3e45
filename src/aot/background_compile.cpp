#include "aot/background_compile.h"

#include "aot/artifact.h"
#include "tern/error.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace tern::aot {
namespace {

// The child's answer: one byte, then the artifact or an error message.
constexpr char kArtifact = 'A';
constexpr char kFailure = 'E';

bool write_all(int fd, const void* data, size_t size) {
  auto* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= size_t(n);
  }
  return true;
}

// The child: a compiler and nothing else of tern. It holds no descriptor
// of the program (sockets, files, the control socket stay the parent's),
// takes signals by default (an interrupt at the terminal ends it too) and
// dies with its parent (the watcher thread that forked it lives as long as
// tern needs the code).
[[noreturn]] void compile_in_child(int to_parent, pid_t parent, const wasm::Module& module,
                                   const util::Sha256Digest& hash, const CompileOptions& options,
                                   const std::string& cache_dir, bool lowest_priority) {
  for (int sig = 1; sig < NSIG; ++sig) std::signal(sig, SIG_DFL);
  std::signal(SIGPIPE, SIG_IGN); // a parent gone: the write fails, the cache entry is kept
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(0);
  // The lowest priority when the program runs meanwhile: compiling then
  // uses a core the program leaves idle and never takes CPU from it
  // (docs/performance.md: at normal priority on a busy machine it did, and
  // a cold auto run took twice the interpreter's time). A program that
  // waits for the code (--tier-up-at) gets it at normal priority.
  if (lowest_priority) ::setpriority(PRIO_PROCESS, 0, 19); // best effort
  int null = ::open("/dev/null", O_RDWR);
  for (int fd = 0; fd < 3; ++fd) ::dup2(null, fd);
  ::dup2(to_parent, 3);
  ::close_range(4, ~0U, 0);
  std::string message;
  try {
    auto artifact = jit_artifact(module, hash, options, cache_dir);
    if (artifact.ok()) {
      write_all(3, &kArtifact, 1);
      write_all(3, artifact.value.data(), artifact.value.size());
      ::_exit(0);
    }
    message = artifact.error;
  } catch (const std::exception& e) {
    message = e.what();
  }
  write_all(3, &kFailure, 1);
  write_all(3, message.data(), message.size());
  ::_exit(1);
}

} // namespace

BackgroundCompile::BackgroundCompile(std::shared_ptr<const wasm::Module> module,
                                     const CompileOptions& options, const std::string& cache_dir,
                                     std::chrono::milliseconds delay, std::function<void()> ready)
    : ready_callback_(std::move(ready)) {
  stop_ = util::UniqueFd(::eventfd(0, EFD_CLOEXEC));
  if (!stop_) throw Error(fmt::format("cannot start compiling: eventfd: {}", std::strerror(errno)));
  watcher_ = std::thread([this, module = std::move(module), options, cache_dir, delay] {
    watch(module, options, cache_dir, delay);
  });
}

// The module's hash and the cache lookup are the watcher's first work, not
// the program's: hashing a large module costs about a millisecond per MB
// (docs/performance.md, "Time to first instruction"), and cached code is
// taken at the first stable point after it is loaded, a few milliseconds
// into the program.
void BackgroundCompile::watch(std::shared_ptr<const wasm::Module> module, CompileOptions options,
                              std::string cache_dir, std::chrono::milliseconds delay) {
  const auto started = std::chrono::steady_clock::now();
  const util::Sha256Digest hash = module->sha256();
  try {
    if (auto cached = jit_cached(hash, options, cache_dir)) return finish(std::move(cached), {});
  } catch (const std::exception& e) { // nothing may leave this thread
    return finish(nullptr, e.what());
  }
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      delay - (std::chrono::steady_clock::now() - started));
  pollfd stop = {stop_.get(), POLLIN, 0};
  int n;
  while ((n = ::poll(&stop, 1, int(std::max<int64_t>(left.count(), 0)))) < 0 && errno == EINTR) {
  }
  if (n != 0) return; // the program ended first (or poll failed: nobody waits then)
  try {
    start_child(*module, hash, options, cache_dir, delay.count() > 0);
  } catch (const std::exception& e) {
    return finish(nullptr, e.what());
  }
  receive(hash);
}

void BackgroundCompile::start_child(const wasm::Module& module, const util::Sha256Digest& hash,
                                    const CompileOptions& options, const std::string& cache_dir,
                                    bool lowest_priority) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw Error(fmt::format("cannot start compiling: pipe: {}", std::strerror(errno)));
  util::UniqueFd read_end(fds[0]), write_end(fds[1]);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(fmt::format("cannot start compiling: fork: {}", std::strerror(errno)));
  if (pid == 0)
    compile_in_child(write_end.get(), parent, module, hash, options, cache_dir, lowest_priority);
  child_ = pid;
  from_child_ = std::move(read_end);
}

// The watcher thread: reads the child's answer to its end (or gives up
// when told to), reaps the child and loads the code.
void BackgroundCompile::receive(util::Sha256Digest hash) {
  std::vector<uint8_t> answer;
  uint8_t buffer[1 << 16];
  for (;;) {
    pollfd fds[2] = {{from_child_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return finish(nullptr, fmt::format("poll: {}", std::strerror(errno)));
    }
    if (fds[1].revents) return; // the program ended first
    ssize_t n = ::read(from_child_.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answer.insert(answer.end(), buffer, buffer + n);
  }
  int status = 0;
  while (::waitpid(child_, &status, 0) < 0 && errno == EINTR) {
  }
  child_ = -1;
  if (answer.empty())
    return finish(nullptr,
                  fmt::format("the compiler process ended without an answer ({})",
                              WIFSIGNALED(status) ? fmt::format("signal {}", WTERMSIG(status))
                                                  : fmt::format("status {}", WEXITSTATUS(status))));
  if (answer[0] != uint8_t(kArtifact))
    return finish(nullptr, std::string(answer.begin() + 1, answer.end()));
  try {
    finish(load_artifact(std::span<const uint8_t>(answer).subspan(1), hash, "the compiled module"),
           {});
  } catch (const std::exception& e) {
    finish(nullptr, e.what());
  }
}

void BackgroundCompile::finish(std::shared_ptr<const CodeImage> image, std::string error) {
  {
    std::lock_guard lock(mutex_);
    image_ = std::move(image);
    error_ = std::move(error);
    done_ = true;
  }
  done_cv_.notify_all();
  if (ready_callback_) ready_callback_();
}

BackgroundCompile::~BackgroundCompile() {
  if (watcher_.joinable()) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_.get(), &one, sizeof one);
    watcher_.join();
  }
  if (child_ > 0) {
    ::kill(child_, SIGKILL);
    while (::waitpid(child_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
}

bool BackgroundCompile::ready() const {
  std::lock_guard lock(mutex_);
  return done_;
}

std::string BackgroundCompile::wait() {
  std::unique_lock lock(mutex_);
  done_cv_.wait(lock, [this] { return done_; });
  return error_;
}

std::shared_ptr<const CodeImage> BackgroundCompile::code() {
  if (std::string error = wait(); !error.empty())
    throw Error("cannot compile the module: " + error);
  std::lock_guard lock(mutex_);
  return image_;
}

} // namespace tern::aot
