#include "cli/engine_mode.h"

#include "interp/engine.h"
#include "tern/error.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace tern::cli {

const std::vector<std::string>& engine_modes() {
  static const std::vector<std::string> modes = {"interp"};
  return modes;
}

std::unique_ptr<runtime::Engine> make_engine_for_mode(const std::string& mode) {
  if (mode == "interp") return interp::make_engine();
  throw Error(fmt::format("unknown execution mode '{}' (known: {})", mode,
                          fmt::join(engine_modes(), ", ")));
}

} // namespace tern::cli
