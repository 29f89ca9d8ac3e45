// Artifact files (`tern compile` output, the AOT cache): a fixed header
// saying what the code is for, then the native code as a self-contained ELF
// shared object (docs/aot.md, "Artifact format"). The header is read and
// checked before a single byte of code is looked at: a file compiled from
// another module, by another tern, for another machine, or damaged, is
// refused with a message saying which.
#pragma once

#include "aot/code_image.h"
#include "aot/target.h"
#include "util/sha256.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace tern::aot {

struct ArtifactHeader {
  std::string tern_version;
  uint32_t abi_version = 0;
  Target target;
  uint32_t flags = 0; // ModuleFlags
  util::Sha256Digest module_hash{};
};

// Header + image, ready to write.
std::vector<uint8_t> make_artifact(const ArtifactHeader& header, std::span<const uint8_t> image);

// This tern's header fields (version, ABI) for code compiled now.
ArtifactHeader current_header(const Target& target, uint32_t flags,
                              const util::Sha256Digest& module_hash);

// Parses and checks the container (size, checksum); throws tern::Error
// naming `name`. `image` points into `bytes`.
struct ArtifactView {
  ArtifactHeader header;
  std::span<const uint8_t> image;
};
ArtifactView read_artifact(std::span<const uint8_t> bytes, const std::string& name);

// Throws tern::Error unless the artifact is for `module_hash`, was made by
// this tern version and ABI, and runs on this host.
void check_artifact(const ArtifactHeader& header, const util::Sha256Digest& module_hash,
                    const std::string& name);

// Reads, checks and loads an artifact for the module `module_hash`.
std::unique_ptr<CodeImage> load_artifact(std::span<const uint8_t> bytes,
                                         const util::Sha256Digest& module_hash,
                                         const std::string& name);

} // namespace tern::aot
