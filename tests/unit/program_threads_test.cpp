// wasi-threads in a Program (program/threads.h): spawned threads run in
// every engine, and the registry's checkpoint protocol reaches each of
// them: a request on a spawned thread's interrupt parks it at a stable
// point with frames the engine can capture, continue_parked() resumes it.
#include "program/program.h"
#include "program/threads.h"
#include "runtime/atomics.h"
#include "snapshot/format.h"
#include "test_engines.h"
#include "wasi_fixture.h"
#include "wasm/decoder.h"
#include "wasm/validator.h"
#include "wat.h"

#include <atomic>
#include <cstdio>
#include <gtest/gtest.h>
#include <thread>

namespace tern {
namespace {

// _start spawns two threads and waits until both have finished (count at
// 12). Each thread counts at 4 in a loop until the word at 8 is non-zero.
const char* kSpawningModule = R"wat((module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (loop $spin
      (drop (i32.atomic.rmw.add (i32.const 4) (i32.const 1)))
      (br_if $spin (i32.eqz (i32.atomic.load (i32.const 8)))))
    (drop (i32.atomic.rmw.add (i32.const 12) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 12) (i32.const 1))))
  (func (export "_start") (local $n i32)
    (if (i32.le_s (call $spawn (i32.const 0)) (i32.const 0)) (then unreachable))
    (if (i32.le_s (call $spawn (i32.const 0)) (i32.const 0)) (then unreachable))
    (block $all (loop $wait
      (local.set $n (i32.atomic.load (i32.const 12)))
      (br_if $all (i32.eq (local.get $n) (i32.const 2)))
      (drop (memory.atomic.wait32 (i32.const 12) (local.get $n) (i64.const -1)))
      (br $wait))))))wat";

class ProgramThreadsTest : public testing::TestWithParam<std::string> {};

TEST_P(ProgramThreadsTest, SpawnedThreadsParkAndContinue) {
  auto module = std::make_shared<wasm::Module>(
      wasm::decode_module(test::wat_to_wasm(kSpawningModule, "--enable-threads")));
  wasm::validate_module(*module);
  const std::string mode = GetParam();
  program::EngineSpec engine{mode, [mode] { return test::make_engine(mode); }};
  auto program = program::Program::create(module, wasi::WasiOptions{}, engine);
  program::ProgramThreads* threads = program->threads();
  ASSERT_NE(threads, nullptr);
  runtime::Memory& memory = *program->memories()[0];
  EXPECT_TRUE(memory.shared());

  runtime::ExecOutcome outcome;
  std::thread main([&] { outcome = program->run(); });
  // Both threads registered and counting (no time limit: only progress).
  // spawned_running() counts a thread from the start of its spawn, before
  // it is registered: a request sent then would miss it and the wait below
  // would never end.
  auto registered = [&] {
    size_t n = 0;
    threads->for_each([&](program::ProgramThreads::Entry& e) { n += e.tid != 0; });
    return n;
  };
  while (registered() < 2 || runtime::atomics::load<uint32_t>(memory.base() + 4) < 100)
    std::this_thread::yield();

  threads->for_each([](program::ProgramThreads::Entry& e) {
    if (e.tid != 0) e.store->interrupt().request();
  });
  threads->wait_parked();
  size_t parked = 0;
  threads->for_each([&](program::ProgramThreads::Entry& e) {
    if (e.tid == 0) return;
    EXPECT_EQ(e.state, program::ProgramThreads::Entry::State::Parked) << "thread " << e.tid;
    runtime::ViewThread view = e.store->engine().capture(*e.thread);
    EXPECT_FALSE(view.frames.empty()) << "thread " << e.tid;
    ++parked;
  });
  EXPECT_EQ(parked, 2u);

  threads->continue_parked();
  runtime::atomics::store<uint32_t>(memory.base() + 8, 1);
  main.join();
  EXPECT_EQ(outcome.kind, runtime::ExecOutcome::Kind::Returned);
  EXPECT_EQ(runtime::atomics::load<uint32_t>(memory.base() + 12), 2u);
}

INSTANTIATE_TEST_SUITE_P(Engines, ProgramThreadsTest,
                         testing::Values("interp", "aot", "aot-wide", "jit"));

