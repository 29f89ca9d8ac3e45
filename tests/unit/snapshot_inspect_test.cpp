// `tern inspect`: the text and JSON descriptions of a snapshot of a real
// suspended program, renderers for extension sections, and one clear error
// with exit status 1 for truncated, bit-flipped, wrong-version and
// wrong-module snapshots.
#include "interp/engine.h"
#include "runtime/store.h"
#include "runtime/thread.h"
#include "snapshot/capture.h"
#include "snapshot/describe.h"
#include "snapshot/format.h"
#include "snapshot_test_util.h"
#include "tern/error.h"
#include "util/file.h"
#include "util/sha256.h"
#include "wasi/context.h"
#include "wasi/state.h"
#include "wasi_fixture.h"
#include "wasm/decoder.h"
#include "wasm/validator.h"
#include "wat.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

namespace tern::test {
namespace {

using nlohmann::json;

const char* const kModule = R"(
(module
  (memory 2)
  (global $counter (mut i64) (i64.const 0))
  (func $leaf (param $x i32) (result i32)
    (loop $spin (global.set $counter (i64.add (global.get $counter) (i64.const 1)))
      (br_if $spin (i64.lt_u (global.get $counter) (i64.const 1000))))
    (i32.add (local.get $x) (i32.const 1)))
  (func $outer (export "outer") (param $n i32) (result i32)
    (local $tmp f64)
    (local.set $tmp (f64.const 2.5))
    (i32.store (i32.const 70000) (i32.const 9))
    ;; $tmp is used after the call, so it is live at the call site (dead
    ;; locals are zero in the wasm view).
    (i32.add (i32.add (i32.const 100) (call $leaf (local.get $n)))
             (i32.trunc_f64_s (local.get $tmp)))))
)";

struct RunResult {
  int status = -1;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

RunResult run_tern(const std::string& args) {
  const std::string dir = ::testing::TempDir();
  // Per process: ctest runs the tests of this file in parallel processes.
  const std::string base = dir + "/inspect-" + std::to_string(::getpid());
  const std::string out = base + ".out", err = base + ".err";
  const std::string cmd = std::string(TERN_BINARY_DIR) + "/tern " + args + " >" + out + " 2>" + err;
  RunResult r;
  const int raw = std::system(cmd.c_str());
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

class SnapshotInspect : public ::testing::Test {
protected:
  void SetUp() override {
    wasm_bytes_ = wat_to_wasm(kModule, "--debug-names");
    auto module = std::make_shared<wasm::Module>(wasm::decode_module(wasm_bytes_));
    wasm::validate_module(*module);
    runtime::Store store(interp::make_engine());
    runtime::Thread thread(store);
    runtime::ModuleInstance* inst = store.instantiate(module, {}, thread);
    // Stop at the 6th stable point: outer's entry, leaf's entry, 4 loop headers.
    store.interrupt().set_counting(true);
    thread.stop_at = 6;
    const runtime::Slot n = 41;
    runtime::Slot result = 0;
    ASSERT_EQ(
        store.engine().call(thread, inst->find_func_export("outer"), {&n, 1}, {&result, 1}).kind,
        runtime::ExecOutcome::Kind::Suspended);
    snapshot::CaptureOptions options;
    options.engine = "interp";
    options.embed_module = true;
    snapshot_ = snapshot::capture_instance(*inst, {{0, store.engine().capture(thread)}}, options);
    snapshot_.extensions.push_back({snapshot::make_tag("TEST"), true, {4, 5}});
    path_ = dir_ / "inspect.snap";
    snapshot::write_snapshot_file(path_, snapshot_);
    module_path_ = dir_ / "inspect.wasm";
    util::write_file_atomic(module_path_, wasm_bytes_);
  }

  // A directory per case: ctest runs the cases in parallel processes, and
  // two test runs may share the machine.
  test::TempDir dir_;
  std::vector<uint8_t> wasm_bytes_;
  snapshot::Snapshot snapshot_;
  std::string path_, module_path_;
};

TEST_F(SnapshotInspect, TextShowsFramesWithNamesOffsetsAndValues) {
  const RunResult r = run_tern("inspect " + path_);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const std::string sha = util::to_hex(util::sha256(wasm_bytes_));
  const std::vector<std::string> lines = {
      "tern snapshot, format version 1, chunk index",
      "engine interp",
      "module sha256 " + sha + " (included",
      "memory 0: 2 pages, 1 non-zero (64.0 KiB)",
      "global 0: i64 mut = 3",
      "thread 0: 2 frames, 6 stable points",
      "#0 leaf (func 0) at 0x",
      ", loop-header",
      "locals: $x=i32 41",
      "#1 outer (func 1) at 0x",
      ", call-site",
      "locals: $n=i32 0, $tmp=f64 2.5", // $n is dead after the call
      "stack:  i32 100",
      "section TEST (optional, 2 B)",
  };
  for (const std::string& expected : lines)
    EXPECT_NE(r.out.find(expected), std::string::npos) << "missing: " << expected << "\n" << r.out;
}

TEST_F(SnapshotInspect, JsonHasTheSameContent) {
  const RunResult r = run_tern("inspect --json " + path_);
  ASSERT_EQ(r.status, 0) << r.err;
  const json d = json::parse(r.out);
  EXPECT_EQ(d["format_version"], 1);
  EXPECT_EQ(d["chunk_index"], true);
  EXPECT_EQ(d["host"]["engine"], "interp");
  EXPECT_EQ(d["module"]["sha256"], util::to_hex(util::sha256(wasm_bytes_)));
  EXPECT_EQ(d["module"]["names_from"], "snapshot");
  EXPECT_EQ(d["memories"][0]["pages"], 2);
  EXPECT_EQ(d["memories"][0]["nonzero_pages"], 1);
  EXPECT_EQ(d["globals"][0]["value"], "3");
  const json& frames = d["threads"][0]["frames"];
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0]["name"], "leaf");
  EXPECT_EQ(frames[0]["kind"], "loop-header");
  EXPECT_EQ(frames[0]["offset"], snapshot_.threads[0].view.frames[1].wasm_offset);
  EXPECT_EQ(frames[1]["name"], "outer");
  EXPECT_EQ(frames[1]["kind"], "call-site");
  EXPECT_EQ(frames[1]["locals"][1], (json{{"type", "f64"}, {"value", "2.5"}, {"name", "tmp"}}));
  EXPECT_EQ(frames[1]["stack"][0], (json{{"type", "i32"}, {"value", "100"}}));
  EXPECT_EQ(d["sections"][0]["tag"], "TEST");
}

TEST_F(SnapshotInspect, NamesFromAModuleFileOrNone) {
  snapshot_.module.embed_binary = false;
  snapshot::write_snapshot_file(path_, snapshot_);
  RunResult r = run_tern("inspect " + path_);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("#0 func[0] (func 0)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(not included)"), std::string::npos) << r.out;
  r = run_tern("inspect " + path_ + " --module " + module_path_);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("#0 leaf (func 0)"), std::string::npos) << r.out;
}

