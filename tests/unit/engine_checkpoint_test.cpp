// Checkpoints in the wasm view, in every engine (tests/unit/test_engines.h):
// stop a program at its N-th stable point in one engine, capture the
// thread, rebuild it in a fresh store in the same or another engine,
// resume, and finish with exactly the result, memory, globals and
// stable-point count of an uninterrupted run. The views every engine
// captures at the same point must be identical: they are the one thing all
// engines agree on (docs/design.md §1).
#include "runtime/store.h"
#include "runtime/thread.h"
#include "tern/error.h"
#include "test_engines.h"
#include "wasm/decoder.h"
#include "wasm/validator.h"
#include "wat.h"

#include <chrono>
#include <cstring>
#include <gtest/gtest.h>
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

// main(x) = x * 7 + wait(x + 1) + call_indirect wait(x), where wait is a host
// function that may suspend: the call is then issued again after a restore.
constexpr const char* kHostCallProgram = R"(
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
  ExecOutcome resume(Slot& result) { return store.engine().resume(thread, std::span(&result, 1)); }
  runtime::ViewThread capture() { return store.engine().capture(thread); }
  void restore(const runtime::ViewThread& view) { store.engine().restore(thread, *instance, view); }
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
  // Stopped at stable point n of main(arg): its wasm view.
  runtime::ViewThread stop_at(uint64_t n, Slot arg) {
    count(n);
    Slot result = 0;
    EXPECT_EQ(call_main(arg, result).kind, ExecOutcome::Kind::Suspended) << "point " << n;
    runtime::ViewThread view = capture();
    EXPECT_EQ(view.stable_points, n);
    return view;
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

// The end of a resumed run must be the reference's.
void expect_reference_end(Machine& mc, Slot result, const Reference& ref, const std::string& at) {
  EXPECT_EQ(result, ref.result) << at;
  EXPECT_EQ(mc.memory(), ref.memory) << at;
  EXPECT_EQ(mc.instance->globals[0]->value, ref.global) << at;
  EXPECT_EQ(mc.thread.stable_points, ref.stable_points) << at;
}

// --- one engine ----------------------------------------------------------------

class EngineCheckpoint : public ::testing::TestWithParam<std::string> {
protected:
  const std::string& mode() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Engines, EngineCheckpoint, ::testing::ValuesIn(test::engine_modes()),
                         test::mode_name);

TEST_P(EngineCheckpoint, UninterruptedRunEqualsTheInterpreters) {
  auto m = load(kProgram);
  Reference ref = run_reference(m, "interp", 12);
  Reference r = run_reference(m, mode(), 12);
  EXPECT_EQ(r.result, ref.result);
  EXPECT_EQ(r.memory, ref.memory);
  EXPECT_EQ(r.global, ref.global);
  EXPECT_EQ(r.stable_points, ref.stable_points); // counted like the interpreter
}

// Stop, resume in place (no capture), stop again further on, and so on.
TEST_P(EngineCheckpoint, ResumeInPlaceAfterEachStop) {
  auto m = load(kProgram);
  const Slot arg = 9;
  Reference ref = run_reference(m, "interp", arg);
  Machine mc(m, mode());
  Slot result = 0;
  mc.count(ref.stable_points / 7);
  ASSERT_EQ(mc.call_main(arg, result).kind, ExecOutcome::Kind::Suspended);
  for (uint64_t k = 2; k < 7; ++k) {
    mc.thread.stop_at = k * ref.stable_points / 7;
    ASSERT_EQ(mc.resume(result).kind, ExecOutcome::Kind::Suspended) << "stop " << k;
    EXPECT_EQ(mc.thread.stable_points, mc.thread.stop_at);
  }
  mc.thread.stop_at = 0;
  ASSERT_EQ(mc.resume(result).kind, ExecOutcome::Kind::Returned);
  expect_reference_end(mc, result, ref, "after 6 stops");
}

// A pending request (not counting) stops the program at its next poll: the
// entry of the function called.
TEST_P(EngineCheckpoint, RequestStopsAtTheNextPoll) {
  auto m = load(kProgram);
  Reference ref = run_reference(m, "interp", 10);
  Machine mc(m, mode());
  mc.store.interrupt().request();
  Slot result = 0;
  ASSERT_EQ(mc.call_main(10, result).kind, ExecOutcome::Kind::Suspended);
  runtime::ViewThread view = mc.capture();
  ASSERT_EQ(view.frames.size(), 1u);
  EXPECT_EQ(view.frames[0].kind, FrameKind::FunctionEntry);
  mc.store.interrupt().clear();
  ASSERT_EQ(mc.resume(result).kind, ExecOutcome::Kind::Returned);
  EXPECT_EQ(result, ref.result);
}

// Stop, restore in a fresh store and stop again, three times, then finish.
TEST_P(EngineCheckpoint, ChainedRestoresAcrossThreeHops) {
  auto m = load(kProgram);
  const Slot arg = 10;
  Reference ref = run_reference(m, "interp", arg);
  const uint64_t stops[] = {ref.stable_points / 5, ref.stable_points / 2, ref.stable_points - 3};

  auto hop = std::make_unique<Machine>(m, mode());
  runtime::ViewThread view = hop->stop_at(stops[0], arg);
  Slot result = 0;
  for (uint64_t next : {stops[1], stops[2], uint64_t(0)}) {
    auto fresh = std::make_unique<Machine>(m, mode());
    fresh->copy_state_from(*hop);
    fresh->restore(view);
    hop = std::move(fresh);
    hop->count(next); // 0: to the end
    ExecOutcome out = hop->resume(result);
    if (next == 0) {
      ASSERT_EQ(out.kind, ExecOutcome::Kind::Returned);
      break;
    }
    ASSERT_EQ(out.kind, ExecOutcome::Kind::Suspended) << "point " << next;
    view = hop->capture();
  }
  expect_reference_end(*hop, result, ref, "after three hops");
}

TEST_P(EngineCheckpoint, RestoreRejectsViewsThatDoNotFit) {
  auto m = load(kProgram);
  runtime::ViewThread view = Machine(m, "interp").stop_at(40, 8);
  auto expect_refused = [&](runtime::ViewThread bad, const char* what) {
    Machine fresh(m, mode());
    EXPECT_THROW(fresh.restore(bad), Error) << what;
  };
  auto bad = view;
  bad.frames.back().wasm_offset += 1;
  expect_refused(bad, "not a stable point");
  bad = view;
  bad.frames.back().locals.pop_back();
  expect_refused(bad, "a local missing");
  bad = view;
  bad.frames.back().locals[0].type = wasm::ValType::F32;
  expect_refused(bad, "a local of the wrong type");
  bad = view;
  bad.frames[0].func_index = 99;
  expect_refused(bad, "no such function");
  bad = view;
  bad.frames.clear();
  expect_refused(bad, "no frames");
  bad = view;
  bad.frames.back().kind = FrameKind::CallSite;
  expect_refused(bad, "a call site cannot be innermost");
  if (view.frames.size() > 1) {
    bad = view;
    std::swap(bad.frames[0], bad.frames[1]);
    expect_refused(bad, "the caller does not call this callee");
  }
}

// A mirrored memory is a shared mapping that a background checkpoint must
// copy: only code compiled with wide addresses gets one.
TEST_P(EngineCheckpoint, OnlyWideAddressCodeGetsAMirroredMemory) {
  auto m = load(kProgram);
  EXPECT_EQ(Machine(m, mode()).instance->memory0()->mirrored(), mode() == "aot-wide");
}

// --- one engine to another --------------------------------------------------------

class EngineCheckpointPair : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {
protected:
  const std::string& from() const { return std::get<0>(GetParam()); }
  const std::string& to() const { return std::get<1>(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Engines, EngineCheckpointPair, ::testing::ValuesIn(test::engine_pairs()),
                         test::pair_name);

// Stop at N in one engine (every N at first, then spread over the run),
// finish in the other.
TEST_P(EngineCheckpointPair, EveryStopPointRestoresToTheSameEnd) {
  auto m = load(kProgram);
  const Slot arg = 11;
  Reference ref = run_reference(m, "interp", arg);
  ASSERT_GT(ref.stable_points, 200u);
  const uint64_t step = std::max<uint64_t>(1, ref.stable_points / 37);
  int restores = 0;
  for (uint64_t n = 1; n <= ref.stable_points; n += (n < 12 ? 1 : step)) {
    const std::string at = from() + " -> " + to() + " at point " + std::to_string(n);
    Machine first(m, from());
    runtime::ViewThread view = first.stop_at(n, arg);
    EXPECT_EQ(view, Machine(m, "interp").stop_at(n, arg)) << "the view differs, " << at;
    ASSERT_FALSE(view.frames.empty()) << at;
    FrameKind innermost = view.frames.back().kind;
    EXPECT_TRUE(innermost == FrameKind::LoopHeader || innermost == FrameKind::FunctionEntry) << at;
    for (size_t i = 0; i + 1 < view.frames.size(); ++i)
      EXPECT_EQ(view.frames[i].kind, FrameKind::CallSite) << at;

    Machine second(m, to());
    second.copy_state_from(first);
    second.count(0);
    second.restore(view);
    EXPECT_EQ(second.capture(), view) << "restore is not exact, " << at;
    Slot result = 0;
    ASSERT_EQ(second.resume(result).kind, ExecOutcome::Kind::Returned) << at;
    expect_reference_end(second, result, ref, at);
    ++restores;
  }
  EXPECT_GE(restores, 40);
}

// A host call that suspends (a checkpoint requested while it blocked) is
// issued again after the restore, from a direct call and from call_indirect.
TEST_P(EngineCheckpointPair, BlockedHostCallIsIssuedAgain) {
  auto m = load(kHostCallProgram);
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
  for (int which : {1, 2}) { // the direct call, the call_indirect
    const std::string at = from() + " -> " + to() + ", call " + std::to_string(which);
    calls = 0;
    suspend_on_call = which;
    runtime::Store store1(test::make_engine(from()));
    runtime::Thread thread1(store1);
    auto* inst1 = store1.instantiate(m, make_linker(store1).resolve(*m), thread1);
    Slot arg = 5, result = 0;
    ASSERT_EQ(store1.engine()
                  .call(thread1, inst1->find_func_export("main"), std::span<const Slot>(&arg, 1),
                        std::span(&result, 1))
                  .kind,
              ExecOutcome::Kind::Suspended)
        << at;
    runtime::ViewThread view = store1.engine().capture(thread1);
    ASSERT_EQ(view.frames.size(), 1u) << at;
    const runtime::ViewFrame& f = view.frames[0];
    EXPECT_EQ(f.kind, FrameKind::HostCall) << at;
    if (which == 1) {
      ASSERT_EQ(f.stack.size(), 2u) << at; // the local's copy below, the argument on top
      EXPECT_EQ(f.stack[1].bits, 6u) << at;
    } else {
      ASSERT_EQ(f.stack.size(), 4u) << at; // local, first result, argument, table index
      EXPECT_EQ(f.stack[1].bits, 600u) << at;
      EXPECT_EQ(f.stack[3].bits, 0u) << at;
    }
    EXPECT_EQ(f.stack[0].bits, 35u) << at;

    runtime::Store store2(test::make_engine(to()));
    runtime::Thread thread2(store2);
    auto* inst2 = store2.instantiate(m, make_linker(store2).resolve(*m), thread2);
    store2.engine().restore(thread2, *inst2, view);
    ASSERT_EQ(store2.engine().resume(thread2, std::span(&result, 1)).kind,
              ExecOutcome::Kind::Returned)
        << at;
    EXPECT_EQ(result, expected) << at;
    EXPECT_EQ(calls, 3) << at; // the suspended call was issued again
  }
}

// --- a thread blocked in memory.atomic.wait --------------------------------------

// A wait of 60 s on a shared memory, its result scaled into the function's:
// 35 when woken ("ok", 0), 235 when timed out (2).
constexpr const char* kAtomicWaitProgram = R"(
  (module
    (memory 1 1 shared)
    (func (export "main") (param i32) (result i32) (local i32)
      (local.set 1 (i32.mul (local.get 0) (i32.const 7)))
      (i32.add (local.get 1)
        (i32.mul (i32.const 100)
          (memory.atomic.wait32 offset=4 (i32.const 4) (i32.const 0) (i64.const 60000000000))))))
)";

// Runs main(5) of kAtomicWaitProgram on `mc` and stops it by a checkpoint
// request that comes while it waits: its wasm view.
runtime::ViewThread stop_in_wait(Machine& mc) {
  runtime::WaitQueues& queues = *mc.instance->memory0()->wait_queues();
  std::thread requester([&] {
    while (queues.waiting_at(8) == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    mc.store.interrupt().request();
  });
  Slot result = 0;
  EXPECT_EQ(mc.call_main(5, result).kind, ExecOutcome::Kind::Suspended);
  requester.join();
  mc.store.interrupt().clear();
  return mc.capture();
}

// A thread blocked in memory.atomic.wait32 stops there for a checkpoint
// request, keeping its place in the wait queue; the view has every operand
// (the wait's three on top), and continued in place after a notify that
// came while it was stopped, it is woken.
TEST_P(EngineCheckpoint, AtomicWaitStopsThereAndResumesInPlace) {
  Machine mc(load(kAtomicWaitProgram, "--enable-threads"), mode());
  runtime::ViewThread view = stop_in_wait(mc);
  ASSERT_EQ(view.frames.size(), 1u);
  const runtime::ViewFrame& f = view.frames[0];
  EXPECT_EQ(f.kind, FrameKind::AtomicWait);
  ASSERT_EQ(f.stack.size(), 5u); // the local's copy, 100, address, expected, timeout
  EXPECT_EQ(f.stack[0].bits, 35u);
  EXPECT_EQ(f.stack[1].bits, 100u);
  EXPECT_EQ(f.stack[2].bits, 4u);
  EXPECT_EQ(f.stack[4].bits, 60000000000u);
  runtime::WaitQueues& queues = *mc.instance->memory0()->wait_queues();
  auto state = queues.capture();
  ASSERT_EQ(state.queues.size(), 1u);
  EXPECT_EQ(state.queues[0].addr, 8u);
  EXPECT_EQ(state.queues[0].waiters[0].thread_id, 0u);

  EXPECT_EQ(queues.notify(8, 1), 1u);
  Slot result = 0;
  ASSERT_EQ(mc.resume(result).kind, ExecOutcome::Kind::Returned);
  EXPECT_EQ(result, 35u);
}

// Restored in another engine, the waiter resumes as the queues say:
// notified (returns 0, "ok") or still queued with no time left (2,
// "timed-out").
TEST_P(EngineCheckpointPair, AtomicWaitResumesAsTheQueuesSay) {
  auto m = load(kAtomicWaitProgram, "--enable-threads");
  Machine source(m, from());
  runtime::ViewThread view = stop_in_wait(source);
  for (bool notified : {true, false}) {
    Machine target(m, to());
    runtime::WaitQueues& queues = *target.instance->memory0()->wait_queues();
    runtime::WaitQueues::State restored;
    if (notified)
      restored.woken.push_back({0, 8});
    else
      restored.queues.push_back({8, {{0, int64_t(0)}}});
    queues.restore(restored);
    target.restore(view);
    Slot result = 0;
    ASSERT_EQ(target.resume(result).kind, ExecOutcome::Kind::Returned)
        << (notified ? "notified" : "timed out");
    EXPECT_EQ(result, notified ? 35u : 235u);
    EXPECT_TRUE(queues.capture().empty());
  }
}

} // namespace
} // namespace tern