// Stop the world: a request on the main thread (waiting in
// memory.atomic.wait) stops the spawned threads too, at stable points; the
// snapshot has all three threads and both spawned instances (SPWN); a
// restore in another engine rebuilds them parked and releases them
// together, and the program ends as it would have.
class ProgramThreadsCheckpoint
    : public testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(ProgramThreadsCheckpoint, EveryThreadStopsAndRestoresInAnyEngine) {
  auto module = std::make_shared<wasm::Module>(
      wasm::decode_module(test::wat_to_wasm(kSpawningModule, "--enable-threads")));
  wasm::validate_module(*module);
  const auto& [mode, restore_mode] = GetParam();
  auto engine_of = [](const std::string& m) {
    return program::EngineSpec{m, [m] { return test::make_engine(m); }};
  };
  auto program = program::Program::create(module, wasi::WasiOptions{}, engine_of(mode));
  program::ProgramThreads* threads = program->threads();
  runtime::Memory& memory = *program->memories()[0];
  runtime::ExecOutcome outcome;
  std::thread main([&] { outcome = program->run(); });
  // Both threads counting and the main thread in its wait at 12: on a busy
  // machine the count can pass 100 before the main thread gets there.
  while (threads->spawned_running() < 2 ||
         runtime::atomics::load<uint32_t>(memory.base() + 4) < 100 ||
         memory.wait_queues()->waiting_at(12) == 0)
    std::this_thread::yield();
  program->interrupt().request();
  main.join();
  ASSERT_EQ(outcome.kind, runtime::ExecOutcome::Kind::Suspended);
  program->interrupt().clear();

  snapshot::Snapshot s = program->capture({}, {});
  ASSERT_EQ(s.threads.size(), 3u);
  EXPECT_EQ(s.threads[0].id, 0u);
  EXPECT_EQ(s.threads[0].view.frames.back().kind, runtime::FrameKind::AtomicWait);
  ASSERT_TRUE(s.spawned.has_value());
  EXPECT_EQ(s.spawned->next_tid, 3u);
  ASSERT_EQ(s.spawned->threads.size(), 2u);
  for (uint32_t i = 0; i < 2; ++i) {
    EXPECT_EQ(s.threads[1 + i].id, i + 1);
    EXPECT_EQ(s.spawned->threads[i].tid, i + 1);
    // In its loop, or not started yet (spawned_running counts it before).
    const runtime::FrameKind kind = s.threads[1 + i].view.frames.back().kind;
    EXPECT_TRUE(kind == runtime::FrameKind::LoopHeader || kind == runtime::FrameKind::FunctionEntry)
        << "thread " << i + 1 << " kind " << int(kind);
  }
  ASSERT_EQ(s.wait_queues.size(), 1u); // the main thread waits at 12
  // A directory of its own: ctest runs the engine pairs in parallel.
  test::TempDir dir;
  const std::string path = dir / "threads.snap";
  snapshot::write_snapshot_file(path, s);
  const uint32_t counted = runtime::atomics::load<uint32_t>(memory.base() + 4);
  program.reset(); // ends the first run's threads

  program::Program::RestoreOptions options;
  options.module = module;
  auto restored = program::Program::restore(path, options, engine_of(restore_mode));
  runtime::Memory& memory2 = *restored->memories()[0];
  EXPECT_EQ(runtime::atomics::load<uint32_t>(memory2.base() + 4), counted);
  EXPECT_EQ(restored->threads()->spawned_running(), 2u);
  std::thread resumed([&] { outcome = restored->run(); });
  while (runtime::atomics::load<uint32_t>(memory2.base() + 4) < counted + 100)
    std::this_thread::yield();
  runtime::atomics::store<uint32_t>(memory2.base() + 8, 1);
  resumed.join();
  EXPECT_EQ(outcome.kind, runtime::ExecOutcome::Kind::Returned);
  EXPECT_EQ(runtime::atomics::load<uint32_t>(memory2.base() + 12), 2u);
}

INSTANTIATE_TEST_SUITE_P(Engines, ProgramThreadsCheckpoint, testing::ValuesIn(test::engine_pairs()),
                         test::pair_name);

} // namespace
} // namespace tern
