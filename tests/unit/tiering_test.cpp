// The tiering engine (runtime/tiering.h): a thread that starts in the
// interpreter and is handed over to compiled code mid-run, at a chosen
// stable point or when the code becomes ready, must end exactly like an
// uninterrupted run: result, memory, globals, stable points. A checkpoint
// stop is never taken for a switch.
#include "runtime/instance.h"
#include "runtime/store.h"
#include "runtime/thread.h"
#include "runtime/tiering.h"
#include "test_engines.h"
#include "wasm/decoder.h"
#include "wasm/validator.h"
#include "wat.h"

#include <gtest/gtest.h>

namespace tern {
namespace {

using runtime::ExecOutcome;
using runtime::Slot;

// Recursion with operands live across calls, a loop calling a host
// function, memory and a global.
constexpr const char* kProgram = R"(
(module
  (import "env" "tick" (func $tick (param i32)))
  (memory 1)
  (global $g (mut i64) (i64.const 0))
  (func $fib (param i32) (result i64)
    (if (result i64) (i32.lt_u (local.get 0) (i32.const 2))
      (then (i64.extend_i32_u (local.get 0)))
      (else (i64.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                     (call $fib (i32.sub (local.get 0) (i32.const 2)))))))
  (func (export "main") (param i32) (result i64) (local $i i32) (local $acc i64)
    (loop $l
      (call $tick (local.get $i))
      (local.set $acc (i64.add (local.get $acc) (call $fib (i32.rem_u (local.get $i) (i32.const 9)))))
      (i32.store (i32.mul (local.get $i) (i32.const 4)) (i32.wrap_i64 (local.get $acc)))
      (global.set $g (i64.add (global.get $g) (local.get $acc)))
      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get 0))))
    (i64.add (local.get $acc) (global.get $g))))
)";

// Code made "in the background" by the test, ready when it says so.
class ManualCode final : public runtime::PendingCode {
public:
  explicit ManualCode(std::function<void()> notify) : notify_(std::move(notify)) {}
  bool ready() const override { return ready_; }
  std::string wait() override {
    if (!ready_) make_ready();
    return error_;
  }
  void make_ready(std::string error = "") {
    error_ = std::move(error);
    ready_ = true;
    notify_();
  }

private:
  std::function<void()> notify_;
  std::atomic<bool> ready_{false};
  std::string error_;
};

// Forwards to an engine and counts the threads handed to it.
class CountingEngine final : public runtime::Engine {
public:
  CountingEngine(std::unique_ptr<runtime::Engine> inner, int& restores, int& calls)
      : inner_(std::move(inner)), restores_(restores), calls_(calls) {}
  void prepare(runtime::ModuleInstance& i) override { inner_->prepare(i); }
  ExecOutcome call(runtime::Thread& t, runtime::FunctionInstance* f, std::span<const Slot> a,
                   std::span<Slot> r) override {
    ++calls_;
    return inner_->call(t, f, a, r);
  }
  runtime::ViewThread capture(const runtime::Thread& t) const override {
    return inner_->capture(t);
  }
  void restore(runtime::Thread& t, runtime::ModuleInstance& i,
               const runtime::ViewThread& v) override {
    ++restores_;
    inner_->restore(t, i, v);
  }
  ExecOutcome resume(runtime::Thread& t, std::span<Slot> r) override {
    return inner_->resume(t, r);
  }

private:
  std::unique_ptr<runtime::Engine> inner_;
  int& restores_;
  int& calls_;
};

struct Result {
  ExecOutcome::Kind kind;
  Slot value = 0;
  std::vector<uint8_t> memory;
  Slot global = 0;
  uint64_t stable_points = 0;
};

// One program in a tiering engine (or the plain interpreter when `tiered`
// is false). `on_tick(i)` runs in the host call of iteration i.
struct Machine {
  std::shared_ptr<wasm::Module> module;
  std::shared_ptr<ManualCode> code;
  int handed_over = 0;  // threads restored in the compiled engine
  int faster_calls = 0; // calls that started there
  std::function<void(uint32_t)> on_tick = [](uint32_t) {};
  // The host call of this iteration suspends the first time it is issued
  // (as tern.checkpoint() does), and returns when issued again.
  std::optional<uint32_t> suspend_at;
  bool suspended = false;
  std::unique_ptr<runtime::Store> store;
  std::unique_ptr<runtime::Thread> thread;
  runtime::ModuleInstance* instance = nullptr;

