// Compiled code (AOT artifacts and JIT) against the interpreter, in the wasm
// view: stop a program at its N-th stable point in one mode, capture the
// thread, rebuild it in a fresh store in another mode, resume, and finish
// with exactly the result, memory, globals and stable-point count of an
// uninterrupted run. The views the modes capture at the same point must be
// identical: they are the one thing all engines agree on.
#include "aot/artifact.h"
#include "aot/compiler.h"
#include "aot/engine.h"
#include "interp/engine.h"
#include "runtime/store.h"
#include "runtime/thread.h"
#include "test_engines.h"
#include "wasm/decoder.h"
#include "wasm/validator.h"
#include "wat.h"

#include <chrono>
#include <cstring>
#include <filesystem>
#include <gtest/gtest.h>
#include <map>
#include <thread>

namespace tern {
namespace {

using runtime::ExecOutcome;
using runtime::FrameKind;
using runtime::Slot;

// Recursion through call and call_indirect with operands live across the
// calls, nested loops with operands on the stack across the inner loop's
// header, an inner loop without calls (compiled twice: the loop and its
// restore clone), memory, a global, and locals of every type.
constexpr const char* kProgram = R"(
(module
  (type $t (func (param i32) (result i64)))
  (memory (export "memory") 1)
  (global $g (export "g") (mut i64) (i64.const 0))
  (table 2 funcref)
  (elem (i32.const 0) $fib $sum)
  (func $fib (type $t)
    (if (result i64) (i32.lt_u (local.get 0) (i32.const 2))
      (then (i64.extend_i32_u (local.get 0)))
      (else
        (i64.add
          (call $fib (i32.sub (local.get 0) (i32.const 1)))
          (call_indirect (type $t) (i32.sub (local.get 0) (i32.const 2)) (i32.const 0))))))
  (func $sum (type $t) (local $i i32) (local $acc i64) (local $f f64) (local $j i32) (local $x f32)
    (loop $l
      (local.set $acc (i64.add (local.get $acc)
                               (i64.mul (i64.extend_i32_u (local.get $i)) (i64.const 3))))
      (local.set $f (f64.add (local.get $f) (f64.convert_i32_u (local.get $i))))
      (i32.store (i32.mul (local.get $i) (i32.const 4)) (i32.trunc_f64_u (local.get $f)))
      (global.set $g (i64.add (global.get $g) (local.get $acc)))
      ;; an operand stays on the stack across the inner loop
      (i32.const 1000)
      (local.set $j (i32.const 0))
      (loop $inner
        (local.set $x (f32.add (local.get $x) (f32.const 0.5)))
        (i32.store offset=512 (i32.mul (local.get $j) (i32.const 4))
          (i32.add (i32.load offset=512 (i32.mul (local.get $j) (i32.const 4))) (local.get $i)))
        (br_if $inner (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 1)))
                                (i32.const 5))))
      i64.extend_i32_u
      local.get $acc
      i64.add
      local.set $acc
      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                          (local.get 0))))
    (i64.add (local.get $acc) (i64.trunc_f32_u (local.get $x))))
  (func (export "main") (param i32) (result i64)
    (i64.add
      (i64.add (call $fib (local.get 0)) (call_indirect (type $t) (i32.const 30) (i32.const 1)))
      (global.get $g))))
)";

std::shared_ptr<wasm::Module> load(const char* wat, const std::string& flags = "") {
  auto m = std::make_shared<wasm::Module>(wasm::decode_module(test::wat_to_wasm(wat, flags)));
  wasm::validate_module(*m);
  return m;
}

struct Machine {
  std::shared_ptr<wasm::Module> module;
  runtime::Store store;
  runtime::Thread thread{store};
  runtime::ModuleInstance* instance = nullptr;

