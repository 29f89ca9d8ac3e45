// Capture from a live instance, through the byte format, applied to a fresh
// instance of the same module, in every engine (test_engines.h): memories,
// globals, tables, segment state and a suspended thread's frames all come
// back, and the restored program computes what the uninterrupted one does.
#include "runtime/store.h"
#include "runtime/thread.h"
#include "snapshot/capture.h"
#include "snapshot/format.h"
#include "snapshot_test_util.h"
#include "tern/error.h"
#include "test_engines.h"
#include "util/sha256.h"
#include "wasm/decoder.h"
#include "wasm/validator.h"
#include "wat.h"

#include <algorithm>
#include <gtest/gtest.h>

namespace tern::test {
namespace {

using runtime::ExecOutcome;
using runtime::Slot;

const char* const kStateModule = R"(
(module
  (memory 1 10)
  (global $g32 (mut i32) (i32.const 0))
  (global $g64 (mut i64) (i64.const 0))
  (global $gf32 (mut f32) (f32.const 0))
  (global $gf64 (mut f64) (f64.const 0))
  (global $gref (mut funcref) (ref.null func))
  (global $const i32 (i32.const 77))
  (table $tab 2 10 funcref)
  (elem (table $tab) (i32.const 0) func $one)
  (elem $passive func $two $three)
  (elem $kept func $one)
  (data (i32.const 16) "init")
  (data $pd "passive")
  (data $pd_kept "kept")
  (func $one (result i32) (i32.const 1))
  (func $two (result i32) (i32.const 2))
  (func $three (result i32) (i32.const 3))
  (func (export "fill")
    (drop (memory.grow (i32.const 3)))
    (i32.store (i32.const 131072) (i32.const 0xdeadbeef))
    (i32.store (i32.const 16) (i32.const 0))
    (memory.init $pd (i32.const 200000) (i32.const 0) (i32.const 7))
    (data.drop $pd)
    (global.set $g32 (i32.const -5))
    (global.set $g64 (i64.const 0x1122334455667788))
    (global.set $gf32 (f32.const 1.5))
    (global.set $gf64 (f64.const -2.25))
    (global.set $gref (ref.func $three))
    (drop (table.grow $tab (ref.null func) (i32.const 3)))
    (table.init $tab $passive (i32.const 3) (i32.const 0) (i32.const 2))
    (elem.drop $passive))
  (func (export "check") (result i32)
    (i32.add
      (i32.add
        (call_indirect (result i32) (i32.const 0))
        (i32.mul (call_indirect (result i32) (i32.const 3)) (i32.const 10)))
      (i32.add
        (i32.mul (call_indirect (result i32) (i32.const 4)) (i32.const 100))
        (i32.add (i32.load (i32.const 131072)) (i32.load8_u (i32.const 200001))))))
)
)";

// A loop that calls a function each iteration and writes memory.
const char* const kLoopModule = R"(
(module
  (memory 1)
  (global $calls (mut i32) (i32.const 0))
  (func $sq (param $x i32) (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (i32.mul (local.get $x) (local.get $x)))
  (func (export "sum") (param $n i32) (result i64)
    (local $i i32) (local $acc i64)
    (loop $l
      (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (call $sq (local.get $i)))))
      (i32.store (i32.mul (local.get $i) (i32.const 4)) (local.get $i))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (i64.add (local.get $acc) (i64.extend_i32_u (global.get $calls))))
)
)";

std::shared_ptr<const wasm::Module> load(const std::string& wat) {
  auto m = std::make_shared<wasm::Module>(wasm::decode_module(wat_to_wasm(wat)));
  wasm::validate_module(*m);
  return m;
}

// The engine of the running test (its parameter).
std::string g_mode;

// A store with one thread and one instance of a module without imports, in
// the test's engine.
struct Running {
  runtime::Store store{make_engine(g_mode)};
  runtime::Thread thread{store};
  runtime::ModuleInstance* instance = nullptr;
  explicit Running(std::shared_ptr<const wasm::Module> module,
                   runtime::InitMode init = runtime::InitMode::Full) {
    instance = store.instantiate(std::move(module), {}, thread, init);
  }
  ExecOutcome call(const char* name, std::span<const Slot> args = {},
                   std::span<Slot> results = {}) {
    return store.engine().call(thread, instance->find_func_export(name), args, results);
  }
};