  Machine(bool tiered, std::optional<uint64_t> switch_at = std::nullopt,
          bool ready_at_start = false) {
    module = std::make_shared<wasm::Module>(wasm::decode_module(test::wat_to_wasm(kProgram)));
    wasm::validate_module(*module);
    std::unique_ptr<runtime::Engine> engine = test::make_engine("interp");
    if (tiered) {
      runtime::TieringParts parts;
      parts.first = test::make_engine("interp");
      parts.faster =
          std::make_unique<CountingEngine>(test::make_engine("aot"), handed_over, faster_calls);
      parts.start = [this, ready_at_start](const runtime::ModuleInstance&,
                                           std::function<void()> ready) {
        code = std::make_shared<ManualCode>(std::move(ready));
        if (ready_at_start) code->make_ready();
        return code;
      };
      parts.switch_at = switch_at;
      engine = runtime::make_tiering_engine(std::move(parts));
    }
    store = std::make_unique<runtime::Store>(std::move(engine));
    thread = std::make_unique<runtime::Thread>(*store);
    runtime::HostFunction tick;
    tick.type.params = {wasm::ValType::I32};
    tick.callback = [this](runtime::CallContext&, std::span<const Slot> args, std::span<Slot>) {
      on_tick(uint32_t(args[0]));
      if (suspend_at == uint32_t(args[0]) && !suspended) {
        suspended = true;
        return runtime::HostResult::suspend();
      }
      return runtime::HostResult::ok();
    };
    runtime::Linker linker;
    linker.define("env", "tick", runtime::Extern::of(store->add_host_function(std::move(tick))));
    instance = store->instantiate(module, linker.resolve(*module), *thread);
    store->interrupt().set_counting(true); // count, so that runs can be compared
  }

  Result finish(ExecOutcome out, Slot value) {
    auto bytes = instance->memory0()->bytes();
    return {out.kind,
            value,
            {bytes.begin(), bytes.end()},
            instance->globals[0]->value,
            thread->stable_points};
  }
  Result run(Slot arg) {
    Slot value = 0;
    ExecOutcome out = store->engine().call(*thread, instance->find_func_export("main"),
                                           std::span<const Slot>(&arg, 1), std::span(&value, 1));
    return finish(out, value);
  }
  Result resume() {
    Slot value = 0;
    ExecOutcome out = store->engine().resume(*thread, std::span(&value, 1));
    return finish(out, value);
  }
};

void expect_same(const Result& r, const Result& ref, const std::string& what) {
  EXPECT_EQ(r.kind, ExecOutcome::Kind::Returned) << what;
  EXPECT_EQ(r.value, ref.value) << what;
  EXPECT_EQ(r.memory, ref.memory) << what;
  EXPECT_EQ(r.global, ref.global) << what;
  EXPECT_EQ(r.stable_points, ref.stable_points) << what;
}

class Tiering : public ::testing::Test {
protected:
  void SetUp() override {
    if (!aot::compiler_available()) GTEST_SKIP() << "built without the compiler";
  }
};

constexpr Slot kArg = 40;

TEST_F(Tiering, SwitchAtEveryStablePointEndsLikeTheInterpreter) {
  const Result ref = Machine(false).run(kArg);
  ASSERT_GT(ref.stable_points, 100u);
  for (uint64_t n = 1; n <= ref.stable_points; n += (n < 20 ? 1 : 7)) {
    Machine m(true, n);
    expect_same(m.run(kArg), ref, "switch at " + std::to_string(n));
    EXPECT_EQ(m.handed_over, 1) << n;
  }
}

// Without --tier-up-at: the code becomes ready during a host call (the
// thread is in it); the thread moves at the next stable point.
TEST_F(Tiering, CodeReadyDuringAHostCallMovesTheThreadAtTheNextStablePoint) {
  const Result ref = Machine(false).run(kArg);
  for (uint32_t at : {0u, 1u, 7u, 39u}) {
    Machine m(true);
    m.on_tick = [&m, at](uint32_t i) {
      if (i == at) m.code->make_ready();
      // Still in the interpreter until then: nothing handed over yet.
      if (i <= at) {
        EXPECT_EQ(m.handed_over, 0);
      }
    };
    expect_same(m.run(kArg), ref, "ready at tick " + std::to_string(at));
    EXPECT_EQ(m.handed_over, 1) << at;
  }
}

