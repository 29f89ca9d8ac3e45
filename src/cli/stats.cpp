#include "cli/stats.h"

#include "util/file.h"

#include <nlohmann/json.hpp>

namespace tern::cli {

void write_stats(const std::string& path, const program::Program& program,
                 const program::SupervisedOutcome& outcome, int exit_status) {
  nlohmann::json j;
  j["exit_status"] = exit_status;
  j["stopped"] = outcome.stopped;
  j["stable_points"] = program.stable_points();
  j["checkpoints"] = outcome.checkpoints_written;
  j["checkpoints_failed"] = outcome.checkpoints_failed;
  auto digest = program.memory_sha256();
  j["memory_sha256"] = digest ? nlohmann::json(util::to_hex(*digest)) : nlohmann::json(nullptr);
  // How a restore loaded memory (Program::memory_loading), null for a run.
  j["memory_loading"] = program.memory_loading().empty() ? nlohmann::json(nullptr)
                                                         : nlohmann::json(program.memory_loading());
  std::string text = j.dump(2) + "\n";
  util::write_file_atomic(path, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

} // namespace tern::cli