std::vector<uint8_t> snapshot_bytes(const snapshot::Snapshot& s) {
  util::VectorSink sink;
  snapshot::write_snapshot(s, sink);
  return std::move(sink.bytes());
}

snapshot::Snapshot through_bytes(const snapshot::Snapshot& s) {
  const std::vector<uint8_t> bytes = snapshot_bytes(s);
  util::SpanSource source(bytes);
  return snapshot::read_snapshot(source);
}

uint32_t func_index(const runtime::ModuleInstance& inst, Slot ref) {
  if (ref == runtime::kNullRef) return UINT32_MAX;
  return *inst.func_index_of(runtime::slot_funcref(ref));
}

class SnapshotCapture : public ::testing::TestWithParam<std::string> {
protected:
  void SetUp() override { g_mode = GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Engines, SnapshotCapture, ::testing::ValuesIn(engine_modes()), mode_name);

TEST_P(SnapshotCapture, InstanceStateRoundTripsIntoAFreshInstance) {
  auto module = load(kStateModule);
  Running original(module);
  ASSERT_EQ(original.call("fill").kind, ExecOutcome::Kind::Returned);

  snapshot::CaptureOptions options;
  options.engine = GetParam();
  const snapshot::Snapshot captured = snapshot::capture_instance(*original.instance, {}, options);
  EXPECT_EQ(captured.host.engine, GetParam());
  const snapshot::Snapshot read = through_bytes(captured);
  EXPECT_EQ(*read.module.sha256, util::sha256(module->bytes));

  Running restored(load(kStateModule));
  snapshot::apply_snapshot(read, *restored.instance);
  const runtime::ModuleInstance& a = *original.instance;
  const runtime::ModuleInstance& b = *restored.instance;

  // Memory: 4 pages, identical; "init" at 16 was overwritten by zeros and
  // must not come back from the fresh instance's data segment.
  ASSERT_EQ(b.memory0()->pages(), 4u);
  EXPECT_TRUE(std::equal(a.memory0()->base(), a.memory0()->base() + a.memory0()->size(),
                         b.memory0()->base()));
  EXPECT_EQ(b.memory0()->base()[16], 0);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b.memory0()->base()) + 200000, 7), "passive");
  EXPECT_EQ(read.memories[0].nonzero_pages, 2u); // pages 2 and 3

  // Globals by value; the funcref global names $three (function 2).
  EXPECT_EQ(b.globals[0]->value, 0xFFFFFFFBu);
  EXPECT_EQ(b.globals[1]->value, 0x1122334455667788u);
  EXPECT_EQ(b.globals[2]->get().as_f32(), 1.5f);
  EXPECT_EQ(b.globals[3]->get().as_f64(), -2.25);
  EXPECT_EQ(func_index(b, b.globals[4]->value), 2u);
  EXPECT_EQ(b.globals[5]->value, 77u);

  // Table: grown to 5; [$one, null, null, $two, $three], as functions of b.
  ASSERT_EQ(b.tables[0]->size(), 5u);
  const uint32_t expected[] = {0, UINT32_MAX, UINT32_MAX, 1, 2};
  for (uint32_t i = 0; i < 5; ++i) {
    EXPECT_EQ(func_index(b, b.tables[0]->get(i)), expected[i]) << i;
    if (b.tables[0]->get(i)) {
      EXPECT_EQ(runtime::slot_funcref(b.tables[0]->get(i))->instance, &b);
    }
  }
  // Segments: the active one and $passive dropped, $kept not.
  EXPECT_TRUE(b.elem_segments[0].empty());
  EXPECT_TRUE(b.elem_segments[1].empty());
  EXPECT_EQ(b.elem_segments[2].size(), 1u);
  EXPECT_EQ(b.data_dropped, (std::vector<bool>{true, true, false}));

  // Both compute the same: 1 + 2*10 + 3*100 + 0xdeadbeef + 'a'.
  Slot ra = 0, rb = 0;
  ASSERT_EQ(original.call("check", {}, {&ra, 1}).kind, ExecOutcome::Kind::Returned);
  ASSERT_EQ(restored.call("check", {}, {&rb, 1}).kind, ExecOutcome::Kind::Returned);
  EXPECT_EQ(ra, uint32_t(321 + 0xdeadbeefu + 'a'));
  EXPECT_EQ(rb, ra);
}

