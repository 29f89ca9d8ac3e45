// Interpreter suspension in the wasm view: stop at the N-th stable point,
// capture the thread, rebuild it in a fresh store, resume, and finish with
// exactly the result, memory and globals of an uninterrupted run.
#include <cstring>

#include <gtest/gtest.h>

#include "interp/engine.h"
#include "runtime/store.h"
#include "runtime/thread.h"
#include "wasm/decoder.h"
#include "wasm/validator.h"
#include "wat.h"

namespace tern {
namespace {

using runtime::ExecOutcome;
using runtime::FrameKind;
using runtime::Slot;

// Recursion through call and call_indirect with operands live across the
// calls, a loop writing memory and a global, and values of every kind of
// local.
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
  (func $sum (type $t) (local $i i32) (local $acc i64) (local $f f64)
    (loop $l
      (local.set $acc (i64.add (local.get $acc)
                               (i64.mul (i64.extend_i32_u (local.get $i)) (i64.const 3))))
      (local.set $f (f64.add (local.get $f) (f64.convert_i32_u (local.get $i))))
      (i32.store (i32.mul (local.get $i) (i32.const 4)) (i32.trunc_f64_u (local.get $f)))
      (global.set $g (i64.add (global.get $g) (local.get $acc)))
      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                          (local.get 0))))
    (local.get $acc))
  (func (export "main") (param i32) (result i64)
    (i64.add
      (i64.add (call $fib (local.get 0)) (call_indirect (type $t) (i32.const 60) (i32.const 1)))
      (global.get $g))))
)";

struct Machine {
  std::shared_ptr<wasm::Module> module;
  runtime::Store store{interp::make_engine()};
  runtime::Thread thread{store};
  runtime::ModuleInstance* instance = nullptr;

  explicit Machine(std::shared_ptr<wasm::Module> m, runtime::Linker linker = {}) : module(m) {
    instance = store.instantiate(module, linker.resolve(*module), thread);
  }
  void count(uint64_t stop_at) {
    store.interrupt().set_counting(true);
    thread.stop_at = stop_at;
  }
  std::vector<uint8_t> memory() const {
    auto bytes = instance->memory0()->bytes();
    return {bytes.begin(), bytes.end()};
  }
  // What a snapshot would carry besides the thread (the snapshot code does
  // this for real; here the test copies it by hand).
  void copy_state_from(const Machine& other) {
    auto src = other.instance->memory0()->bytes();
    std::memcpy(instance->memory0()->base(), src.data(), src.size());
    for (size_t i = 0; i < instance->globals.size(); ++i)
      instance->globals[i]->value = other.instance->globals[i]->value;
  }
};

std::shared_ptr<wasm::Module> load(const char* wat) {
  auto m = std::make_shared<wasm::Module>(wasm::decode_module(test::wat_to_wasm(wat)));
  wasm::validate_module(*m);
  return m;
}

struct Reference {
  Slot result = 0;
  std::vector<uint8_t> memory;
  Slot global = 0;
  uint64_t stable_points = 0;
};

Reference run_reference(const std::shared_ptr<wasm::Module>& m, Slot arg) {
  Machine mc(m);
  mc.count(0); // count, never stop
  Slot result = 0;
  ExecOutcome out = mc.store.engine().call(mc.thread, mc.instance->find_func_export("main"),
                                           std::span<const Slot>(&arg, 1), std::span(&result, 1));
  EXPECT_EQ(out.kind, ExecOutcome::Kind::Returned);
  return {result, mc.memory(), mc.instance->globals[0]->value, mc.thread.stable_points};
}

// Stops `mc` at stable point `n`; returns its wasm view.
runtime::ViewThread stop_at(Machine& mc, uint64_t n, const std::function<ExecOutcome()>& go) {
  mc.count(n);
  ExecOutcome out = go();
  EXPECT_EQ(out.kind, ExecOutcome::Kind::Suspended) << "point " << n;
  runtime::ViewThread view = mc.store.engine().capture(mc.thread);
  EXPECT_EQ(view.stable_points, n);
  return view;
}

TEST(InterpSuspend, EveryStopPointRestoresToTheSameEnd) {
  auto m = load(kProgram);
  const Slot arg = 12;
  Reference ref = run_reference(m, arg);
  ASSERT_GT(ref.stable_points, 100u);

  const uint64_t step = std::max<uint64_t>(1, ref.stable_points / 97);
  int restores = 0;
  for (uint64_t n = 1; n <= ref.stable_points; n += (n < 20 ? 1 : step)) {
    Machine first(m);
    Slot result = 0;
    auto view = stop_at(first, n, [&] {
      return first.store.engine().call(first.thread, first.instance->find_func_export("main"),
                                       std::span<const Slot>(&arg, 1), std::span(&result, 1));
    });
    ASSERT_FALSE(view.frames.empty());
    FrameKind innermost = view.frames.back().kind;
    EXPECT_TRUE(innermost == FrameKind::LoopHeader || innermost == FrameKind::FunctionEntry);
    for (size_t i = 0; i + 1 < view.frames.size(); ++i)
      EXPECT_EQ(view.frames[i].kind, FrameKind::CallSite);

    Machine second(m);
    second.copy_state_from(first);
    second.count(0);
    second.store.engine().restore(second.thread, *second.instance, view);
    EXPECT_EQ(second.store.engine().capture(second.thread), view); // restore is exact
    ExecOutcome out = second.store.engine().resume(second.thread, std::span(&result, 1));
    ASSERT_EQ(out.kind, ExecOutcome::Kind::Returned) << "point " << n;
    EXPECT_EQ(result, ref.result) << "point " << n;
    EXPECT_EQ(second.memory(), ref.memory) << "point " << n;
    EXPECT_EQ(second.instance->globals[0]->value, ref.global) << "point " << n;
    EXPECT_EQ(second.thread.stable_points, ref.stable_points) << "point " << n;
    ++restores;
  }
  EXPECT_GE(restores, 50);
}

