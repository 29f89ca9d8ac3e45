// The threads of one program (wasi-threads): the main thread that runs
// `_start` and every thread the guest starts with `wasi.thread-spawn`.
//
// The ABI (github.com/WebAssembly/wasi-threads, as wasi-sdk's
// wasm32-wasi-threads target and wasi-libc's pthreads use it):
//  - the module imports its memory as `env.memory`, shared; the runtime
//    creates it (initial and maximum pages from the import);
//  - `(import "wasi" "thread-spawn" (func (param i32) (result i32)))` starts
//    a thread with the guest's start_arg and returns its TID, 1..2^29-1, or
//    a negative WASI errno (-EAGAIN: the thread limit is reached or the host
//    cannot start another thread);
//  - the new thread calls the export `wasi_thread_start(tid, start_arg)` in
//    a new instance of the same module, which shares the memory and the
//    WASI context (fds, args, clocks are the program's) and has its own
//    globals (the guest sets its __stack_pointer there);
//  - `proc_exit`, a trap in any thread or the return of `_start` ends the
//    whole program with that status: the other threads stop at their next
//    stable point (their interrupts are requested), blocked host calls and
//    memory.atomic.wait calls included, and end there.
//
// Each wasm thread runs on a host thread of its own, with its own Store
// (and engine, Engine::for_new_thread: the same code, nothing compiled
// again) and its own runtime::Thread, so each has its own Interrupt: its
// checkpoint flag, stable-point counter and host-call wake-up fd.
//
// For checkpointing every thread (issue 19 item 4) the registry is the one
// place that reaches them all:
//  - for_each(fn) visits every thread that has not finished (the main
//    thread first), under the registry's lock, with its store, thread and
//    instance;
//  - a spawned thread whose engine call returns Suspended (its store's
//    interrupt was requested and it stopped at a stable point) *parks*: it
//    waits, its frames on its runtime::Thread ready for Engine::capture,
//    until continue_parked() resumes it (Engine::resume) or the program
//    ends; wait_parked() waits until every spawned thread is parked or
//    finished. The main thread is Program::run()'s, which returns
//    Suspended as before;
//  - stop_all() is a checkpoint's stop-the-world, once the main thread is
//    stopped: it requests every spawned thread's interrupt and waits until
//    each one parked (at a loop header, a function entry, a host call or a
//    memory.atomic.wait, blocked ones woken by the request) or finished; a
//    thread spawned meanwhile parks at its first instruction. Until
//    continue_parked() no spawned thread runs, so the registry, the
//    instances and the wait queues hold still for the capture;
//  - a restore rebuilds each spawned thread parked (adopt_parked) and
//    continue_parked() releases all of them at once, as after a checkpoint;
//  - end(outcome) is the exit protocol: the first call wins and decides the
//    program's outcome; every other thread is stopped (its interrupt
//    requested; a spawned thread does not park once the program has ended)
//    and join() waits for their host threads.
#pragma once

#include "runtime/engine.h"
#include "runtime/instance.h"
#include "runtime/store.h"
#include "runtime/thread.h"
#include "snapshot/model.h"

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace tern::program {

inline constexpr const char* kWasiThreadsModule = "wasi";
inline constexpr const char* kThreadSpawnImport = "thread-spawn";
inline constexpr const char* kThreadStartExport = "wasi_thread_start";
// Spawned threads running at once (the main thread not counted), unless
// --max-threads says otherwise.
inline constexpr uint32_t kDefaultMaxThreads = 128;
// TIDs are 1..2^29-1 (the wasi-threads ABI); the main thread is 0 here.
inline constexpr uint32_t kMaxThreadId = snapshot::kMaxSpawnedTid;

// Whether `module` uses wasi-threads (imports thread-spawn); if so, checks
// the rest of the ABI (a shared memory imported as env.memory, the
// wasi_thread_start export) and throws tern::Error naming what is wrong.
bool uses_wasi_threads(const wasm::Module& module);

class ProgramThreads {
public:
  // One thread: its own store, runtime thread and instance.
  struct Entry {
    uint32_t tid = 0;       // 0: the main thread
    uint32_t start_arg = 0; // thread-spawn's argument (spawned threads)
    runtime::Store* store = nullptr;
    runtime::Thread* thread = nullptr;
    runtime::ModuleInstance* instance = nullptr;
    enum class State : uint8_t { Running, Parked, Finished } state = State::Running;
  };

  // Builds a spawned thread's store, runtime thread and instance with
  // `engine` (program.cpp: links the shared memory and WASI context);
  // throws tern::Error when it cannot.
  struct Built {
    std::unique_ptr<runtime::Store> store;
    std::unique_ptr<runtime::Thread> thread;
    runtime::ModuleInstance* instance = nullptr;
  };
  using Builder = std::function<Built(std::unique_ptr<runtime::Engine>)>;

  ProgramThreads(uint32_t max_threads, Builder builder);
  // Ends the program if it has not ended (the main thread is gone) and
  // joins every host thread.
  ~ProgramThreads();
  ProgramThreads(const ProgramThreads&) = delete;
  ProgramThreads& operator=(const ProgramThreads&) = delete;

  // The main thread (Program's), registered once before it runs.
  void set_main(runtime::Store& store, runtime::Thread& thread, runtime::ModuleInstance& instance);

  // thread-spawn, called on the spawning thread with its engine: the new
  // TID, or a negative WASI errno.
  int32_t spawn(runtime::Engine& spawner, uint32_t start_arg);

  // The first call decides how the program ended and stops every other
  // thread; later calls change nothing. Returns whether this call won.
  bool end(const runtime::ExecOutcome& outcome);
  // How the program ended, once some thread ended it.
  std::optional<runtime::ExecOutcome> ended() const;
  // Waits for every spawned thread's host thread to finish (after end()).
  void join();

  // Checkpoint support (see the top of this file).
  void for_each(const std::function<void(Entry&)>& fn);
  void wait_parked();
  void stop_all();
  void continue_parked();
  size_t spawned_running() const;
  // A restore: the thread `tid` (built with InitMode::ForRestore, its
  // frames already restored on its runtime::Thread), parked until
  // continue_parked(). Throws tern::Error beyond the thread limit.
  void adopt_parked(uint32_t tid, uint32_t start_arg, Built built);
  // The TID the next thread-spawn returns (snapshots record it).
  uint32_t next_tid() const;
  void set_next_tid(uint32_t tid);

private:
  struct Spawned;
  // Runs wasi_thread_start, or (restored: nullopt) starts parked.
  void run_thread(Spawned& t, std::optional<uint32_t> start_arg);
  void start_host_thread(std::unique_ptr<Spawned> t, std::optional<uint32_t> start_arg);
  void finish(Spawned& t, const runtime::ExecOutcome& outcome);
  bool parked_now(const Spawned& t) const; // under the lock

  const uint32_t max_threads_;
  Builder builder_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  Entry main_;
  std::list<std::unique_ptr<Spawned>> spawned_; // finished ones too, until join()
  uint32_t running_ = 0;                        // spawned, not finished
  uint32_t next_tid_ = 1;
  uint64_t resume_generation_ = 0;
  bool stopping_ = false; // stop_all() until continue_parked()
  std::optional<runtime::ExecOutcome> outcome_;
};

} // namespace tern::program
