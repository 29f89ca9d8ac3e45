// Artifacts: what `tern compile` writes is loaded and runs; an artifact
// for another module, from another tern, for another machine, truncated or
// damaged is refused with a message that says which, before any of its
// code is touched.
#include "aot/artifact.h"
#include "aot/cache.h"
#include "aot/compiler.h"
#include "aot/engine.h"
#include "runtime/store.h"
#include "runtime/thread.h"
#include "tern/compiler_id.h"
#include "wasm/decoder.h"
#include "wasm/validator.h"
#include "wat.h"

#include <gtest/gtest.h>

namespace tern {
namespace {

std::shared_ptr<wasm::Module> load(const std::string& wat) {
  auto m = std::make_shared<wasm::Module>(wasm::decode_module(test::wat_to_wasm(wat)));
  wasm::validate_module(*m);
  return m;
}

const char* kTriple = R"((module (func (export "f") (param i32) (result i32)
                           (i32.mul (local.get 0) (i32.const 3)))))";
const char* kQuadruple = R"((module (func (export "f") (param i32) (result i32)
                              (i32.mul (local.get 0) (i32.const 4)))))";

std::vector<uint8_t> compile(const wasm::Module& m, aot::CompileOptions options = {}) {
  auto artifact = aot::compile_artifact(m, util::sha256(m.bytes), options);
  EXPECT_TRUE(artifact.ok()) << artifact.error;
  return artifact.value;
}

// The message of the Error loading `bytes` for `m` throws, or "" if none.
std::string refusal(const std::vector<uint8_t>& bytes, const wasm::Module& m) {
  try {
    aot::load_artifact(bytes, util::sha256(m.bytes), "x.aot");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

uint32_t run_f(const std::shared_ptr<wasm::Module>& m, std::vector<uint8_t> artifact,
               uint32_t arg) {
  runtime::Store store(aot::make_engine([&](const wasm::Module&, const util::Sha256Digest& hash) {
    return std::shared_ptr<const aot::CodeImage>(aot::load_artifact(artifact, hash, "x.aot"));
  }));
  runtime::Thread thread(store);
  auto* inst = store.instantiate(m, {}, thread);
  runtime::Slot a = arg, r = 0;
  auto out =
      store.engine().call(thread, inst->find_func_export("f"), std::span(&a, 1), std::span(&r, 1));
  EXPECT_EQ(out.kind, runtime::ExecOutcome::Kind::Returned);
  return uint32_t(r);
}

class AotArtifact : public ::testing::Test {
protected:
  void SetUp() override {
    if (!aot::compiler_available()) GTEST_SKIP() << "built without the compiler";
  }
};

TEST_F(AotArtifact, CompiledArtifactRuns) {
  auto m = load(kTriple);
  EXPECT_EQ(run_f(m, compile(*m), 14), 42u);
  aot::CompileOptions no_points;
  no_points.stable_points = false;
  EXPECT_EQ(run_f(m, compile(*m, no_points), 5), 15u);
}

TEST_F(AotArtifact, HeaderSaysWhatTheCodeIsFor) {
  auto m = load(kTriple);
  auto bytes = compile(*m);
  aot::ArtifactView view = aot::read_artifact(bytes, "x.aot");
  EXPECT_EQ(view.header.module_hash, util::sha256(m->bytes));
  EXPECT_EQ(view.header.target.arch, aot::host_target().arch);
  EXPECT_EQ(view.header.abi_version, aot::kAbiVersion);
  EXPECT_TRUE(view.header.flags & aot::kStablePoints);
}

TEST_F(AotArtifact, OtherModuleIsRefused) {
  auto triple = load(kTriple);
  auto quadruple = load(kQuadruple);
  std::string why = refusal(compile(*triple), *quadruple);
  EXPECT_NE(why.find("compiled from another module"), std::string::npos) << why;
}

TEST_F(AotArtifact, OtherTernVersionIsRefused) {
  auto m = load(kTriple);
  auto bytes = compile(*m);
  bytes[16] = '9'; // the version field follows magic, format and header size
  std::string why = refusal(bytes, *m);
  EXPECT_NE(why.find("compiled by tern 9"), std::string::npos) << why;
}

TEST_F(AotArtifact, OtherArchitectureIsRefused) {
  auto m = load(kTriple);
  aot::CompileOptions options;
  options.target.arch =
      aot::host_target().arch == aot::Arch::S390x ? aot::Arch::AArch64 : aot::Arch::S390x;
  std::string why = refusal(compile(*m, options), *m);
  EXPECT_NE(why.find("cannot run here"), std::string::npos) << why;
}

TEST_F(AotArtifact, TruncatedOrDamagedFilesAreRefused) {
  auto m = load(kTriple);
  auto bytes = compile(*m);
  for (size_t keep : {size_t(0), size_t(7), size_t(100), bytes.size() / 2, bytes.size() - 1}) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + long(keep));
    EXPECT_NE(refusal(cut, *m), "") << "kept " << keep << " bytes";
  }
  EXPECT_NE(refusal(std::vector<uint8_t>(bytes.size() / 2, 0), *m).find("signature"),
            std::string::npos);
  auto damaged = bytes;
  damaged[damaged.size() - 100] ^= 0x40;
  EXPECT_NE(refusal(damaged, *m).find("damaged"), std::string::npos);
  auto longer = bytes;
  longer.push_back(0);
  EXPECT_NE(refusal(longer, *m).find("trailing"), std::string::npos);
}

TEST_F(AotArtifact, CodeWithoutStablePointsCannotRestore) {
  auto m = load(kTriple);
  aot::CompileOptions no_points;
  no_points.stable_points = false;
  auto bytes = compile(*m, no_points);
  runtime::Store store(aot::make_engine([&](const wasm::Module&, const util::Sha256Digest& hash) {
    return std::shared_ptr<const aot::CodeImage>(aot::load_artifact(bytes, hash, "x.aot"));
  }));
  runtime::Thread thread(store);
  auto* inst = store.instantiate(m, {}, thread);
  runtime::ViewThread view;
  view.frames.push_back({0,
                         m->functions[0].body_begin,
                         runtime::FrameKind::FunctionEntry,
                         {{wasm::ValType::I32, 1}},
                         {}});
  EXPECT_THROW(store.engine().restore(thread, *inst, view), Error);
}

// A cache entry's name carries the compiler's identity (a hash of the code
// generator's sources, cmake/CompilerId.cmake), so code cached by a tern
// whose code generation was different is never taken.
TEST(AotCache, EntryNamesCarryTheCompilerIdentity) {
  EXPECT_EQ(std::string(aot::kCompilerId).size(), 16u);
  aot::CompileOptions options;
  util::Sha256Digest hash{};
  for (auto kind : {aot::CacheKind::Artifact, aot::CacheKind::JitObject}) {
    const std::string path = aot::cache_path("/c", hash, options, kind);
    EXPECT_NE(path.find(std::string("-c") + aot::kCompilerId + "-"), std::string::npos) << path;
  }
}

} // namespace
} // namespace tern
