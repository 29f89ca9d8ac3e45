#include "aot/cache.h"

#include "aot/abi.h"
#include "tern/compiler_id.h"
#include "tern/version.h"

#include <cstdlib>
#include <fmt/format.h>

namespace tern::aot {

std::string default_cache_dir() {
  if (const char* dir = std::getenv("TERN_CACHE_DIR"); dir && *dir) return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return std::string(xdg) + "/tern";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.cache/tern";
  return ".tern-cache";
}

uint32_t module_flags(const CompileOptions& options) {
  uint32_t flags = 0;
  if (options.stable_points) flags |= kStablePoints;
  if (options.bounds_checks) flags |= kBoundsChecks;
  if (options.exact_points) flags |= kExactPoints;
  if (options.wide_addresses && !options.bounds_checks) flags |= kWideAddresses;
  return flags;
}

std::string cache_path(const std::string& dir, const util::Sha256Digest& hash,
                       const CompileOptions& options, CacheKind kind) {
  std::string target = options.target.name();
  for (char& c : target)
    if (c == ':') c = '-';
  return fmt::format("{}/{}-{}-abi{}-c{}-{}-O{}-f{}.{}", dir, util::to_hex(hash), kVersion,
                     kAbiVersion, kCompilerId, target, options.opt_level, module_flags(options),
                     kind == CacheKind::Artifact ? "tern-aot" : "tern-jit");
}

} // namespace tern::aot
