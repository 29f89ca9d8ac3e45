// A loader for the one kind of ELF file tern's compiler makes: a
// self-contained shared object (no needed libraries, no symbol
// relocations, only RELATIVE ones) whose entry point is the module's
// ModuleInfo. No dlopen: static binaries (the cross builds) load artifacts
// with this too.
#pragma once

#include "aot/code_image.h"

#include <memory>
#include <span>
#include <string>

namespace tern::aot {

// Maps, relocates and protects `image`; throws tern::Error naming `name` if
// the image is not such a shared object for this host.
std::unique_ptr<CodeImage> load_elf_image(std::span<const uint8_t> image, const std::string& name);

} // namespace tern::aot
