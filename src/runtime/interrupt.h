// A checkpoint request, visible two ways: a flag that engines poll at stable
// points (one load and branch), and a file descriptor that blocking host
// calls add to their poll sets so that they wake up and suspend. request()
// is async-signal-safe, so a signal handler may call it.
#pragma once

#include <atomic>
#include <cstdint>

namespace tern::runtime {

class Interrupt {
public:
  Interrupt();
  ~Interrupt();
  Interrupt(const Interrupt&) = delete;
  Interrupt& operator=(const Interrupt&) = delete;

  void request();
  void clear();
  bool requested() const { return flag_.load(std::memory_order_relaxed) != 0; }
  // Readable while a request is pending.
  int fd() const { return event_fd_; }
  // The word engines poll; non-zero means "stop at the next stable point".
  const std::atomic<uint32_t>* flag() const { return &flag_; }

private:
  std::atomic<uint32_t> flag_{0};
  int event_fd_ = -1;
};

} // namespace tern::runtime