  Machine(std::shared_ptr<wasm::Module> m, const std::string& mode, runtime::Linker linker = {})
      : module(m), store(test::make_engine(mode)) {
    instance = store.instantiate(module, linker.resolve(*module), thread);
  }
  void count(uint64_t stop_at) {
    store.interrupt().set_counting(true);
    thread.stop_at = stop_at;
  }
  ExecOutcome call_main(Slot arg, Slot& result) {
    return store.engine().call(thread, instance->find_func_export("main"),
                               std::span<const Slot>(&arg, 1), std::span(&result, 1));
  }
  std::vector<uint8_t> memory() const {
    auto bytes = instance->memory0()->bytes();
    return {bytes.begin(), bytes.end()};
  }
  // What a snapshot carries besides the thread (the snapshot code does this
  // for real; the test copies it by hand).
  void copy_state_from(const Machine& other) {
    auto src = other.instance->memory0()->bytes();
    std::memcpy(instance->memory0()->base(), src.data(), src.size());
    for (size_t i = 0; i < instance->globals.size(); ++i)
      instance->globals[i]->value = other.instance->globals[i]->value;
  }
};

struct Reference {
  Slot result = 0;
  std::vector<uint8_t> memory;
  Slot global = 0;
  uint64_t stable_points = 0;
};

Reference run_reference(const std::shared_ptr<wasm::Module>& m, const std::string& mode, Slot arg) {
  Machine mc(m, mode);
  mc.count(0); // count, never stop
  Slot result = 0;
  EXPECT_EQ(mc.call_main(arg, result).kind, ExecOutcome::Kind::Returned);
  return {result, mc.memory(), mc.instance->globals[0]->value, mc.thread.stable_points};
}

const char* const kModes[] = {"interp", "aot", "aot-wide", "jit"};

class AotCheckpoint : public ::testing::Test {
protected:
  void SetUp() override {
    if (!aot::compiler_available()) GTEST_SKIP() << "built without the compiler";
  }
};

TEST_F(AotCheckpoint, UninterruptedRunsAgreeWithTheInterpreter) {
  auto m = load(kProgram);
  Reference ref = run_reference(m, "interp", 12);
  for (const char* mode : {"aot", "aot-wide", "jit"}) {
    Reference r = run_reference(m, mode, 12);
    EXPECT_EQ(r.result, ref.result) << mode;
    EXPECT_EQ(r.memory, ref.memory) << mode;
    EXPECT_EQ(r.global, ref.global) << mode;
    EXPECT_EQ(r.stable_points, ref.stable_points) << mode; // counted like the interpreter
  }
}

// A mirrored memory is a shared mapping that a background checkpoint must
// copy: only code compiled with wide addresses gets one.
TEST_F(AotCheckpoint, OnlyWideAddressCodeGetsAMirroredMemory) {
  auto m = load(kProgram);
  EXPECT_FALSE(Machine(m, "aot").instance->memory0()->mirrored());
  EXPECT_FALSE(Machine(m, "jit").instance->memory0()->mirrored());
  EXPECT_TRUE(Machine(m, "aot-wide").instance->memory0()->mirrored());
}

// Every mode pair: stop at N in one, finish in the other.
TEST_F(AotCheckpoint, EveryModePairRestoresToTheSameEnd) {
  auto m = load(kProgram);
  const Slot arg = 11;
  Reference ref = run_reference(m, "interp", arg);
  ASSERT_GT(ref.stable_points, 200u);
  const uint64_t step = std::max<uint64_t>(1, ref.stable_points / 37);
  int restores = 0;
  for (uint64_t n = 1; n <= ref.stable_points; n += (n < 12 ? 1 : step)) {
    std::map<std::string, runtime::ViewThread> views;
    for (const char* from : kModes) {
      Machine first(m, from);
      first.count(n);
      Slot result = 0;
      ASSERT_EQ(first.call_main(arg, result).kind, ExecOutcome::Kind::Suspended)
          << from << " point " << n;
      runtime::ViewThread view = first.store.engine().capture(first.thread);
      EXPECT_EQ(view.stable_points, n);
      views[from] = view;
      EXPECT_EQ(view, views["interp"]) << "the " << from << " view differs at point " << n;
      for (const char* to : kModes) {
        Machine second(m, to);
        second.copy_state_from(first);
        second.count(0);
        second.store.engine().restore(second.thread, *second.instance, view);
        ExecOutcome out = second.store.engine().resume(second.thread, std::span(&result, 1));
        ASSERT_EQ(out.kind, ExecOutcome::Kind::Returned) << from << "→" << to << " point " << n;
        EXPECT_EQ(result, ref.result) << from << "→" << to << " point " << n;
        EXPECT_EQ(second.memory(), ref.memory) << from << "→" << to << " point " << n;
        EXPECT_EQ(second.instance->globals[0]->value, ref.global) << from << "→" << to;
        EXPECT_EQ(second.thread.stable_points, ref.stable_points)
            << from << "→" << to << " point " << n;
        ++restores;
      }
    }
  }
  EXPECT_GE(restores, 16 * 40);
}