// An instance made for a restore writes no data segment (they count as
// dropped) and runs no start function: its memory is all zero until the
// snapshot's pages are decoded into it, and then it is the snapshot's.
TEST_P(SnapshotCapture, AnInstanceMadeForRestoreGetsItsMemoryOnlyFromTheSnapshot) {
  auto module = load(kStateModule);
  Running original(module);
  ASSERT_EQ(original.call("fill").kind, ExecOutcome::Kind::Returned);
  const std::vector<uint8_t> bytes =
      snapshot_bytes(snapshot::capture_instance(*original.instance, {}));

  Running restored(load(kStateModule), runtime::InitMode::ForRestore);
  const runtime::Memory& b = *restored.instance->memory0();
  EXPECT_TRUE(std::all_of(b.base(), b.base() + b.size(), [](uint8_t x) { return x == 0; }));
  EXPECT_EQ(restored.instance->data_dropped, (std::vector<bool>{true, false, false}));
  snapshot::ReadOptions options;
  options.memory_target = [&](uint32_t index, const snapshot::MemoryImage& header,
                              const snapshot::Snapshot&) {
    return snapshot::prepare_memory_for_restore(*restored.instance, index, header.pages);
  };
  util::SpanSource source(bytes);
  const snapshot::Snapshot read = snapshot::read_snapshot(source, options);
  snapshot::apply_snapshot(read, *restored.instance);
  const runtime::Memory& a = *original.instance->memory0();
  ASSERT_EQ(b.pages(), 4u);
  EXPECT_TRUE(std::equal(a.base(), a.base() + a.size(), b.base()));
  EXPECT_EQ(restored.instance->data_dropped, (std::vector<bool>{true, true, false}));
  Slot ra = 0, rb = 0;
  ASSERT_EQ(original.call("check", {}, {&ra, 1}).kind, ExecOutcome::Kind::Returned);
  ASSERT_EQ(restored.call("check", {}, {&rb, 1}).kind, ExecOutcome::Kind::Returned);
  EXPECT_EQ(rb, ra);
}

TEST_P(SnapshotCapture, AnInstanceMadeForRestoreRunsNoStartFunction) {
  const char* const wat = R"((module
    (global (export "g") (mut i32) (i32.const 0))
    (func $start (global.set 0 (i32.const 1)))
    (start $start)))";
  Running full(load(wat));
  EXPECT_EQ(full.instance->globals[0]->value, 1u);
  Running for_restore(load(wat), runtime::InitMode::ForRestore);
  EXPECT_EQ(for_restore.instance->globals[0]->value, 0u);
}

TEST_P(SnapshotCapture, AKnownModuleHashIsHandedToTheWriter) {
  auto module = std::make_shared<wasm::Module>(*load(kLoopModule));
  const util::Sha256Digest real = util::sha256(module->bytes);
  EXPECT_EQ(module->sha256(), real); // computed when not known
  // A marker unlike the real digest: seeing it proves nothing recomputed it.
  util::Sha256Digest marker;
  marker.fill(0x5a);
  module->known_sha256 = marker;
  Running original(module);
  const snapshot::Snapshot captured = snapshot::capture_instance(*original.instance, {});
  EXPECT_EQ(captured.module.sha256, marker);
  EXPECT_EQ(module->sha256(), marker);
  EXPECT_EQ(*through_bytes(captured).module.sha256, marker);
}

TEST_P(SnapshotCapture, MemoryDecodesInPlaceIntoTheFreshInstance) {
  auto module = load(kStateModule);
  Running original(module);
  ASSERT_EQ(original.call("fill").kind, ExecOutcome::Kind::Returned);
  const std::vector<uint8_t> bytes =
      snapshot_bytes(snapshot::capture_instance(*original.instance, {}));

  Running restored(load(kStateModule));
  ASSERT_EQ(restored.instance->memory0()->base()[16], 'i'); // the data segment
  snapshot::ReadOptions options;
  int asked = 0;
  options.memory_target = [&](uint32_t index, const snapshot::MemoryImage& header,
                              const snapshot::Snapshot& so_far) {
    ++asked;
    EXPECT_TRUE(so_far.module.sha256.has_value());
    EXPECT_EQ(so_far.globals.size(), 6u); // sections before the memories are there
    return snapshot::prepare_memory_for_restore(*restored.instance, index, header.pages);
  };
  util::SpanSource source(bytes);
  const snapshot::Snapshot read = snapshot::read_snapshot(source, options);
  EXPECT_EQ(asked, 1);
  EXPECT_EQ(read.memories[0].contents.data.data(), restored.instance->memory0()->base());
  snapshot::apply_snapshot(read, *restored.instance);
  const runtime::Memory& a = *original.instance->memory0();
  const runtime::Memory& b = *restored.instance->memory0();
  ASSERT_EQ(b.pages(), 4u);
  EXPECT_TRUE(std::equal(a.base(), a.base() + a.size(), b.base()));
  Slot ra = 0, rb = 0;
  ASSERT_EQ(original.call("check", {}, {&ra, 1}).kind, ExecOutcome::Kind::Returned);
  ASSERT_EQ(restored.call("check", {}, {&rb, 1}).kind, ExecOutcome::Kind::Returned);
  EXPECT_EQ(rb, ra);
}