// Code ready before the program starts (the cache): compiled from the first
// instruction, nothing to hand over.
TEST_F(Tiering, CodeReadyAtTheStartRunsCompiledFromTheFirstInstruction) {
  const Result ref = Machine(false).run(kArg);
  Machine m(true, std::nullopt, true);
  expect_same(m.run(kArg), ref, "ready at the start");
  EXPECT_EQ(m.handed_over, 0);
  EXPECT_EQ(m.faster_calls, 1);
}

// Ready after instantiation, before the first call: the thread moves at
// its first stable point.
TEST_F(Tiering, CodeReadyBeforeTheFirstCallMovesAtTheFirstStablePoint) {
  const Result ref = Machine(false).run(kArg);
  Machine m(true);
  m.code->make_ready();
  m.on_tick = [&m](uint32_t) { EXPECT_EQ(m.handed_over, 1); };
  expect_same(m.run(kArg), ref, "ready before the first call");
  EXPECT_EQ(m.handed_over, 1);
}

// A checkpoint request that stops the thread when the code is ready is the
// caller's stop: returned as Suspended, captured from the interpreter; the
// thread moves when it continues.
TEST_F(Tiering, ACheckpointStopIsNotTakenForTheSwitch) {
  const Result ref = Machine(false).run(kArg);
  Machine m(true);
  m.on_tick = [&m](uint32_t i) {
    if (i == 5) {
      m.code->make_ready();
      m.store->interrupt().request();
    }
  };
  Result stopped = m.run(kArg);
  ASSERT_EQ(stopped.kind, ExecOutcome::Kind::Suspended);
  EXPECT_EQ(m.handed_over, 0);
  runtime::ViewThread view = m.store->engine().capture(*m.thread);
  EXPECT_FALSE(view.frames.empty());
  m.store->interrupt().clear();
  expect_same(m.resume(), ref, "resumed after the checkpoint stop");
  EXPECT_EQ(m.handed_over, 1);
}

// The program's own --checkpoint-at at the switch point: the checkpoint
// comes first (in the interpreter), the switch when it continues.
TEST_F(Tiering, CheckpointAtTheSwitchPointComesFirst) {
  const Result ref = Machine(false).run(kArg);
  for (uint64_t n : {1u, 10u, 50u}) {
    Machine m(true, n);
    m.thread->stop_at = n;
    Result stopped = m.run(kArg);
    ASSERT_EQ(stopped.kind, ExecOutcome::Kind::Suspended) << n;
    EXPECT_EQ(stopped.stable_points, n);
    EXPECT_EQ(m.handed_over, 0);
    expect_same(m.resume(), ref, "checkpoint at the switch " + std::to_string(n));
    EXPECT_EQ(m.handed_over, 1);
  }
}

// A host call that suspends (tern.checkpoint(), a blocking call that a
// checkpoint interrupted) is the program's stop, whether the code is ready
// or not: returned as Suspended, never issued again behind the caller's back.
TEST_F(Tiering, AHostCallThatSuspendsIsTheCallersStop) {
  const Result ref = Machine(false).run(kArg);
  for (bool ready : {false, true}) {
    const std::string what = ready ? "code ready" : "code not ready";
    Machine m(true);
    m.suspend_at = 5;
    m.on_tick = [&m, ready](uint32_t i) {
      if (ready && i == 5 && !m.suspended) m.code->make_ready();
    };
    Result stopped = m.run(kArg);
    ASSERT_EQ(stopped.kind, ExecOutcome::Kind::Suspended) << what;
    EXPECT_EQ(m.handed_over, 0) << what;
    runtime::ViewThread view = m.store->engine().capture(*m.thread);
    ASSERT_FALSE(view.frames.empty()) << what;
    EXPECT_EQ(view.frames.back().kind, runtime::FrameKind::HostCall) << what;
    expect_same(m.resume(), ref, "resumed after the host call's stop, " + what);
  }
}

// Code that cannot be made leaves the program in the interpreter.
TEST_F(Tiering, FailedCodeKeepsTheInterpreter) {
  const Result ref = Machine(false).run(kArg);
  Machine m(true);
  m.on_tick = [&m](uint32_t i) {
    if (i == 3) m.code->make_ready("no compiler here");
  };
  expect_same(m.run(kArg), ref, "failed code");
  EXPECT_EQ(m.handed_over, 0);
}

} // namespace
} // namespace tern
