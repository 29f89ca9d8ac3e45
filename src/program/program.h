// A running WASI program: its module, WASI context, store, thread and
// instance, and the operations checkpointing needs — start it or continue
// it, capture it while it is stopped at stable points, or build it from a
// snapshot on this host, in any engine.
#pragma once

#include "program/threads.h"
#include "runtime/engine.h"
#include "runtime/store.h"
#include "runtime/thread.h"
#include "snapshot/capture.h"
#include "snapshot/chain.h"
#include "util/sha256.h"
#include "wasi/context.h"
#include "wasi/state.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace tern::program {

// The guest import `tern.checkpoint() -> i32`: a program asks to be
// checkpointed. It returns 0 when the program continues after the
// checkpoint was written, 1 in a program restored from that checkpoint, and
// -1 when no checkpoint could be taken (no destination, or it failed).
inline constexpr const char* kTernModule = "tern";
inline constexpr const char* kCheckpointImport = "checkpoint";

// Host state outside the WASI context that takes part in checkpoints (the
// gateway link, migrate/gateway_backend.h): it owns one snapshot section,
// brings its outside world to agreement before each capture, and hears
// when the program continues or ends.
class Participant {
public:
  virtual ~Participant() = default;
  // The extension section it writes; a restore that has it understands it.
  virtual snapshot::Tag tag() const = 0;
  // A fresh run: the program's WASI context was just built.
  virtual void started(wasi::WasiContext&) {}
  // A restore, before the WASI state is rebuilt from the snapshot: its
  // section (null when the snapshot has none); it may change how WASI
  // restores.
  virtual void restoring(const snapshot::ExtensionSection*, wasi::RestoreOptions&) {}
  // After the WASI context is rebuilt.
  virtual void restored(wasi::WasiContext&) {}
  // A migration's target: the source has committed, so the program runs
  // here (resuming() follows once it is about to).
  virtual void committed(wasi::WasiContext&) {}
  // A restored program is about to continue for the first time (for a
  // migration's target: only after the source committed).
  virtual void resuming(wasi::WasiContext&) {}
  // The program is stopped for a checkpoint: its section. Called once per
  // stop, whatever the number of snapshots written from it. None when it
  // has nothing to record (no gateway was ever joined).
  virtual std::optional<snapshot::ExtensionSection> checkpoint(wasi::WasiContext&) = 0;
  // The program continues after a checkpoint; the program ended.
  virtual void resumed() {}
  virtual void ended() {}
};
using Participants = std::vector<std::shared_ptr<Participant>>;

struct EngineSpec {
  std::string name; // "interp", "aot", "jit": recorded in snapshots
  std::function<std::unique_ptr<runtime::Engine>()> make;
  // wasi-threads: spawned threads running at once (program/threads.h).
  uint32_t max_threads = kDefaultMaxThreads;
};

class Program {
public:
  // A program about to run `module`'s `_start` (instantiated, start
  // section run).
  static std::unique_ptr<Program> create(std::shared_ptr<const wasm::Module> module,
                                         wasi::WasiOptions wasi, const EngineSpec& engine,
                                         Participants participants = {});

  struct RestoreOptions {
    // The module the snapshot was taken of; when null, the one embedded in
    // the snapshot. Either way its hash must match.
    std::shared_ptr<const wasm::Module> module;
    wasi::RestoreOptions wasi;
    Participants participants;
    snapshot::ChainOptions chain; // where an incremental snapshot's parents are
    // Continue before memory is loaded, loading pages on first touch
    // (snapshot/lazy.h); eager where that is impossible. False: `because`
    // says why not, for memory_loading().
    bool lazy = false;
    std::string eager_because = "not asked for";
  };
  // A program rebuilt from the snapshot at `path` (and its parents, if it
  // is incremental): memory decoded straight into the new instance, host
  // state reopened, threads rebuilt by the engine, ready to continue with
  // run(). Throws tern::Error for a corrupt or
  // mismatched snapshot, naming what does not fit.
  static std::unique_ptr<Program> restore(const std::string& path, const RestoreOptions& options,
                                          const EngineSpec& engine);

  // A live migration's target (migrate/target.h) builds the program in two
  // steps, so that compiling and receiving memory happen while the
  // program still runs on the source: an instance of `module` (hash
  // known) ready for a restore, its memories empty; then finish_restore
  // with the final state, whose memories were decoded straight into the
  // instance's (prepare_memory_for_restore, snapshot/capture.h).
  // `participants` join the restore as in RestoreOptions.
  static std::unique_ptr<Program> prepare_restore(std::shared_ptr<const wasm::Module> module,
                                                  const EngineSpec& engine,
                                                  Participants participants = {});
  void finish_restore(const snapshot::Snapshot& snapshot, const wasi::RestoreOptions& options);
  // A migration's target: the source committed (Participant::committed).
  void committed();

  ~Program();

  // Runs `_start`, or continues a stopped (or restored) program, until it
  // returns, traps, exits or stops at stable points for a checkpoint.
  runtime::ExecOutcome run();
  bool stopped() const { return stopped_; }

  // While stopped: the snapshot of the program (memory by reference: write
  // it before the program continues, or from a forked child).
  snapshot::Snapshot capture(const snapshot::CaptureOptions& capture,
                             const wasi::SaveOptions& save);

