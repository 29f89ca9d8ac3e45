#include "program/signals.h"

#include "tern/error.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fmt/format.h>
#include <pthread.h>
#include <sched.h>

namespace tern::program {
namespace {

// Handlers may only touch atomics and the interrupt, whose request() is
// async-signal-safe. g_in_handlers counts handlers between reading
// g_interrupt and being done with it, so disarming can wait for them before
// the program (and its interrupt) goes away.
std::atomic<uint32_t> g_signals{0};
std::atomic<runtime::Interrupt*> g_interrupt{nullptr};
std::atomic<int> g_in_handlers{0};

void record(uint32_t bit) {
  g_in_handlers.fetch_add(1);
  g_signals.fetch_or(bit);
  if (runtime::Interrupt* interrupt = g_interrupt.load()) interrupt->request();
  g_in_handlers.fetch_sub(1);
}

extern "C" void on_checkpoint_signal(int) {
  const int saved = errno; // the interrupted code may be about to read errno
  record(kSignalCheckpoint);
  errno = saved;
}

extern "C" void on_terminate_signal(int) {
  const int saved = errno;
  record(kSignalTerminate);
  errno = saved;
}

// The signals hold_signals() blocked (not those blocked already).
sigset_t g_held;
bool g_holding = false;

void install(int sig, void (*handler)(int)) {
  struct sigaction sa = {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (::sigaction(sig, &sa, nullptr) != 0)
    throw Error(
        fmt::format("cannot handle signal {} ({}): {}", sig, strsignal(sig), std::strerror(errno)));
}

} // namespace

void hold_signals() {
  sigset_t all, before;
  sigfillset(&all);
  for (int fault : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP}) sigdelset(&all, fault);
  pthread_sigmask(SIG_BLOCK, &all, &before);
  sigemptyset(&g_held);
  for (int sig = 1; sig < NSIG; ++sig)
    if (sigismember(&all, sig) == 1 && sigismember(&before, sig) == 0) sigaddset(&g_held, sig);
  g_holding = true;
}

void release_signals() {
  if (!g_holding) return;
  g_holding = false;
  pthread_sigmask(SIG_UNBLOCK, &g_held, nullptr);
}

uint32_t take_signals() {
  return g_signals.exchange(0);
}

uint32_t pending_signals() {
  return g_signals.load();
}

void install_signal_triggers(const std::vector<int>& checkpoint_signals,
                             bool checkpoint_on_sigterm) {
  for (int sig : checkpoint_signals) install(sig, on_checkpoint_signal);
  if (checkpoint_on_sigterm) install(SIGTERM, on_terminate_signal);
  ::signal(SIGPIPE, SIG_IGN);
  release_signals();
}

void arm_signal_triggers(runtime::Interrupt& interrupt) {
  g_interrupt.store(&interrupt);
  if (g_signals.load() != 0) interrupt.request();
}

void disarm_signal_triggers() {
  g_interrupt.store(nullptr);
  while (g_in_handlers.load() != 0) sched_yield();
}

} // namespace tern::program
