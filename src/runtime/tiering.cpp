#include "runtime/tiering.h"

#include "runtime/instance.h"
#include "runtime/interrupt.h"
#include "runtime/store.h"
#include "runtime/thread.h"
#include "tern/error.h"
#include "tern/internal_error.h"
#include "util/trace_time.h"

#include <fmt/format.h>
#include <map>
#include <mutex>
#include <vector>

namespace tern::runtime {
namespace {

// Raises the interpreter's kTierUp flag when the code is ready, but only
// while the first engine runs (inside call or resume): the Interrupt dies
// with the store, before the engine and the threads that make code.
class Doorbell {
public:
  void ring() {
    std::lock_guard lock(mutex_);
    rang_ = true;
    if (target_) target_->request_tier_up();
  }
  void arm(Interrupt& interrupt) {
    std::lock_guard lock(mutex_);
    target_ = &interrupt;
    if (rang_) interrupt.request_tier_up();
  }
  void disarm() {
    std::lock_guard lock(mutex_);
    if (target_) target_->clear_tier_up();
    target_ = nullptr;
  }

private:
  std::mutex mutex_;
  Interrupt* target_ = nullptr;
  bool rang_ = false;
};

class TieringEngine final : public Engine {
public:
  explicit TieringEngine(TieringParts parts)
      : parts_(std::move(parts)), bell_(std::make_shared<Doorbell>()) {}

  void prepare(ModuleInstance& inst) override {
    if (!known_module(inst.module())) {
      std::shared_ptr<Doorbell> bell = bell_;
      pending_.push_back({&inst.module(), parts_.start(inst, [bell] { bell->ring(); })});
    }
    instances_.push_back(&inst);
    // Code from the cache: no reason to start slower.
    if (!switched_ && instances_.size() == 1 && !parts_.switch_at && due(0)) switched_ = true;
    engine().prepare(inst);
  }

  ExecOutcome call(Thread& thread, FunctionInstance* func, std::span<const Slot> args,
                   std::span<Slot> results) override {
    if (func->instance) instance_of_[&thread] = func->instance;
    if (switched_) return parts_.faster->call(thread, func, args, results);
    ExecOutcome out =
        run_first(thread, [&] { return parts_.first->call(thread, func, args, results); });
    return continue_faster(thread, std::move(out), results);
  }

  // A new thread stays in the engine the program is in now: it does not
  // move into compiled code later.
  std::unique_ptr<Engine> for_new_thread() override { return engine().for_new_thread(); }

  ViewThread capture(const Thread& thread) const override { return engine().capture(thread); }

  void restore(Thread& thread, ModuleInstance& instance, const ViewThread& view) override {
    instance_of_[&thread] = &instance;
    if (!switched_ && due(view.stable_points)) switch_code();
    engine().restore(thread, instance, view);
  }

  ExecOutcome resume(Thread& thread, std::span<Slot> results) override {
    if (!switched_ && due(thread.stable_points)) hand_over(thread, parts_.first->capture(thread));
    if (switched_) return parts_.faster->resume(thread, results);
    ExecOutcome out = run_first(thread, [&] { return parts_.first->resume(thread, results); });
    return continue_faster(thread, std::move(out), results);
  }

private:
  Engine& engine() const { return switched_ ? *parts_.faster : *parts_.first; }

  bool known_module(const wasm::Module& m) const {
    for (const auto& p : pending_)
      if (p.module == &m) return true;
    return false;
  }

  // Whether a thread stopped after `stable_points` should move now: at
  // --tier-up-at N once N points ran (waiting for the code), else as soon
  // as the code is ready. Never after the code failed (said once).
  bool due(uint64_t stable_points) {
    if (failed_ || pending_.empty()) return false;
    if (parts_.switch_at && stable_points < *parts_.switch_at) return false;
    for (const auto& p : pending_)
      if (!parts_.switch_at && !p.code->ready()) return false;
    for (const auto& p : pending_) {
      if (std::string why = p.code->wait(); !why.empty()) {
        fmt::print(stderr,
                   "tern: no compiled code ({}); the program continues in the interpreter\n", why);
        failed_ = true;
        return false;
      }
    }
    return true;
  }

  // Runs the first engine with what makes it stop for the switch: counting
  // up to --tier-up-at (counting mode turned on for it if the program did
  // not count), or the doorbell.
  template <typename Run>
  ExecOutcome run_first(Thread& thread, Run run) {
    Interrupt& interrupt = thread.store().interrupt();
    const uint64_t program_stop = thread.stop_at;
    bool counting_added = false;
    if (parts_.switch_at && !failed_ && thread.stable_points < *parts_.switch_at) {
      if (!interrupt.counting()) {
        interrupt.set_counting(true);
        counting_added = true;
      }
      if (program_stop == 0 || program_stop > *parts_.switch_at) thread.stop_at = *parts_.switch_at;
    }
    if (!parts_.switch_at && !failed_) bell_->arm(interrupt);
    ExecOutcome out = run();
    bell_->disarm();
    thread.stop_at = program_stop;
    if (counting_added) interrupt.set_counting(false);
    stopped_for_program_ =
        out.kind == ExecOutcome::Kind::Suspended &&
        (interrupt.requested() || (program_stop != 0 && thread.stable_points == program_stop));
    return out;
  }

  // After the first engine stopped: if it stopped only to move, move and
  // continue in the faster engine. A stop someone else asked for (a
  // checkpoint request, the program's --checkpoint-at, a host call that
  // suspended) is returned; the move then happens at resume().
  // A host call that suspended (tern.checkpoint(), or one a checkpoint
  // interrupted) stopped for the program whether or not the code is ready:
  // resuming it here would issue the call again behind the program's back
  // (tern.checkpoint() answered -1 in auto mode that way).
  ExecOutcome continue_faster(Thread& thread, ExecOutcome out, std::span<Slot> results) {
    while (out.kind == ExecOutcome::Kind::Suspended && !stopped_for_program_) {
      ViewThread view = parts_.first->capture(thread);
      if (!view.frames.empty() && (view.frames.back().kind == FrameKind::HostCall ||
                                   view.frames.back().kind == FrameKind::AtomicWait))
        return out;
      if (due(thread.stable_points)) {
        hand_over(thread, view);
        return parts_.faster->resume(thread, results);
      }
      // Stopped for code that turned out unusable: go on where it was.
      out = run_first(thread, [&] { return parts_.first->resume(thread, results); });
    }
    return out;
  }

  // The instances' functions get the faster engine's code.
  void switch_code() {
    for (ModuleInstance* inst : instances_) parts_.faster->prepare(*inst);
    switched_ = true;
  }

  void hand_over(Thread& thread, const ViewThread& view) {
    auto it = instance_of_.find(&thread);
    if (it == instance_of_.end()) throw InternalError("tiering a thread never started");
    switch_code();
    parts_.faster->restore(thread, *it->second, view);
    util::trace_time("moved into compiled code");
  }

  struct Pending {
    const wasm::Module* module;
    std::shared_ptr<PendingCode> code;
  };
  TieringParts parts_;
  std::shared_ptr<Doorbell> bell_;
  std::vector<Pending> pending_;
  std::vector<ModuleInstance*> instances_;
  std::map<const Thread*, ModuleInstance*> instance_of_;
  bool switched_ = false;
  bool failed_ = false;
  bool stopped_for_program_ = false;
};

} // namespace

std::unique_ptr<Engine> make_tiering_engine(TieringParts parts) {
  return std::make_unique<TieringEngine>(std::move(parts));
}

} // namespace tern::runtime