// Stop, resume in place (no capture), stop again further on, and so on.
TEST_F(AotCheckpoint, ResumeInPlaceAfterEachStop) {
  auto m = load(kProgram);
  const Slot arg = 9;
  Reference ref = run_reference(m, "interp", arg);
  for (const char* mode : {"aot", "jit"}) {
    Machine mc(m, mode);
    Slot result = 0;
    mc.count(ref.stable_points / 7);
    ASSERT_EQ(mc.call_main(arg, result).kind, ExecOutcome::Kind::Suspended);
    for (uint64_t k = 2; k < 7; ++k) {
      mc.thread.stop_at = k * ref.stable_points / 7;
      ASSERT_EQ(mc.store.engine().resume(mc.thread, std::span(&result, 1)).kind,
                ExecOutcome::Kind::Suspended)
          << mode << " stop " << k;
      EXPECT_EQ(mc.thread.stable_points, mc.thread.stop_at);
    }
    mc.thread.stop_at = 0;
    ASSERT_EQ(mc.store.engine().resume(mc.thread, std::span(&result, 1)).kind,
              ExecOutcome::Kind::Returned);
    EXPECT_EQ(result, ref.result) << mode;
    EXPECT_EQ(mc.memory(), ref.memory) << mode;
    EXPECT_EQ(mc.thread.stable_points, ref.stable_points) << mode;
  }
}

// A pending request (not counting) stops compiled code at its next poll.
TEST_F(AotCheckpoint, RequestStopsAtTheNextPoll) {
  auto m = load(kProgram);
  Reference ref = run_reference(m, "interp", 10);
  for (const char* mode : {"aot", "jit"}) {
    Machine mc(m, mode);
    mc.store.interrupt().request();
    Slot result = 0;
    ASSERT_EQ(mc.call_main(10, result).kind, ExecOutcome::Kind::Suspended);
    runtime::ViewThread view = mc.store.engine().capture(mc.thread);
    ASSERT_EQ(view.frames.size(), 1u);
    EXPECT_EQ(view.frames[0].kind, FrameKind::FunctionEntry);
    mc.store.interrupt().clear();
    ASSERT_EQ(mc.store.engine().resume(mc.thread, std::span(&result, 1)).kind,
              ExecOutcome::Kind::Returned);
    EXPECT_EQ(result, ref.result);
  }
}

