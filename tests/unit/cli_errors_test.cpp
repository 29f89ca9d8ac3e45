// How the command line reports what stopped a command (cli/commands.h):
// bad input is one "tern: error:" line and exit status 1; a bug in tern
// (tern::InternalError) is reported as a bug, with its own exit status,
// never as the user's bad input.
#include "cli/commands.h"
#include "tern/error.h"
#include "tern/internal_error.h"

#include <algorithm>
#include <gtest/gtest.h>
#include <stdexcept>

namespace tern::cli {
namespace {

// Runs body under guarded(): (exit status, what it printed on stderr).
std::pair<int, std::string> guarded_run(const std::function<int()>& body) {
  ::testing::internal::CaptureStderr();
  guarded(body);
  return {exit_code(), ::testing::internal::GetCapturedStderr()};
}

TEST(CliErrors, TheBodysResultIsTheExitStatus) {
  auto [status, err] = guarded_run([] { return 3; });
  EXPECT_EQ(status, 3);
  EXPECT_EQ(err, "");
}

TEST(CliErrors, BadInputIsOneErrorLineAndStatusOne) {
  for (auto thrower : {+[] { throw Error("bad.wasm: not a module"); },
                       +[] { throw LinkError("unknown import env.f"); },
                       +[] { throw std::runtime_error("bad.wasm: not a module"); }}) {
    auto [status, err] = guarded_run([&]() -> int {
      thrower();
      return 0;
    });
    EXPECT_EQ(status, 1);
    EXPECT_EQ(err.rfind("tern: error: ", 0), 0u) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  }
}

TEST(CliErrors, AnInternalErrorIsReportedAsABugWithItsOwnStatus) {
  auto [status, err] =
      guarded_run([]() -> int { throw InternalError("a saved frame is shorter than its point"); });
  EXPECT_EQ(status, kInternalErrorExitCode);
  EXPECT_NE(status, 1);
  EXPECT_EQ(err, "tern: internal error: a saved frame is shorter than its point (a bug in tern: "
                 "please report it with the command that caused it)\n");
}

// Code that handles bad input (catch tern::Error) does not swallow a bug.
TEST(CliErrors, AnInternalErrorIsNotBadInput) {
  bool handled_as_bad_input = false;
  try {
    try {
      throw InternalError("cannot happen");
    } catch (const Error&) {
      handled_as_bad_input = true;
    }
  } catch (const InternalError&) {
  }
  EXPECT_FALSE(handled_as_bad_input);
}

} // namespace
} // namespace tern::cli
