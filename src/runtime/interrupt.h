// A checkpoint request, visible two ways: a flag that engines poll at stable
// points (one load and branch), and a file descriptor that blocking host
// calls add to their poll sets so that they wake up and suspend. request()
// is async-signal-safe, so a signal handler may call it.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>

namespace tern::runtime {

class Interrupt {
public:
  Interrupt();
  ~Interrupt();
  Interrupt(const Interrupt&) = delete;
  Interrupt& operator=(const Interrupt&) = delete;

  // Flag bits.
  static constexpr uint32_t kRequested = 1; // stop at the next stable point
  static constexpr uint32_t kCounting = 2;  // count stable points (Thread::stop_at)
  // Faster code is ready (runtime/tiering.h): the interpreter stops at its
  // next stable point to hand the thread over. Not a checkpoint request:
  // blocking host calls do not wake for it, and compiled code (which has
  // nothing to hand over) never sees it.
  static constexpr uint32_t kTierUp = 4;

  void request();
  void clear(); // drops a request, keeps counting mode
  bool requested() const { return (flag_.load(std::memory_order_relaxed) & kRequested) != 0; }
  bool counting() const { return (flag_.load(std::memory_order_relaxed) & kCounting) != 0; }
  // Async-signal-safe too; no eventfd write.
  void request_tier_up() { flag_.fetch_or(kTierUp, std::memory_order_relaxed); }
  void clear_tier_up() { flag_.fetch_and(~kTierUp, std::memory_order_relaxed); }
  // Counting mode makes every stable point take the slow path to count it.
  void set_counting(bool on);
  // Readable while a request is pending.
  int fd() const { return event_fd_; }
  // The word engines poll; non-zero means "take the slow path".
  const std::atomic<uint32_t>* flag() const { return &flag_; }
  // A word that from now on follows the flag's bits (request, clear,
  // counting; not kTierUp), shifted left by `shift`, so that compiled code can poll a
  // word inside its own thread record; other bits in it are the owner's.
  // Mirrors must outlive this Interrupt. Throws tern::Error beyond
  // kMaxMirrors.
  void add_mirror(std::atomic<uint64_t>* word, unsigned shift);
  static constexpr size_t kMaxMirrors = 1024;

private:
  void set_bits(uint32_t bits);
  void clear_bits(uint32_t bits);

  std::atomic<uint32_t> flag_{0};
  int event_fd_ = -1;
  struct Mirror {
    std::atomic<std::atomic<uint64_t>*> word{nullptr};
    std::atomic<unsigned> shift{0};
  };
  std::array<Mirror, kMaxMirrors> mirrors_{};
  std::atomic<size_t> mirror_count_{0};
  std::mutex mirror_mutex_;
};

} // namespace tern::runtime