TEST_P(SnapshotCapture, SuspendedThreadResumesInAFreshInstance) {
  const Slot n = 50;
  // The uninterrupted result.
  Slot expected = 0;
  {
    Running plain(load(kLoopModule));
    ASSERT_EQ(plain.call("sum", {&n, 1}, {&expected, 1}).kind, ExecOutcome::Kind::Returned);
  }
  // Stop after 37 stable points (inside the loop or at $sq's entry).
  for (uint64_t stop_at : {1u, 2u, 37u, 38u}) {
    SCOPED_TRACE(stop_at);
    Running original(load(kLoopModule));
    original.store.interrupt().set_counting(true);
    original.thread.stop_at = stop_at;
    Slot unused = 0;
    ASSERT_EQ(original.call("sum", {&n, 1}, {&unused, 1}).kind, ExecOutcome::Kind::Suspended);
    std::vector<snapshot::ThreadImage> threads = {
        {0, original.store.engine().capture(original.thread)}};
    const snapshot::Snapshot read =
        through_bytes(snapshot::capture_instance(*original.instance, threads));
    ASSERT_EQ(read.threads.size(), 1u);
    EXPECT_EQ(read.threads[0].view, threads[0].view);
    EXPECT_EQ(read.threads[0].view.stable_points, stop_at);

    Running restored(load(kLoopModule));
    snapshot::apply_snapshot(read, *restored.instance);
    restored.store.engine().restore(restored.thread, *restored.instance, read.threads[0].view);
    Slot result = 0;
    ASSERT_EQ(restored.store.engine().resume(restored.thread, {&result, 1}).kind,
              ExecOutcome::Kind::Returned);
    EXPECT_EQ(result, expected);
    EXPECT_EQ(restored.instance->memory0()->base()[4 * 49], 49);
  }
}

TEST_P(SnapshotCapture, AnotherModuleIsRefusedNamingBothHashes) {
  auto state_module = load(kStateModule);
  auto loop_module = load(kLoopModule);
  Running original(state_module);
  const snapshot::Snapshot read = through_bytes(snapshot::capture_instance(*original.instance, {}));
  Running other(loop_module);
  try {
    snapshot::apply_snapshot(read, *other.instance);
    FAIL() << "applied a snapshot of another module";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(util::to_hex(util::sha256(state_module->bytes))), std::string::npos) << msg;
    EXPECT_NE(msg.find(util::to_hex(util::sha256(loop_module->bytes))), std::string::npos) << msg;
  }
  EXPECT_THROW(snapshot::check_module(read, util::sha256(loop_module->bytes)), Error);
  EXPECT_NO_THROW(snapshot::check_module(read, util::sha256(state_module->bytes)));
}

TEST_P(SnapshotCapture, HostReferencesCannotBeSaved) {
  auto module = load(R"((module (global (export "g") (mut externref) (ref.null extern))))");
  Running r(module);
  r.instance->globals[0]->value = runtime::externref_slot(5);
  EXPECT_THROW(snapshot::capture_instance(*r.instance, {}), Error);
}

TEST_P(SnapshotCapture, EmbeddedModuleTravelsWithTheSnapshot) {
  auto module = load(kLoopModule);
  Running r(module);
  snapshot::CaptureOptions options;
  options.embed_module = true;
  const snapshot::Snapshot read =
      through_bytes(snapshot::capture_instance(*r.instance, {}, options));
  EXPECT_TRUE(std::ranges::equal(read.module.binary.data, module->bytes));
}

} // namespace
} // namespace tern::test
