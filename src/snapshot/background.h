// Writing a snapshot while the program runs on. start_background_write()
// forks: the child sees a copy-on-write image of the process as it was at
// the fork, encodes and writes the snapshot from it, and exits; the parent
// may resume the program as soon as fork() returns, so the pause is the fork
// (page tables, not memory, are copied). This is how Redis writes its RDB
// files.
//
// The child dies with the thread that forked it (PR_SET_PDEATHSIG): a
// writer must not outlive a killed tern and replace the previous snapshot
// behind its back. So start a background write from a thread that lives
// until the write is done (e.g. the main thread).
//
// Where fork() fails (no memory for the page tables, a strict overcommit
// policy) the write runs synchronously in the caller instead; forked()
// tells which happened. Either way wait() reports the outcome.
#pragma once

#include "snapshot/format.h"

#include <functional>
#include <optional>
#include <string>
#include <sys/types.h>

namespace tern::snapshot {

class BackgroundWrite {
public:
  BackgroundWrite(BackgroundWrite&& other) noexcept;
  BackgroundWrite& operator=(BackgroundWrite&&) = delete;
  BackgroundWrite(const BackgroundWrite&) = delete;
  // Waits for the child (no zombies), ignoring its outcome: call wait() to see it.
  ~BackgroundWrite();

  // Runs `write` in a forked child (or here, if fork fails). What it
  // returns (at most 4000 bytes) is result() once it has succeeded.
  static BackgroundWrite start(const std::function<std::string()>& write);

  bool forked() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // Whether the write has finished (never blocks).
  bool finished();
  // Blocks until the write has finished; throws tern::Error with the
  // writer's message if it failed. Later calls repeat the outcome.
  void wait();
  // What the write returned (after a successful wait()).
  const std::string& result() const { return result_; }

private:
  BackgroundWrite() = default;
  void collect(int status);

  pid_t pid_ = -1;
  int error_pipe_ = -1;
  bool done_ = false;
  std::optional<std::string> error_;
  std::string result_;
};

// write_snapshot_file(path, snapshot, options) in the background, then
// `then` (in the same process, if the write succeeded). The snapshot may
// refer to the live instance's memory: the child has its own copy as of now.
BackgroundWrite start_background_write(const std::string& path, const Snapshot& snapshot,
                                       const WriteOptions& options = {},
                                       const std::function<void()>& then = {});
// What start_background_write wrote (after a successful wait()).
WrittenSnapshot written_snapshot(const BackgroundWrite& write);

} // namespace tern::snapshot
