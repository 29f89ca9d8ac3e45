#include "program/threads.h"

#include "tern/error.h"
#include "wasi/abi.h"

#include <array>
#include <fmt/format.h>
#include <system_error>

namespace tern::program {

using runtime::ExecOutcome;
using runtime::Slot;

namespace {

const wasm::Import* find_import(const wasm::Module& m, std::string_view module,
                                std::string_view name) {
  for (const wasm::Import& imp : m.imports)
    if (imp.module == module && imp.name == name) return &imp;
  return nullptr;
}

int32_t negative_errno(wasi::Errno e) {
  return -static_cast<int32_t>(e);
}

} // namespace

bool uses_wasi_threads(const wasm::Module& m) {
  const wasm::Import* spawn = find_import(m, kWasiThreadsModule, kThreadSpawnImport);
  if (!spawn) return false;
  auto fail = [](std::string_view what) {
    throw Error(fmt::format("the module imports wasi.thread-spawn but {} (the wasi-threads ABI: "
                            "a shared memory imported as env.memory, the export "
                            "wasi_thread_start(i32, i32))",
                            what));
  };
  const wasm::FuncType spawn_type{{wasm::ValType::I32}, {wasm::ValType::I32}};
  if (spawn->kind != wasm::ExternKind::Func || m.types[spawn->func_type] != spawn_type)
    fail("not as a function (param i32) (result i32)");
  const wasm::Import* memory = find_import(m, "env", "memory");
  if (!memory || memory->kind != wasm::ExternKind::Memory)
    fail("does not import its memory as env.memory");
  if (!memory->memory.limits.shared) fail("its memory env.memory is not shared");
  const wasm::Export* start = m.find_export(kThreadStartExport);
  if (!start || start->kind != wasm::ExternKind::Func) fail("does not export wasi_thread_start");
  const wasm::FuncType start_type{{wasm::ValType::I32, wasm::ValType::I32}, {}};
  if (m.func_type(start->index) != start_type)
    fail("its wasi_thread_start is not a function (param i32 i32)");
  return true;
}

struct ProgramThreads::Spawned {
  Entry entry;
  uint64_t parked_at = 0; // resume_generation_ when it parked
  std::unique_ptr<runtime::Store> store;
  std::unique_ptr<runtime::Thread> thread; // destroyed before its store
  std::thread host;
};

ProgramThreads::ProgramThreads(uint32_t max_threads, Builder builder)
    : max_threads_(max_threads), builder_(std::move(builder)) {}

ProgramThreads::~ProgramThreads() {
  end(ExecOutcome::returned());
  join();
}

void ProgramThreads::set_main(runtime::Store& store, runtime::Thread& thread,
                              runtime::ModuleInstance& instance) {
  std::lock_guard lock(mutex_);
  main_ = {0, 0, &store, &thread, &instance, Entry::State::Running};
}

int32_t ProgramThreads::spawn(runtime::Engine& spawner, uint32_t start_arg) {
  auto t = std::make_unique<Spawned>();
  {
    std::lock_guard lock(mutex_);
    if (outcome_) return negative_errno(wasi::Errno::again);
    if (running_ >= max_threads_ || next_tid_ > kMaxThreadId)
      return negative_errno(wasi::Errno::again);
    t->entry.tid = next_tid_++;
    ++running_; // counted now: two spawns at once must not both pass the limit
  }
  auto give_back = [&] {
    std::lock_guard lock(mutex_);
    --running_;
    changed_.notify_all();
  };
  try {
    Built built = builder_(spawner.for_new_thread());
    t->store = std::move(built.store);
    t->thread = std::move(built.thread);
    t->entry.instance = built.instance;
  } catch (const Error&) {
    give_back();
    return negative_errno(wasi::Errno::again);
  } catch (const std::bad_alloc&) {
    give_back();
    return negative_errno(wasi::Errno::again);
  }
  t->entry.store = t->store.get();
  t->entry.thread = t->thread.get();
  t->entry.start_arg = start_arg;
  t->thread->id = t->entry.tid;
  const int32_t tid = static_cast<int32_t>(t->entry.tid);
  std::lock_guard lock(mutex_);
  // The program may have ended while the instance was built.
  if (outcome_) {
    --running_;
    return negative_errno(wasi::Errno::again);
  }
  // A checkpoint is stopping every thread: this one parks at its entry.
  if (stopping_) t->store->interrupt().request();
  try {
    start_host_thread(std::move(t), start_arg);
  } catch (const std::system_error&) {
    --running_;
    return negative_errno(wasi::Errno::again);
  }
  return tid;
}

// Under the lock.
void ProgramThreads::start_host_thread(std::unique_ptr<Spawned> t,
                                       std::optional<uint32_t> start_arg) {
  Spawned* raw = t.get();
  t->host = std::thread([this, raw, start_arg] { run_thread(*raw, start_arg); });
  spawned_.push_back(std::move(t));
}

void ProgramThreads::adopt_parked(uint32_t tid, uint32_t start_arg, Built built) {
  auto t = std::make_unique<Spawned>();
  t->entry = {
      tid, start_arg, built.store.get(), built.thread.get(), built.instance, Entry::State::Parked};
  t->store = std::move(built.store);
  t->thread = std::move(built.thread);
  t->thread->id = tid;
  std::lock_guard lock(mutex_);
  if (running_ >= max_threads_)
    throw Error(fmt::format("the snapshot has more spawned threads than --max-threads {} allows",
                            max_threads_));
  t->parked_at = resume_generation_;
  try {
    start_host_thread(std::move(t), std::nullopt);
  } catch (const std::system_error& e) {
    throw Error(fmt::format("cannot start a host thread for thread {}: {}", tid, e.what()));
  }
  ++running_;
}

void ProgramThreads::run_thread(Spawned& t, std::optional<uint32_t> start_arg) {
  ExecOutcome out;
  out.kind = ExecOutcome::Kind::Suspended; // restored: parked already
  if (start_arg) {
    runtime::FunctionInstance* start = t.entry.instance->find_func_export(kThreadStartExport);
    std::array<Slot, 2> args{Slot(t.entry.tid), Slot(*start_arg)};
    out = t.store->engine().call(*t.thread, start, args, {});
  }
  // Stopped at a stable point: parked until continued or the program ends.
  while (out.kind == ExecOutcome::Kind::Suspended) {
    std::unique_lock lock(mutex_);
    if (outcome_) break;
    if (t.entry.state != Entry::State::Parked) {
      t.entry.state = Entry::State::Parked;
      t.parked_at = resume_generation_;
      changed_.notify_all();
    }
    changed_.wait(lock, [&] { return outcome_ || resume_generation_ != t.parked_at; });
    if (outcome_) break;
    t.entry.state = Entry::State::Running;
    lock.unlock();
    out = t.store->engine().resume(*t.thread, {});
  }
  finish(t, out);
}

// A thread that returned from wasi_thread_start just ends; one that exited
// or trapped ends the program (unless it already ended: a thread stopped
// because of that changes nothing).
void ProgramThreads::finish(Spawned& t, const ExecOutcome& outcome) {
  if (outcome.kind == ExecOutcome::Kind::Exited || outcome.kind == ExecOutcome::Kind::Trapped)
    end(outcome);
  std::lock_guard lock(mutex_);
  t.entry.state = Entry::State::Finished;
  --running_;
  changed_.notify_all();
}

bool ProgramThreads::end(const ExecOutcome& outcome) {
  std::lock_guard lock(mutex_);
  if (outcome_) return false;
  outcome_ = outcome;
  if (main_.store && main_.state != Entry::State::Finished) main_.store->interrupt().request();
  for (auto& t : spawned_)
    if (t->entry.state != Entry::State::Finished) t->store->interrupt().request();
  changed_.notify_all();
  return true;
}

std::optional<ExecOutcome> ProgramThreads::ended() const {
  std::lock_guard lock(mutex_);
  return outcome_;
}

void ProgramThreads::join() {
  std::list<std::unique_ptr<Spawned>> threads;
  {
    std::lock_guard lock(mutex_);
    // Whoever ended the program, the main thread is not running any more
    // once join() is called (Program::run joins when it returns).
    main_.state = Entry::State::Finished;
    threads.swap(spawned_);
  }
  for (auto& t : threads)
    if (t->host.joinable()) t->host.join();
}

void ProgramThreads::for_each(const std::function<void(Entry&)>& fn) {
  std::lock_guard lock(mutex_);
  if (main_.store && main_.state != Entry::State::Finished) fn(main_);
  for (auto& t : spawned_)
    if (t->entry.state != Entry::State::Finished) fn(t->entry);
}

void ProgramThreads::wait_parked() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] {
    if (outcome_) return true;
    for (auto& t : spawned_)
      if (t->entry.state != Entry::State::Finished && !parked_now(*t)) return false;
    return true;
  });
}

// A thread released by continue_parked() that has not woken up yet still
// says Parked: it is about to run, and must stop again like a running one.
bool ProgramThreads::parked_now(const Spawned& t) const {
  return t.entry.state == Entry::State::Parked && t.parked_at == resume_generation_;
}

void ProgramThreads::stop_all() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (auto& t : spawned_)
      if (t->entry.state != Entry::State::Finished && !parked_now(*t))
        t->store->interrupt().request();
  }
  wait_parked();
}

void ProgramThreads::continue_parked() {
  std::lock_guard lock(mutex_);
  stopping_ = false;
  for (auto& t : spawned_)
    if (t->entry.state == Entry::State::Parked) t->store->interrupt().clear();
  ++resume_generation_;
  changed_.notify_all();
}

uint32_t ProgramThreads::next_tid() const {
  std::lock_guard lock(mutex_);
  return next_tid_;
}

void ProgramThreads::set_next_tid(uint32_t tid) {
  std::lock_guard lock(mutex_);
  next_tid_ = tid;
}

size_t ProgramThreads::spawned_running() const {
  std::lock_guard lock(mutex_);
  return running_;
}

} // namespace tern::program