// One line "tern: error: ..." containing `part`, exit status 1.
void expect_one_error(const RunResult& r, const std::string& part) {
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.rfind("tern: error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(part), std::string::npos) << r.err;
}

TEST_F(SnapshotInspect, BadSnapshotsGiveOneClearError) {
  const auto good = util::read_file(path_);
  const std::string bad = dir_ / "bad.snap";

  util::write_file_atomic(bad, std::span(good).first(good.size() / 2));
  expect_one_error(run_tern("inspect " + bad), "truncated");

  auto flipped = good;
  flipped[good.size() / 3] ^= 0x10;
  util::write_file_atomic(bad, flipped);
  expect_one_error(run_tern("inspect " + bad), "corrupt");

  auto v9 = good;
  v9[8] = 9;
  util::write_file_atomic(bad, v9);
  expect_one_error(run_tern("inspect " + bad), "unsupported snapshot format version 9");

  const std::string other = dir_ / "other.wasm";
  const auto other_bytes = wat_to_wasm("(module)");
  util::write_file_atomic(other, other_bytes);
  const RunResult r = run_tern("inspect " + path_ + " --module " + other);
  expect_one_error(r, util::to_hex(util::sha256(wasm_bytes_)));
  EXPECT_NE(r.err.find(util::to_hex(util::sha256(other_bytes))), std::string::npos) << r.err;

  expect_one_error(run_tern("inspect " + bad + ".missing"), "cannot open");
}

TEST_F(SnapshotInspect, ShowsTheWasiState) {
  const std::string dir = dir_ / "wasi-dir";
  std::filesystem::create_directories(dir);
  wasi::WasiOptions options;
  options.args = {"prog", "--flag"};
  options.preopens = {{dir, "/data"}};
  wasi::WasiContext ctx(options);
  snapshot_.extensions = {wasi::save_state(ctx)};
  snapshot::write_snapshot_file(path_, snapshot_);

  RunResult r = run_tern("inspect " + path_);
  ASSERT_EQ(r.status, 0) << r.err;
  for (const std::string& line : std::vector<std::string>{
           "section WASI (required, ", "  args: prog --flag",
           "  preopen 0: /data (host " + dir + ")", "  fd 3: directory /data (preopen 0)"})
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;

  r = run_tern("inspect --json " + path_);
  ASSERT_EQ(r.status, 0) << r.err;
  const json d = json::parse(r.out);
  EXPECT_EQ(d["sections"][0]["tag"], "WASI");
  EXPECT_EQ(d["sections"][0]["content"]["preopens"][0]["guest"], "/data");

  // A WASI payload that does not decode is one clear error.
  snapshot_.extensions = {{wasi::kStateTag, false, {1, 2, 3}}};
  snapshot::write_snapshot_file(path_, snapshot_);
  r = run_tern("inspect " + path_);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("section WASI"), std::string::npos) << r.err;
}

TEST(SnapshotDescribe, ExtensionRenderersDescribeTheirSections) {
  snapshot::register_extension_renderer(snapshot::make_tag("WASI"),
                                        {[](const snapshot::ExtensionSection& e) {
                                           return json{{"fds", e.payload.size()}};
                                         },
                                         nullptr});
  const json d = snapshot::describe_snapshot(sample_snapshot(), nullptr, "");
  EXPECT_EQ(d["sections"][0]["content"], (json{{"fds", 3}}));
  EXPECT_FALSE(d["sections"][1].contains("content"));
  // Values as people read them.
  EXPECT_EQ(d["globals"][0]["value"], "-1");
  EXPECT_EQ(d["globals"][1]["value"], "-9223372036854775807");
  EXPECT_EQ(d["globals"][3]["value"], "-inf");
  EXPECT_EQ(d["globals"][4]["value"], "ref.null func");
  EXPECT_EQ(d["globals"][5]["value"], "ref.func 5");
  EXPECT_EQ(d["threads"][0]["frames"][0]["name"], "func[4]"); // innermost first
  EXPECT_EQ(d["threads"][0]["frames"][1]["kind"], "call-site");
  EXPECT_EQ(d["memories"][0]["max_pages"], 10);
}

} // namespace
} // namespace tern::test
