// The decoder against the spec test suite's binary modules: every
// `assert_malformed` binary must be rejected by decode_module (except the few
// whose fault is inside a function body, which the validator decodes), and
// every other module must decode. Converted with wabt's wast2json; skipped
// when it or the suite is absent.
#include "util/file.h"
#include "wasm/decoder.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

namespace tern::wasm {
namespace {

namespace fs = std::filesystem;

// shared/ sits beside the repository (and beside CI's clone of it).
fs::path suite_dir() {
  for (fs::path dir : {fs::path(TERN_SOURCE_DIR) / "../shared/spec-testsuite",
                       fs::path("/work/shared/spec-testsuite")})
    if (fs::is_directory(dir)) return dir;
  return {};
}

// wabt 1.0.32 cannot convert these (the suite's README).
const std::set<std::string> kUnconvertible = {"table_get",  "table_set", "table_size", "table_grow",
                                              "table_fill", "if",        "comments"};

// Malformed only because of something inside a function body: the
// validator's InstrReader rejects them, so decode_module accepts them.
// file:line of the assertion in the .wast.
const std::set<std::string> kBodyLevelMalformed = {
    // align > 2^32 ("malformed memop flags")
    "align:892", "align:911", "align:930", "align:949", "align:968",
    // memarg / memory index LEBs too long or too large inside bodies
    "binary-leb128:424", "binary-leb128:443", "binary-leb128:771", "binary-leb128:789",
    "binary-leb128:808", "binary-leb128:827", "binary-leb128:990",
    // zero bytes of memory.size/grow, a br_table running past its block
    "binary:126", "binary:146", "binary:166", "binary:185", "binary:204", "binary:224",
    "binary:243", "binary:262", "binary:280", "binary:298", "binary:1114",
    // memory.init / data.drop without a data count section
    "binary:494", "binary:517"};

// Rejected by decode_module with another message than the reference
// interpreter's. A body whose last byte is not `end` is cut off at its size
// ("unexpected end of section or function"), where the reference reads on
// past the size and reports what it finds there.
const std::set<std::string> kKnownMessageDifferences = {
    "binary:56", // reference: "END opcode expected" (an else after the body)
    "binary:93", // reference: "section size mismatch"
    // The body sizes are too small for their over-long LEB128 immediates;
    // reference: "integer representation too long".
    "binary-leb128:405", "binary-leb128:462", "binary-leb128:731", "binary-leb128:751",
    "binary-leb128:846", "binary-leb128:866",
    // Memory limits flag 2 means shared (threads proposal), so the decoder
    // reads on to the minimum; reference (2.0 only): "integer too large".
    "binary:852"};

bool have_wast2json() {
  return std::system("wast2json --version >/dev/null 2>&1") == 0;
}

struct Outcome {
  int decoded = 0, rejected = 0;
  std::vector<std::string> failures;
};

// Runs wast2json on `wast` into `dir` and returns its command list.
nlohmann::json convert(const fs::path& wast, const fs::path& dir, const std::string& flags) {
  fs::create_directories(dir);
  std::string json = (dir / (wast.stem().string() + ".json")).string();
  std::string cmd = "wast2json " + flags + " " + wast.string() + " -o " + json + " 2>/dev/null";
  if (std::system(cmd.c_str()) != 0) return {};
  return nlohmann::json::parse(std::ifstream(json))["commands"];
}

void check_command(const nlohmann::json& c, const fs::path& dir, const std::string& where,
                   Outcome& out) {
  std::string type = c["type"];
  bool binary = !c.contains("module_type") || c["module_type"] == "binary";
  if (!c.contains("filename") || !binary || type == "assert_exhaustion") return;
  bool malformed = type == "assert_malformed";
  bool must_reject = malformed && !kBodyLevelMalformed.contains(where);
  std::string error;
  try {
    decode_module(util::read_file((dir / c["filename"].get<std::string>()).string()));
    ++out.decoded;
  } catch (const DecodeError& e) {
    ++out.rejected;
    error = e.what();
  }
  if (must_reject && error.empty()) {
    out.failures.push_back(where + ": decoded, expected \"" + c["text"].get<std::string>() + "\"");
  } else if (!must_reject && !error.empty()) {
    out.failures.push_back(where + ": " + type + " rejected: " + error);
  } else if (must_reject && !kKnownMessageDifferences.contains(where)) {
    std::string expected = c["text"];
    // The reference test runner matches messages by prefix.
    if (error.rfind(expected, 0) != 0)
      out.failures.push_back(where + ": \"" + error + "\", expected \"" + expected + "\"");
  }
}

// Checks `commands` and, inside thread commands, theirs.
void check_commands(const nlohmann::json& commands, const fs::path& dir, const std::string& name,
                    Outcome& out) {
  for (const auto& c : commands) {
    if (c.value("type", "") == "thread") {
      check_commands(c["commands"], dir, name, out);
      continue;
    }
    if (c.value("type", "") == "wait") continue;
    check_command(c, dir, name + ":" + std::to_string(c["line"].get<int>()), out);
  }
}

// Runs `tern wast --convert-to` on `wast` into `dir` and returns its command list.
nlohmann::json convert_with_tern(const fs::path& wast, const fs::path& dir) {
  fs::create_directories(dir);
  std::string tern = std::string(TERN_BINARY_DIR) + "/tern";
  std::string cmd =
      tern + " wast --convert-to " + dir.string() + " " + wast.string() + " >/dev/null";
  if (std::system(cmd.c_str()) != 0) return {};
  return nlohmann::json::parse(std::ifstream(dir / (wast.stem().string() + ".json")))["commands"];
}

// Scripts of the threads proposal with `(thread $T ...)` and `(wait $T)`
// commands, which wabt 1.0.32 cannot convert (the suite's README): tern wast
// converts them itself (--convert-to), thread bodies as nested commands.
bool has_thread_commands(const fs::path& wast) {
  std::ifstream in(wast);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.find("(thread $") != std::string::npos;
}

// Converts and checks every .wast in `suite` (but SIMD and what wabt cannot
// convert); returns the number of files.
int check_wasts(const fs::path& suite, const std::string& flags, const std::string& label,
                const fs::path& tmp, Outcome& out) {
  int files = 0;
  for (const auto& entry : fs::directory_iterator(suite)) {
    const fs::path& wast = entry.path();
    std::string stem = wast.stem().string();
    if (wast.extension() != ".wast" || stem.starts_with("simd") || kUnconvertible.contains(stem))
      continue;
    fs::path dir = tmp / (label + stem);
    auto commands =
        has_thread_commands(wast) ? convert_with_tern(wast, dir) : convert(wast, dir, flags);
    if (commands.is_null()) {
      out.failures.push_back("wast2json failed on " + wast.string());
      continue;
    }
    ++files;
    check_commands(commands, dir, label + stem, out);
  }
  return files;
}

TEST(DecoderSpecSuite, MalformedRejectedAndWellFormedDecoded) {
  fs::path suite = suite_dir();
  if (suite.empty() || !have_wast2json())
    GTEST_SKIP() << "spec test suite or wast2json not available";
  fs::path tmp = fs::temp_directory_path() / ("tern-decoder-spec-" + std::to_string(::getpid()));
  Outcome out;
  int files = check_wasts(suite, "", "", tmp, out);
  // Shared memories (limits flags 2 and 3) must decode too.
  files += check_wasts(suite / "proposals/threads", "--enable-threads", "threads/", tmp, out);
  fs::remove_all(tmp);
  std::string report;
  for (const auto& f : out.failures) report += f + "\n";
  EXPECT_TRUE(out.failures.empty()) << report;
  EXPECT_GT(files, 80);
  std::printf("spec suite: %d files, %d modules decoded, %d rejected\n", files, out.decoded,
              out.rejected);
}

} // namespace
} // namespace tern::wasm
