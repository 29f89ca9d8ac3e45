// The on-disk cache of compiled code: one file per (module hash, tern
// version and ABI, target, compile options), in the artifact format
// (aot/artifact.h) so that every entry is checked like any artifact.
#pragma once

#include "aot/compiler.h"

#include <string>

namespace tern::aot {

// $TERN_CACHE_DIR, else $XDG_CACHE_HOME/tern, else $HOME/.cache/tern.
std::string default_cache_dir();

// JitObject: code the JIT compiled for this host (also an artifact).
enum class CacheKind { Artifact, JitObject };

// The path of the entry for a module compiled with `options`.
std::string cache_path(const std::string& dir, const util::Sha256Digest& hash,
                       const CompileOptions& options, CacheKind kind);

// Flags recorded for code compiled with `options` (ModuleFlags).
uint32_t module_flags(const CompileOptions& options);

} // namespace tern::aot