TEST_F(AotCheckpoint, BlockedHostCallIsIssuedAgainInEveryMode) {
  auto m = load(R"(
    (module
      (type $h (func (param i32) (result i32)))
      (import "host" "wait" (func $wait (type $h)))
      (table 1 funcref)
      (elem (i32.const 0) $wait)
      (func (export "main") (param i32) (result i32) (local i32)
        (local.set 1 (i32.mul (local.get 0) (i32.const 7)))
        (i32.add (local.get 1)
          (i32.add (call $wait (i32.add (local.get 0) (i32.const 1)))
                   (call_indirect (type $h) (local.get 0) (i32.const 0))))))
  )");
  int calls = 0;
  int suspend_on_call = 0; // 1-based call number that suspends
  auto make_linker = [&](runtime::Store& store) {
    runtime::Linker linker;
    wasm::FuncType type{{wasm::ValType::I32}, {wasm::ValType::I32}};
    linker.define("host", "wait",
                  runtime::Extern::of(store.add_host_function(
                      {type,
                       [&](runtime::CallContext&, std::span<const Slot> args, std::span<Slot> out) {
                         if (++calls == suspend_on_call) return runtime::HostResult::suspend();
                         out[0] = args[0] * 100;
                         return runtime::HostResult::ok();
                       },
                       "host", "wait"})));
    return linker;
  };
  const Slot expected = 35 + 600 + 500;
  // Suspend the direct call (1st) or the call_indirect (2nd), then finish.
  for (int which : {1, 2}) {
    for (const char* from : kModes) {
      for (const char* to : kModes) {
        calls = 0;
        suspend_on_call = which;
        runtime::Store store1(test::make_engine(from));
        runtime::Thread thread1(store1);
        auto* inst1 = store1.instantiate(m, make_linker(store1).resolve(*m), thread1);
        Slot arg = 5, result = 0;
        ASSERT_EQ(store1.engine()
                      .call(thread1, inst1->find_func_export("main"),
                            std::span<const Slot>(&arg, 1), std::span(&result, 1))
                      .kind,
                  ExecOutcome::Kind::Suspended);
        runtime::ViewThread view = store1.engine().capture(thread1);
        ASSERT_EQ(view.frames.size(), 1u);
        const runtime::ViewFrame& f = view.frames[0];
        EXPECT_EQ(f.kind, FrameKind::HostCall);
        if (which == 1) {
          ASSERT_EQ(f.stack.size(), 2u); // the local's copy below, the argument on top
          EXPECT_EQ(f.stack[1].bits, 6u);
        } else {
          ASSERT_EQ(f.stack.size(), 4u); // local, first result, argument, table index
          EXPECT_EQ(f.stack[1].bits, 600u);
          EXPECT_EQ(f.stack[3].bits, 0u);
        }
        EXPECT_EQ(f.stack[0].bits, 35u);

        runtime::Store store2(test::make_engine(to));
        runtime::Thread thread2(store2);
        auto* inst2 = store2.instantiate(m, make_linker(store2).resolve(*m), thread2);
        store2.engine().restore(thread2, *inst2, view);
        ASSERT_EQ(store2.engine().resume(thread2, std::span(&result, 1)).kind,
                  ExecOutcome::Kind::Returned)
            << from << "→" << to;
        EXPECT_EQ(result, expected) << from << "→" << to << " call " << which;
        EXPECT_EQ(calls, 3) << from << "→" << to; // the suspended call was issued again
      }
    }
  }
}

