// Out-of-bounds accesses of compiled code fault in a memory's guard
// region; the handler turns such a fault into a wasm trap by jumping back
// to the engine's entry. It runs on an alternate stack, and touches
// nothing but the thread's record: building the trap's message happens
// after the jump, outside the handler.
//
// A write to memory that dirty-page tracking made read-only (mprotect
// mechanism, runtime/dirty_pages.h) faults too, inside the memory rather
// than in its guard pages: the tracker takes those first, and the write
// runs again. Only an address the tracker does not own can be a trap.
#include "aot/engine_state.h"
#include "runtime/dirty_pages.h"

#include <atomic>
#include <csignal>
#include <cstring>
#include <mutex>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

// glibc: the top of the main thread's stack.
extern "C" void* __libc_stack_end;

namespace tern::aot {
namespace {

struct Region {
  std::atomic<uintptr_t> begin{0};
  std::atomic<uintptr_t> end{0};
};
constexpr size_t kMaxRegions = 4096;
Region g_regions[kMaxRegions];
std::atomic<size_t> g_region_count{0};
std::mutex g_region_mutex;

struct sigaction g_previous_segv, g_previous_bus;

bool in_guard_region(uintptr_t addr) {
  size_t n = g_region_count.load(std::memory_order_acquire);
  for (size_t i = 0; i < n; ++i)
    if (addr >= g_regions[i].begin.load(std::memory_order_relaxed) &&
        addr < g_regions[i].end.load(std::memory_order_relaxed))
      return true;
  // Too many memories to list them all: a fault in compiled code is taken
  // for an out-of-bounds access.
  return n == kMaxRegions;
}

void on_fault(int sig, siginfo_t* info, void* context) {
  if (runtime::handle_write_protect_fault(info->si_addr)) return;
  ThreadState* ts = current_thread();
  if (ts && ts->in_wasm && ts->jump &&
      in_guard_region(reinterpret_cast<uintptr_t>(info->si_addr))) {
    ts->exit = Exit::Fault;
    siglongjmp(*ts->jump, 1);
  }
  // Not ours: let the previous handler, or the default action, have it.
  const struct sigaction& prev = sig == SIGSEGV ? g_previous_segv : g_previous_bus;
  if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction) {
    prev.sa_sigaction(sig, info, context);
    return;
  }
  if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN && prev.sa_handler) {
    prev.sa_handler(sig);
    return;
  }
  ::signal(sig, SIG_DFL); // the faulting instruction runs again and kills the process
}

// Stack room left for host functions, helpers and the trap path below the
// last wasm frame.
constexpr uintptr_t kStackReserve = 256 * 1024;
constexpr size_t kAltStackSize = 64 * 1024;

// The lowest address of the calling thread's stack. For the main thread
// glibc's pthread_getattr_np reads /proc/self/maps (a good part of a
// restore's start-up time); with a finite stack rlimit the kernel keeps
// the whole rlimit below the stack's top free for it (mmap_base lies
// below it), so the rlimit alone gives the bound.
uintptr_t stack_low_end() {
  rlimit rl{};
  const uintptr_t kSaneLimit = uintptr_t(1) << 32;
  if (::getpid() == ::gettid() && ::getrlimit(RLIMIT_STACK, &rl) == 0 &&
      rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < kSaneLimit) {
    const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
    const uintptr_t top = (reinterpret_cast<uintptr_t>(__libc_stack_end) + page - 1) / page * page;
    if (top > rl.rlim_cur) return top - rl.rlim_cur;
  }
  pthread_attr_t attr;
  void* addr = nullptr;
  size_t size = 0;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
  }
  return reinterpret_cast<uintptr_t>(addr);
}

} // namespace

ThreadState*& current_thread() {
  static thread_local ThreadState* current = nullptr;
  return current;
}

void install_fault_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    // SA_NODEFER: the handler leaves by siglongjmp without restoring the
    // signal mask, so the signal must not stay blocked.
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGSEGV, &sa, &g_previous_segv);
    ::sigaction(SIGBUS, &sa, &g_previous_bus);
  });
}

void prepare_os_thread(ThreadState& ts) {
  struct OsThread {
    uintptr_t stack_limit = 0;
    void* alt_stack = nullptr;
  };
  static thread_local OsThread os;
  if (!os.stack_limit) {
    const uintptr_t low = stack_low_end();
    const uintptr_t here = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
    const uintptr_t size = here > low ? here - low : 0;
    os.stack_limit = size > 2 * kStackReserve ? low + kStackReserve : low + size / 2;
    void* alt =
        ::mmap(nullptr, kAltStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (alt != MAP_FAILED) {
      stack_t ss{};
      ss.ss_sp = alt;
      ss.ss_size = kAltStackSize;
      ::sigaltstack(&ss, nullptr);
      os.alt_stack = alt; // kept for the thread's life
    }
  }
  // The limit under the flags, which other threads may be setting.
  ts.vm.stack_limit = os.stack_limit;
  uint64_t word = ts.vm.limit_and_flags.load();
  while (!ts.vm.limit_and_flags.compare_exchange_weak(word, (word & kFlagMask) | os.stack_limit)) {
  }
}

void register_guard_region(const uint8_t* begin, uint64_t size) {
  std::lock_guard lock(g_region_mutex);
  uintptr_t b = reinterpret_cast<uintptr_t>(begin), e = b + size;
  size_t n = g_region_count.load(std::memory_order_relaxed);
  for (size_t i = 0; i < n; ++i)
    if (g_regions[i].begin.load() == b) {
      g_regions[i].end.store(e);
      return;
    }
  if (n == kMaxRegions) return;
  g_regions[n].begin.store(b, std::memory_order_relaxed);
  g_regions[n].end.store(e, std::memory_order_relaxed);
  g_region_count.store(n + 1, std::memory_order_release);
}

} // namespace tern::aot