TEST(InterpSuspend, ChainedRestoresAcrossThreeHops) {
  auto m = load(kProgram);
  const Slot arg = 10;
  Reference ref = run_reference(m, arg);
  const uint64_t stops[] = {ref.stable_points / 5, ref.stable_points / 2, ref.stable_points - 3};

  auto hop = std::make_unique<Machine>(m);
  Slot result = 0;
  auto view = stop_at(*hop, stops[0], [&] {
    return hop->store.engine().call(hop->thread, hop->instance->find_func_export("main"),
                                    std::span<const Slot>(&arg, 1), std::span(&result, 1));
  });
  for (uint64_t next : {stops[1], stops[2], uint64_t(0)}) {
    auto fresh = std::make_unique<Machine>(m);
    fresh->copy_state_from(*hop);
    fresh->store.engine().restore(fresh->thread, *fresh->instance, view);
    hop = std::move(fresh);
    if (next == 0) {
      hop->count(0);
      ASSERT_EQ(hop->store.engine().resume(hop->thread, std::span(&result, 1)).kind,
                ExecOutcome::Kind::Returned);
      break;
    }
    view = stop_at(*hop, next,
                   [&] { return hop->store.engine().resume(hop->thread, std::span(&result, 1)); });
  }
  EXPECT_EQ(result, ref.result);
  EXPECT_EQ(hop->memory(), ref.memory);
  EXPECT_EQ(hop->thread.stable_points, ref.stable_points);
}

TEST(InterpSuspend, BlockedHostCallIsIssuedAgainAfterRestore) {
  auto m = load(R"(
    (module
      (import "host" "wait" (func $wait (param i32) (result i32)))
      (func (export "main") (param i32) (result i32) (local i32)
        (local.set 1 (i32.mul (local.get 0) (i32.const 7)))
        (i32.add (local.get 1) (call $wait (i32.add (local.get 0) (i32.const 1))))))
  )");
  int calls = 0;
  bool suspend_next = true;
  auto make_linker = [&](runtime::Store& store) {
    runtime::Linker linker;
    wasm::FuncType type{{wasm::ValType::I32}, {wasm::ValType::I32}};
    linker.define("host", "wait",
                  runtime::Extern::of(store.add_host_function(
                      {type,
                       [&](runtime::CallContext&, std::span<const Slot> args, std::span<Slot> out) {
                         ++calls;
                         if (suspend_next) return runtime::HostResult::suspend();
                         out[0] = args[0] * 100;
                         return runtime::HostResult::ok();
                       },
                       "host", "wait"})));
    return linker;
  };
  runtime::Store store1(interp::make_engine());
  runtime::Thread thread1(store1);
  auto* inst1 = store1.instantiate(m, make_linker(store1).resolve(*m), thread1);
  Slot arg = 5, result = 0;
  ExecOutcome out = store1.engine().call(thread1, inst1->find_func_export("main"),
                                         std::span<const Slot>(&arg, 1), std::span(&result, 1));
  ASSERT_EQ(out.kind, ExecOutcome::Kind::Suspended);
  runtime::ViewThread view = store1.engine().capture(thread1);
  ASSERT_EQ(view.frames.size(), 1u);
  const runtime::ViewFrame& f = view.frames[0];
  EXPECT_EQ(f.kind, FrameKind::HostCall);
  ASSERT_EQ(f.stack.size(), 2u); // the local's copy below, the argument on top
  EXPECT_EQ(f.stack[0].bits, 35u);
  EXPECT_EQ(f.stack[1].bits, 6u);

  runtime::Store store2(interp::make_engine());
  runtime::Thread thread2(store2);
  auto* inst2 = store2.instantiate(m, make_linker(store2).resolve(*m), thread2);
  suspend_next = false;
  store2.engine().restore(thread2, *inst2, view);
  ASSERT_EQ(store2.engine().resume(thread2, std::span(&result, 1)).kind,
            ExecOutcome::Kind::Returned);
  EXPECT_EQ(result, 35u + 600u);
  EXPECT_EQ(calls, 2);
}

TEST(InterpSuspend, RestoreRejectsViewsThatDoNotFit) {
  auto m = load(kProgram);
  Machine mc(m);
  Slot arg = 8, result = 0;
  auto view = stop_at(mc, 40, [&] {
    return mc.store.engine().call(mc.thread, mc.instance->find_func_export("main"),
                                  std::span<const Slot>(&arg, 1), std::span(&result, 1));
  });
  auto expect_refused = [&](runtime::ViewThread bad) {
    Machine fresh(m);
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
  bad.frames.back().kind = FrameKind::CallSite;
  expect_refused(bad);
}

} // namespace
} // namespace tern