  // Makes `snapshot` (captured from this program) safe to write from a
  // forked child while the program runs on. A forked child sees private
  // memory as it was at the fork, but a mirrored memory (runtime/memory.h)
  // is a shared mapping the program keeps writing: its bytes are copied
  // into the snapshot now, at the cost of a memcpy in the pause (of the
  // `carried` pages only, for a snapshot written as a delta).
  void detach_shared_memory(snapshot::Snapshot& snapshot,
                            const snapshot::CarriedPages& carried = {}) const;

  // Counting mode: stop at the n-th stable point executed (0: never stop,
  // only count).
  void stop_at_stable_point(uint64_t n);
  uint64_t stable_points() const { return thread_->stable_points; }
  // The last stop's stop-the-world (wasi-threads): how long the spawned
  // threads took to park after the main thread stopped, and how many
  // there were; zero without spawned threads.
  struct WorldStop {
    double ms = 0;
    size_t threads = 0;
  };
  WorldStop last_world_stop() const { return world_stop_; }

  // How a restore loaded memory, for --verbose-checkpoints: "on first
  // touch (userfaultfd: N chunks, prefetched in the background)" or
  // "before the program continued (REASON)". Empty for a fresh run.
  const std::string& memory_loading() const { return memory_loading_; }

  // The instance's memories (dirty-page tracking, program/incremental.h).
  const std::vector<runtime::Memory*>& memories() const { return instance_->memories; }

  // SHA-256 of the first memory's bytes (its size is part of the data
  // hashed), or nullopt when the module has no memory: for tests that
  // compare the final memory of different runs.
  std::optional<util::Sha256Digest> memory_sha256() const;

  runtime::Store& store() { return *store_; }
  runtime::ModuleInstance& instance() { return *instance_; }
  wasi::WasiContext& wasi() { return *wasi_; }
  runtime::Interrupt& interrupt() { return store_->interrupt(); }
  // Every thread of a wasi-threads program; null for a module that does
  // not import thread-spawn.
  ProgramThreads* threads() { return threads_.get(); }
  const wasm::Module& module() const { return *module_; }
  const std::string& engine_name() const { return engine_name_; }

  // The guest's tern.checkpoint(): asks `on_request` (set by whoever handles
  // checkpoints) and stops the program if it accepts.
  using CheckpointRequest = std::function<bool()>;
  void on_guest_checkpoint(CheckpointRequest handler) { guest_request_ = std::move(handler); }
  // Tells a stopped tern.checkpoint() call how its checkpoint went; the call
  // returns 0 (written) or -1 when the program continues.
  void finish_guest_checkpoint(bool written);

private:
  Program() = default;
  void link_and_instantiate(runtime::InitMode init);
  // The restore's last step: memories, globals, tables and segment state,
  // then the thread.
  void apply_restored(const snapshot::Snapshot& snapshot, const std::string& source);
  // The WASI state of a snapshot rebuilt, its participants told before; then
  // (once wasi_ holds it) after.
  std::unique_ptr<wasi::WasiContext> restore_wasi(const snapshot::Snapshot& snapshot,
                                                  const wasi::RestoreOptions& options);
  void wasi_restored();
  void define_tern_imports(runtime::Linker& linker);
  // env.memory, for modules that import their memory (wasi-threads).
  void define_imported_memory(runtime::Linker& linker);
  void define_thread_spawn(runtime::Store& store, runtime::Linker& linker);
  ProgramThreads::Built build_spawned_thread(std::unique_ptr<runtime::Engine> engine,
                                             runtime::InitMode init);
  snapshot::SpawnedThreads capture_spawned(std::vector<snapshot::ThreadImage>& threads);
  void restore_spawned(const snapshot::Snapshot& snapshot, const std::string& source,
                       const std::function<const runtime::ViewThread&(uint32_t)>& frames_of);
  // A spawned thread's tern.checkpoint(): always -1 (not supported yet).
  void define_spawned_tern_imports(runtime::Store& store, runtime::Linker& linker);
  // The outcome of the whole program, given the main thread's.
  runtime::ExecOutcome program_outcome(runtime::ExecOutcome main);
  runtime::HostResult guest_checkpoint(std::span<runtime::Slot> results);
  bool stopped_in_guest_checkpoint(const runtime::ViewThread& view) const;

  std::shared_ptr<const wasm::Module> module_;
  std::unique_ptr<wasi::WasiContext> wasi_;
  std::unique_ptr<runtime::Store> store_;
  std::unique_ptr<runtime::Thread> thread_;
  runtime::ModuleInstance* instance_ = nullptr;
  std::string engine_name_;
  std::string memory_loading_;
  bool started_ = false;
  bool stopped_ = false;
  bool restored_ = false; // not yet continued since the restore
  Participants participants_;
  std::optional<std::vector<snapshot::ExtensionSection>> participant_sections_; // of this stop

  // tern.checkpoint() progress: a stopped call is issued again on resume
  // and must then return instead of asking again.
  enum class GuestCheckpoint { None, Requested, Written, Failed, Restored };
  GuestCheckpoint guest_checkpoint_ = GuestCheckpoint::None;
  CheckpointRequest guest_request_;

  WorldStop world_stop_;
  uint32_t max_threads_ = kDefaultMaxThreads;
  runtime::Memory* imported_memory_ = nullptr; // env.memory, created here
  std::unique_ptr<ProgramThreads> threads_;    // last: joins before the rest goes
};

} // namespace tern::program
