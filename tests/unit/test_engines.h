// Test helper: the engines an engine-independent test runs in. Such a test
// is a TEST_P over engine_modes() (or engine_pairs(), for a checkpoint in
// one engine and a restore in another) instead of one copy per engine
// (tests/README.md). Compiled code is built in-process (no cache on disk
// but the JIT's, in a per-process temporary directory removed at exit) and
// with exact stable points, so that every mode counts what the interpreter
// counts.
#pragma once

#include "aot/compiler.h"
#include "runtime/engine.h"

#include <gtest/gtest.h>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

namespace tern::test {

// "interp", and when this build has the compiler, "aot" (artifacts compiled
// once per module), "aot-wide" (the same with wide addresses, on mirrored
// memory) and "jit".
std::vector<std::string> engine_modes();
// Every (checkpoint engine, restore engine) pair of engine_modes().
std::vector<std::tuple<std::string, std::string>> engine_pairs();
std::unique_ptr<runtime::Engine> make_engine(const std::string& mode);

// Test-name suffixes: "aot_wide", "interp_to_jit".
std::string mode_name(const ::testing::TestParamInfo<std::string>& info);
std::string pair_name(const ::testing::TestParamInfo<std::tuple<std::string, std::string>>& info);

} // namespace tern::test
