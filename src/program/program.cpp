#include "program/program.h"

#include "snapshot/capture.h"
#include "snapshot/format.h"
#include "snapshot/lazy.h"
#include "tern/error.h"
#include "tern/internal_error.h"
#include "util/trace_time.h"
#include "wasi/wasi.h"
#include "wasm/decoder.h"
#include "wasm/instr.h"
#include "wasm/validator.h"

#include <algorithm>
#include <chrono>
#include <fmt/format.h>

namespace tern::program {

using runtime::ExecOutcome;
using runtime::HostResult;
using runtime::Slot;

Program::~Program() = default;

std::unique_ptr<Program> Program::create(std::shared_ptr<const wasm::Module> module,
                                         wasi::WasiOptions wasi, const EngineSpec& engine,
                                         Participants participants) {
  std::unique_ptr<Program> p(new Program);
  p->module_ = std::move(module);
  p->engine_name_ = engine.name;
  p->max_threads_ = engine.max_threads;
  p->participants_ = std::move(participants);
  p->wasi_ = std::make_unique<wasi::WasiContext>(std::move(wasi));
  for (auto& participant : p->participants_) participant->started(*p->wasi_);
  p->store_ = std::make_unique<runtime::Store>(engine.make());
  p->thread_ = std::make_unique<runtime::Thread>(*p->store_);
  p->link_and_instantiate(runtime::InitMode::Full);
  util::trace_time("instantiated");
  return p;
}

void Program::link_and_instantiate(runtime::InitMode init) {
  runtime::Linker linker;
  wasi::register_wasi(*wasi_, *store_, linker, *module_);
  define_tern_imports(linker);
  define_imported_memory(linker);
  if (uses_wasi_threads(*module_)) {
    threads_ = std::make_unique<ProgramThreads>(
        max_threads_, [this](std::unique_ptr<runtime::Engine> engine) {
          return build_spawned_thread(std::move(engine), runtime::InitMode::Full);
        });
    define_thread_spawn(*store_, linker);
  }
  instance_ = store_->instantiate(module_, linker.resolve(*module_), *thread_, init);
  if (threads_) threads_->set_main(*store_, *thread_, *instance_);
}

// The memory a module imports as env.memory is the program's, made here with
// the import's limits (shared or not), as wasi-sdk's threads target expects.
void Program::define_imported_memory(runtime::Linker& linker) {
  for (const wasm::Import& imp : module_->imports) {
    if (imp.kind != wasm::ExternKind::Memory || imp.module != "env" || imp.name != "memory")
      continue;
    // Compiled code may need the memory mirrored; the engine says so for an
    // instance of the module, which does not exist yet: ask for a stand-in.
    runtime::ModuleInstance stand_in(*store_, module_);
    const bool mirrored = store_->engine().wants_mirrored_memories(stand_in);
    imported_memory_ = store_->add_memory(imp.memory, mirrored);
    linker.define("env", "memory", runtime::Extern::of(imported_memory_));
  }
}

void Program::define_thread_spawn(runtime::Store& store, runtime::Linker& linker) {
  runtime::HostFunction spawn;
  spawn.type.params = {wasm::ValType::I32};
  spawn.type.results = {wasm::ValType::I32};
  spawn.module_name = kWasiThreadsModule;
  spawn.name = kThreadSpawnImport;
  spawn.callback = [this](runtime::CallContext& cc, std::span<const Slot> args,
                          std::span<Slot> results) {
    const int32_t tid = threads_->spawn(cc.thread.store().engine(), static_cast<uint32_t>(args[0]));
    results[0] = static_cast<uint32_t>(tid);
    return HostResult::ok();
  };
  linker.define(kWasiThreadsModule, kThreadSpawnImport,
                runtime::Extern::of(store.add_host_function(std::move(spawn))));
}

void Program::define_spawned_tern_imports(runtime::Store& store, runtime::Linker& linker) {
  runtime::HostFunction checkpoint;
  checkpoint.type.results = {wasm::ValType::I32};
  checkpoint.module_name = kTernModule;
  checkpoint.name = kCheckpointImport;
  checkpoint.callback = [](runtime::CallContext&, std::span<const Slot>, std::span<Slot> results) {
    results[0] = static_cast<uint32_t>(-1);
    return HostResult::ok();
  };
  linker.define(kTernModule, kCheckpointImport,
                runtime::Extern::of(store.add_host_function(std::move(checkpoint))));
}

// A spawned thread: a new instance of the module in a store of its own,
// sharing the program's memory and WASI context.
ProgramThreads::Built Program::build_spawned_thread(std::unique_ptr<runtime::Engine> engine,
                                                    runtime::InitMode init) {
  ProgramThreads::Built built;
  built.store = std::make_unique<runtime::Store>(std::move(engine));
  built.thread = std::make_unique<runtime::Thread>(*built.store);
  runtime::Linker linker;
  wasi::register_wasi(*wasi_, *built.store, linker, *module_);
  define_spawned_tern_imports(*built.store, linker);
  linker.define("env", "memory", runtime::Extern::of(imported_memory_));
  define_thread_spawn(*built.store, linker);
  built.instance = built.store->instantiate(module_, linker.resolve(*module_), *built.thread, init);
  return built;
}

// With wasi-threads, the first thread to end decides: the main thread's
// return, exit or trap, or one a spawned thread reported first (then the
// main thread was stopped for it). The other threads are joined here.
runtime::ExecOutcome Program::program_outcome(ExecOutcome main) {
  if (!threads_) return main;
  // Stop the world: a checkpoint captures every thread at a stable point.
  if (main.kind == ExecOutcome::Kind::Suspended && !threads_->ended()) {
    const auto start = std::chrono::steady_clock::now();
    world_stop_.threads = threads_->spawned_running();
    threads_->stop_all();
    world_stop_.ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }
  if (main.kind == ExecOutcome::Kind::Suspended && !threads_->ended()) return main;
  if (main.kind != ExecOutcome::Kind::Suspended) threads_->end(main);
  ExecOutcome out = *threads_->ended();
  threads_->join();
  return out;
}

void Program::define_tern_imports(runtime::Linker& linker) {
  runtime::HostFunction checkpoint;
  checkpoint.type.results = {wasm::ValType::I32};
  checkpoint.module_name = kTernModule;
  checkpoint.name = kCheckpointImport;
  checkpoint.callback = [this](runtime::CallContext&, std::span<const Slot>,
                               std::span<Slot> results) { return guest_checkpoint(results); };
  linker.define(kTernModule, kCheckpointImport,
                runtime::Extern::of(store_->add_host_function(std::move(checkpoint))));
}

HostResult Program::guest_checkpoint(std::span<Slot> results) {
  auto answer = [&](int32_t value) {
    results[0] = static_cast<uint32_t>(value);
    guest_checkpoint_ = GuestCheckpoint::None;
    return HostResult::ok();
  };
  switch (guest_checkpoint_) {
  case GuestCheckpoint::None:
    break;
  case GuestCheckpoint::Requested: // issued again before the checkpoint was handled
  case GuestCheckpoint::Failed:
    return answer(-1);
  case GuestCheckpoint::Written:
    return answer(0);
  case GuestCheckpoint::Restored:
    return answer(1);
  }
  if (!guest_request_ || !guest_request_()) return answer(-1);
  guest_checkpoint_ = GuestCheckpoint::Requested;
  return HostResult::suspend();
}

void Program::finish_guest_checkpoint(bool written) {
  if (guest_checkpoint_ == GuestCheckpoint::Requested)
    guest_checkpoint_ = written ? GuestCheckpoint::Written : GuestCheckpoint::Failed;
}

// Whether the innermost frame of a restored thread is a tern.checkpoint()
// call being issued again: it then returns 1 ("restored") to the program.
bool Program::stopped_in_guest_checkpoint(const runtime::ViewThread& view) const {
  if (view.frames.empty() || view.frames.back().kind != runtime::FrameKind::HostCall) return false;
  const uint32_t offset = view.frames.back().wasm_offset;
  if (offset >= module_->bytes.size()) return false;
  wasm::InstrReader reader(
      wasm::ByteReader(std::span<const uint8_t>(module_->bytes).subspan(offset), offset));
  wasm::Instr call;
  reader.next(call);
  if (call.op != wasm::Op::Call || !module_->is_imported_func(call.a)) return false;
  uint32_t seen = 0;
  for (const wasm::Import& imp : module_->imports) {
    if (imp.kind != wasm::ExternKind::Func) continue;
    if (seen++ == call.a) return imp.module == kTernModule && imp.name == kCheckpointImport;
  }
  return false;
}

// The WASI state rebuilt from `s`, the participants joining before and after
// (the sections they own are the only extensions besides WASI's understood).
std::unique_ptr<wasi::WasiContext> Program::restore_wasi(const snapshot::Snapshot& s,
                                                         const wasi::RestoreOptions& options) {
  std::vector<snapshot::Tag> known = {wasi::kStateTag};
  for (const auto& participant : participants_) known.push_back(participant->tag());
  snapshot::check_extensions_understood(s, known);
  const snapshot::ExtensionSection* state = s.find_extension(wasi::kStateTag);
  if (!state) throw Error("the snapshot has no WASI state (it is not of a WASI program)");
  wasi::RestoreOptions wasi_options = options;
  for (auto& participant : participants_)
    participant->restoring(s.find_extension(participant->tag()), wasi_options);
  return wasi::restore_state(*state, wasi_options);
}

void Program::wasi_restored() {
  for (auto& participant : participants_) participant->restored(*wasi_);
}

std::unique_ptr<Program> Program::restore(const std::string& path, const RestoreOptions& options,
                                          const EngineSpec& engine) {
  util::trace_time("restore starts");
  std::unique_ptr<Program> p(new Program);
  p->engine_name_ = engine.name;
  p->max_threads_ = engine.max_threads;
  p->participants_ = options.participants;
  // Everything but memory is known when the first memory section arrives:
  // build the instance then, so pages are decoded straight into it.
  auto build = [&](const snapshot::Snapshot& so_far) {
    if (p->instance_) return;
    if (options.module) {
      snapshot::check_module(so_far, options.module->sha256());
      p->module_ = options.module;
    } else {
      const auto& binary = so_far.module.binary.data;
      if (binary.empty())
        throw Error("the snapshot does not carry its module: give it with --module FILE");
      auto m = std::make_shared<wasm::Module>(
          wasm::decode_module(std::vector<uint8_t>(binary.begin(), binary.end())));
      util::trace_time("module decoded");
      // The reader checked the binary against the snapshot's MODL hash.
      m->known_sha256 = so_far.module.sha256;
      wasm::validate_module(*m);
      util::trace_time("module validated");
      snapshot::check_module(so_far, m->sha256());
      util::trace_time("module hash checked");
      p->module_ = std::move(m);
    }
    p->wasi_ = p->restore_wasi(so_far, options.wasi);
    p->wasi_restored();
    util::trace_time("WASI state restored");
    p->store_ = std::make_unique<runtime::Store>(engine.make());
    p->thread_ = std::make_unique<runtime::Thread>(*p->store_);
    p->link_and_instantiate(runtime::InitMode::ForRestore);
  };
  snapshot::ReadOptions read;
  read.memory_target = [&](uint32_t index, const snapshot::MemoryImage& header,
                           const snapshot::Snapshot& so_far) {
    build(so_far);
    return snapshot::prepare_memory_for_restore(*p->instance_, index, header.pages);
  };
  std::unique_ptr<snapshot::LazyMemory> lazy;
  std::string eager_because = options.lazy ? "" : options.eager_because;
  if (options.lazy)
    read.defer_pages = [&](uint32_t index, const snapshot::MemoryImage& header) {
      if (p->instance_->memories.size() != 1) {
        eager_because = "several memories";
        return false;
      }
      lazy = snapshot::LazyMemory::prepare(*p->instance_->memories[index], index, header.pages,
                                           eager_because);
      return lazy != nullptr;
    };
  snapshot::Snapshot s = snapshot::read_snapshot_chain(path, read, options.chain);
  util::trace_time("snapshot read, instance built");
  if (s.deferred_pages) {
    lazy->start(std::move(*s.deferred_pages->file), path, *s.deferred_pages);
    p->memory_loading_ =
        fmt::format("on first touch (userfaultfd: {} chunks{}, prefetched in "
                    "the background)",
                    lazy->chunks(), lazy->indexed() ? "" : ", a snapshot without a chunk index");
    p->instance_->memories[s.deferred_pages->index]->load_lazily(std::move(lazy));
    util::trace_time("memory left to load on demand");
  } else {
    lazy.reset();
    if (eager_because.empty())
      eager_because = s.parent ? "an incremental snapshot: its pages come from its chain"
                               : "the snapshot has no memory";
    p->memory_loading_ = fmt::format("before the program continued ({})", eager_because);
  }
  build(s);
  p->apply_restored(s, path);
  return p;
}

std::unique_ptr<Program> Program::prepare_restore(std::shared_ptr<const wasm::Module> module,
                                                  const EngineSpec& engine,
                                                  Participants participants) {
  std::unique_ptr<Program> p(new Program);
  p->engine_name_ = engine.name;
  p->max_threads_ = engine.max_threads;
  p->participants_ = std::move(participants);
  p->module_ = std::move(module);
  p->wasi_ =
      std::make_unique<wasi::WasiContext>(wasi::WasiOptions{}, wasi::WasiContext::EmptyFdTable{});
  p->store_ = std::make_unique<runtime::Store>(engine.make());
  p->thread_ = std::make_unique<runtime::Thread>(*p->store_);
  p->link_and_instantiate(runtime::InitMode::ForRestore);
  return p;
}

void Program::finish_restore(const snapshot::Snapshot& s, const wasi::RestoreOptions& options) {
  if (started_) throw InternalError("finish_restore of a program that ran");
  snapshot::check_module(s, module_->sha256());
  // Moved into the context the host functions already know.
  *wasi_ = std::move(*restore_wasi(s, options));
  wasi_restored();
  apply_restored(s, "the migration stream");
}

void Program::apply_restored(const snapshot::Snapshot& s, const std::string& source) {
  snapshot::apply_snapshot(s, *instance_);
  auto frames_of = [&](uint32_t tid) -> const runtime::ViewThread& {
    for (const snapshot::ThreadImage& t : s.threads)
      if (t.id == tid) return t.view;
    throw Error(fmt::format("{}: the snapshot has no frames for thread {}", source, tid));
  };
  if (!threads_ && (s.spawned || s.threads.size() != 1))
    throw Error(fmt::format("{}: the snapshot has {} threads; this program (no wasi-threads) has "
                            "one",
                            source, s.threads.size() + (s.spawned && s.threads.empty())));
  const runtime::ViewThread& view = frames_of(0);
  store_->engine().restore(*thread_, *instance_, view);
  if (threads_) restore_spawned(s, source, frames_of);
  started_ = stopped_ = restored_ = true;
  if (stopped_in_guest_checkpoint(view)) guest_checkpoint_ = GuestCheckpoint::Restored;
}

// Every spawned thread rebuilt parked, in an instance of its own sharing the
// restored memory; run() releases them with the main thread.
void Program::restore_spawned(
    const snapshot::Snapshot& s, const std::string& source,
    const std::function<const runtime::ViewThread&(uint32_t)>& frames_of) {
  if (!s.spawned) {
    if (s.threads.size() != 1)
      throw Error(fmt::format("{}: the snapshot has {} threads but no SPWN section", source,
                              s.threads.size()));
    return;
  }
  threads_->set_next_tid(s.spawned->next_tid);
  for (const snapshot::SpawnedThreadImage& image : s.spawned->threads) {
    ProgramThreads::Built built =
        build_spawned_thread(store_->engine().for_new_thread(), runtime::InitMode::ForRestore);
    snapshot::apply_spawned(image, *built.instance);
    try {
      built.store->engine().restore(*built.thread, *built.instance, frames_of(image.tid));
    } catch (const Error& e) {
      throw Error(fmt::format("{}: thread {}: {}", source, image.tid, e.what()));
    }
    threads_->adopt_parked(image.tid, image.start_arg, std::move(built));
  }
}

void Program::committed() {
  for (auto& participant : participants_) participant->committed(*wasi_);
}

ExecOutcome Program::run() {
  ExecOutcome out;
  if (!started_) {
    started_ = true;
    runtime::FunctionInstance* start = instance_->find_func_export("_start");
    if (!start) throw Error("the module has no `_start` export (it is not a WASI command)");
    util::trace_time("guest starts");
    out = store_->engine().call(*thread_, start, {}, {});
  } else {
    if (!stopped_) throw InternalError("the program is not stopped");
    util::trace_time("guest continues");
    if (restored_)
      for (auto& participant : participants_) participant->resuming(*wasi_);
    restored_ = false;
    if (participant_sections_)
      for (auto& participant : participants_) participant->resumed();
    participant_sections_.reset();
    if (threads_) threads_->continue_parked(); // every thread at once
    out = store_->engine().resume(*thread_, {});
  }
  out = program_outcome(std::move(out));
  stopped_ = out.kind == ExecOutcome::Kind::Suspended;
  if (!stopped_)
    for (auto& participant : participants_) participant->ended();
  return out;
}

snapshot::Snapshot Program::capture(const snapshot::CaptureOptions& capture,
                                    const wasi::SaveOptions& save) {
  if (!stopped_) throw InternalError("capture of a running program");
  // A lazily restored memory whole first: the snapshot's writer is a forked
  // child, which userfaultfd would not serve (it would read zeros).
  for (runtime::Memory* m : instance_->memories) m->wait_loaded();
  std::vector<snapshot::ThreadImage> threads;
  threads.push_back({0, store_->engine().capture(*thread_)});
  std::optional<snapshot::SpawnedThreads> spawned;
  if (threads_) spawned = capture_spawned(threads);
  snapshot::CaptureOptions options = capture;
  options.engine = engine_name_;
  snapshot::Snapshot s = snapshot::capture_instance(*instance_, std::move(threads), options);
  s.spawned = std::move(spawned);
  s.extensions.push_back(wasi::save_state(*wasi_, save));
  if (!participant_sections_) {
    participant_sections_.emplace();
    for (auto& participant : participants_)
      if (auto section = participant->checkpoint(*wasi_))
        participant_sections_->push_back(std::move(*section));
  }
  for (const auto& section : *participant_sections_) s.extensions.push_back(section);
  return s;
}

// Every spawned thread, parked by stop_all(): its frames (into `threads`)
// and its instance's own state, by increasing tid.
snapshot::SpawnedThreads Program::capture_spawned(std::vector<snapshot::ThreadImage>& threads) {
  snapshot::SpawnedThreads spawned;
  threads_->for_each([&](ProgramThreads::Entry& e) {
    if (e.tid == 0) return;
    if (e.state != ProgramThreads::Entry::State::Parked)
      throw InternalError(fmt::format("capture while thread {} runs", e.tid));
    threads.push_back({e.tid, e.store->engine().capture(*e.thread)});
    spawned.threads.push_back(snapshot::capture_spawned(*e.instance, e.tid, e.start_arg));
  });
  spawned.next_tid = threads_->next_tid();
  std::sort(threads.begin() + 1, threads.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  std::sort(spawned.threads.begin(), spawned.threads.end(),
            [](const auto& a, const auto& b) { return a.tid < b.tid; });
  return spawned;
}

void Program::detach_shared_memory(snapshot::Snapshot& s,
                                   const snapshot::CarriedPages& carried) const {
  snapshot::copy_shared_memories(*instance_, s, carried);
}

std::optional<util::Sha256Digest> Program::memory_sha256() const {
  const runtime::Memory* m = instance_->memory0();
  if (!m) return std::nullopt;
  return util::sha256({m->base(), m->size()});
}

void Program::stop_at_stable_point(uint64_t n) {
  interrupt().set_counting(true);
  thread_->stop_at = n;
}

} // namespace tern::program
