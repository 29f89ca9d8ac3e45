#include "cli/wast_convert.h"

#include "tern/error.h"
#include "util/file.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace tern::cli {
namespace {

constexpr const char* kConverter = "wast2json";
constexpr size_t kMaxDiagnostics = 500; // characters of wast2json's message kept

// Owns a posix_spawn_file_actions_t.
class SpawnActions {
public:
  SpawnActions() { posix_spawn_file_actions_init(&actions_); }
  ~SpawnActions() { posix_spawn_file_actions_destroy(&actions_); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
  posix_spawn_file_actions_t* get() { return &actions_; }

private:
  posix_spawn_file_actions_t actions_;
};

// Runs `argv` with stdout and stderr going to `log_path`; returns the wait
// status. Throws when the program cannot be started.
int run_logged(const std::vector<std::string>& argv, const std::string& log_path) {
  SpawnActions actions;
  posix_spawn_file_actions_addopen(actions.get(), STDOUT_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(actions.get(), STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int err = posix_spawnp(&pid, args[0], actions.get(), nullptr, args.data(), environ);
  if (err == ENOENT)
    throw Error(fmt::format("{} not found in PATH: install Debian's wabt package "
                            "(scripts/install-deps.sh), or pass converted scripts with --json",
                            argv[0]));
  if (err != 0) throw Error(fmt::format("cannot run {}: {}", argv[0], std::strerror(err)));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      throw Error(fmt::format("waiting for {}: {}", argv[0], std::strerror(errno)));
  }
  return status;
}

// The first of wast2json's diagnostics, as one printable line: it prints
// each error with the source line and a caret under it, and tern reports
// bad input on one line.
std::string read_diagnostics(const std::string& log_path) {
  std::string text;
  try {
    auto bytes = util::read_file(log_path);
    text.assign(bytes.begin(), bytes.end());
  } catch (const Error&) {
    return {};
  }
  std::string first, line;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    line = text.substr(start, end - start);
    start = end + 1;
    if (first.empty() && line.find_first_not_of(" \t\r") != std::string::npos) first = line;
    if (line.find("error:") != std::string::npos) {
      first = line;
      break;
    }
  }
  if (first.size() > kMaxDiagnostics) first = first.substr(0, kMaxDiagnostics) + "...";
  for (char& c : first)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  while (!first.empty() && first.back() == ' ') first.pop_back();
  return first;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exit status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("killed by signal {}", WTERMSIG(status));
  return fmt::format("wait status {}", status);
}

} // namespace

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = fmt::format("{}/tern-wast-XXXXXX", base && *base ? base : "/tmp");
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data()))
    throw Error(
        fmt::format("cannot create a temporary directory {}: {}", pattern, std::strerror(errno)));
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ignored; // nothing sensible to do about a failed cleanup
  std::filesystem::remove_all(path_, ignored);
}

std::string convert_wast(const std::string& wast_path, const std::string& out_dir) {
  if (::access(wast_path.c_str(), R_OK) != 0)
    throw Error(fmt::format("cannot read {}: {}", wast_path, std::strerror(errno)));
  std::string stem = std::filesystem::path(wast_path).stem().string();
  std::string json_path = fmt::format("{}/{}.json", out_dir, stem);
  std::string log_path = fmt::format("{}/{}.log", out_dir, stem);
  int status = run_logged({kConverter, "--enable-threads", wast_path, "-o", json_path}, log_path);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return json_path;
  std::string diagnostics = read_diagnostics(log_path);
  throw Error(fmt::format("{}: {} failed ({}){}{}", wast_path, kConverter, describe_status(status),
                          diagnostics.empty() ? "" : ": ", diagnostics));
}

} // namespace tern::cli
