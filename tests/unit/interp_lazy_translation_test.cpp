// The interpreter translates a function on its first call (interp/code.h),
// not when the module is instantiated: what must hold is that only called
// functions are translated, that a call, a call_indirect, a restore into a
// function never called in this process and a trap inside a function
// translated on the way all behave as if everything had been translated at
// once, and that validation still covers every function before anything
// runs (a module whose never-called function is invalid does not run).
#include "interp/code.h"
#include "interp/engine.h"
#include "runtime/instance.h"
#include "runtime/store.h"
#include "runtime/thread.h"
#include "tern/error.h"
#include "wasm/decoder.h"
#include "wasm/validator.h"
#include "wat.h"

#include <gtest/gtest.h>

namespace tern {
namespace {

using runtime::ExecOutcome;
using runtime::Slot;

constexpr const char* kProgram = R"(
(module
  (type $t (func (param i32) (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) $double $never)
  (func $double (type $t) (i32.mul (local.get 0) (i32.const 2)))
  (func $never (type $t) (i32.add (local.get 0) (i32.const 1000)))
  (func $loop (param i32) (result i32) (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get 0))))
    (local.get $i))
  (func $trap (param i32) (result i32) (i32.div_u (local.get 0) (i32.const 0)))
  (func (export "direct") (param i32) (result i32) (call $double (local.get 0)))
  (func (export "indirect") (param i32) (result i32)
    (call_indirect (type $t) (local.get 0) (i32.const 0)))
  (func (export "loop") (param i32) (result i32) (call $loop (local.get 0)))
  (func (export "trap") (param i32) (result i32) (call $trap (local.get 0))))
)";

struct Instance {
  std::shared_ptr<wasm::Module> module;
  std::unique_ptr<runtime::Store> store;
  std::unique_ptr<runtime::Thread> thread;
  runtime::ModuleInstance* inst = nullptr;

  Instance() {
    module = std::make_shared<wasm::Module>(wasm::decode_module(test::wat_to_wasm(kProgram)));
    wasm::validate_module(*module);
    store = std::make_unique<runtime::Store>(interp::make_engine());
    thread = std::make_unique<runtime::Thread>(*store);
    inst = store->instantiate(module, {}, *thread);
  }
  bool translated(uint32_t func_index) const {
    return static_cast<const interp::CompiledFunction*>(inst->funcs[func_index]->code)
        ->translated();
  }
  ExecOutcome call(const char* name, Slot arg, Slot& result) {
    return store->engine().call(*thread, inst->find_func_export(name),
                                std::span<const Slot>(&arg, 1), std::span(&result, 1));
  }
};

constexpr uint32_t kDouble = 0, kNever = 1, kLoop = 2, kTrap = 3, kDirect = 4, kIndirect = 5;

TEST(InterpLazyTranslation, NothingIsTranslatedBeforeItIsCalled) {
  Instance t;
  for (uint32_t f = 0; f < t.module->functions.size(); ++f) EXPECT_FALSE(t.translated(f)) << f;
}

TEST(InterpLazyTranslation, ACallTranslatesTheCalleeOnly) {
  Instance t;
  Slot r = 0;
  ASSERT_EQ(t.call("direct", 21, r).kind, ExecOutcome::Kind::Returned);
  EXPECT_EQ(r, 42u);
  EXPECT_TRUE(t.translated(kDirect));
  EXPECT_TRUE(t.translated(kDouble));
  EXPECT_FALSE(t.translated(kNever));
  EXPECT_FALSE(t.translated(kIndirect));
  // Called again: the same code, not translated a second time.
  auto entry = [&t] {
    return static_cast<const interp::CompiledFunction*>(t.inst->funcs[kDouble]->code)->entry();
  };
  const interp::Word* first = entry();
  ASSERT_EQ(t.call("direct", 5, r).kind, ExecOutcome::Kind::Returned);
  EXPECT_EQ(r, 10u);
  EXPECT_EQ(entry(), first);
}

TEST(InterpLazyTranslation, CallIndirectTranslatesThroughTheTable) {
  Instance t;
  Slot r = 0;
  ASSERT_EQ(t.call("indirect", 8, r).kind, ExecOutcome::Kind::Returned);
  EXPECT_EQ(r, 16u);
  EXPECT_TRUE(t.translated(kDouble));
  EXPECT_FALSE(t.translated(kNever));
}

TEST(InterpLazyTranslation, ATrapInAFreshlyTranslatedFunctionHasItsBacktrace) {
  Instance t;
  Slot r = 0;
  ExecOutcome out = t.call("trap", 1, r);
  ASSERT_EQ(out.kind, ExecOutcome::Kind::Trapped);
  EXPECT_EQ(out.trap.message, "integer divide by zero");
  ASSERT_EQ(out.trap.backtrace.size(), 2u);
  EXPECT_EQ(out.trap.backtrace[0].func_index, kTrap);
  EXPECT_EQ(out.trap.backtrace[1].func_index, kTrap + 4);
}

// A thread stopped inside $loop, restored into an instance whose functions
// were never called: the restore translates the functions on the stack.
TEST(InterpLazyTranslation, RestoreTranslatesTheFunctionsOnTheStack) {
  Instance source;
  source.store->interrupt().set_counting(true);
  source.thread->stop_at = 5; // inside $loop's iterations
  Slot r = 0;
  ASSERT_EQ(source.call("loop", 100, r).kind, ExecOutcome::Kind::Suspended);
  runtime::ViewThread view = source.store->engine().capture(*source.thread);
  ASSERT_EQ(view.frames.size(), 2u);

  Instance target;
  target.store->interrupt().set_counting(true);
  target.store->engine().restore(*target.thread, *target.inst, view);
  EXPECT_TRUE(target.translated(kLoop));
  EXPECT_TRUE(target.translated(kLoop + 4));
  EXPECT_FALSE(target.translated(kDouble));
  ASSERT_EQ(target.store->engine().resume(*target.thread, std::span(&r, 1)).kind,
            ExecOutcome::Kind::Returned);
  EXPECT_EQ(r, 100u);
}

TEST(InterpLazyTranslation, ANeverCalledInvalidFunctionStillFailsValidation) {
  auto bytes = test::wat_to_wasm(R"(
    (module
      (func (export "ok") (result i32) (i32.const 1))
      (func $never (result i32) (i64.const 1)))
  )",
                                 "--no-check");
  wasm::Module m = wasm::decode_module(bytes);
  try {
    wasm::validate_module(m);
    FAIL() << "a module with an invalid function was accepted";
  } catch (const ValidationError& e) {
    EXPECT_EQ(std::string(e.what()), "type mismatch");
  }
}

} // namespace
} // namespace tern