// A thread blocked in memory.atomic.wait32 stops there for a checkpoint
// request, keeping its place in the wait queue, in every mode; the view has
// every operand (the wait's three on top) and resumes in every mode as the
// queues say: notified (returns 0, "ok"), still queued with no time left
// (2, "timed-out"), or in place after a notify that came while it was
// stopped.
TEST_F(AotCheckpoint, AtomicWaitStopsAndResumesInEveryMode) {
  auto m = load(R"(
    (module
      (memory 1 1 shared)
      (func (export "main") (param i32) (result i32) (local i32)
        (local.set 1 (i32.mul (local.get 0) (i32.const 7)))
        (i32.add (local.get 1)
          (i32.mul (i32.const 100)
            (memory.atomic.wait32 offset=4 (i32.const 4) (i32.const 0) (i64.const 60000000000))))))
  )",
                "--enable-threads");
  auto stop_in_wait = [&](runtime::Store& store, runtime::Thread& thread,
                          runtime::ModuleInstance* inst) {
    // The request comes while the thread waits.
    std::thread requester([&] {
      while (inst->memory0()->wait_queues()->waiting_at(8) == 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      store.interrupt().request();
    });
    Slot arg = 5, result = 0;
    EXPECT_EQ(store.engine()
                  .call(thread, inst->find_func_export("main"), std::span<const Slot>(&arg, 1),
                        std::span(&result, 1))
                  .kind,
              ExecOutcome::Kind::Suspended);
    requester.join();
    store.interrupt().clear();
  };
  for (const char* from : kModes) {
    runtime::Store store1(test::make_engine(from));
    runtime::Thread thread1(store1);
    auto* inst1 = store1.instantiate(m, runtime::Linker().resolve(*m), thread1);
    stop_in_wait(store1, thread1, inst1);
    runtime::ViewThread view = store1.engine().capture(thread1);
    ASSERT_EQ(view.frames.size(), 1u);
    const runtime::ViewFrame& f = view.frames[0];
    EXPECT_EQ(f.kind, FrameKind::AtomicWait) << from;
    ASSERT_EQ(f.stack.size(), 5u) << from; // the local's copy, 100, address, expected, timeout
    EXPECT_EQ(f.stack[0].bits, 35u);
    EXPECT_EQ(f.stack[1].bits, 100u);
    EXPECT_EQ(f.stack[2].bits, 4u);
    EXPECT_EQ(f.stack[4].bits, 60000000000u);
    runtime::WaitQueues& queues1 = *inst1->memory0()->wait_queues();
    auto state = queues1.capture();
    ASSERT_EQ(state.queues.size(), 1u);
    EXPECT_EQ(state.queues[0].addr, 8u);
    EXPECT_EQ(state.queues[0].waiters[0].thread_id, 0u);

    // In place: a notify while it is stopped wakes it when it resumes.
    EXPECT_EQ(queues1.notify(8, 1), 1u);
    Slot result = 0;
    ASSERT_EQ(store1.engine().resume(thread1, std::span(&result, 1)).kind,
              ExecOutcome::Kind::Returned)
        << from;
    EXPECT_EQ(result, 35u) << from;

    for (const char* to : kModes) {
      for (bool notified : {true, false}) {
        runtime::Store store2(test::make_engine(to));
        runtime::Thread thread2(store2);
        auto* inst2 = store2.instantiate(m, runtime::Linker().resolve(*m), thread2);
        runtime::WaitQueues::State restored;
        if (notified)
          restored.woken.push_back({0, 8});
        else
          restored.queues.push_back({8, {{0, int64_t(0)}}});
        inst2->memory0()->wait_queues()->restore(restored);
        store2.engine().restore(thread2, *inst2, view);
        ASSERT_EQ(store2.engine().resume(thread2, std::span(&result, 1)).kind,
                  ExecOutcome::Kind::Returned)
            << from << "→" << to;
        EXPECT_EQ(result, notified ? 35u : 235u) << from << "→" << to;
        EXPECT_TRUE(inst2->memory0()->wait_queues()->capture().empty());
      }
    }
  }
}

TEST_F(AotCheckpoint, RestoreRejectsViewsThatDoNotFit) {
  auto m = load(kProgram);
  Machine mc(m, "interp");
  mc.count(40);
  Slot result = 0;
  ASSERT_EQ(mc.call_main(8, result).kind, ExecOutcome::Kind::Suspended);
  runtime::ViewThread view = mc.store.engine().capture(mc.thread);
  auto expect_refused = [&](runtime::ViewThread bad) {
    Machine fresh(m, "aot");
    EXPECT_THROW(fresh.store.engine().restore(fresh.thread, *fresh.instance, bad), Error);
  };
  auto bad = view;
  bad.frames.back().wasm_offset += 1; // not a stable point
  expect_refused(bad);
  bad = view;
  bad.frames.back().locals.pop_back();
  expect_refused(bad);
  bad = view;
  bad.frames.back().locals[0].type = wasm::ValType::F32;
  expect_refused(bad);
  bad = view;
  bad.frames[0].func_index = 99;
  expect_refused(bad);
  bad = view;
  bad.frames.clear();
  expect_refused(bad);
  bad = view;
  bad.frames.back().kind = FrameKind::CallSite; // a call site cannot be innermost
  expect_refused(bad);
  if (view.frames.size() > 1) {
    bad = view;
    std::swap(bad.frames[0], bad.frames[1]); // the caller does not call this callee
    expect_refused(bad);
  }
}

} // namespace
} // namespace tern
