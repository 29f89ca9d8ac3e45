#include "test_engines.h"

#include "aot/artifact.h"
#include "aot/compiler.h"
#include "aot/engine.h"
#include "interp/engine.h"
#include "tern/error.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <unistd.h>

namespace tern::test {
namespace {

aot::CompileOptions exact_options(bool wide_addresses = false) {
  aot::CompileOptions o;
  o.exact_points = true; // counting mode must count what the interpreter counts
  o.wide_addresses = wide_addresses;
  return o;
}

// An AOT engine whose code for each module is compiled once and reused.
template <bool WideAddresses>
std::unique_ptr<runtime::Engine> make_aot_engine() {
  return aot::make_engine([](const wasm::Module& m, const util::Sha256Digest& hash) {
    static std::map<util::Sha256Digest, std::vector<uint8_t>> artifacts;
    auto& bytes = artifacts[hash];
    if (bytes.empty()) {
      bytes = aot::compile_artifact(m, hash, exact_options(WideAddresses)).take("test");
    }
    return std::shared_ptr<const aot::CodeImage>(aot::load_artifact(bytes, hash, "test"));
  });
}

// The JIT's cache for this test process, removed at exit.
struct JitCache {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("tern-jit-test-" + std::to_string(::getpid()));
  ~JitCache() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

std::unique_ptr<runtime::Engine> make_jit_engine() {
  return aot::make_engine([](const wasm::Module& m, const util::Sha256Digest& hash) {
    static const JitCache cache;
    return aot::jit_compile(m, hash, exact_options(), cache.dir.string()).take("test");
  });
}

std::string identifier(std::string s) {
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}

} // namespace

std::vector<std::string> engine_modes() {
  if (!aot::compiler_available()) return {"interp"};
  return {"interp", "aot", "aot-wide", "jit"};
}

std::vector<std::tuple<std::string, std::string>> engine_pairs() {
  std::vector<std::tuple<std::string, std::string>> out;
  for (const auto& from : engine_modes())
    for (const auto& to : engine_modes()) out.emplace_back(from, to);
  return out;
}

std::unique_ptr<runtime::Engine> make_engine(const std::string& mode) {
  if (mode == "interp") return interp::make_engine();
  if (mode == "aot") return make_aot_engine<false>();
  if (mode == "aot-wide") return make_aot_engine<true>();
  if (mode == "jit") return make_jit_engine();
  throw Error("no engine " + mode);
}

std::string mode_name(const ::testing::TestParamInfo<std::string>& info) {
  return identifier(info.param);
}

std::string pair_name(const ::testing::TestParamInfo<std::tuple<std::string, std::string>>& info) {
  return identifier(std::get<0>(info.param)) + "_to_" + identifier(std::get<1>(info.param));
}

} // namespace tern::test
